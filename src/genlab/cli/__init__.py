"""The ``genlab`` command: a thin layer over the Python API.

Each subcommand lives in a module of this package and registers itself with :func:`command`;
a subcommand parses its arguments, calls one public function, and prints the result. Errors that
genlab raises on bad input (:class:`~genlab.errors.GenlabError`) print as one line and exit 2.
Log lines go through tqdm, so they print above a progress bar instead of breaking it; output piped
into a reader that stops early (``genlab train --dry-run | head``) ends quietly.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from importlib import import_module
from typing import Callable, Sequence

from ..errors import GenlabError


@dataclasses.dataclass
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    accepts_overrides: bool = False  # extra ``--section.field=value`` arguments
    # more help after the options, from what precedes --help (``genlab train vae --help``: vae's fields)
    extra_help: Callable[[argparse.Namespace, Sequence[str]], str] | None = None


COMMANDS: dict[str, Command] = {}

# Modules that define subcommands; each registers with @command on import.
_MODULES = ["train", "inspect", "translate", "latent", "figure", "attack", "explore", "lecture"]


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None], *, accepts_overrides: bool = False,
            extra_help: Callable[[argparse.Namespace, Sequence[str]], str] | None = None):
    def decorator(run: Callable[[argparse.Namespace], int | None]):
        COMMANDS[name] = Command(name, help, arguments, run, accepts_overrides, extra_help)
        return run

    return decorator


_ARGV: list[str] = []  # the command line being parsed, for help that depends on words after --help


class _HelpAction(argparse.Action):
    """``-h/--help`` of a subcommand: its usage and options, then the command's ``extra_help``."""

    def __init__(self, option_strings: Sequence[str], dest: str, command: Command, **kwargs: object) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0,
                         help="show this help message and exit")
        self.command = command

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        text = parser.format_help()
        if self.command.extra_help is not None:
            text = text.rstrip("\n") + "\n\n" + self.command.extra_help(namespace, _ARGV).rstrip("\n") + "\n"
        parser._print_message(text, sys.stdout)
        parser.exit()


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    for module in _MODULES:
        import_module(f"{__name__}.{module}")
    parser = argparse.ArgumentParser(
        prog="genlab",
        description="Deep generative models on PyTorch: train, sample, evaluate and inspect.",
        epilog="Run 'genlab COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, add_help=False,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("-h", "--help", action=_HelpAction, command=cmd)
        cmd.arguments(p)
        p.set_defaults(_command=cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    cmd: Command = args._command
    if extra and not cmd.accepts_overrides:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = _join_override_values(extra)
    bad = [e for e in args.overrides if not (e.startswith("--") and "." in e.split("=", 1)[0])]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)} (overrides look like --train.lr=3e-4)")
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    if getattr(args, "threads", None) is not None:  # commands that take --threads
        import torch

        torch.set_num_threads(args.threads)
    try:
        code = cmd.run(args) or 0
        sys.stdout.flush()  # here, not at exit, so a closed pipe is handled below
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except GenlabError as exc:
        print(f"genlab {cmd.name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genlab {cmd.name}: interrupted", file=sys.stderr)
        return 130


class _TqdmHandler(logging.Handler):
    """Writes log records with ``tqdm.write`` (to stderr): above an active progress bar, not through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a logging handler never raises
            self.handleError(record)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _join_override_values(extra: list[str]) -> list[str]:
    """Accept both ``--model.latent_dim=2`` and ``--model.latent_dim 2``."""
    out: list[str] = []
    i = 0
    while i < len(extra):
        item = extra[i]
        if "=" not in item and i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            item = f"{item}={extra[i + 1]}"
            i += 1
        out.append(item)
        i += 1
    return out


if __name__ == "__main__":
    sys.exit(main())
