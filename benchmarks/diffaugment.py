"""Face GANs at equal CPU time, scored in genlab's two face rulers: DiffAugment on vs off, and the
recipes against each other (DCGAN, StyleGAN, FastGAN), on CelebA faces and a subset of them.

    # the full protocol (hours: run it on an idle machine, one thread per process)
    nice -n 10 python benchmarks/diffaugment.py --data celeba:../shared/data/celeba-10k --image-size 64 \\
        --subsets all 2000 --seeds 0 1 2 --budget-minutes 30 --rounds 6
    # the best recipe vs the DCGAN at 2 CPU-hours (issue 24's first target), augmentation as each recipe ships
    nice -n 10 python benchmarks/diffaugment.py --models dcgan fastgan --augment off on --subsets all \\
        --budget-minutes 120 --rounds 8 --tag recipes64
    # the feature-consistent face VAE against the plain VAE at equal CPU time (samples and reconstructions)
    nice -n 10 python benchmarks/diffaugment.py --models vae feature-vae --augment off --subsets all \
        --seeds 0 1 2 --budget-minutes 30 --rounds 6 --tag facevae64
    # the same split over processes (one seed each, the judge of the first passed to the others), then joined,
    # and the seed-0 runs' samples side by side (generated faces only)
    ... --seeds 0 --tag facevae64-s0;  ... --seeds 1 --tag facevae64-s1 --judge OUT/facevae64-s0/judge/model;  ...
    python benchmarks/diffaugment.py --merge facevae64-s0 facevae64-s1 facevae64-s2 --tag facevae64-3seeds
    python benchmarks/diffaugment.py --grid OUT/facevae64-s0/vae-all-off-0 OUT/facevae64-s0/feature-vae-all-off-0 \
        --grid-out benchmarks/results/facevae64-samples.png
    # a smoke run (minutes): tiny rulers, subsets and budgets, one seed
    python benchmarks/diffaugment.py --image-size 64 --subsets 200 --seeds 0 --budget-minutes 0.1 --rounds 2 \\
        --num-samples 200 --ruler-epochs 1 --ruler-train-images 500 --tag smoke --dcgan-channels 8 \\
        --models dcgan fastgan --stylegan-overrides model.channel_max=16 model.channel_base=256

Question: does DiffAugment (Zhao et al., NeurIPS 2020; ``model.augment``, :mod:`genlab.nn.augment`)
give a better generator for the same CPU time, and more so with less data? And which recipe gives the
best faces per CPU-hour?

Protocol.

1. The rulers: :mod:`genlab.metrics.rulers`' two face feature networks (``attributes``: a ResNet trained on
   the 40 attributes; ``ssl``: a SimCLR network trained without labels, another architecture and seed),
   trained by their shipped recipes on faces 1-8,000 of CelebA 10k at 64 px and cached by fingerprint
   (``benchmarks/face_rulers.py`` trains and validates them; this script loads them, or trains them the
   same way). No generator ever trains against them. Every score is FD, KID (± std), precision/recall
   and density/coverage in each ruler against the reference split (faces 9,001-10,000, the generators'
   test split, seen by no network); the floor is the held-out real split (8,001-9,000) against it.
   Generators at another size than the rulers' 64 px are scored after a bilinear resize to 64 px, and the
   reference and floor then take the same round trip (down to the generator's size and back up).
2. The grid: model (``dcgan``: conv G and D, non-saturating loss, Adam 2e-4 / (0.5, 0.999), EMA 0.999;
   ``stylegan``: configs/stylegan_celeba32.toml at ``--image-size``; ``fastgan``: genlab's FastGAN at its
   defaults; ``vae``: configs/vae_celeba64.toml; ``feature-vae``: the same VAE plus the feature-consistency
   term (``model.feature_weight``, ``--feature-weight``) in the feature maps of the *judge*, an ``attributes``
   network of another width, seed and length than the ruler (``JUDGE``), trained once under ``--out``) x training set (``--subsets``: the first N training faces, ``all`` = the whole split) x
   augmentation (``--augment``; ``off``: no augmentation, ``on``: ``--policy``, default
   color,translation,cutout at p = 1, DiffAugment's choice for small data; ``ada``: the same policy with
   ADA's adaptive p, ``model.augment_target=--ada-target`` and ``model.augment_speed_kimg=--ada-speed-kimg``,
   capped at ``--augment-p``; GANs only) x seed (``--seeds``,
   ``train.seed``: weights, noise and batch order).
3. Equal CPU time: every run gets ``--budget-minutes`` of *process CPU seconds* (``time.process_time``,
   one thread), spent in ``--rounds`` interleaved rounds over the whole grid, so a drift in the shared
   machine's load falls on every run alike. A round ends at the first log step past its share; the
   run is resumed (exactly) the next round. Scoring is not training time. The benchmark itself resumes:
   killed, the same command again keeps the scored rounds and continues each run from its last round; with
   more ``--rounds`` and ``--budget-minutes`` at the same minutes per round it extends every run's curve.
4. After each round: ``--num-samples`` EMA samples vs as many reference faces in both rulers; for an
   autoencoder also its reconstructions of those reference faces (``reconstruction``: the same scores,
   plus the pixel MSE), which it never trained on, and ``fitted``: ``--num-samples`` faces decoded from a
   Gaussian fitted to its codes of the rulers' 8,000 training faces (ex-post density estimation, Ghosh et al.
   2020; the lecture's ``latent-density-faces``), a second sampler beside the prior. The JSON
   holds every curve (scores over CPU seconds) and, per cell and ruler, the final FD's mean and standard
   deviation over seeds, and on - off (ada - off). A difference counts only where both rulers agree on its sign.
   An adaptive run's rows also hold its augmentation probability at the end of the round (``augment_p``).

Without the data the script says so and exits 0 (nothing written). Writes
benchmarks/results/diffaugment-TAG.json (numbers only: never commit faces); runs go under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from genlab import api
import torch.nn.functional as F

from genlab.checkpoint import atomic_write_text
from genlab.data import data_config_from_spec
from genlab.latent import LatentDensity, decode, encode_all
from genlab.latent.protocols import has
from genlab.metrics import rulers as R
from genlab.registry import REPORTERS
from stylegan_quality import QUIET, stop_after  # the same budget callback

HERE = Path(__file__).resolve().parent
AUTOENCODERS = ("vae", "feature-vae")
# the feature-VAE's judge of features: an attributes network that is not a ruler (half the ruler's widths,
# another seed, 5 epochs instead of 10, trained on the generators' training split)
JUDGE = ["model.widths=[16,32,64,128]", "train.seed=5", "train.epochs=5", "train.eval_every=100000000",
         "train.sample_every=100000000"]
ARMS = ("off", "on", "ada")  # augmentation: none, DiffAugment at a fixed p, DiffAugment with ADA's adaptive p
# arguments added after results were written: a results file without one ran as if with this value
LATER_ARGUMENTS = {"ada_target": 0.6, "ada_speed_kimg": 100.0}


def run_overrides(args: argparse.Namespace, model: str, subset: str, arm: str, seed: int) -> list[str]:
    common = [f"data.image_size={args.image_size}", f"train.seed={seed}", "train.max_steps=100000000",
              "train.eval_every=100000000", "train.log_every=10", "train.sample_every=100000000",
              "train.checkpoint_every=100000000", *QUIET]
    if subset != "all":
        common.append(f"data.limit={int(subset)}")
    if model in AUTOENCODERS:
        feature = [f"model.feature_network={args.judge}", f"model.feature_weight={args.feature_weight}"]
        return [*common, "train.epochs=100000", *(feature if model == "feature-vae" else [])]
    if arm != "off":
        common += [f"model.augment={args.policy}", f"model.augment_p={args.augment_p}"]
    if arm == "ada":
        common += [f"model.augment_target={args.ada_target}", f"model.augment_speed_kimg={args.ada_speed_kimg}"]
    elif model == "fastgan":  # FastGAN ships with augmentation on
        common.append("model.augment=none")
    if model == "stylegan":
        return [*common, *args.stylegan_overrides]
    if model == "fastgan":
        return [*common, *args.fastgan_overrides]
    return [*common, f"model.latent_dim={args.dcgan_latent}", f"model.generator_channels={args.dcgan_channels}",
            f"model.discriminator_channels={args.dcgan_channels}", f"train.batch_size={args.dcgan_batch}", "train.lr=2e-4",
            "train.betas=[0.5,0.999]", "train.ema_decay=0.999"]


def same_protocol(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether a results file's arguments ``before`` may go on under ``now``: equal, or extended (at least as
    many rounds, the same CPU minutes per round, everything else equal)."""
    before = {**LATER_ARGUMENTS, **before}
    fixed = [k for k in set(before) | set(now) if k not in ("budget_minutes", "rounds")]
    return (all(before.get(k) == now.get(k) for k in fixed) and now["rounds"] >= before["rounds"]
            and abs(now["budget_minutes"] / now["rounds"] - before["budget_minutes"] / before["rounds"]) < 1e-9)


