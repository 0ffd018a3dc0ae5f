"""CycleGAN MNIST <-> USPS under the standard protocol, measured by classifiers no training ever sees.

    nice -n 10 python benchmarks/cyclegan_protocol.py --mnist ../shared/data/mnist --usps ../shared/data/usps/usps.npz \\
        --variants plain noise semantic-mnist semantic-usps --seeds 0 1 2 --steps 2500 [--out runs/bench-cyclegan-protocol]
    # a long run scored along the way (every 2,000 steps: a curve over CPU time, not one final point)
    ... --variants plain --seeds 0 --steps 12000 --curve-every 2000

Protocol (issue 25): MNIST at 28 px as it is, USPS upscaled bilinearly from 16 to 28 px, no crop; full
test sets (MNIST 10,000, USPS 2,007). The ruler is this file's own LeNet-5 (Y. LeCun et al. 1998: tanh,
average pooling, 6-16-120-84-10; genlab's classifier uses ReLU and max pooling), one per domain,
trained on that domain's training split alone with a fixed seed (0), and never inside any loss.

Per variant and seed, both adaptation directions (M->U: labelled MNIST, unlabelled USPS; U->M the
reverse), overall and per class:

* ``source_only``: the source ruler on the raw target test split (no translation);
* ``translate_target``: the source ruler on the target test split translated into the source's style
  (M->U: F(usps); U->M: G(mnist));
* ``cycada``: CyCADA's convention (Hoffman et al. 2018, Table 1): a fresh LeNet-5, the ruler's recipe,
  trained on the translated labelled source (M->U: G(MNIST train) with MNIST labels) and scored on the
  raw target test split;
* ``steganography``: :func:`genlab.reports.cyclegan.steganography` on 2,000 test images per side (noise
  of PSNR ~35 dB on the translation; the ruler of the source domain reads the round trip);
* cycle L1 on the whole test split; process CPU time (``time.process_time``) of every training.

Variants: ``plain`` = configs/cyclegan_mnist_usps.toml's networks and knobs; ``noise`` = plus
``model.cycle_noise`` (a noise-injected cycle, Bashkirova et al. 2019); ``augment`` = plus DiffAugment for both
discriminators (``model.augment``, ``--augment-policy``); ``semantic-mnist`` /
``semantic-usps`` = plus CyCADA's semantic consistency with a classifier trained on that *source*
domain only (an MLP, not the ruler); ``semantic-cnn-mnist`` / ``semantic-cnn-usps`` = the same with a small
ReLU/max-pool CNN (``SmallCNN``, not the ruler either) as the classifier, closer to CyCADA's own choice. A semantic run is valid only for the direction whose source
labelled its classifier: the other direction would use the target's labels, so it is not reported.
``--semantic-augment`` trains that classifier (still on the source's labels alone) under random affine maps
(:func:`genlab.models.classifier.random_affine`: scale 1/1.4-1.4, +-15 degrees, +-3 px, the same range both ways); the entry records the
classifier's own reading of the raw target test split (``semantic_classifier.on_target``, scored after training,
never used in it), the source-only baseline that such a classifier sets.
No variant reads a target label. Reference (CyCADA Table 1): source only 82.2 % (M->U), 69.6 % (U->M);
CyCADA pixel-level 95.6 % and 96.5 %. Results: ``benchmarks/results/cyclegan_protocol.json`` (merged
per variant/steps/seed). Without the data files the benchmark says so and exits 0.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import build_model, load
from genlab.config import parse_override
from genlab.data import DataConfig, load_dataset
from genlab.data.unpaired import unpaired_dataset
from genlab.models.classifier import random_affine
from genlab.reports.cyclegan import rank_translations, steganography
from genlab.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cyclegan_protocol.json"
CONFIG = ROOT / "configs" / "cyclegan_mnist_usps.toml"
SIZE = 28
VARIANTS = ("plain", "noise", "augment", "semantic-mnist", "semantic-usps", "semantic-cnn-mnist", "semantic-cnn-usps")
log = logging.getLogger("cyclegan_protocol")


# ------------------------------------------------------------------------------------ data

def load_domains(mnist: Path, usps: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """``{mnist,usps}_{train,test}`` -> (images (N, 1, 28, 28) in [0, 1], labels (N,))."""
    out = {}
    for split in ("train", "test"):
        d = load_dataset(DataConfig(name="mnist", path=str(mnist)), split)
        out[f"mnist_{split}"] = (d.x.float(), d.y.long())
    z = np.load(usps)
    for split in ("train", "test"):
        x = torch.from_numpy(z[f"x_{split}"]).float()[:, None]  # (N, 1, 16, 16)
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1)  # upscaling: no antialias
        out[f"usps_{split}"] = (x, torch.from_numpy(z[f"y_{split}"]).long())
    return out


# ------------------------------------------------------------------------------------ rulers

class LeNet5(nn.Module):
    """LeCun et al. 1998 at 28 px (the first convolution padded by 2, as for 32 px): tanh, average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),  # (B, 6, 14, 14)
                                 nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),  # (B, 16, 5, 5)
                                 nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """The semantic term's convolutional classifier (ReLU, max pooling, 32-64 maps, dropout; not the ruler's
    LeNet-5): its gradients through a translation follow strokes, where an MLP's follow single pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.config = argparse.Namespace(image_shape=(1, SIZE, SIZE))  # what set_semantic_classifier checks
        self.net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 14, 14)
                                 nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 7, 7)
                                 nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLP(nn.Module):
    """The semantic term's classifier (a different architecture from the ruler): 784-256-256-10."""

    def __init__(self) -> None:
        super().__init__()
        self.config = argparse.Namespace(image_shape=(1, SIZE, SIZE))  # what set_semantic_classifier checks
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def fit_classifier(make: Callable[[], nn.Module], x: Tensor, y: Tensor, *, epochs: int, seed: int = 0,
                   batch_size: int = 128, augment: bool = False) -> tuple[nn.Module, float]:
    """``make()`` initialised from ``seed``, Adam 1e-3, shuffled mini-batches from ``seed``, with
    ``augment`` each batch under :func:`random_affine`; returns the net (eval, frozen) and its CPU seconds."""
    start = time.process_time()
    torch.manual_seed(seed)
    net = make()
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch_size):
            batch = random_affine(x[idx], generator=g) if augment else x[idx]  # scale 1/1.4-1.4, +-15 deg, +-3 px
            loss = F.cross_entropy(net(batch), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False), time.process_time() - start


