"""CycleGAN MNIST <-> USPS (issue 11): does a translation keep the digit?

    nice -n 10 python benchmarks/cyclegan_digits.py --seeds 0 1 2 [--steps 3000] [--out runs/bench-cyclegan-digits] [--model.X=...]
    nice -n 10 python benchmarks/cyclegan_digits.py --seeds 0 --steps 2500 --crop-mnist 0.72   # digits at one scale

1. Trains (once, seed 0) a classifier of each domain at the CycleGAN's 32 px: ``clf-mnist`` on MNIST
   only and ``clf-usps`` on USPS only (``genlab train classifier``, lines printed).
2. Per seed trains ``configs/cyclegan_mnist_usps.toml`` (A = MNIST, B = USPS) for ``--steps`` and
   evaluates it on both test splits with both classifiers (:func:`genlab.reports.cyclegan.evaluate_cyclegan`):

   * M->U adaptation (CyCADA's "MNIST -> USPS"): the MNIST classifier on USPS test digits, raw
     (``mnist_acc_b``) and after translating them to MNIST style with F (``mnist_acc_b2a``);
   * U->M: the USPS classifier on MNIST test digits, raw (``usps_acc_a``) and after G (``usps_acc_a2b``).
   * label preservation, translated image keeps its source label under a classifier of the target
     domain: G(mnist) under the USPS classifier = ``usps_acc_a2b``, F(usps) under the MNIST one =
     ``mnist_acc_b2a`` (the same two numbers, read the other way).

3. With ``--task-model``, also CyCADA's own protocol (its Table 1 trains the task model on translated
   source images): a fresh classifier, the same recipe as the source-only one, trained on the
   *translated* labelled source (M->U: G(MNIST train) with MNIST labels; U->M: F(USPS train) with
   USPS labels) and scored on the *raw* target test split (``task_m2u``, ``task_u2m``); the source-only
   classifier on the same raw test split is the baseline (``mnist_acc_b``, ``usps_acc_a``).

Results go to ``benchmarks/results/cyclegan_mnist_usps.json`` (one entry per seed, merged with
earlier seeds in the file). Reference (CyCADA, Hoffman et al. 2018, Table 1): source only 82.2 %
(M->U) and 69.6 % (U->M); CyCADA (pixel + feature + semantic losses) 95.6 % and 96.5 %.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab import api
from genlab.checkpoint import load

MNIST, USPS = "mnist:../shared/data/mnist", "npz:../shared/data/usps/usps.npz"
QUIET = ["--train.progress=false", "--train.tensorboard=false"]
EPOCHS = {"mnist": 1, "usps": 8}  # the source-only classifiers' recipe (epochs at 32 px), reused for the task models
RESULTS = Path(__file__).parent / "results" / "cyclegan_mnist_usps.json"
BASE_STEPS = 2500  # the length of the first runs: unnamed in run folders and results keys, the one the plain summary averages


def train(name: str, out: Path, overrides: list[str], *, data: str | None = None, config: str | None = None) -> float:
    """``genlab train`` through its Python API (the printed line reproduces it); resumes a killed run."""
    line = [name] + (["--config", config] if config else []) + (["--data", data] if data else []) + ["--out", str(out), *overrides]
    print("genlab train " + " ".join(line), flush=True)
    start = time.perf_counter()
    if (out / "checkpoints" / "latest").is_file():
        api.train(resume=out, overrides=overrides)
    else:
        api.train(name, config_file=config, data=data, out=out, overrides=overrides)
    return time.perf_counter() - start


def classifiers(root: Path, crop_mnist: float | None = None) -> dict[str, Path]:
    """One classifier per domain, each seeing its domain exactly as the CycleGAN does (MNIST cropped
    by ``crop_mnist`` when the digits are framed at USPS's scale)."""
    crop = [f"--data.crop={crop_mnist}"] if crop_mnist else []
    runs = {"mnist": (root / (f"clf-mnist-crop{crop_mnist}" if crop else "clf-mnist"), MNIST, EPOCHS["mnist"], crop),
            "usps": (root / "clf-usps", USPS, EPOCHS["usps"], [])}
    for run, data, epochs, options in runs.values():
        if not (run / "model").is_dir():
            train("classifier", run, ["--data.image_size=32", f"--train.epochs={epochs}", *options, *QUIET], data=data)
    return {name: run for name, (run, *_) in runs.items()}


def task_models(model: Any, spec: Any, run: Path) -> dict[str, float]:
    """CyCADA's protocol: classifiers trained on translated source images, scored on the raw target test."""
    train_split, test_split = api.run_data(spec, None, "train"), api.run_data(spec, None, "test")
    translated: dict[str, torch.Tensor] = {}
    if not all((run / f"{key}.npz").is_file() for key in ("task_m2u", "task_u2m")):
        model.eval()
        with torch.no_grad():  # G(MNIST train), F(USPS train)
            translated = {key: torch.cat([model.translate(x[i : i + 500], direction) for i in range(0, len(x), 500)])
                          for key, direction, x in (("task_m2u", "a2b", train_split.domain_a[0]), ("task_u2m", "b2a", train_split.domain_b[0]))}
    result = {}
    for key, source, target, epochs in (("task_m2u", train_split.domain_a, test_split.domain_b, EPOCHS["mnist"]),
                                        ("task_u2m", train_split.domain_b, test_split.domain_a, EPOCHS["usps"])):
        folder = run / key
        npz = folder.with_suffix(".npz")
        if not npz.is_file():  # uint8 like any image file; the raw target test split rides along as x_test/y_test
            as_bytes = lambda x: (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # noqa: E731
            np.savez(npz, x_train=as_bytes(translated[key]), y_train=source[1].numpy().astype(np.uint8),
                     x_test=as_bytes(target[0]), y_test=target[1].numpy().astype(np.uint8))
        if not (folder / "model").is_dir():
            train("classifier", folder, ["--data.image_size=32", f"--train.epochs={epochs}", *QUIET], data=f"npz:{npz}")
        classifier, classifier_spec = api.load_run(folder)
        result[key] = api.evaluate(classifier, api.run_data(classifier_spec, None, "test"))["accuracy"]
        print(f"{key}: classifier trained on translated source, raw target test accuracy {result[key]:.4f}", flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out", type=Path, default=Path("runs/bench-cyclegan-digits"))
    p.add_argument("--crop-mnist", type=float, default=None,
                   help="frame MNIST's digits at USPS's scale: its central fraction (0.72 = the 20-px digit box), "
                        "for the CycleGAN (data.options.crop_a) and the MNIST classifier (data.crop) alike")
    p.add_argument("--task-model", action="store_true",
                   help="also train a classifier on the translated source and score it on the raw target (CyCADA's protocol)")
    args, extra = p.parse_known_args()  # the rest: overrides, e.g. --model.identity_weight=0
    args.extra = extra + ([f"--data.options.crop_a={args.crop_mnist}"] if args.crop_mnist else [])
    clfs = {name: load(run) for name, run in classifiers(args.out, args.crop_mnist).items()}
    for seed in args.seeds:
        variant = re.sub(r"[^A-Za-z0-9.]+", "_", "+".join(args.extra)).strip("_")
        if args.steps != BASE_STEPS:  # other lengths are runs of their own
            variant = f"{variant}_{args.steps}steps".strip("_")
        run = args.out / (f"cyclegan-{variant}-s{seed}" if variant else f"cyclegan-s{seed}")
        seconds = None
        if not (run / "model").is_dir():
            # the config names no files: the data's paths come here, as on the command line
            seconds = train("cyclegan", run, [f"--data.options.a={MNIST}", f"--data.options.b={USPS}", f"--train.max_steps={args.steps}",
                                              f"--train.seed={seed}", *QUIET, *args.extra], config="configs/cyclegan_mnist_usps.toml")
        model, spec = api.load_run(run)
        metrics = api.evaluate(model, api.run_data(spec, None), classifiers=clfs)
        entry = {"seed": seed, "steps": spec.train.max_steps, "train_seconds": seconds, "extra": args.extra, **metrics}
        if args.task_model:
            entry.update(task_models(model, spec, run))
        results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"runs": {}}  # re-read: seeds may run in parallel
        length = "" if args.steps == BASE_STEPS else f"/{args.steps}steps"
        key = f"{'+'.join(args.extra) or 'plain'}{length}/s{seed}"
        if seconds is None:  # evaluated again: keep the training time the first pass recorded
            entry["train_seconds"] = results["runs"].get(key, {}).get("train_seconds")
        results["runs"][key] = entry
        print(json.dumps(entry, indent=1), flush=True)
        write(results)  # after every seed: a killed benchmark keeps what it finished


def write(results: dict) -> None:
    summary = {}
    for key in ("mnist_acc_b", "mnist_acc_b2a", "usps_acc_a", "usps_acc_a2b", "mnist_acc_a", "usps_acc_b", "cycle_a", "cycle_b",
                "task_m2u", "task_u2m"):
        values = [r[key] for r in results["runs"].values() if key in r and not r.get("extra") and r.get("steps") == BASE_STEPS]
        if values:
            summary[key] = {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
    results["summary_plain"] = summary
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(json.dumps(summary, indent=1), flush=True)

if __name__ == "__main__":
    main()
