"""``genlab figure ID``: one figure of the lecture (:mod:`genlab.lecture`), made and checked.

The figure's files go to ``runs/figures/ID`` unless ``--out`` says otherwise; ``--run RUN`` hands a
trained run to the figures that accept one (robot-arm: an MDN run; adversarial: a classifier run)
in place of the shared run they would train.
"""
from __future__ import annotations

import argparse
import json

from . import command, positive_int


def _names() -> list[str]:
    from ..lecture import ordered_figures

    return [f.id for f in ordered_figures()]


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="ID", choices=_names(), help="one of: " + ", ".join(_names()))
    p.add_argument("-o", "--out", default=None, help="folder for the PNG files and numbers.json (default runs/figures/ID)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, initialisation and sampling")
    p.add_argument("--budget", choices=["smoke", "full"], default="full", help="as for genlab lecture")
    p.add_argument("--quick", action="store_true", help="the smoke budget (--budget smoke)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--runs", default=None, help="folder of the shared trained runs (default runs/figures/runs, or OUT/runs with --out)")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ and celeba-10k/")
    p.add_argument("--run", default=None, help="trained run folder to use instead of the figure's shared run "
                                               "(robot-arm: an MDN run; adversarial: a classifier run)")


@command("figure", "make and check one figure of the lecture (genlab lecture --list names them)", _arguments)
def figure(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..lecture import run_lecture

    out = Path(args.out) if args.out is not None else Path("runs") / "figures" / args.name
    # figures share trained runs: by default all under runs/figures/runs, or beside an --out folder
    runs = args.runs if args.runs is not None else (out / "runs" if args.out is not None else Path("runs") / "figures" / "runs")
    (result,) = run_lecture(out, budget="smoke" if args.quick else args.budget, only=[args.name], seed=args.seed,
                            runs=runs, data_root=args.data_root, progress=False, flat=True, run=args.run)
    for path in result.paths:
        print(f"wrote {path}")
    if result.numbers:
        print(json.dumps(result.numbers, indent=2, sort_keys=True))
    for text, ok in result.conditions:
        print(f"{'held' if ok else 'NOT HELD'}: {text}")
    print(f"{result.id}: {result.verdict}" + (f" ({result.error})" if result.error else ""))
    return 1 if result.failed else 0
