"""``genlab train``: train any registered model on any registered dataset."""
from __future__ import annotations

import argparse
import json

from . import command


def _arguments(p: argparse.ArgumentParser) -> None:
    from ..registry import DATASETS, MODELS

    import genlab.models  # noqa: F401  (fills the registry for the help text)

    p.add_argument("model", nargs="?", help="model to train: " + ", ".join(sorted(MODELS)) + " (optional with --resume)")
    p.add_argument("--config", metavar="FILE", help="TOML/JSON file with [model], [data], [train] sections")
    p.add_argument("--data", metavar="SPEC", help="dataset name (" + ", ".join(sorted(DATASETS)) + "), NAME:PATH, or a path (IDX folder, .npz, image folder)")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATA)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN",
                   help="continue RUN (or --out) from its last checkpoint; ends bit-identical to an uninterrupted run on CPU")
    p.add_argument("--force", action="store_true", help="write into --out even when it holds files that are not a genlab run")
    p.add_argument("--dry-run", action="store_true", help="resolve configs, load data, build the model and compute one loss; train nothing")
    p.epilog = ("Any config field can be overridden as --SECTION.FIELD=VALUE, e.g. --model.latent_dim=2 --train.epochs=5 "
                "--data.binarize=static. Multi-process: torchrun --nproc_per_node=N -m genlab.cli train ...")


@command("train", "train a model; writes a run folder with checkpoints, samples, curves and metrics", _arguments, accepts_overrides=True)
def run(args: argparse.Namespace) -> int:
    from .. import api

    summary = api.train(args.model, config_file=args.config, data=args.data, out=args.out,
                        overrides=args.overrides, resume=args.resume, dry_run=args.dry_run, force=args.force)
    if summary.get("dry_run"):
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"run folder: {summary['run_dir']}")
    for key, value in sorted(summary.items()):
        if key != "run_dir" and isinstance(value, (int, float)):
            print(f"  {key:28s} {value:.6g}")
    return 0