@torch.no_grad()
def labels_of(net: nn.Module, x: Tensor) -> Tensor:
    return torch.cat([net(c).argmax(1) for c in x.split(1000)])


@torch.no_grad()
def confident_share(net: nn.Module, x: Tensor, truth: Tensor, threshold: float) -> dict[str, float]:
    """What ``model.semantic_threshold`` keeps of the pseudo-labels ``net`` reads on ``x``: the share read
    with a top probability >= ``threshold``, and the accuracy of those and of the rest (scoring only)."""
    confidence, predicted = torch.cat([net(c).softmax(1) for c in x.split(1000)]).max(1)
    kept, right = confidence >= threshold, predicted == truth
    return {"threshold": threshold, "kept": float(kept.float().mean()),
            "accuracy_kept": float(right[kept].float().mean()) if kept.any() else float("nan"),
            "accuracy_dropped": float(right[~kept].float().mean()) if (~kept).any() else float("nan")}


def scores(predicted: Tensor, truth: Tensor) -> dict[str, Any]:
    right = (predicted == truth).float()
    return {"accuracy": float(right.mean()), "per_class": [float(right[truth == k].mean()) for k in range(10)]}


# ------------------------------------------------------------------------------------ CycleGAN

def cyclegan_recipe(config: Path = CONFIG) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config file's model section and the training knobs that define the recipe."""
    cfg = tomllib.loads(config.read_text())
    train = {k: cfg["train"][k] for k in ("batch_size", "lr_schedule", "hold_fraction") if k in cfg["train"]}
    return dict(cfg.get("model", {})), train


