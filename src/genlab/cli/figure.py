"""``genlab figure ID``: one figure of the lecture (:mod:`genlab.lecture`), made and checked.

``--run`` keeps the older form for the demonstrations of :mod:`genlab.figures` that accept a
trained run (robot-arm: an MDN run; adversarial: a classifier run).
"""
from __future__ import annotations

import argparse
import json

from . import command, positive_int


def _names() -> list[str]:
    from ..figures import FIGURES
    from ..lecture import ordered_figures

    lecture = [f.id for f in ordered_figures()]
    return lecture + sorted(set(FIGURES) - set(lecture))


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="ID", choices=_names(), help="one of: " + ", ".join(_names()))
    p.add_argument("-o", "--out", default="figures", help="folder for the PNG files and numbers.json")
    p.add_argument("--seed", type=int, default=0, help="seed for data, initialisation and sampling")
    p.add_argument("--budget", choices=["smoke", "full"], default="full", help="as for genlab lecture")
    p.add_argument("--quick", action="store_true", help="the smoke budget (--budget smoke)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--runs", default=None, help="folder of shared trained runs (default OUT/runs)")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ and celeba-10k/")
    p.add_argument("--run", default=None, help="trained run folder to use instead (robot-arm: an MDN run; "
                                               "adversarial: a classifier run); skips the claim's check")


@command("figure", "make and check one figure of the lecture (genlab lecture --list names them)", _arguments)
def figure(args: argparse.Namespace) -> int:
    from ..figures import FIGURES, make_figure
    from ..lecture import load_parts, run_lecture

    if args.run is not None or args.name not in load_parts():
        if args.name not in FIGURES:
            from ..errors import ConfigError

            raise ConfigError(f"figure {args.name!r} does not take --run")
        result = make_figure(args.name, args.out, seed=args.seed, quick=args.quick, run=args.run)
        for path in result.pop("paths"):
            print(f"wrote {path}")
        if result:
            print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    (result,) = run_lecture(args.out, budget="smoke" if args.quick else args.budget, only=[args.name], seed=args.seed,
                            runs=args.runs, data_root=args.data_root, progress=False, flat=True)
    for path in result.paths:
        print(f"wrote {path}")
    if result.numbers:
        print(json.dumps(result.numbers, indent=2, sort_keys=True))
    for text, ok in result.conditions:
        print(f"{'held' if ok else 'NOT HELD'}: {text}")
    print(f"{result.id}: {result.verdict}" + (f" ({result.error})" if result.error else ""))
    return 1 if result.failed else 0
