"""How often the smoke lecture's StyleGAN figures pass, over seeds, per variant of the smoke StyleGAN (issue 21).

The smoke budget trains the shared run ``stylegan-mnist`` for 800 steps; the figures ``truncation`` and
``style-mixing`` are judged on it. Whether they pass depends on the seed, so one seed per scheme cannot say
whether a change of the recipe (e.g. the lazy-R1 scheme) moved the verdicts. This script runs both figures
exactly as ``genlab lecture --budget smoke --seed S`` does, for every seed and every variant, where a variant
is the lecture's own recipe with some model settings replaced, and counts the passes:

    taskset -c 0 python benchmarks/stylegan_smoke_seeds.py --seeds 0 1 2 3 4 5 --threads 1 \\
        --variant own lazy_optimizer=own --variant shared --tag lazy-schemes

A variant with no settings is the recipe as shipped. Values are read as ``--model.KEY=VALUE`` reads them
(``0.35``, ``true``; strings otherwise). The lecture's smoke digit classifier is trained once per seed and shared by
the variants (its run folder does not depend on the StyleGAN's recipe). Writes
benchmarks/results/stylegan_smoke_seeds-TAG.json and prints one Markdown table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from genlab.config import ConfigError, parse_override
from genlab.lecture import core
from genlab.lecture.runner import jsonable, load_parts, run_figure

HERE = Path(__file__).resolve().parent
FIGURE_IDS = ("truncation", "style-mixing")
RUN = "stylegan-mnist"


def parse_variant(words: list[str]) -> tuple[str, dict[str, Any]]:
    """``NAME KEY=VALUE ...`` -> (NAME, {KEY: VALUE}), each setting read as ``--model.KEY=VALUE`` is on the
    command line (:func:`genlab.config.parse_override`); one clear error for a malformed setting."""
    name, settings = words[0], {}
    for word in words[1:]:
        try:
            path, value = parse_override(word if word.startswith("model.") else f"model.{word}")
        except ConfigError:
            path, value = [], None
        if len(path) != 2:
            raise SystemExit(f"--variant {name}: {word!r} is not KEY=VALUE")
        settings[path[1]] = value
    return name, settings


def with_model_settings(recipe: core.RunRecipe, settings: dict[str, Any]) -> core.RunRecipe:
    """The shared-run recipe ``recipe`` with ``settings`` merged into its model config."""

    def patched(ctx: core.Context):
        model_name, config, data, train = recipe(ctx)
        return model_name, {**config, **settings}, data, train

    return patched


def run_variant(figures: dict[str, Any], settings: dict[str, Any], seed: int, out: Path,
                data_root: Path | None) -> dict[str, Any]:
    original = core.SHARED_RUNS[RUN]
    core.SHARED_RUNS[RUN] = with_model_settings(original, settings)
    try:
        ctx = core.Context(seed=seed, budget="smoke", out=out, runs=out.parent.parent / "runs", data_root=data_root)
        row: dict[str, Any] = {"run": str(ctx.run_dir(RUN))}
        for fid in FIGURE_IDS:  # one context: the figures share the trained models, as in the lecture
            ctx.out = out / fid
            result = run_figure(figures[fid], ctx)
            row[fid] = {"verdict": result.verdict, "conditions": result.conditions, "error": result.error,
                        "numbers": {k: v for k, v in result.numbers.items() if k != "paths"}}
        return row
    finally:
        core.SHARED_RUNS[RUN] = original


def summary(name: str, rows: dict[str, Any]) -> str:
    def passes(fid: str) -> dict[str, bool]:
        return {seed: row[fid]["verdict"] == "pass" for seed, row in rows.items()}

    truncation, mixing = passes("truncation"), passes("style-mixing")
    both = {seed: truncation[seed] and mixing[seed] for seed in rows}
    cells = [f"s{seed}: {'**pass**' if both[seed] else 'fail'} ({row['truncation']['numbers'].get('classes_at_psi1', '?')} "
             f"digits, {row['style-mixing']['numbers'].get('coarse_over_fine', float('nan')):.2f}x)" for seed, row in rows.items()]
    n = len(rows)
    return (f"| {name} | {sum(both.values())}/{n} | {sum(truncation.values())}/{n} | {sum(mixing.values())}/{n} | "
            f"{'; '.join(cells)} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY=VALUE]",
                   help="a name, then the model settings that differ from the lecture's recipe (repeatable)")
    p.add_argument("--out", default="runs/bench-stylegan-smoke-seeds")
    p.add_argument("--data-root", default=None, help="default: the lecture's ($GENLAB_DATA, else ../shared/data)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="default")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = dict(parse_variant(words) for words in (args.variant or [["as-shipped"]]))
    data_root = Path(args.data_root) if args.data_root else core.default_data_root()
    if data_root is None or not (data_root / "mnist").is_dir():
        raise SystemExit("MNIST not found: pass --data-root (a folder holding mnist/)")

    figures = load_parts()
    path = HERE / "results" / f"stylegan_smoke_seeds-{args.tag}.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    result.update({"args": vars(args), "torch": torch.__version__})
    result.setdefault("variants", {})
    for name, settings in variants.items():
        done = result["variants"].setdefault(name, {"settings": settings, "seeds": {}})
        if done["settings"] != settings:
            raise SystemExit(f"{path} holds variant {name!r} with other settings {done['settings']}: use another --tag")
    for seed in args.seeds:  # seed by seed, so that a stopped run leaves every variant with the same seeds
        for name, settings in variants.items():
            done = result["variants"][name]
            if str(seed) in done["seeds"]:
                continue  # a rerun only adds what is missing
            start = time.process_time()
            row = run_variant(figures, settings, seed, Path(args.out) / name / f"seed{seed}", data_root)
            row["cpu_seconds"] = time.process_time() - start
            done["seeds"][str(seed)] = jsonable(row)
            path.write_text(json.dumps(result, indent=1))
            print(f"{name} seed {seed}: truncation {row['truncation']['verdict']}, style-mixing "
                  f"{row['style-mixing']['verdict']} ({row['cpu_seconds']:.0f} CPU s)", flush=True)
    print("| variant | both pass | truncation | style mixing | per seed (digits >= 2 % at psi = 1, coarse/fine) |")
    print("|---|---|---|---|---|")
    for name, entry in result["variants"].items():
        print(summary(name, entry["seeds"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
