"""``genlab translate``: run a trained pix2pix model on image files."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import command


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="pix2pix run folder (or a model folder with config.json + model.safetensors)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="input images (resized to the model's size)")
    p.add_argument("-n", type=int, default=4, help="outputs per input (dropout kept on, one mask each)")
    p.add_argument("-o", "--output", metavar="DIR", default=None, help="folder for the PNGs (default RUN/translations)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout masks")
    p.add_argument("--deterministic", action="store_true", help="one output per input, dropout off")
    p.add_argument("--half", choices=("left", "right"), default=None,
                   help="the input is this half of an aligned A|B image")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")


@command("translate", "translate images with a pix2pix model: input | n outputs | deterministic output", _arguments)
def run(args: argparse.Namespace) -> int:
    from ..reports.pix2pix import translate_files

    out = Path(args.output) if args.output else Path(args.run) / "translations"
    written = translate_files(args.run, args.images, out_dir=out, n=args.n, seed=args.seed,
                              stochastic=not args.deterministic, half=args.half, device=args.device)
    for path in written:
        print(path)
    return 0
