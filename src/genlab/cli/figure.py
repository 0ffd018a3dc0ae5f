"""``genlab figure NAME``: the demonstrations of :mod:`genlab.figures`, one command each."""
from __future__ import annotations

import argparse
import json

from . import command


def _arguments(p: argparse.ArgumentParser) -> None:
    from ..figures import FIGURES

    p.add_argument("name", metavar="NAME", choices=sorted(FIGURES), help="one of: " + ", ".join(sorted(FIGURES)))
    p.add_argument("-o", "--out", default="figures", help="folder for the PNG files")
    p.add_argument("--seed", type=int, default=0, help="seed for data, initialisation and sampling")
    p.add_argument("--run", default=None, help="trained run folder to use (robot-arm: an MDN run; adversarial: a classifier run)")
    p.add_argument("--quick", action="store_true", help="train far less (a smoke test, not the figure)")


@command("figure", "make one of the demonstration figures (MDN, robot arm, random generators, naive collapse, adversarial)", _arguments)
def figure(args: argparse.Namespace) -> int:
    from ..figures import make_figure

    result = make_figure(args.name, args.out, seed=args.seed, quick=args.quick, run=args.run)
    for path in result.pop("paths"):
        print(f"wrote {path}")
    if result:
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0
