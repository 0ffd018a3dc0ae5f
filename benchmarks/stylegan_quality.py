"""StyleGAN vs DCGAN at equal wall-clock on a CPU, scored in the features of independent classifiers,
plus the checks of the three StyleGAN figures on the trained model.

    # faces, 32x32, two hours each (4 h in all), one thread, rounds interleaved:
    nice -n 10 python benchmarks/stylegan_quality.py --data celeba:../shared/data/celeba-10k --budget-minutes 120
    # digits: the MNIST classifier's features
    nice -n 10 python benchmarks/stylegan_quality.py --data mnist:../shared/data/mnist --budget-minutes 60
    # the two models side by side, one process and one core each, budgets in CPU seconds (2 h of wall-clock
    # on 2 cores instead of 4): train the classifiers once, then one process per model
    D="--data celeba:../shared/data/celeba-10k --budget-minutes 120 --rounds 8 --clock cpu --classifier-epochs 12"
    python benchmarks/stylegan_quality.py $D --models --threads 2 --tag celeba32-classifiers
    taskset -c 0 python benchmarks/stylegan_quality.py $D --models stylegan --tag celeba32-stylegan &
    taskset -c 1 python benchmarks/stylegan_quality.py $D --models dcgan --tag celeba32-dcgan
    python benchmarks/stylegan_quality.py --table celeba32-stylegan celeba32-dcgan   # the curves as Markdown

1. Feature classifiers (genlab ``classifier`` runs at the same image size, reused when present):
   faces: one binary classifier per attribute (``--attributes``, default Male Young Smiling), their
   penultimate features concatenated; digits: the 10-class classifier. Their test accuracy is reported.
2. StyleGAN (configs/stylegan_celeba32.toml or stylegan_mnist32.toml) and a DCGAN (conv G and D,
   non-saturating loss, Adam 2e-4 / (0.5, 0.999), EMA) train in ``--rounds`` interleaved rounds of
   ``budget / rounds`` minutes each (a run stops at the first log step past its round's deadline and
   is resumed next round: resume is exact), so the shared CPU's load drifts over both alike.
3. After each round both EMA generators are scored against the test split: Fréchet distance, KID,
   precision/recall, density/coverage on ``--num-samples`` images; the curves over training time
   and the seconds per thousand training images go into the JSON. The training split vs the test
   split is the floor.
4. On the final StyleGAN: the style-mixing, noise and truncation checks with the classifiers
   (:mod:`genlab.reports.stylegan`), and the three figures in the run folder.
Writes benchmarks/results/stylegan_quality-DATA.json (numbers only: never commit faces).
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from genlab import api
from genlab.data import data_config_from_spec, load_dataset
from genlab.metrics import compare_features
from genlab.reports.stylegan import _features, noise_figure, style_mixing_figure, truncation_figure

HERE = Path(__file__).resolve().parent
QUIET = ["train.progress=false", "train.tensorboard=false"]


def classifier_runs(args: argparse.Namespace, out: Path, faces: bool, *, limit: int | None = None) -> dict[str, Path]:
    """One classifier per ``--attributes`` (faces) or one digit classifier: the ruler, reused when present;
    ``limit`` caps its training examples."""
    runs: dict[str, Path] = {}
    for attribute in (args.attributes if faces else ["class"]):
        run = out / f"classifier-{attribute}-{args.image_size}"
        if not (run / "model").is_dir():
            overrides = [f"data.image_size={args.image_size}", f"train.epochs={args.classifier_epochs}", "train.batch_size=128",
                         "train.lr=1e-3", "train.log_every=100", *QUIET]
            if faces:
                overrides += [f"data.options.label={attribute}", "model.channels=[32,64]", "model.kernel_size=3",
                              "model.augment_shift=1"]
            if limit:
                overrides.append(f"data.limit={limit}")
            api.train("classifier", data=args.data, out=run, overrides=overrides)
        runs[attribute] = run
    return runs


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def stop_after(deadline: float, finished: dict[str, float], clock=time.perf_counter):
    """Trainer callback: end the run (checkpoint + export) at the first log step past ``deadline``
    on ``clock``; note when training ended (before the end-of-run report, which is not training time)."""
    def callback(trainer: Any, event: str, info: dict) -> None:
        if event == "log" and clock() > deadline:
            trainer.total_steps = trainer.step
        if event == "end":
            finished["at"] = clock()
    return callback


def train_round(name: str, run: Path, args: argparse.Namespace, seconds: float, first: bool) -> float:
    """Train ``name`` for about ``seconds`` of ``args.clock``; returns the training time on that clock
    (from the call to the end of fit)."""
    clock = CLOCKS[args.clock]
    start, finished = clock(), {}
    cb = [stop_after(start + seconds, finished, clock)]
    if first:
        if name == "stylegan":
            api.train("stylegan", config_file=args.stylegan_config, data=args.data, out=run, callbacks=cb, overrides=[
                f"data.image_size={args.image_size}", "train.max_steps=1000000", "train.eval_every=1000000",
                "train.log_every=10", "train.sample_every=500", "train.checkpoint_every=500", *QUIET,
                *args.stylegan_overrides])
        else:
            api.train("gan", data=args.data, out=run, callbacks=cb, overrides=[
                f"data.image_size={args.image_size}", f"model.latent_dim={args.dcgan_latent}",
                f"model.generator_channels={args.dcgan_channels}", f"model.discriminator_channels={args.dcgan_channels}",
                "train.max_steps=1000000", f"train.batch_size={args.dcgan_batch}", "train.lr=2e-4", "train.betas=[0.5,0.999]",
                "train.ema_decay=0.999", "train.eval_every=1000000", "train.log_every=10", "train.sample_every=500",
                "train.checkpoint_every=500", *QUIET])
    else:
        api.train(resume=run, callbacks=cb)
    return finished.get("at", clock()) - start


def score(run: Path, test_features, extract, n: int) -> dict[str, Any]:
    model, spec = api.load_run(run)
    samples = api.sample(model, n, seed=0)
    result = compare_features(extract(samples).numpy(), test_features, protocol={"generated": f"{n} EMA samples of {run}"})
    steps = int(json.loads((run / "metrics.json").read_text())["steps"])
    result.update({"steps": steps, "images_seen": steps * spec.train.batch_size})
    return result


def table(tags: list[str]) -> str:
    """The curves of results files ``stylegan_quality-TAG.json`` as one Markdown table, model by model."""
    lines = ["| model | round | training s | steps | images | s per 1k images | FD | KID | precision | recall | density | coverage |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for tag in tags:
        result = json.loads((HERE / "results" / f"stylegan_quality-{tag}.json").read_text())
        for name, rows in result.get("curves", {}).items():
            for r in rows:
                lines.append(f"| {name} | {r['round']} | {r['train_seconds']:.0f} | {r['steps']} | {r['images_seen']} | "
                             f"{r['seconds_per_1k_images']:.1f} | {r['fid']:.3f} | {r['kid']:.4f} | {r['precision']:.3f} | "
                             f"{r['recall']:.3f} | {r['density']:.3f} | {r['coverage']:.3f} |")
    return "\n".join(lines)


def seed_table(groups: list[str]) -> str:
    """RESULTS.md's seed tables: ``groups`` are ``LABEL=TAG,TAG,...`` (one results file per seed, seeds in order);
    per round, each group's steps range and FD as mean ± population sd over its seeds with each seed's value, then,
    for every later group, its FD over the first group's seed by seed (the paired ratio) and their mean."""
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    for group in groups:
        label, _, tags = group.partition("=")
        if not tags:
            raise SystemExit(f"--seed-table wants LABEL=TAG,TAG,..., got {group!r}")
        runs[label] = [json.loads((HERE / "results" / f"stylegan_quality-{tag}.json").read_text())["curves"]["stylegan"]
                       for tag in tags.split(",")]
    labels = list(runs)
    rounds = min(len(curve) for curves in runs.values() for curve in curves)
    head = "| round | " + " | ".join(f"steps, {label} | FD, {label}" for label in labels)
    head += "".join(f" | {label} / {labels[0]}, per seed (mean)" for label in labels[1:]) + " |"
    lines = [head, "|---:|" + "---|---:|" * len(labels) + "---:|" * (len(labels) - 1)]
    for i in range(rounds):
        cells = [str(i + 1)]
        for label in labels:
            rows = [curve[i] for curve in runs[label]]
            steps = sorted(r["steps"] for r in rows)
            fds = [r["fid"] for r in rows]
            spread = f" ± {statistics.pstdev(fds):.2f} ({' / '.join(f'{v:.2f}' for v in fds)})" if len(fds) > 1 else ""
            cells += [f"{steps[0]:,}" + (f"-{steps[-1]:,}" if steps[-1] != steps[0] else ""), f"{statistics.fmean(fds):.2f}{spread}"]
        for label in labels[1:]:
            ratios = [b[i]["fid"] / a[i]["fid"] for a, b in zip(runs[labels[0]], runs[label])]
            cells.append(" / ".join(f"{r:.2f}" for r in ratios) + f" ({statistics.fmean(ratios):.2f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="celeba:../shared/data/celeba-10k")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--budget-minutes", type=float, default=120, help="training wall-clock per model")
    p.add_argument("--rounds", type=int, default=8, help="evaluation points (interleaved rounds) per model")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="what the budget counts: wall-clock seconds, or this process's CPU seconds (fair when the "
                        "two models run as two one-thread processes on two cores, or when the machine is shared)")
    p.add_argument("--models", nargs="*", default=["stylegan", "dcgan"], choices=["stylegan", "dcgan"],
                   help="none: only train the classifiers (so that two processes, one per model, can share them)")
    p.add_argument("--stylegan-config", default=None, help="default: configs/stylegan_celeba32.toml (faces) or stylegan_mnist32.toml")
    p.add_argument("--stylegan-overrides", nargs="*", default=[], help="e.g. model.channel_max=32 (a cheaper step)")
    p.add_argument("--dcgan-channels", type=int, default=32)
    p.add_argument("--dcgan-latent", type=int, default=128)
    p.add_argument("--dcgan-batch", type=int, default=64)
    p.add_argument("--attributes", nargs="+", default=["Male", "Young", "Smiling"])
    p.add_argument("--classifier-epochs", type=int, default=3)
    p.add_argument("--num-samples", type=int, default=2000)
    p.add_argument("--check-samples", type=int, default=500, help="faces for the figure checks")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/stylegan_quality")
    p.add_argument("--tag", default=None, help="results file suffix (default: the dataset name)")
    p.add_argument("--checks-only", action="store_true",
                   help="redo the figure checks on the StyleGAN already trained under --out, keeping the results file's curves")
    p.add_argument("--table", nargs="+", metavar="TAG", help="print the curves of these results files as Markdown and exit")
    p.add_argument("--seed-table", nargs="+", metavar="LABEL=TAG,TAG",
                   help="print each round's FD as mean ± sd over seeds per group, and the paired ratios to the first group, and exit")
    args = p.parse_args()
    if args.seed_table:
        print(seed_table(args.seed_table))
        return
    if args.table:
        print(table(args.table))
        return
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    data_name = data_config_from_spec(args.data).name
    faces = data_name == "celeba"
    args.stylegan_config = args.stylegan_config or str(HERE.parent / "configs" / ("stylegan_celeba32.toml" if faces else "stylegan_mnist32.toml"))
    tag = args.tag or f"{data_name}{args.image_size}"
    out = Path(args.out) / f"{data_name}{args.image_size}"  # classifiers and one run per model: shared by tags
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"args": vars(args), "torch": torch.__version__}
    results_path = HERE / "results" / f"stylegan_quality-{tag}.json"
    if args.checks_only:  # the training's record stays; only the checks are redone (and the args that made them noted)
        result = {**json.loads(results_path.read_text()), "checks_args": vars(args)}

    def save() -> None:
        results_path.write_text(json.dumps(result, indent=1, default=float))

    config = data_config_from_spec(args.data).replace(image_size=args.image_size)
    test = load_dataset(config, "test")
    runs = classifier_runs(args, out, faces)
    classifiers = {name: api.load_run(run)[0].eval() for name, run in runs.items()}
    result["classifiers"] = {name: {"run": str(run), "test_accuracy": api.evaluate(classifiers[name], load_dataset(
        config.replace(options={**config.options, "label": name}) if faces else config, "test"))["accuracy"]}
        for name, run in runs.items()}
    print("classifiers:", json.dumps(result["classifiers"]), flush=True)

    def extract(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([_features(c, images) for c in classifiers.values()], dim=1)

    n = min(args.num_samples, len(test))
    test_features = extract(test.x[:n]).numpy()
    train = load_dataset(config, "train")
    result["train_split_floor"] = compare_features(extract(train.x[:n]).numpy(), test_features)
    print(f"train split vs test: FID {result['train_split_floor']['fid']:.3f}", flush=True)

    seconds_per_round = args.budget_minutes * 60 / args.rounds
    curves: dict[str, list[dict[str, Any]]] = {m: [] for m in args.models}
    trained: dict[str, float] = {m: 0.0 for m in args.models}
    for r in range(0 if args.checks_only else args.rounds):
        for name in (args.models if r % 2 == 0 else list(reversed(args.models))):  # alternate who goes first
            run = out / name
            trained[name] += train_round(name, run, args, seconds_per_round, first=r == 0)
            row = {"round": r + 1, "train_seconds": trained[name], **score(run, test_features, extract, n)}
            row["seconds_per_1k_images"] = 1000 * trained[name] / row["images_seen"]
            curves[name].append(row)
            print(f"round {r + 1} {name}: {row['train_seconds']:.0f}s, {row['steps']} steps, FID {row['fid']:.3f}, "
                  f"KID {row['kid']:.4f}, precision {row['precision']:.3f}, recall {row['recall']:.3f}, "
                  f"{row['seconds_per_1k_images']:.1f} s/1k images", flush=True)
            result["curves"] = curves
            save()

    if "stylegan" in args.models:
        model, _ = api.load_run(out / "stylegan")
        k = args.check_samples
        result["checks"] = {
            "style_mixing": style_mixing_figure(model, out / "stylegan" / "style-mixing-check.png", classifiers=classifiers, num_pairs=k),
            "noise": noise_figure(model, out / "stylegan" / "stylegan-noise-check.png", classifiers=classifiers, num_faces=k),
            "truncation": truncation_figure(model, out / "stylegan" / "truncation-check.png", num_samples=k,
                                            features=next(iter(classifiers.values()))),
        }
        for check in result["checks"].values():
            check.pop("path", None)
        print("checks:", json.dumps({k: v.get("claim_holds") for k, v in result["checks"].items()}), flush=True)
    save()
    print(f"wrote {results_path}")


if __name__ == "__main__":
    main()
