"""pix2pix benchmarks (issue 4): test L1 on edges2digits and facades, and the colorize saturation
comparison (L1-only vs pix2pix vs the targets). CPU-sized: small widths and few steps.

    nice -n 10 python benchmarks/pix2pix.py edges2digits [--steps 1500] [--out runs/bench-pix2pix]
    nice -n 10 python benchmarks/pix2pix.py colorize      # trains pix2pix and the L1-only model
    nice -n 10 python benchmarks/pix2pix.py facades --facades ../shared/data/facades
    nice -n 10 python benchmarks/pix2pix.py classifier    # the feature extractor for FD/KID on digits
    nice -n 10 python benchmarks/pix2pix.py evaluate RUN... [--classifier RUN]  # re-evaluate trained runs

Every run goes through ``genlab.api.train`` (what ``genlab train`` calls), so each printed command
line is reproducible with the CLI. Results are written as JSON next to the runs and printed.
FD/KID on digits use the penultimate features of a genlab classifier trained on mnist-embedded
(28 px), computed on the 32-px outputs with the 2-px padding cropped off.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from genlab import api
from genlab.reports.pix2pix import translate_dataset
from genlab.reports.pix2pix import evaluate_pix2pix

DIGITS = ["--model.num_filters=16", "--model.discriminator_filters=16", "--train.batch_size=32",
          "--train.log_every=50", "--train.eval_batches=4", "--train.progress=false", "--train.tensorboard=false"]
FACADES = ["--model.num_filters=32", "--model.discriminator_filters=32", "--train.batch_size=4",
           "--train.log_every=50", "--train.eval_batches=8", "--train.progress=false", "--train.tensorboard=false"]

VARIANTS = {"pix2pix": [], "l1-only": ["--model.adversarial_weight=0"]}


def train(name: str, data: str, out: Path, overrides: list[str]) -> tuple[dict, float]:
    print("genlab train " + " ".join([name, "--data", data, "--out", str(out), *overrides]), flush=True)
    start = time.perf_counter()
    summary = api.train(name, data=data, out=out, overrides=overrides)
    return summary, time.perf_counter() - start


def digit_features(run: Path, outputs: torch.Tensor, targets: torch.Tensor, floor: torch.Tensor | None = None) -> dict:
    """FD and KID of outputs vs targets on classifier features (padding cropped back to 28 px)."""
    from genlab.metrics import compare_features, get_extractor

    extractor = get_extractor("classifier", path=str(run))
    crop = (slice(None), slice(None), slice(2, 30), slice(2, 30))
    gen, ref = extractor(outputs[crop]), extractor(targets[crop])
    options = {"metrics": ("fid", "kid"), "kid_subsets": 100, "kid_subset_size": min(500, len(gen) // 2)}
    result = compare_features(gen, ref, **options,
                              protocol={"reference": "targets of the test split", "extractor": extractor.description})
    if floor is not None:  # real vs real: train-split digits against the same test targets
        real = compare_features(extractor(floor[:len(ref)][crop]), ref, **options)
        result["floor_fid"], result["floor_kid"] = real["fid"], real["kid"]
    return result


def diversity(model, inputs: torch.Tensor, n: int = 4, seed: int = 0) -> float:
    """Mean absolute difference between two of ``n`` stochastic translations (dropout on) of one input."""
    samples = model.translate(inputs, n, stochastic=True, generator=torch.Generator().manual_seed(seed))
    return float((samples[:, :, None] - samples[:, None]).abs().mean() * n / (n - 1))  # excludes i == j


def hue_sextants(images: torch.Tensor, min_value: float = 0.2) -> list[int]:
    """How many outputs fall in each sixth of the colour wheel (by the argmax/argmin channel of
    their mean lit colour): does the model pick varied hues or one colour for every input?"""
    lit = (images.amax(1, keepdim=True) > min_value).float()
    colour = (images * lit).sum((2, 3)) / lit.sum((2, 3)).clamp_min(1)  # (N, 3)
    key = colour.argmax(1) * 3 + colour.argmin(1)  # 6 valid (max, min) pairs = 6 sextants
    return [int((key == k).sum()) for k in (2, 5, 3, 6, 7, 1)]  # red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red


def evaluate(run: Path, classifier: Path | None) -> dict:
    model, spec = api.load_run(run)
    test = api.run_data(spec, None)
    result = evaluate_pix2pix(model, test)
    result["stochastic_diversity"] = diversity(model, test.tensors[0][:200])
    if model.config.image_shape[0] == 3 and spec is not None and spec.data.name == "colorize":
        _, outputs, targets = translate_dataset(model, test)
        result["output_hue_sextants"], result["target_hue_sextants"] = hue_sextants(outputs), hue_sextants(targets)
    if classifier is not None and (classifier / "model").is_dir() and model.config.image_shape[1] == 32:
        _, outputs, targets = translate_dataset(model, test)
        if outputs.shape[1] == 1:
            train_targets = api.run_data(spec, None, split="train").tensors[1]
            result.update(digit_features(classifier, outputs, targets, train_targets))
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("task", choices=["edges2digits", "colorize", "facades", "classifier", "evaluate"])
    p.add_argument("runs", nargs="*", help="evaluate: run folders to (re-)evaluate")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--out", default="runs/bench-pix2pix")
    p.add_argument("--facades", default="../shared/data/facades")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--classifier", default=None, help="classifier run for FD/KID (default OUT/classifier)")
    p.add_argument("--variants", default="pix2pix,l1-only", help="which models to train (comma list)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    classifier = Path(args.classifier) if args.classifier else out / "classifier"
    results: dict = {}
    if args.task == "evaluate":
        steps = "eval"
        for run in args.runs:
            results[run] = evaluate(Path(run), classifier)
    elif args.task == "classifier":
        steps = args.steps or 600
        summary, seconds = train("classifier", "mnist-embedded", classifier,
                                 [f"--train.max_steps={steps}", "--train.batch_size=64", "--train.progress=false",
                                  "--train.tensorboard=false"])
        results["classifier"] = {"seconds": seconds, **{k: v for k, v in summary.items() if isinstance(v, float)}}
    elif args.task in ("edges2digits", "colorize"):
        steps = args.steps or 1500
        variants = {k: v for k, v in VARIANTS.items() if k in args.variants.split(",")}
        for variant, extra in variants.items():
            run = out / f"{args.task}-{variant}"
            _, seconds = train("pix2pix", args.task, run, DIGITS + [f"--train.max_steps={steps}"] + extra)
            results[variant] = {"seconds": round(seconds, 1), "steps": steps, **evaluate(run, classifier)}
    else:
        steps = args.steps or 1000
        variants = {k: v for k, v in VARIANTS.items() if k in args.variants.split(",")}
        for variant, extra in variants.items():
            run = out / f"facades-{variant}"
            _, seconds = train("pix2pix", f"facades:{args.facades}", run, FACADES + [f"--train.max_steps={steps}"] + extra)
            results[variant] = {"seconds": round(seconds, 1), "steps": steps, **evaluate(run, None)}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"results-{args.task}-{steps}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
