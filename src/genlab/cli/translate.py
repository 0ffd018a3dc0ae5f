"""``genlab translate``: run a trained translation model (pix2pix or CycleGAN) on image files."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import command


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="pix2pix or cyclegan run folder (or a model folder with config.json + model.safetensors)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="input images (resized to the model's size)")
    p.add_argument("--direction", choices=("a2b", "b2a"), default="a2b",
                   help="a2b: domain A -> B (pix2pix: input -> output, its only direction); b2a: B -> A (CycleGAN)")
    p.add_argument("-n", type=int, default=4, help="pix2pix: outputs per input (dropout kept on, one mask each)")
    p.add_argument("-o", "--output", metavar="DIR", default=None, help="folder for the PNGs (default RUN/translations)")
    p.add_argument("--seed", type=int, default=0, help="pix2pix: seed of the dropout masks")
    p.add_argument("--deterministic", action="store_true", help="pix2pix: one output per input, dropout off")
    p.add_argument("--half", choices=("left", "right"), default=None,
                   help="pix2pix: the input is this half of an aligned A|B image")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")


@command("translate", "translate images: pix2pix (input | n outputs | deterministic output) or CycleGAN "
         "(input | translation | reconstruction)", _arguments)
def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load
    from ..reports.translation import translate_files

    out = Path(args.output) if args.output else Path(args.run) / "translations"
    written = translate_files(load(args.run, device=args.device), args.images, out_dir=out, direction=args.direction,
                              n=args.n, seed=args.seed, stochastic=not args.deterministic, half=args.half)
    for path in written:
        print(path)
    return 0