def train_round(args: argparse.Namespace, run: Path, cell: tuple[str, str, str, int], seconds: float, first: bool) -> float:
    """Train one cell of the grid for about ``seconds`` CPU seconds; returns the CPU seconds it trained."""
    start, finished = time.process_time(), {}
    callbacks = [stop_after(start + seconds, finished, clock=time.process_time)]
    model, subset, arm, seed = cell
    if first:
        config_file = {"stylegan": args.stylegan_config, "vae": args.vae_config, "feature-vae": args.vae_config}.get(model)
        api.train({"dcgan": "gan"}.get(model, model), config_file=config_file, data=args.data, out=run,
                  callbacks=callbacks, overrides=[*run_overrides(args, model, subset, arm, seed), *args.train_overrides])
    else:
        api.train(resume=run, callbacks=callbacks)
    return finished.get("at", time.process_time()) - start


def to_ruler_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images at the rulers' side ``size`` (bilinear, antialiased when shrinking), clamped to [0, 1]."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def round_trip(images: torch.Tensor, size: int, ruler_size: int) -> torch.Tensor:
    """Real faces as a generator of side ``size`` sees them, brought to the rulers' size: the same resampling
    as the samples, so the floor and the reference carry it too."""
    return to_ruler_size(to_ruler_size(images, size), ruler_size)