def train_cyclegan(data: dict[str, tuple[Tensor, Tensor]], variant: str, seed: int, steps: int, out: Path, *,
                   cycle_noise: float, semantic_weight: float, semantic: nn.Module | None, threads: int,
                   augment: str = "", curve_every: int = 0, model_set: dict[str, Any] | None = None,
                   config: Path = CONFIG) -> tuple[Any, float]:
    """Train one CycleGAN into ``out``; with ``curve_every`` > 0 also export the model every that many
    steps to ``out/curve/step-N`` and record the training's process CPU seconds there (the exports'
    own seconds excluded), so the run can be scored along the way, not only at its end."""
    timing = out / "train_cpu.json"
    if (out / "model").is_dir() and timing.is_file():  # trained by an earlier call: evaluate it again
        return load(out / "model").eval(), json.loads(timing.read_text())["train_cpu_s"]
    model_cfg, train_cfg = cyclegan_recipe(config)
    model_cfg["image_shape"] = [1, SIZE, SIZE]
    if variant == "noise":
        model_cfg["cycle_noise"] = cycle_noise
    if variant == "augment":  # DiffAugment for both discriminators (no labels)
        model_cfg["augment"] = augment
    if semantic is not None:
        model_cfg["semantic_weight"] = semantic_weight
    model_cfg.update(model_set or {})  # --set: the recipe's own knobs, on top of the variant's
    # images only: the CycleGAN never sees a label of either domain
    train = unpaired_dataset(data["mnist_train"][0], data["usps_train"][0], "mnist-usps-28")
    torch.manual_seed(seed)
    model = build_model("cyclegan", model_cfg)
    if semantic is not None:
        model.set_semantic_classifier(semantic)
    options = dict(train_cfg, max_steps=steps, seed=seed, progress=False, tensorboard=False, device="cpu", threads=threads,
                   fused_optimizer=False, eval_every=10**9, sample_every=10**9, log_every=max(1, steps // 5),
                   checkpoint_every=10**9, keep_checkpoints=1)
    start = time.process_time()
    excluded = [0.0]  # CPU seconds spent exporting curve points, not training

    def export_point(trainer: Trainer, event: str, info: dict[str, Any]) -> None:
        step = int(info.get("step", 0))
        if event != "log" or step % curve_every or step == steps:
            return
        t = time.process_time()
        point = out / "curve" / f"step-{step:06d}"
        trainer.export(point / "model")
        (point / "train_cpu.json").write_text(json.dumps({"train_cpu_s": t - start - excluded[0], "step": step}))
        excluded[0] += time.process_time() - t

    if curve_every:
        options["log_every"] = curve_every
    Trainer(model, train, TrainConfig(**options), out_dir=out, callbacks=[export_point] if curve_every else None).fit()
    seconds = time.process_time() - start - excluded[0]
    timing.write_text(json.dumps({"train_cpu_s": seconds}))
    return load(out / "model").eval(), seconds


@torch.no_grad()
def translate(model: Any, x: Tensor, direction: str) -> Tensor:
    return torch.cat([model.translate(c, direction) for c in x.split(500)])


def evaluate(model: Any, data: dict[str, tuple[Tensor, Tensor]], rulers: dict[str, nn.Module], directions: list[str],
             *, task_epochs: dict[str, int], seed: int, figure_dir: Path | None = None) -> dict[str, Any]:
    (xm, ym), (xu, yu) = data["mnist_test"], data["usps_test"]
    out: dict[str, Any] = {}
    g_mnist, f_usps = translate(model, xm, "a2b"), translate(model, xu, "b2a")  # G(mnist test) in USPS style, F(usps test)
    out["cycle_a"] = float((translate(model, g_mnist, "b2a") - xm).abs().mean())
    out["cycle_b"] = float((translate(model, f_usps, "a2b") - xu).abs().mean())
    # (direction, source ruler, raw target test, target labels, target translated into source style, source train, its labels, translate source)
    cases = {"m2u": ("mnist", xu, yu, f_usps, data["mnist_train"], "a2b"),
             "u2m": ("usps", xm, ym, g_mnist, data["usps_train"], "b2a")}
    for key in directions:
        source, raw, truth, styled, (xs, ys), way = cases[key]
        ruler = rulers[source]
        entry = {"source_only": scores(labels_of(ruler, raw), truth), "translate_target": scores(labels_of(ruler, styled), truth)}
        task, seconds = fit_classifier(LeNet5, translate(model, xs, way), ys, epochs=task_epochs[source], seed=seed)
        entry["cycada"] = {**scores(labels_of(task, raw), truth), "train_cpu_s": seconds}
        # label kept by the translation of the source test split, read by the *target* domain's ruler
        src_test = data[f"{source}_test"]
        target = "usps" if source == "mnist" else "mnist"
        entry["label_kept"] = scores(labels_of(rulers[target], translate(model, src_test[0], way)), src_test[1])
        if figure_dir is not None:
            successes_and_failures(model, src_test, rulers[target], way, figure_dir / f"successes-failures-{key}.png")
        s = steganography(model, src_test[0][:2000], direction=way, classify=lambda x, r=ruler: labels_of(r, x), labels=src_test[1][:2000], seed=seed)
        s.pop("images")
        entry["steganography"] = s
        out[key] = entry
    return out


def successes_and_failures(model: Any, source_test: tuple[Tensor, Tensor], target_ruler: nn.Module, way: str, path: Path) -> None:
    """Slides 40-41 by a stated rule (:func:`genlab.reports.cyclegan.rank_translations`): successes keep
    their class under the target domain's ruler with the lowest cycle error; failures lose it, lowest
    cycle error first. Rows: source, translation, translated back."""
    from genlab.viz import image_panels

    x, y = source_test
    back = "b2a" if way == "a2b" else "a2b"
    there = translate(model, x, way)
    again = translate(model, there, back)
    kept = labels_of(target_ruler, there) == y
    good, bad = rank_translations(kept, (again - x).abs().flatten(1).mean(1), k=10)
    panels = [(f"{name}: source | translation | back ({int(kept.sum())} of {len(x)} kept)",
               torch.cat([x[i], there[i], again[i]]), max(1, len(i))) for name, i in (("successes", good), ("failures", bad))]
    image_panels(panels, path, panel_width=5.5)


def merge(files: list[Path], results: Path) -> None:
    """Runs of several results files in one (the last protocol wins: the rulers are seeded, so equal); prints the table."""
    merged: dict[str, Any] = json.loads(results.read_text()) if results.is_file() else {"runs": {}}
    for f in files:
        other = json.loads(f.read_text())
        merged["runs"].update(other["runs"])
        merged["protocol"] = other["protocol"]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(merged, indent=1, sort_keys=True))
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    print("| variant | steps | seed | direction | source only | translate target | CyCADA (task model on translated source) "
          "| label kept | steganography: F(G(x)) acc clean → 35 dB noise | cycle L1 A / B | CycleGAN CPU s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---|---:|")
    for key in sorted(merged["runs"]):
        r = merged["runs"][key]
        # a run's curve points (--curve-every) first, labelled "at step N of M", then its end
        points = [({**r, **c, "steps": f"{c['step']} of {r['steps']}"}) for c in r.get("curve", [])] + [r]
        for d in ("m2u", "u2m"):
            if d not in r:
                continue
            for q in points:
                e, st = q[d], q[d]["steganography"]
                print(f"| {q['variant']} | {q['steps']} | {q['seed']} | {'M→U' if d == 'm2u' else 'U→M'} | {pct(r[d]['source_only']['accuracy'])} "
                      f"| {pct(e['translate_target']['accuracy'])} | {pct(e['cycada']['accuracy'])} | {pct(e['label_kept']['accuracy'])} "
                      f"| {pct(st['acc_back_clean'])} → {pct(st['acc_back_perturbed'])} | {q['cycle_a']:.3f} / {q['cycle_b']:.3f} "
                      f"| {q['train_cpu_s']:.0f} |")


