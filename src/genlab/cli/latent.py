"""Latent-space commands for any run whose model decodes: interpolate, grid, attribute, project."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import command


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder (or a model folder with config.json + model.safetensors)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights were saved")
    p.add_argument("--project-steps", type=int, default=500,
                   help="optimisation steps to find the codes of images, for models without an encoder")


def _load(args: argparse.Namespace):
    from .. import api

    return api.load_run(args.run, ema=not args.no_ema, device=args.device)


def _read_images(model, paths: list[str]):
    from ..data.imageio import load_image_files
    from ..latent import image_shape

    return load_image_files(paths, image_shape(model))


def _codes_of(model, images, args: argparse.Namespace):
    from ..latent import latent_codes

    return latent_codes(model, images, steps=args.project_steps)


def _output(args: argparse.Namespace, default: str) -> Path:
    return Path(args.output or Path(args.run) / default)


# ---------------------------------------------------------------------------------------- interpolate

def _interpolate_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    ends = p.add_mutually_exclusive_group()
    ends.add_argument("--from", dest="source", metavar="IMG", help="start image (needs --to)")
    ends.add_argument("--seeds", type=int, nargs=2, metavar=("A", "B"), default=None,
                      help="seeds of the two N(0, I) end codes (default 0 1)")
    p.add_argument("--to", dest="target", metavar="IMG", help="end image (with --from)")
    p.add_argument("--steps", type=int, default=10, help="images along the path, ends included")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    p.add_argument("-o", "--output", default=None, help="PNG file (default RUN/interpolate.png)")


@command("interpolate", "decode a path between two codes (two images, or two seeds) into a strip", _interpolate_args)
def interpolate(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError
    from ..latent import has, interpolation_codes, interpolation_strip, seed_codes
    from ..viz import save_image_grid

    if (args.source is None) != (args.target is None):
        raise ConfigError("--from and --to go together")
    model, _ = _load(args)
    method = "slerp" if args.slerp else "lerp"
    if has(model, "text"):  # a text model (sentence-vae): --from/--to are sentences; one decode per line
        ends = [args.source, args.target] if args.source is not None else None
        z = model.encode(*model.from_text(ends)) if ends else seed_codes(model, args.seeds or [0, 1])
        lines = model.to_text(model.decode(interpolation_codes(z[0], z[1], args.steps, method=method)))
        out = Path(args.output or Path(args.run) / "interpolate.txt")
        out.write_text("".join(line + "\n" for line in lines))
        print(f"wrote {args.steps}-step {method} interpolation to {out}")
        return 0
    if args.source is not None:
        originals = _read_images(model, [args.source, args.target])
        z = _codes_of(model, originals, args)
        strip = interpolation_strip(model, z[0], z[1], args.steps, method=method)
        images = torch.cat([originals[:1], strip, originals[1:]])  # the real images frame the path
        what = f"{args.source} -> {args.target}"
    else:
        seeds = args.seeds or [0, 1]
        z = seed_codes(model, seeds)
        images = interpolation_strip(model, z[0], z[1], args.steps, method=method)
        what = f"seeds {seeds[0]} -> {seeds[1]}"
    # one row of small images: enlarged (nearest neighbour) to at least 112 px each, so the path is readable
    out = save_image_grid(images, _output(args, "interpolate.png"), nrow=len(images), scale=max(1, -(-112 // images.shape[-1])))
    print(f"wrote {args.steps}-step {method} interpolation ({what}) to {out}")
    return 0


# ---------------------------------------------------------------------------------------- grid

def _grid_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    corners = p.add_mutually_exclusive_group()
    corners.add_argument("--seeds", type=int, nargs=4, metavar="S", default=None,
                         help="seeds of the 4 corner codes: top-left, top-right, bottom-left, bottom-right (default 0 1 2 3)")
    corners.add_argument("--images", nargs=4, metavar="IMG", default=None, help="4 corner images, same order")
    p.add_argument("--steps", type=int, default=8, help="images per side")
    p.add_argument("--slerp", action="store_true", help="spherical instead of bilinear interpolation")
    p.add_argument("-o", "--output", default=None, help="PNG file (default RUN/grid.png)")


@command("grid", "decode a square grid interpolating between 4 corner codes", _grid_args)
def grid(args: argparse.Namespace) -> int:
    from ..latent import interpolation_grid, seed_codes
    from ..viz import save_image_grid

    model, _ = _load(args)
    if args.images is not None:
        corners = _codes_of(model, _read_images(model, args.images), args)
    else:
        corners = seed_codes(model, args.seeds or [0, 1, 2, 3])
    method = "slerp" if args.slerp else "lerp"
    images = interpolation_grid(model, corners, args.steps, method=method)
    out = save_image_grid(images, _output(args, "grid.png"), nrow=args.steps)
    print(f"wrote {args.steps}x{args.steps} {method} grid to {out}")
    return 0


# ---------------------------------------------------------------------------------------- attribute

def _scales(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must be numbers separated by commas, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one scale")
    return values


def _attribute_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--attr", required=True, help="attribute name, e.g. Smiling (a column of the data's labels)")
    p.add_argument("--labelled", type=int, default=20, help="labelled examples with and without the attribute")
    p.add_argument("--scales", type=_scales, default=[-3, -2, -1, 0, 1, 2, 3],
                   help="multiples of the vector to add, comma-separated (write --scales=-3,-2,...)")
    p.add_argument("--images", nargs="+", metavar="IMG", default=None, help="images to edit (default: test faces)")
    p.add_argument("--count", type=int, default=8, help="test faces to edit when --images is not given")
    p.add_argument("--data", metavar="SPEC", default=None, help="labelled data (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed for choosing the labelled and edited faces")
    p.add_argument("-o", "--output", default=None, help="PNG file (default RUN/attribute-ATTR.png)")


@command("attribute", "add an attribute vector (from labelled examples) to faces at several scales", _attribute_args)
def attribute(args: argparse.Namespace) -> int:
    import torch

    from .. import api
    from ..errors import DataError
    from ..latent import apply_attribute, attribute_vector, labelled_examples
    from ..viz import save_image_grid

    model, spec = _load(args)
    train = api.run_data(spec, args.data, "train")
    names = train.info.get("attr_names")
    if names is None or train.y is None:
        raise DataError(f"dataset {train.info.get('name')!r} has no attribute labels (use celeba or labelled-folder)")
    g = torch.Generator().manual_seed(args.seed)
    pos, neg = labelled_examples(train.y, names, args.attr, args.labelled, generator=g)
    options = {"steps": args.project_steps}
    vector = attribute_vector(model, train.x[pos], train.x[neg], **options)
    if args.images is not None:
        faces = _read_images(model, args.images)
    else:
        test = api.run_data(spec, args.data, "test")
        faces = test.x[torch.randperm(len(test), generator=g)[: args.count]]
    strips = apply_attribute(model, faces, vector, args.scales, **options)  # (N, S, C, H, W)
    images = torch.cat([faces[:, None], strips], dim=1).flatten(0, 1)  # the original leads each row
    out = save_image_grid(images, _output(args, f"attribute-{args.attr}.png"), nrow=len(args.scales) + 1)
    print(f"{args.attr} vector from {args.labelled}+{args.labelled} labelled faces: norm {float(vector.norm()):.3f}")
    print(f"wrote {len(faces)} faces x scales {args.scales} to {out}")
    return 0


# ---------------------------------------------------------------------------------------- project

def _project_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to project")
    p.add_argument("--method", choices=["auto", "optimize", "encoder", "hybrid"], default="auto",
                   help="auto: the encoder when the model has one, else optimisation")
    p.add_argument("--steps", type=int, default=500, help="optimisation steps")
    p.add_argument("--lr", type=float, default=0.05, help="optimisation learning rate (Adam)")
    p.add_argument("--restarts", type=int, default=4, help="optimisation starts per image (best kept)")
    p.add_argument("--space", choices=["auto", "z", "w", "w+"], default="auto",
                   help="where the codes live: z; for StyleGAN also w (one style for every layer) or w+ (one per "
                        "layer); auto: w for StyleGAN, else z")
    p.add_argument("--prior-weight", type=float, default=0.0,
                   help="pull the codes towards typical ones (z: towards 0; w/w+: towards the mean style w_avg)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-codes", metavar="FILE", default=None,
                   help="write the codes as .safetensors under the key z, w or ws: (N, D), (N, w_dim) or (N, layers, w_dim)")
    p.add_argument("-o", "--output", default=None, help="PNG file: originals above projections (default RUN/projection.png)")


@command("project", "find the latent codes of images (encoder or optimisation) and decode them", _project_args)
def project(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError
    from ..latent import has, project as project_images
    from ..viz import save_image_grid

    model, _ = _load(args)
    images = _read_images(model, args.images)
    styled = has(model, "styles")
    space = args.space if args.space != "auto" else ("w" if styled else "z")
    if space != "z" and args.method in ("encoder", "hybrid"):
        raise ConfigError(f"--space {space} is found by optimisation; drop --method {args.method}")
    method = args.method if args.method != "auto" else ("encoder" if has(model, "encoder") else "optimize")
    result = project_images(model, images, method=method, steps=args.steps, lr=args.lr, restarts=args.restarts,
                            prior_weight=args.prior_weight, space=space, generator=torch.Generator().manual_seed(args.seed))
    out = save_image_grid(torch.cat([images, result.images]), _output(args, "projection.png"), nrow=len(images))
    for path, err in zip(args.images, result.error.tolist()):
        print(f"{path}: MSE {err:.5f}")
    print(f"mean MSE {float(result.error.mean()):.5f} ({method}, space {space}); wrote originals above projections to {out}")
    if args.save_codes:
        from ..checkpoint import save_tensors

        key = {"z": "z", "w": "w", "w+": "ws"}[space]
        save_tensors(args.save_codes, {key: result.z})
        print(f"wrote codes {key} {tuple(result.z.shape)} to {args.save_codes}")
    return 0