def score(run: Path, reference: dict[str, Any], rulers: list[Any], n: int, ruler_size: int,
          faces: torch.Tensor | None = None, fit_faces: torch.Tensor | None = None) -> dict[str, Any]:
    """Scores of ``n`` samples (and, given the reference ``faces`` at the model's size, of the model's
    reconstructions of them; given training faces ``fit_faces``, of ``n`` faces decoded from a Gaussian
    fitted to their codes) in every ruler."""
    model, spec = api.load_run(run)
    samples = to_ruler_size(api.sample(model, n, seed=0), ruler_size)
    result: dict[str, Any] = R.face_scores(samples, reference, rulers)
    if faces is not None and has(model, "reconstruct"):
        with torch.no_grad():
            recon = torch.cat([model.reconstruct(chunk.to(model.device)).cpu() for chunk in faces.split(250)])
        result["reconstruction"] = {"mse": float((recon - faces).square().mean()),
                                    **R.face_scores(to_ruler_size(recon, ruler_size), reference, rulers)}
    if fit_faces is not None and has(model, "encoder"):
        density = LatentDensity("gaussian").fit(encode_all(model, fit_faces))
        fitted = decode(model, density.sample(n, generator=torch.Generator().manual_seed(0)))
        result["fitted"] = R.face_scores(to_ruler_size(fitted, ruler_size), reference, rulers)
    steps = trained_steps(run)
    result.update({"steps": steps, "images_seen": steps * spec.train.batch_size})
    schedule = getattr(model, "augmentation", None)
    if schedule is not None and schedule.adaptive:
        result["augment_p"] = schedule.probability
    return result


def trained_steps(run: Path) -> int:
    """The steps a run folder's model has trained (its metrics.json)."""
    return int(json.loads((Path(run) / "metrics.json").read_text())["steps"])


