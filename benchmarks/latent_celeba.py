"""Measured checks of the latent tools on CelebA faces (issue 5, item 6), and the lecture's figures.

    python benchmarks/latent_celeba.py --ae RUN_AE --vae RUN_VAE

RUN_AE / RUN_VAE are runs of ``genlab train`` on the ``celeba`` dataset (see RESULTS.md for the
exact commands). The script

1. trains an independent Smiling classifier (genlab's ``classifier``) on training faces that are
   NOT the 20 + 20 labelled faces the attribute vector is computed from;
2. adds the Smiling vector to non-smiling held-out faces (and subtracts it from smiling ones) at
   growing scales and reports how often the classifier calls the result smiling;
3. compares samples (AE with N(0, I), AE with a fitted Gaussian / GMM, VAE with N(0, I) and with a
   fitted Gaussian) by Frechet distance to held-out faces in that classifier's feature space;
4. measures latent norms along lerp and slerp paths between N(0, I) codes;
5. measures projection error on held-out faces for the encoders and for optimisation;

then writes figures to ``benchmarks/out/latent_celeba/`` (git-ignored: CelebA's licence forbids
publishing images derived from it) and the numbers to ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
from pathlib import Path

import torch

from genlab import api
from genlab.latent import (
    LatentDensity, apply_to_codes, attribute_vector, encode_all, expected_gaussian_norm, interpolation_grid,
    labelled_examples, norm_profile, project, random_codes,
)
from genlab.metrics import fid_from_features
from genlab.models import build_model
from genlab.training.trainer import TrainConfig, Trainer
from genlab.viz import save_image_grid, _pyplot, save_figure

log = logging.getLogger("latent_celeba")
HERE = Path(__file__).resolve().parent
START, END = "<!-- latent_celeba:start -->", "<!-- latent_celeba:end -->"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ae", required=True, help="autoencoder run folder")
    p.add_argument("--vae", required=True, help="VAE run folder")
    p.add_argument("--attr", default="Smiling")
    p.add_argument("--labelled", type=int, default=20, help="labelled faces per group for the vector")
    p.add_argument("--edit-count", type=int, default=200, help="held-out faces edited per direction")
    p.add_argument("--samples", type=int, default=1000, help="samples per sampler for the Frechet distances")
    p.add_argument("--project-count", type=int, default=16, help="held-out faces to project")
    p.add_argument("--project-steps", type=int, default=100)
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default="", help="a sentence for RESULTS.md about how the runs were trained")
    p.add_argument("--out", default=str(HERE / "out" / "latent_celeba"))
    p.add_argument("--results", default=str(HERE / "RESULTS.md"))
    return p.parse_args()


def train_attribute_classifier(train, index: torch.Tensor, column: int, epochs: int, seed: int):
    """genlab's classifier on the faces ``index`` with labels = attribute column (0/1)."""
    x, y = train.x[index], train.y[index, column].long()
    from genlab.data import ArrayDataset

    data = ArrayDataset((x, y), {"name": "celeba-attr"})
    model = build_model("classifier", {"image_shape": list(x.shape[1:]), "num_classes": 2, "channels": [32, 64],
                                       "kernel_size": 3, "hidden_dim": 128, "augment_shift": 1, "dropout": 0.3})
    config = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, progress=False, tensorboard=False, seed=seed,
                         log_every=50, eval_every=0, sample_every=0, checkpoint_every=0)
    Trainer(model, data, config).fit()
    return model.eval()


@torch.no_grad()
def smiling_rate(classifier, images: torch.Tensor) -> float:
    return float(torch.cat([classifier.predict(c) for c in images.split(500)]).float().mean())


