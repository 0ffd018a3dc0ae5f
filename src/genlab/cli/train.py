"""``genlab train``: train any registered model on any registered dataset."""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import textwrap
import types
import typing
from typing import Any, Literal, Sequence, Union

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


def _fields_help(namespace: argparse.Namespace, argv: Sequence[str]) -> str:
    """``genlab train MODEL --help``: every field of MODEL's config, then the data and train fields, each
    with the default this model starts from and the line its source writes beside it (its type when none)."""
    from ..config import field_help, merge
    from ..data.base import DataConfig
    from ..registry import MODELS
    from ..training.trainer import TrainConfig

    name = getattr(namespace, "model", None)
    if name is None:  # genlab train --help MODEL: the name came after --help
        words = list(argv)
        after = words[words.index("train") + 1:] if "train" in words else words
        name = next((w for w in after if w in MODELS), None)
    if name is None:
        return "genlab train MODEL --help lists MODEL's own fields with their defaults, then the data and train fields."
    if name not in MODELS:
        return f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}"
    cls = MODELS.get(name)
    family_defaults = getattr(cls, "defaults", {}) or {}
    width = max(60, min(110, shutil.get_terminal_size((100, 24)).columns)) - 2
    blocks = []
    for section, config_class, title in (("model", cls.config_class, f"{name} model fields"),
                                         ("data", DataConfig, "data fields"), ("train", TrainConfig, "train fields")):
        defaults = merge(config_class().to_dict(), family_defaults.get(section, {}))
        helps, hints = field_help(config_class), typing.get_type_hints(config_class)
        lines = [f"{title} (--{section}.FIELD=VALUE; shown with this model's default):"]
        for field in _own_fields_first(config_class):
            lines.append(f"  --{section}.{field.name}={_value(defaults.get(field.name))}")
            text = helps[field.name] or _describe(hints[field.name])
            lines.append(textwrap.fill(text, width, initial_indent=" " * 6, subsequent_indent=" " * 6,
                                       break_long_words=False, break_on_hyphens=False))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _own_fields_first(config_class: type) -> list[dataclasses.Field]:
    """The fields of ``config_class``, those it declares first and those of its bases after them
    (nearest base first; each class's own order kept). A field a subclass re-declares (to change its
    default) stays with the base that introduced it."""
    mro = [k for k in config_class.__mro__ if dataclasses.is_dataclass(k)]

    def introduced_by(field: dataclasses.Field) -> int:
        return max(i for i, klass in enumerate(mro) if field.name in klass.__dict__.get("__annotations__", {}))

    return sorted(dataclasses.fields(config_class), key=introduced_by)


def _value(value: Any) -> str:
    """A default as it is written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _describe(hint: Any) -> str:
    """A field's type in words, for a field whose source gives it no comment."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of: " + ", ".join(_value(a) for a in args)
    if origin in (Union, types.UnionType):
        kinds = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or none" if type(None) in args else "")
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"list of {len(args)}: " + ", ".join(_describe(a) for a in args)
        return f"list of {_describe(args[0]) if args else 'values'}"
    if origin is dict:
        return "mapping (--SECTION.FIELD.KEY=VALUE)"
    return {bool: "true or false", int: "integer", float: "number", str: "text"}.get(hint, getattr(hint, "__name__", str(hint)))


@command("train", "train a model; writes a run folder with checkpoints, samples, curves and metrics", _arguments,
         accepts_overrides=True, extra_help=_fields_help)
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