def summarise(curves: dict[str, list[dict[str, Any]]], rulers: list[str]) -> dict[str, Any]:
    """Per (model, subset) and ruler: the final FD's mean and std over seeds with augmentation off and on
    (and, for autoencoders, of their reconstructions), on - off, and whether the rulers agree on its sign;
    with both autoencoders, feature-vae - vae the same way."""
    finals: dict[tuple[str, str, str, str], list[float]] = {}
    for key, rows in curves.items():
        model, subset, augment, _ = key.split("/")
        for ruler in rulers:
            if rows:
                finals.setdefault((model, subset, augment, ruler), []).append(rows[-1][ruler]["fid"])
                for what in ("reconstruction", "fitted"):  # an autoencoder's (fitted: rounds scored since 2026-12-07)
                    if what in rows[-1]:
                        finals.setdefault((model, subset, what, ruler), []).append(rows[-1][what][ruler]["fid"])
    out: dict[str, Any] = {}
    for (model, subset, augment, ruler), values in sorted(finals.items()):
        cell = out.setdefault(f"{model}/{subset}", {}).setdefault(ruler, {})
        cell[augment] = {"final_fd_mean": statistics.fmean(values), "final_fd_std": statistics.pstdev(values), "seeds": len(values)}

    def compare(cell: dict[str, Any], a: dict[str, Any], b: dict[str, Any], what: str, name: str) -> None:
        signs = set()
        for ruler in rulers:
            if what in a.get(ruler, {}) and what in b.get(ruler, {}):
                cell.setdefault(ruler, {})[name] = diff = a[ruler][what]["final_fd_mean"] - b[ruler][what]["final_fd_mean"]
                signs.add(diff > 0)
        if signs:
            cell[f"rulers_agree/{name}"] = len(signs) == 1

    for cell in list(out.values()):
        for arm, agree in (("on", "rulers_agree"), ("ada", "rulers_agree/ada")):
            signs = set()
            for ruler in rulers:
                if arm in cell.get(ruler, {}) and "off" in cell.get(ruler, {}):
                    cell[ruler][f"{arm}_minus_off"] = diff = cell[ruler][arm]["final_fd_mean"] - cell[ruler]["off"]["final_fd_mean"]
                    signs.add(diff > 0)
            if signs:
                cell[agree] = len(signs) == 1
    for subset in {key.split("/")[1] for key in out}:
        feature, plain = out.get(f"feature-vae/{subset}"), out.get(f"vae/{subset}")
        if feature and plain:
            cell = out.setdefault(f"feature-vae-minus-vae/{subset}", {})
            compare(cell, feature, plain, "off", "samples")
            compare(cell, feature, plain, "reconstruction", "reconstruction")
            compare(cell, feature, plain, "fitted", "fitted")
    return out


ARM_LABELS = {"off": "no augmentation", "on": "DiffAugment at a fixed p", "ada": "DiffAugment, adaptive p (ADA)"}


def cell_label(cell: str) -> str:
    """'dcgan/2000/ada' -> 'dcgan, first 2,000 faces, DiffAugment, adaptive p (ADA)' (a legend a reader need not decode)."""
    model, subset, arm = cell.split("/")
    faces = "all training faces" if subset == "all" else f"first {int(subset):,} faces"
    what = (ARM_LABELS.get(arm, arm) if model not in AUTOENCODERS else
            {"reconstruction": "reconstructions", "fitted": "samples, fitted Gaussian"}.get(arm, "samples"))
    return f"{model}, {faces}, {what}"


def plot_curves(result: dict[str, Any], path: str) -> None:
    """FD over process-CPU minutes, one panel per ruler (log scale): each seed's curve thin, the mean over
    seeds (at each round) thick, one colour per (model, subset, augmentation); the floor dashed."""
    from genlab.viz import _pyplot, save_figure  # as latent_celeba.py: the headless backend and the atomic save

    plt = _pyplot()
    names, curves = list(result["floor"]), result["curves"]
    cells = sorted({key.rsplit("/", 1)[0] for key in curves})
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for colour, cell in enumerate(cells):
            runs = [rows for key, rows in sorted(curves.items()) if key.rsplit("/", 1)[0] == cell]
            for rows in runs:
                ax.plot([r["cpu_seconds"] / 60 for r in rows], [r[name]["fid"] for r in rows], color=f"C{colour}", lw=0.7, alpha=0.5)
            rounds = min(map(len, runs))
            ax.plot([statistics.fmean(rows[i]["cpu_seconds"] for rows in runs) / 60 for i in range(rounds)],
                    [statistics.fmean(rows[i][name]["fid"] for rows in runs) for i in range(rounds)],
                    color=f"C{colour}", lw=2.2, marker="o", label=f"{cell_label(cell)} ({len(runs)} seeds)")
        ax.axhline(result["floor"][name]["fid"], ls="--", c="grey", lw=1, label="floor: held-out real faces")
        ax.set_yscale("log")
        ax.set_xlabel("training, process CPU minutes (one thread)")
        ax.set_ylabel(f"FD in the {name} ruler (lower is better)")
        ax.set_title(f"{name} ruler: {result['args']['num_samples']:,} samples vs the reference split", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"face generators at equal CPU time ({result['args']['image_size']} px; thin: one seed, thick: mean)", fontsize=11)
    fig.tight_layout()
    print(f"wrote {save_figure(fig, path, dpi=110)}")


