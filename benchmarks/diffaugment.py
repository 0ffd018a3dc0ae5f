"""DiffAugment on vs off for a DCGAN and StyleGAN at equal CPU time, on CelebA faces and a subset of them.

    # the full protocol (hours: run it on an idle machine, one thread per process)
    nice -n 10 python benchmarks/diffaugment.py --data celeba:../shared/data/celeba-10k --image-size 64 \\
        --subsets all 2000 --seeds 0 1 2 --budget-minutes 30 --rounds 6
    # a smoke run (about two minutes): tiny subsets, one seed, seconds per run
    python benchmarks/diffaugment.py --image-size 32 --subsets 200 100 --seeds 0 --budget-minutes 0.1 --rounds 2 \\
        --num-samples 200 --classifier-epochs 1 --classifier-limit 1000 --attributes Male --tag smoke \\
        --dcgan-channels 8 --stylegan-overrides model.channel_max=16 model.channel_base=256

Question: does DiffAugment (Zhao et al., NeurIPS 2020; ``model.augment``, :mod:`genlab.nn.augment`)
give a better generator for the same CPU time, and more so with less data?

Protocol.

1. The ruler: face-attribute classifiers (genlab ``classifier`` runs, one per ``--attributes``, default
   Male Young Smiling) trained once on the full training split at ``--image-size``; their penultimate
   features, concatenated, are the feature space of every score. No generator ever trains against
   them. (``genlab.metrics.rulers``, the face rulers in preparation, was not on main when this was
   written; this is the classifier-feature Fréchet distance of benchmarks/stylegan_quality.py.)
   Their test accuracies are in the JSON, as is the floor: the training split's FD to the test split.
2. The grid: model (``dcgan``: conv G and D, non-saturating loss, Adam 2e-4 / (0.5, 0.999), EMA 0.999;
   ``stylegan``: configs/stylegan_celeba32.toml at ``--image-size``) x training set (``--subsets``: the
   first N training faces, ``all`` = the whole split) x augmentation (``off``: the baseline, the same
   config without it; ``on``: ``--policy``, default color,translation,cutout at p = 1, DiffAugment's
   choice for small data) x seed (``--seeds``, ``train.seed``: weights, noise and batch order).
3. Equal CPU time: every run gets ``--budget-minutes`` of *process CPU seconds* (``time.process_time``,
   one thread), spent in ``--rounds`` interleaved rounds over the whole grid, so a drift in the shared
   machine's load falls on every run alike. A round ends at the first log step past its share; the
   run is resumed (exactly) the next round. Scoring is not training time.
4. After each round: ``--num-samples`` EMA samples vs as many test faces, FD (and KID, precision,
   recall) in the ruler's features. The JSON holds every curve (FD over CPU seconds) and, per cell,
   the final FD's mean and standard deviation over seeds, and on - off.

Without the data the script says so and exits 0 (nothing written). Writes
benchmarks/results/diffaugment-TAG.json (numbers only: never commit faces); runs go under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from genlab import api
from genlab.data import data_config_from_spec, load_dataset
from genlab.errors import GenlabError
from genlab.metrics import compare_features
from genlab.registry import REPORTERS
from genlab.reports.stylegan import _features
from stylegan_quality import QUIET, classifier_runs, stop_after  # the same ruler and budget callback

HERE = Path(__file__).resolve().parent


def run_overrides(args: argparse.Namespace, model: str, subset: str, augmented: bool, seed: int) -> list[str]:
    common = [f"data.image_size={args.image_size}", f"train.seed={seed}", "train.max_steps=100000000",
              "train.eval_every=100000000", "train.log_every=10", "train.sample_every=100000000",
              "train.checkpoint_every=100000000", *QUIET]
    if subset != "all":
        common.append(f"data.limit={int(subset)}")
    if augmented:
        common += [f"model.augment={args.policy}", f"model.augment_p={args.augment_p}"]
    if model == "stylegan":
        return [*common, *args.stylegan_overrides]
    return [*common, f"model.latent_dim={args.dcgan_latent}", f"model.generator_channels={args.dcgan_channels}",
            f"model.discriminator_channels={args.dcgan_channels}", f"train.batch_size={args.dcgan_batch}", "train.lr=2e-4",
            "train.betas=[0.5,0.999]", "train.ema_decay=0.999"]


def train_round(args: argparse.Namespace, run: Path, cell: tuple[str, str, bool, int], seconds: float, first: bool) -> float:
    """Train one cell of the grid for about ``seconds`` CPU seconds; returns the CPU seconds it trained."""
    start, finished = time.process_time(), {}
    callbacks = [stop_after(start + seconds, finished, clock=time.process_time)]
    model, subset, augmented, seed = cell
    if first:
        config_file = args.stylegan_config if model == "stylegan" else None
        api.train("stylegan" if model == "stylegan" else "gan", config_file=config_file, data=args.data, out=run,
                  callbacks=callbacks, overrides=run_overrides(args, model, subset, augmented, seed))
    else:
        api.train(resume=run, callbacks=callbacks)
    return finished.get("at", time.process_time()) - start


def score(run: Path, test_features: Any, extract: Any, n: int) -> dict[str, Any]:
    model, spec = api.load_run(run)
    samples = api.sample(model, n, seed=0)
    result = compare_features(extract(samples).numpy(), test_features, protocol={"generated": f"{n} EMA samples"})
    steps = int(json.loads((run / "metrics.json").read_text())["steps"])
    result.update({"steps": steps, "images_seen": steps * spec.train.batch_size})
    return result


def summarise(curves: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per (model, subset): the final FD's mean and std over seeds with augmentation off and on, and on - off."""
    finals: dict[tuple[str, str, str], list[float]] = {}
    for key, rows in curves.items():
        model, subset, augment, _ = key.split("/")
        if rows:
            finals.setdefault((model, subset, augment), []).append(rows[-1]["fid"])
    out: dict[str, Any] = {}
    for (model, subset, augment), values in sorted(finals.items()):
        cell = out.setdefault(f"{model}/{subset}", {})
        cell[augment] = {"final_fd_mean": statistics.fmean(values), "final_fd_std": statistics.pstdev(values), "seeds": len(values)}
    for cell in out.values():
        if "on" in cell and "off" in cell:
            cell["on_minus_off"] = cell["on"]["final_fd_mean"] - cell["off"]["final_fd_mean"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="celeba:../shared/data/celeba-10k", help="a genlab data spec (faces with attribute labels)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--subsets", nargs="+", default=["all", "2000"], help="training-set sizes: N (the first N) or all")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--models", nargs="+", default=["dcgan", "stylegan"], choices=["dcgan", "stylegan"])
    p.add_argument("--policy", default="color,translation,cutout")
    p.add_argument("--augment-p", type=float, default=1.0)
    p.add_argument("--budget-minutes", type=float, default=30, help="process CPU minutes of training per run")
    p.add_argument("--rounds", type=int, default=6, help="evaluation points per run (interleaved rounds)")
    p.add_argument("--stylegan-config", default=str(HERE.parent / "configs" / "stylegan_celeba32.toml"))
    p.add_argument("--stylegan-overrides", nargs="*", default=[], help="e.g. model.channel_max=32 (a cheaper step)")
    p.add_argument("--dcgan-channels", type=int, default=32)
    p.add_argument("--dcgan-latent", type=int, default=128)
    p.add_argument("--dcgan-batch", type=int, default=64)
    p.add_argument("--attributes", nargs="+", default=["Male", "Young", "Smiling"])
    p.add_argument("--classifier-epochs", type=int, default=3)
    p.add_argument("--classifier-limit", type=int, default=None, help="train the ruler on the first N faces only (smoke runs)")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/diffaugment")
    p.add_argument("--tag", default=None, help="results file suffix (default: DATA + image size)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    for name in ("gan", "stylegan"):  # the end-of-run figures are not part of this protocol (minutes per round)
        REPORTERS.pop(name, None)

    config = data_config_from_spec(args.data).replace(image_size=args.image_size)
    try:
        test = load_dataset(config, "test")
    except GenlabError as e:
        print(f"skipped: no data ({e})")
        return 0
    tag = args.tag or f"{config.name}{args.image_size}"
    out = Path(args.out) / tag
    out.mkdir(parents=True, exist_ok=True)
    results_path = HERE / "results" / f"diffaugment-{tag}.json"
    result: dict[str, Any] = {"args": vars(args), "torch": torch.__version__, "clock": "process CPU seconds (time.process_time)",
                              "ruler": f"penultimate features of attribute classifiers ({', '.join(args.attributes)})"}

    def save() -> None:
        results_path.write_text(json.dumps(result, indent=1, default=float))

    runs = classifier_runs(args, out, faces=True, limit=args.classifier_limit)
    classifiers = {name: api.load_run(run)[0].eval() for name, run in runs.items()}
    result["classifiers"] = {name: {"run": str(run), "test_accuracy": api.evaluate(classifiers[name], load_dataset(
        config.replace(options={**config.options, "label": name}), "test"))["accuracy"]} for name, run in runs.items()}
    print("ruler:", json.dumps(result["classifiers"]), flush=True)

    def extract(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([_features(c, images) for c in classifiers.values()], dim=1)

    n = min(args.num_samples, len(test))
    test_features = extract(test.x[:n]).numpy()
    train = load_dataset(config, "train")
    result["train_split_floor"] = compare_features(extract(train.x[:n]).numpy(), test_features)
    print(f"floor (train split vs test): FD {result['train_split_floor']['fid']:.3f}", flush=True)

    cells = [(m, s, a, seed) for m in args.models for s in args.subsets for a in (False, True) for seed in args.seeds]
    seconds = args.budget_minutes * 60 / args.rounds
    curves: dict[str, list[dict[str, Any]]] = {}
    trained: dict[str, float] = {}
    for r in range(args.rounds):
        for cell in (cells if r % 2 == 0 else cells[::-1]):  # alternate who goes first
            model, subset, augmented, seed = cell
            key = f"{model}/{subset}/{'on' if augmented else 'off'}/{seed}"
            run = out / key.replace("/", "-")
            trained[key] = trained.get(key, 0.0) + train_round(args, run, cell, seconds, first=r == 0)
            row = {"round": r + 1, "cpu_seconds": trained[key], **score(run, test_features, extract, n)}
            curves.setdefault(key, []).append(row)
            print(f"round {r + 1} {key}: {row['cpu_seconds']:.0f} CPU s, {row['steps']} steps, FD {row['fid']:.3f}", flush=True)
            result["curves"] = curves
            result["summary"] = summarise(curves)
            save()
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
