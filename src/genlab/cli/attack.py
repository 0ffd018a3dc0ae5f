"""``genlab attack RUN``: accuracy of a trained classifier under FGSM / PGD, and a figure."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import command


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a trained classifier run (or model) folder")
    p.add_argument("--method", default="fgsm,pgd", help="fgsm, pgd, or both comma-separated")
    p.add_argument("--eps", type=_floats, default=[0.1, 0.2, 0.3], help="comma-separated budgets, e.g. 0.1,0.2,0.3")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--steps", type=int, default=40, help="PGD steps")
    p.add_argument("--data", metavar="SPEC", default=None, help="test data (default: the run's test split)")
    p.add_argument("--limit", type=int, default=None, help="attack only the first N test images")
    p.add_argument("--seed", type=int, default=0, help="seed of PGD's random start")
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", "--output", default=None, help="figure PNG (default RUN/attack-METHOD.png); results go beside it as JSON")


@command("attack", "accuracy of a classifier under FGSM/PGD adversarial examples (table + figure)", _arguments)
def attack(args: argparse.Namespace) -> int:
    from .. import api
    from ..attacks import format_table
    from ..reports.classifier import attack_report

    model, spec = api.load_run(args.run, device=args.device)
    data = api.run_data(spec, args.data)
    if args.limit is not None:
        data = data.head(args.limit)
    figure = Path(args.output) if args.output else Path(args.run) / "attack.png"
    rows = attack_report(model, data.x, data.y, methods=[m.strip() for m in args.method.split(",")], eps=args.eps,
                         norm=args.norm, steps=args.steps, seed=args.seed, figure=figure)
    print(format_table(rows))
    figure.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {figure} and {figure.with_suffix('.json')}")
    return 0