def round_tables(curves: dict[str, list[dict[str, Any]]], rulers: list[str]) -> str:
    """RESULTS.md's tables: per recipe (model/subset/augment), one row per round with the mean ± sd over seeds
    (population sd, as every face table reports) of each ruler's FD, each seed's value in brackets (seeds in
    order), the steps' range, the first ruler's precision / recall and, for ADA, each seed's p."""
    cells: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for key, rows in curves.items():
        model, subset, augment, seed = key.split("/")
        cells.setdefault(f"{model}/{subset}/{augment}", {})[int(seed)] = rows
    out = []
    for name, runs in sorted(cells.items()):
        seeds = sorted(runs)
        adaptive = any("augment_p" in row for rows in runs.values() for row in rows)
        out += [f"{name}, seeds {', '.join(map(str, seeds))}:", "",
                "| round | CPU min | steps | " + " | ".join(f"{r} FD" for r in rulers) + f" | {rulers[0]} P / R |"
                + (" p |" if adaptive else ""),
                "|---:|---:|---|" + "---:|" * len(rulers) + "---|" + ("---|" if adaptive else "")]
        for i in range(max(len(rows) for rows in runs.values())):
            rows = [runs[seed][i] for seed in seeds if len(runs[seed]) > i]
            steps = sorted(row["steps"] for row in rows)
            fds = []
            for ruler in rulers:
                values = [row[ruler]["fid"] for row in rows]
                spread = f" ± {statistics.pstdev(values):.2g} ({' / '.join(f'{v:.3g}' for v in values)})" if len(values) > 1 else ""
                fds.append(f"{statistics.fmean(values):.3g}{spread}")
            first = [row[rulers[0]] for row in rows]
            pr = (f"{statistics.fmean(r['precision'] for r in first):.2f} / {statistics.fmean(r['recall'] for r in first):.2f}"
                  if all("precision" in r and "recall" in r for r in first) else "—")
            line = (f"| {rows[0]['round']} | {statistics.fmean(row['cpu_seconds'] for row in rows) / 60:.1f} | "
                    f"{steps[0]:,}" + (f"-{steps[-1]:,}" if steps[-1] != steps[0] else "") + " | " + " | ".join(fds) + f" | {pr} |")
            if adaptive:
                line += " " + " / ".join(f"{row['augment_p']:.3f}" for row in rows if "augment_p" in row) + " |"
            out.append(line + ("" if len(rows) == len(seeds) else f" ({len(rows)} of {len(seeds)} seeds)"))
        out.append("")
    return "\n".join(out)