@torch.no_grad()
def features(classifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([classifier.features(c) for c in images.split(500)]).double()


def monotone(values: list[float], increasing: bool = True) -> bool:
    pairs = zip(values, values[1:])
    return all(b >= a for a, b in pairs) if increasing else all(b <= a for a, b in pairs)


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    ae, ae_spec = api.load_run(args.ae)
    vae, _ = api.load_run(args.vae)
    models = {"AE": ae, "VAE": vae}
    train = api.run_data(ae_spec, None, "train")
    test = api.run_data(ae_spec, None, "test")
    names = train.info["attr_names"]
    column = names.index(args.attr)
    g = torch.Generator().manual_seed(args.seed)
    results: dict = {"training_seconds": {k: _training_seconds(Path(r)) for k, r in (("AE", args.ae), ("VAE", args.vae))},
                     "setup": {
        "image_shape": list(train.x.shape[1:]), "train_faces": len(train), "test_faces": len(test),
        "latent_dim": {k: m.latent_dim for k, m in models.items()}, "attribute": args.attr, "labelled": args.labelled,
    }}

    # ------------------------------------------------------------------ 1. the independent classifier
    pos, neg = labelled_examples(train.y, names, args.attr, args.labelled, generator=g)
    held = torch.ones(len(train), dtype=torch.bool)
    held[pos], held[neg] = False, False
    t0 = time.perf_counter()
    classifier = train_attribute_classifier(train, held.nonzero().squeeze(1), column, args.classifier_epochs, args.seed)
    truth = test.y[:, column]
    with torch.no_grad():
        predicted = torch.cat([classifier.predict(c) for c in test.x.split(500)])
    results["classifier"] = {
        "train_faces": int(held.sum()), "epochs": args.classifier_epochs, "seconds": round(time.perf_counter() - t0, 1),
        "test_accuracy": round(float((predicted == truth).float().mean()), 4),
        "test_rate_true": round(float(truth.float().mean()), 4), "test_rate_predicted": round(float(predicted.float().mean()), 4),
    }
    log.info("classifier: %s", results["classifier"])

    # ------------------------------------------------------------------ 2. the attribute vector
    scales_up = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    non_smiling = (truth == 0).nonzero().squeeze(1)[: args.edit_count]
    smiling = (truth == 1).nonzero().squeeze(1)[: args.edit_count]
    results["attribute"] = {"scales": scales_up, "faces_each": [len(non_smiling), len(smiling)]}
    for name, model in models.items():
        vector = attribute_vector(model, train.x[pos], train.x[neg])
        add = apply_to_codes(model, encode_all(model, test.x[non_smiling]), vector, scales_up)  # (N, S, C, H, W)
        remove = apply_to_codes(model, encode_all(model, test.x[smiling]), vector, [-s for s in scales_up])
        add_rates = [smiling_rate(classifier, add[:, k]) for k in range(len(scales_up))]
        remove_rates = [smiling_rate(classifier, remove[:, k]) for k in range(len(scales_up))]
        results["attribute"][name] = {
            "vector_norm": round(float(vector.norm()), 3),
            "add_rate": [round(r, 3) for r in add_rates], "remove_rate": [round(r, 3) for r in remove_rates],
            "add_monotone": monotone(add_rates), "remove_monotone": monotone(remove_rates, increasing=False),
            "add_rise": round(add_rates[-1] - add_rates[0], 3), "remove_drop": round(remove_rates[0] - remove_rates[-1], 3),
        }
        log.info("%s attribute: %s", name, results["attribute"][name])
        # figure: 8 faces, scales -3..3, original first
        faces = torch.cat([test.x[non_smiling[:4]], test.x[smiling[:4]]])
        strip_scales = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
        strips = apply_to_codes(model, encode_all(model, faces), vector, strip_scales)
        save_image_grid(torch.cat([faces[:, None], strips], 1).flatten(0, 1), out / f"smiling_vector_{name}.png",
                        nrow=len(strip_scales) + 1, scale=2)

    # ------------------------------------------------------------------ 3. samplers by Frechet distance
    n = args.samples
    reference = features(classifier, test.x)
    baseline_real = features(classifier, train.x[held.nonzero().squeeze(1)[:n]])
    samples: dict[str, torch.Tensor] = {}
    codes = {name: encode_all(model, train.x) for name, model in models.items()}
    densities = {}
    for name, model in models.items():
        sg = torch.Generator().manual_seed(args.seed + 1)
        samples[f"{name} N(0,I)"] = _decode(model, random_codes(model, n, generator=sg))
        densities[name] = LatentDensity("gaussian").fit(codes[name])
        samples[f"{name} fitted Gaussian"] = _decode(model, densities[name].sample(n, generator=sg))
    try:
        gmm = LatentDensity("gmm", components=10, seed=args.seed).fit(codes["AE"])
        samples["AE fitted GMM (10)"] = _decode(ae, gmm.sample(n, generator=torch.Generator().manual_seed(args.seed + 2)))
    except Exception as exc:  # scikit-learn is optional
        log.warning("skipping the GMM sampler: %s", exc)
    fd = {"real train faces (baseline)": fid_from_features(baseline_real.numpy(), reference.numpy())}
    for name, model in models.items():
        fd[f"{name} reconstructions"] = fid_from_features(features(classifier, _decode(model, encode_all(model, test.x))).numpy(), reference.numpy())
    for key, images in samples.items():
        fd[key] = fid_from_features(features(classifier, images).numpy(), reference.numpy())
    results["frechet"] = {"samples": n, "reference": f"{len(test)} held-out faces", "features": "Smiling classifier, 128-d",
                          "distance": {k: round(v, 3) for k, v in fd.items()}}
    results["code_norms"] = {name: round(float(c.norm(dim=1).mean()), 2) for name, c in codes.items()}
    log.info("frechet: %s", results["frechet"]["distance"])
    # figures: AE vs VAE samples; 400 fitted-Gaussian samples with the scatter of z[0], z[1]
    save_image_grid(torch.cat([samples["AE N(0,I)"][:32], samples["VAE N(0,I)"][:32]]), out / "samples_ae_vs_vae_prior.png", nrow=8, scale=2)
    save_image_grid(torch.cat([samples["AE fitted Gaussian"][:32], samples["VAE N(0,I)"][:32]]), out / "samples_ae_fitted_vs_vae.png", nrow=8, scale=2)
    save_image_grid(samples["AE fitted Gaussian"][:400], out / "ae_fitted_gaussian_400.png", nrow=20)
    _scatter(codes["AE"], densities["AE"].sample(400, generator=torch.Generator().manual_seed(args.seed + 3)),
             out / "ae_latent_scatter.png")

    # ------------------------------------------------------------------ 4. lerp vs slerp norms
    d = vae.latent_dim
    z0 = torch.randn(1000, d, generator=torch.Generator().manual_seed(args.seed + 4))
    z1 = torch.randn(1000, d, generator=torch.Generator().manual_seed(args.seed + 5))
    profile = {m: norm_profile(z0, z1, 11, method=m).mean(1) for m in ("lerp", "slerp")}  # (11,)
    results["norms"] = {"dim": d, "expected_norm": round(expected_gaussian_norm(d), 3), "sqrt_d": round(math.sqrt(d), 3),
                        "t": [round(i / 10, 1) for i in range(11)],
                        **{m: [round(float(v), 2) for v in p] for m, p in profile.items()}}
    corners = random_codes(vae, 4, generator=torch.Generator().manual_seed(args.seed + 6))
    for method in ("lerp", "slerp"):
        for name, model in models.items():
            save_image_grid(interpolation_grid(model, corners, 8, method=method), out / f"grid_{name}_{method}.png", nrow=8, scale=2)

    # ------------------------------------------------------------------ 5. projection of held-out faces
    faces = test.x[torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed + 7))[: args.project_count]]
    projection = {"faces": len(faces), "steps": args.project_steps}
    for name, model in models.items():
        for method in ("encoder", "optimize", "hybrid"):
            t0 = time.perf_counter()
            result = project(model, faces, method=method, steps=args.project_steps, lr=0.05,
                             generator=torch.Generator().manual_seed(args.seed))
            projection[f"{name} {method}"] = {"mse": round(float(result.error.mean()), 5),
                                              "seconds": round(time.perf_counter() - t0, 1)}
            log.info("projection %s %s: %s", name, method, projection[f"{name} {method}"])
            if method == "optimize":
                save_image_grid(torch.cat([faces[:16], result.images[:16]]), out / f"projection_{name}.png", nrow=16, scale=2)
    results["projection"] = projection
    for name, model in models.items():
        with torch.no_grad():
            recon = _decode(model, encode_all(model, test.x[:16]))
        save_image_grid(torch.cat([test.x[:16], recon]), out / f"reconstructions_{name}.png", nrow=16, scale=2)

    results["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_results(Path(args.results), results, args)
    print(json.dumps(results, indent=2))
    return 0


def _training_seconds(run: Path) -> dict:
    """Which weights a run provides (its exported model/, else its latest checkpoint) and the wall
    time until they were written (run.json is written when training starts)."""
    from genlab.checkpoint import resolve_model_dir

    weights = resolve_model_dir(run)
    seconds = (weights / "config.json").stat().st_mtime - (run / "run.json").stat().st_mtime
    return {"weights": weights.name if weights.name != "model" else "model (finished run)", "seconds": round(seconds)}


def _decode(model, z: torch.Tensor) -> torch.Tensor:
    from genlab.latent import decode

    return decode(model, z)


def _scatter(codes: torch.Tensor, sampled: torch.Tensor, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(codes[:2000, 0], codes[:2000, 1], s=3, alpha=0.4, label="encoded training faces")
    ax.scatter(sampled[:, 0], sampled[:, 1], s=3, alpha=0.6, label="fitted Gaussian samples")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def write_results(path: Path, r: dict, args: argparse.Namespace) -> None:
    a, f, n, p, c = r["attribute"], r["frechet"], r["norms"], r["projection"], r["classifier"]
    lines = [START, "## Latent space on CelebA faces (`benchmarks/latent_celeba.py`)", ""]
    lines += [
        f"Faces: the team's 10,000-image CelebA subset, centre-cropped and resized to "
        f"{r['setup']['image_shape'][1]}x{r['setup']['image_shape'][2]}, {r['setup']['train_faces']} train / "
        f"{r['setup']['test_faces']} held-out faces; latent dim {r['setup']['latent_dim']}. "
        "Figures are written to `benchmarks/out/latent_celeba/` only (CelebA's licence forbids publishing them).",
        "",
        "Commands (GENLAB_CACHE outside the repo; one torch thread per process on the 2-core machine):",
        "```",
        *COMMANDS,
        f"python benchmarks/latent_celeba.py --ae {args.ae} --vae {args.vae}",
        "```",
        "",
        "Each training ran with one torch thread beside one other one-thread benchmark. "
        f"Weights used and training wall time until they were written: AE {r['training_seconds']['AE']}, "
        f"VAE {r['training_seconds']['VAE']}. {args.note}",
        "",
        f"**Independent {args.attr} classifier** (genlab `classifier`, trained {c['epochs']} epochs on the "
        f"{c['train_faces']} training faces that are not among the {args.labelled}+{args.labelled} labelled faces of "
        f"the vector): held-out accuracy {c['test_accuracy']:.3f} (true rate {c['test_rate_true']:.3f}, "
        f"predicted {c['test_rate_predicted']:.3f}).",
        "",
        f"**{args.attr} vector** = mean code of {args.labelled} smiling minus {args.labelled} non-smiling training faces. "
        f"Fraction of edited held-out faces the classifier calls smiling ({a['faces_each'][0]} non-smiling faces "
        f"+s*v; {a['faces_each'][1]} smiling faces -s*v):",
        "",
        "| model | direction | " + " | ".join(f"s={s:g}" for s in a["scales"]) + " | monotone | rate change, s=0 to 3 |",
        "|---|---|" + "---|" * len(a["scales"]) + "---|---|",
    ]
    for name in ("AE", "VAE"):
        m = a[name]
        lines.append(f"| {name} | add | " + " | ".join(f"{v:.3f}" for v in m["add_rate"]) + f" | {m['add_monotone']} | {m['add_rise']:+.3f} |")
        lines.append(f"| {name} | remove | " + " | ".join(f"{v:.3f}" for v in m["remove_rate"]) + f" | {m['remove_monotone']} | {-m['remove_drop']:+.3f} |")
    lines += [
        "",
        f"**Samplers by Frechet distance** in the classifier's 128-d feature space ({f['samples']} samples each, "
        f"reference: {f['reference']}; genlab.metrics.fid_from_features; lower is better):",
        "",
        "| images | Frechet distance |",
        "|---|---:|",
        *[f"| {k} | {v:.3f} |" for k, v in f["distance"].items()],
        "",
        f"Mean code norm of the training faces: {r['code_norms']} (N(0, I) in {n['dim']}-d has norm about {n['expected_norm']}).",
        "",
        f"**lerp vs slerp** between 1,000 pairs of N(0, I) codes in {n['dim']}-d (E|z| = {n['expected_norm']}, "
        f"sqrt(d) = {n['sqrt_d']}); mean norm along the path:",
        "",
        "| t | " + " | ".join(f"{t:g}" for t in n["t"]) + " |",
        "|---|" + "---:|" * len(n["t"]),
        "| lerp | " + " | ".join(f"{v:.2f}" for v in n["lerp"]) + " |",
        "| slerp | " + " | ".join(f"{v:.2f}" for v in n["slerp"]) + " |",
        "",
        f"**Projection** of {p['faces']} held-out faces (mean squared pixel error of the decoded code; optimisation: "
        f"Adam, {p['steps']} steps, lr 0.05 cosine-decayed, from z = 0; hybrid: the same from the encoder's code):",
        "",
        "| model | encoder | optimisation | hybrid |",
        "|---|---:|---:|---:|",
    ]
    for name in ("AE", "VAE"):
        lines.append(f"| {name} | " + " | ".join(f"{p[f'{name} {m}']['mse']:.5f} ({p[f'{name} {m}']['seconds']:.0f} s)" for m in ("encoder", "optimize", "hybrid")) + " |")
    lines += ["", f"Benchmark wall time: {r['seconds']:.0f} s.", END]
    section = "\n".join(lines) + "\n"
    text = path.read_text() if path.is_file() else "# Benchmark results\n\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END) + "\n?", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


# The training commands behind --ae/--vae (recorded in RESULTS.md as run).
COMMANDS = [
    "export GENLAB_CACHE=/tmp/glcache OMP_NUM_THREADS=1  # any cache folder outside the repo",
    "genlab train autoencoder --config configs/ae_celeba64.toml --data celeba:../shared/data/celeba-10k "
    "--out benchmarks/out/runs/ae_celeba64",
    "genlab train vae --config configs/vae_celeba64.toml --data celeba:../shared/data/celeba-10k "
    "--out benchmarks/out/runs/vae_celeba64",
]


if __name__ == "__main__":
    sys.exit(main())