# ------------------------------------------------------------------------------------ main

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    p.add_argument("--usps", type=Path, default=ROOT.parent / "shared" / "data" / "usps" / "usps.npz")
    p.add_argument("--variants", nargs="+", default=["plain", "noise"], choices=VARIANTS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--cycle-noise", type=float, default=0.05, help="sigma of the noise-injected cycle, [0, 1] pixels")
    p.add_argument("--semantic-weight", type=float, default=1.0)
    p.add_argument("--semantic-augment", action="store_true",
                   help="train the semantic classifier (source labels only) under random affine maps "
                        "(scale 1/1.4-1.4, +-15 deg, +-3 px); name the result with --label")
    p.add_argument("--augment-policy", default="color,translation,cutout", help="the augment variant's DiffAugment policy")
    p.add_argument("--ruler-epochs", type=int, nargs=2, default=[2, 10], metavar=("MNIST", "USPS"))
    p.add_argument("--config", type=Path, default=CONFIG, help="the recipe: a CycleGAN config's model section and "
                   "batch size / lr schedule (e.g. configs/cyclegan_mnist_usps_cycada.toml); name it with --label")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="model fields on top of every variant (read as genlab train reads overrides: JSON, else a string), e.g. cycle_weight=1 identity_weight=0 "
                        "(CyCADA's digit recipe); name the result with --label")
    p.add_argument("--label", default="", help="suffix of the variant's name for runs with --set or --config, e.g. cycada")
    p.add_argument("--curve-every", type=int, default=0,
                   help="also score the run every N steps (a curve over CPU time; the lr schedule is the full run's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/bench-cyclegan-protocol"))
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="only merge these results files (runs of parallel processes) into --results and print the table")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.merge:
        merge(args.merge, args.results)
        return
    if not (args.mnist / "train-images-idx3-ubyte.gz").is_file() and not (args.mnist / "train-images-idx3-ubyte").is_file() or not args.usps.is_file():
        log.info("skipped: MNIST (%s) or USPS (%s) not found; pass --mnist DIR --usps FILE.npz", args.mnist, args.usps)
        return
    if bad := [item for item in args.set if "=" not in item]:
        p.error(f"--set takes FIELD=VALUE, got {' '.join(bad)}")
    model_set = {".".join(key): value for key, value in map(parse_override, args.set)}  # as genlab train reads them
    if (model_set or args.config.resolve() != CONFIG) and not args.label:
        p.error("--set and --config need --label (runs with other knobs must not share a name)")
    torch.set_num_threads(args.threads)
    data = load_domains(args.mnist, args.usps)
    epochs = {"mnist": args.ruler_epochs[0], "usps": args.ruler_epochs[1]}
    rulers, ruler_info = {}, {}
    for domain in ("mnist", "usps"):
        net, seconds = fit_classifier(LeNet5, *data[f"{domain}_train"], epochs=epochs[domain], seed=0)
        rulers[domain] = net
        ruler_info[domain] = {"epochs": epochs[domain], "train_cpu_s": seconds,
                              "in_domain": scores(labels_of(net, data[f"{domain}_test"][0]), data[f"{domain}_test"][1])}
        log.info("ruler %s: in-domain test accuracy %.4f, %.0f s CPU", domain, ruler_info[domain]["in_domain"]["accuracy"], seconds)
    semantic: dict[tuple[str, str], tuple[nn.Module, float]] = {}
    results = json.loads(args.results.read_text()) if args.results.is_file() else {"runs": {}}
    results["protocol"] = {"size": SIZE, "usps": "bilinear 16 -> 28, no crop", "mnist": "28 px as is", "test": "full test sets",
                           "ruler": "LeNet-5 (tanh, avg-pool), seed 0", "rulers": ruler_info, "threads": args.threads}
    for variant in args.variants:
        for seed in args.seeds:
            sem = None
            directions = ["m2u", "u2m"]
            if variant.startswith("semantic-"):
                source, arch = variant.split("-")[-1], "cnn" if "-cnn-" in variant else "mlp"
                target = "usps" if source == "mnist" else "mnist"
                if (arch, source) not in semantic:  # trained on the labelled source alone
                    semantic[arch, source] = fit_classifier(SmallCNN if arch == "cnn" else MLP, *data[f"{source}_train"],
                                                            epochs=epochs[source], seed=1, augment=args.semantic_augment)
                sem = semantic[arch, source][0]
                directions = ["m2u"] if source == "mnist" else ["u2m"]  # the other direction would use target labels
            name = f"{variant}+{args.label}" if args.label else variant
            run = args.out / f"{name}-{args.steps}steps-s{seed}"
            model, seconds = train_cyclegan(data, variant, seed, args.steps, run, cycle_noise=args.cycle_noise,
                                            semantic_weight=args.semantic_weight, semantic=sem, threads=args.threads,
                                            augment=args.augment_policy, curve_every=args.curve_every, model_set=model_set,
                                            config=args.config)
            entry = {"variant": name, "model_set": model_set, "config": args.config.name, "seed": seed, "steps": args.steps, "train_cpu_s": seconds,
                     "cycle_noise": args.cycle_noise if variant == "noise" else 0.0,
                     "augment": args.augment_policy if variant == "augment" else "",
                     "semantic_weight": args.semantic_weight if sem is not None else 0.0,
                     **evaluate(model, data, rulers, directions, task_epochs=epochs, seed=seed, figure_dir=run)}
            if args.curve_every:  # the same scores at the exported points along the way (no figures)
                entry["curve"] = []
                for point in sorted((run / "curve").glob("step-*")):
                    info = json.loads((point / "train_cpu.json").read_text())
                    scored = evaluate(load(point / "model").eval(), data, rulers, directions, task_epochs=epochs, seed=seed)
                    entry["curve"].append({**info, **scored})
                    log.info("  %s step %d (%.0f s CPU): %s", name, info["step"], info["train_cpu_s"], json.dumps(
                        {d: {k: round(scored[d][k]["accuracy"], 4) for k in ("translate_target", "cycada", "label_kept")} for d in directions}))
            if sem is not None:
                entry["semantic_classifier"] = {
                    "source": source, "arch": "SmallCNN 32-64-128-10 (ReLU, max pool)" if arch == "cnn" else "MLP 784-256-256-10",
                    "augment": "random affine: scale 1/1.4-1.4, +-15 deg, +-3 px" if args.semantic_augment else "none",
                    "train_cpu_s": semantic[arch, source][1],
                    "in_domain": scores(labels_of(sem, data[f"{source}_test"][0]), data[f"{source}_test"][1])["accuracy"],
                    # scored here only (target labels never reach training): the classifier's own source-only reading
                    "on_target": scores(labels_of(sem, data[f"{target}_test"][0]), data[f"{target}_test"][1]),
                    # the pseudo-labels the target term keeps under model.semantic_threshold (0: all), on the test split
                    "on_target_confident": confident_share(sem, *data[f"{target}_test"], model.config.semantic_threshold)}
            results["runs"][f"{name}/{args.steps}steps/s{seed}"] = entry
            summary = {d: {k: round(entry[d][k]["accuracy"], 4) for k in ("source_only", "translate_target", "cycada", "label_kept")}
                       for d in directions}
            log.info("%s seed %d, %d steps (%.0f s CPU): %s; cycle %.3f / %.3f", name, seed, args.steps, seconds,
                     json.dumps(summary), entry["cycle_a"], entry["cycle_b"])
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1, sort_keys=True))  # after every run: a killed benchmark keeps it


if __name__ == "__main__":
    main()