def merge(tags: list[str], into: str, curves_out: str | None = None) -> int:
    """Results of several processes (one protocol; other seeds or recipes) in one file, ``diffaugment-INTO.json``:
    the curves joined, the summary recomputed; prints each curve as a table, then each recipe's rounds as mean ± sd
    over its seeds (:func:`round_tables`: RESULTS.md's tables), and draws the curves (``curves_out``)."""
    files = [HERE / "results" / f"diffaugment-{tag}.json" for tag in tags]
    parts = [json.loads(f.read_text()) for f in files]
    # what may differ between the processes: the seeds, and which recipes ran (each run's key names its model
    # and augmentation) -- but one model's recipe must be the same in every part, so that a cell's seeds are
    # seeds of one recipe; the clock, rounds, data and rulers may not differ at all
    recipe = ("policy", "augment_p", "stylegan_overrides", "fastgan_overrides", *LATER_ARGUMENTS)
    drop = ("seeds", "tag", "judge", "models", "augment", *recipe)
    protocol = [{k: v for k, v in part["args"].items() if k not in drop} for part in parts]
    if any(p != protocol[0] for p in protocol):
        print(f"error: {', '.join(map(str, files))} do not share one protocol (only seeds, tag, judge and which "
              "recipes ran may differ)")
        return 2
    recipes: dict[str, dict[str, Any]] = {}
    for tag, part in zip(tags, parts):
        for model in part["args"]["models"]:
            settings = {k: {**LATER_ARGUMENTS, **part["args"]}[k] for k in recipe}
            if recipes.setdefault(model, settings) != settings:
                print(f"error: {tag} runs {model} with {settings}, another part with {recipes[model]}")
                return 2
    # one build of each ruler: its fingerprint names recipe and data, not the bits, and a rebuild on another machine
    # measures on another scale (RESULTS.md); the floor (held-out real faces against the reference) tells builds apart
    # in files from before the weights' digest was recorded
    builds = [({n: r.get("weights") for n, r in part.get("rulers", {}).items()},
               {n: row["fid"] for n, row in part["floor"].items()}) for part in parts]
    for tag, (weights, floor) in zip(tags[1:], builds[1:]):
        first_weights, first_floor = builds[0]
        differ = [n for n in weights if weights[n] and first_weights.get(n) and weights[n] != first_weights[n]]
        # at a relative 1e-6: the same weights may give a floor that differs in its last digits on another machine's
        # arithmetic; the three builds in the committed results differ by 1e-5 (ssl) to 6e-2 (attributes)
        differ += [n for n in floor if n not in differ and not math.isclose(floor[n], first_floor.get(n, math.nan), rel_tol=1e-6)]
        if differ:
            print(f"error: {tag} was scored by another build of the {' and '.join(differ)} ruler than {tags[0]} (floor FD "
                  + ", ".join(f"{n} {first_floor.get(n, float('nan')):.6g} vs {floor.get(n, float('nan')):.6g}" for n in differ)
                  + "): its distances are on another scale; rescore or merge only parts of one build")
            return 2
    repeated = sorted(key for key, count in Counter(key for part in parts for key in part["curves"]).items() if count > 1)
    if repeated:
        print(f"error: {', '.join(map(str, files))} hold the same run twice: {repeated}")
        return 2
    curves = {key: rows for part in parts for key, rows in part["curves"].items()}
    names = list(parts[0]["floor"])
    args = {k: v for k, v in parts[0]["args"].items() if k not in recipe}  # each model's recipe: in "recipes"
    merged = {**parts[0], "args": {**args, "seeds": sorted({s for part in parts for s in part["args"]["seeds"]}),
                                   **{k: sorted({v for part in parts for v in part["args"][k]}) for k in ("models", "augment")},
                                   "tag": into, "merged_from": tags},
              "recipes": recipes, "curves": curves, "summary": summarise(curves, names)}
    atomic_write_text(HERE / "results" / f"diffaugment-{into}.json", json.dumps(merged, indent=1, default=float))
    print("| run | round | CPU s | steps | " + " | ".join(f"samples FD {n} | fitted-Gaussian samples FD {n} | recon FD {n}"
                                                     for n in names) + " | recon MSE |")
    print("|---|---:|---:|---:|" + "---:|---:|---:|" * len(names) + "---:|")
    for key in sorted(curves):
        for row in curves[key]:
            recon, fitted = row.get("reconstruction", {}), row.get("fitted", {})
            cells = [" | ".join([f"{row[n]['fid']:.4g}", *(f"{part[n]['fid']:.4g}" if n in part else "—" for part in (fitted, recon))])
                     for n in names]
            mse = f"{recon['mse']:.5f}" if recon else "—"
            print(f"| {key} | {row['round']} | {row['cpu_seconds']:.0f} | {row['steps']} | " + " | ".join(cells) + f" | {mse} |")
    print(json.dumps(merged["summary"], indent=1))
    print(round_tables(curves, names))
    if curves_out:
        plot_curves(merged, curves_out)
    return 0


def sample_grids(runs: list[str], path: str, per_run: int = 32, seed: int = 0) -> int:
    """One labelled panel of ``per_run`` samples (the same seed) per run folder, side by side: generated
    faces only (real faces and their reconstructions are CelebA's, which may not be redistributed)."""
    from genlab.viz import image_panels

    panels = []
    for run in runs:
        model, _ = api.load_run(run)
        budget = Path(run) / "budget.json"
        cpu = f", {json.loads(budget.read_text())['cpu_seconds'] / 60:.0f} CPU min" if budget.is_file() else ""
        weight = getattr(model.config, "feature_weight", None)
        weight = f", feature weight {weight:g}" if weight is not None else ""
        parts = Path(run).name.rsplit("-", 3)  # a benchmark run folder: MODEL-SUBSET-ARM-SEED
        name = f"{cell_label('/'.join(parts[:3]))}, seed {parts[3]}" if len(parts) == 4 and parts[2] in ARM_LABELS else Path(run).name
        panels.append((f"{name}\n{trained_steps(run)} steps{cpu}{weight}",
                       api.sample(model, per_run, seed=seed).cpu(), 8))
    # native: 128-px faces shown at the default 4.5-inch panel would be shrunk to about 60 px, hiding what the larger
    # model draws
    print(f"wrote {image_panels(panels, path, title=f'random samples, seed {seed} for every model', native=True)}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--merge", nargs="+", metavar="TAG", help="only join these tags' results (other seeds or recipes, one protocol) into --tag's file")
    p.add_argument("--grid", nargs="+", metavar="RUN", help="only draw these run folders' samples side by side into --grid-out")
    p.add_argument("--grid-out", default="samples.png")
    p.add_argument("--curves-out", default=None, help="with --merge: draw FD over CPU time per ruler into this PNG")
    p.add_argument("--data", default="celeba:../shared/data/celeba-10k", help="a genlab data spec (faces with attribute labels)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--subsets", nargs="+", default=["all", "2000"], help="training-set sizes: N (the first N) or all")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--models", nargs="+", default=["dcgan", "stylegan"], choices=["dcgan", "stylegan", "fastgan", *AUTOENCODERS])
    p.add_argument("--augment", nargs="+", default=["off", "on"], choices=ARMS)
    p.add_argument("--policy", default="color,translation,cutout")
    p.add_argument("--augment-p", type=float, default=1.0, help="p for 'on'; the cap of 'ada''s adaptive p")
    p.add_argument("--ada-target", type=float, default=LATER_ARGUMENTS["ada_target"],
                   help="'ada': the share of reals D may call real before p rises (ADA's 0.6)")
    p.add_argument("--ada-speed-kimg", type=float, default=LATER_ARGUMENTS["ada_speed_kimg"],
                   help="'ada': thousands of images for p to cross [0, 1] (ADA's 500 suits runs of tens of thousands of kimg)")
    p.add_argument("--budget-minutes", type=float, default=30, help="process CPU minutes of training per run")
    p.add_argument("--rounds", type=int, default=6, help="evaluation points per run (interleaved rounds)")
    p.add_argument("--stylegan-config", default=str(HERE.parent / "configs" / "stylegan_celeba32.toml"))
    p.add_argument("--stylegan-overrides", nargs="*", default=[], help="e.g. model.channel_max=32 (a cheaper step)")
    p.add_argument("--fastgan-overrides", nargs="*", default=[], help="e.g. model.generator_channels=16")
    p.add_argument("--vae-config", default=str(HERE.parent / "configs" / "vae_celeba64.toml"))
    p.add_argument("--feature-weight", type=float, default=1.0, help="feature-vae's model.feature_weight")
    p.add_argument("--judge", default=None, help="feature-vae's feature network (a run or model folder; default: "
                                                 "OUT/TAG/judge, trained by the JUDGE recipe when absent)")
    p.add_argument("--train-overrides", nargs="*", default=[],
                   help="train.* settings for every run, after the recipe's (e.g. train.ema_rampup=0.05 train.precision=bf16)")
    p.add_argument("--dcgan-channels", type=int, default=32)
    p.add_argument("--dcgan-latent", type=int, default=128)
    p.add_argument("--dcgan-batch", type=int, default=64)
    p.add_argument("--rulers", nargs="+", default=list(R.DEFAULT_RULERS), choices=sorted(R.RULER_RECIPES))
    p.add_argument("--ruler-size", type=int, default=64, help="the rulers' image side (their recipe's: 64)")
    p.add_argument("--ruler-epochs", type=int, default=None, help="override the rulers' epochs (smoke runs; another cache entry)")
    p.add_argument("--ruler-train-images", type=int, default=None, help="train the rulers on the first N of their 8,000 (smoke runs)")
    p.add_argument("--ruler-cache", default=None, help="ruler cache folder (default $GENLAB_CACHE/rulers)")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/diffaugment")
    p.add_argument("--tag", default=None, help="results file suffix (default: DATA + image size)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    if args.merge:
        return merge(args.merge, args.tag or "merged", args.curves_out)
    if args.grid:
        return sample_grids(args.grid, args.grid_out)
    for name in ("gan", "stylegan", "fastgan", *AUTOENCODERS):  # end-of-run figures: not part of this protocol (minutes per round)
        REPORTERS.pop(name, None)

    config = data_config_from_spec(args.data)
    if config.name != "celeba" or not config.path or not Path(config.path).exists():
        print(f"skipped: the rulers need the CelebA folder (--data celeba:PATH), got {args.data}")
        return 0
    tag = args.tag or f"{config.name}{args.image_size}"
    out = Path(args.out) / tag
    out.mkdir(parents=True, exist_ok=True)
    results_path = HERE / "results" / f"diffaugment-{tag}.json"
    result: dict[str, Any] = {"args": vars(args), "torch": torch.__version__, "clock": "process CPU seconds (time.process_time)"}

    def save() -> None:
        atomic_write_text(results_path, json.dumps(result, indent=1, default=float))

    splits = R.face_splits(config.path, image_size=args.ruler_size, train_limit=args.ruler_train_images)
    rulers = [R.build_ruler(name, splits["ruler_train"], cache=args.ruler_cache, epochs=args.ruler_epochs, threads=args.threads)
              for name in args.rulers]
    result["rulers"] = {r.name: {"fingerprint": r.fingerprint, "weights": r.weights, "folder": str(r.folder),
                                 "recipe": r.recipe.model} for r in rulers}
    n = min(args.num_samples, len(splits["reference"]))
    reference_images = round_trip(splits["reference"].x[:n], args.image_size, args.ruler_size)
    reference = {r.name: r.features(reference_images) for r in rulers}
    floor_images = round_trip(splits["heldout"].x[:n], args.image_size, args.ruler_size)
    result["floor"] = R.face_scores(floor_images, reference, rulers)
    print("floor (held-out real faces vs the reference): " + ", ".join(
        f"{name} FD {row['fid']:.4g}" for name, row in result["floor"].items()), flush=True)

    if "feature-vae" in args.models and args.judge is None:
        judge = out / "judge"
        if not (judge / "model" / "config.json").is_file():
            print(f"training the feature-VAE's judge ({' '.join(JUDGE)}) into {judge}", flush=True)
            if (judge / "checkpoints").is_dir():
                api.train(resume=judge)
            else:
                api.train("attributes", data=args.data, out=judge, overrides=[f"data.image_size={args.image_size}", *JUDGE, *QUIET])
        args.judge = str(judge / "model")
        result["judge"] = {"folder": args.judge, "recipe": JUDGE}
    faces = to_ruler_size(splits["reference"].x[:n], args.image_size)  # what an autoencoder reconstructs
    fit_faces = to_ruler_size(splits["ruler_train"].x, args.image_size)  # whose codes its fitted Gaussian fits
    cells = [(m, s, a, seed) for m in args.models for s in args.subsets for a in args.augment for seed in args.seeds
             if not (m in AUTOENCODERS and a != "off")]  # augmentation is a discriminator's: GANs only
    seconds = args.budget_minutes * 60 / args.rounds
    # resumable: a killed benchmark run again with the same arguments keeps its scored rounds, and each run
    # folder's budget.json says how many rounds and CPU seconds it has trained (written after each round)
    # and extendable: more --rounds at the same CPU seconds per round continue every run where it stopped (the
    # runs have no schedule tied to the budget: a run's first rounds do not depend on how many follow)
    previous = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if previous and not same_protocol(previous["args"], json.loads(json.dumps(vars(args), default=float))):
        print(f"error: {results_path} holds a run with other arguments; rerun with those to resume it (or with more "
              "--rounds and --budget-minutes at the same minutes per round to extend it), or pass another --tag")
        return 2
    curves: dict[str, list[dict[str, Any]]] = previous.get("curves", {})
    if curves:
        print(f"resuming {results_path}: {sum(map(len, curves.values()))} scored rounds", flush=True)
    result["curves"] = curves
    save()  # the arguments first: run folders under this tag belong to them
    names = [ruler.name for ruler in rulers]
    for r in range(args.rounds):
        for cell in (cells if r % 2 == 0 else cells[::-1]):  # alternate who goes first
            model, subset, arm, seed = cell
            key = f"{model}/{subset}/{arm}/{seed}"
            if len(curves.get(key, [])) > r:
                continue
            run = out / key.replace("/", "-")
            budget_file = run / "budget.json"
            budget = json.loads(budget_file.read_text()) if budget_file.is_file() else {"rounds": 0, "cpu_seconds": 0.0}
            if budget["rounds"] <= r:  # else trained before a kill, not yet scored
                budget["cpu_seconds"] += train_round(args, run, cell, seconds, first=budget["rounds"] == 0)
                budget["rounds"] = r + 1
                atomic_write_text(budget_file, json.dumps(budget))
            row = {"round": r + 1, "cpu_seconds": budget["cpu_seconds"],
                   **score(run, reference, rulers, n, args.ruler_size, *((faces, fit_faces) if model in AUTOENCODERS else ()))}
            curves.setdefault(key, []).append(row)
            print(f"round {r + 1} {key}: {row['cpu_seconds']:.0f} CPU s, {row['steps']} steps, " + ", ".join(
                f"{name} FD {row[name]['fid']:.4g} P {row[name]['precision']:.2f} R {row[name]['recall']:.2f}"
                for name in names) + (f", p {row['augment_p']:.3f}" if "augment_p" in row else "")
                + ("".join(f", fitted {name} FD {row['fitted'][name]['fid']:.4g}" for name in names) if "fitted" in row else ""),
                flush=True)
            result["curves"] = curves
            result["summary"] = summarise(curves, names)
            save()
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
