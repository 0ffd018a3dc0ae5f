"""Commands that read a trained run: sample, reconstruct, evaluate, plot-latent, report."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import command, positive_int


def _run_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder (or a model folder with config.json + model.safetensors)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights were saved")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch intra-op threads (default: torch's own choice)")


def _sample_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("-o", "--output", default=None, help="PNG file (default RUN/samples-SEED.png)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (an explicit torch.Generator)")
    p.add_argument("--label", type=int, default=None, help="class label, for class-conditional models")
    p.add_argument("--truncation", type=float, default=None, help="truncation of the latent, for models that support it")
    p.add_argument("--noise", choices=["random", "const", "none"], default=None,
                   help="StyleGAN noise inputs: fresh draws, the fixed maps saved with the model, or none")
    p.add_argument("--nrow", type=int, default=None, help="images per grid row")
    p.add_argument("--latent-density", metavar="SPEC", default=None,
                   help="decode codes drawn from a density fitted to the encoded training set instead of the "
                        "prior: gaussian or gmm:K (for autoencoders; gmm needs scikit-learn)")
    p.add_argument("--data", metavar="SPEC", default=None,
                   help="with --latent-density: the training data whose codes the density fits (default: the run's; "
                        "needed for a bare model folder)")


@command("sample", "draw samples from a trained model into a PNG grid", _sample_args)
def sample(args: argparse.Namespace) -> int:
    from .. import api
    from ..latent import has
    from ..viz import save_image_grid

    model, spec = api.load_run(args.run, ema=not args.no_ema, device=args.device)
    options = {k: v for k, v in (("label", args.label), ("truncation", args.truncation), ("noise", args.noise)) if v is not None}
    fit_data = api.run_data(spec, args.data, "train").x if args.latent_density else None
    images = api.sample(model, args.n, seed=args.seed, latent_density=args.latent_density, fit_data=fit_data, **options)
    if has(model, "text"):  # a text model (sentence-vae): one decoded sentence per line
        out = Path(args.output or Path(args.run) / f"samples-{args.seed}.txt")
        out.write_text("".join(line + "\n" for line in model.to_text(images)))
        print(f"wrote {args.n} samples to {out}")
        return 0
    out = Path(args.output or Path(args.run) / f"samples-{args.seed}.png")
    save_image_grid(images, out, nrow=args.nrow)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _reconstruct_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("-n", type=int, default=32, help="number of test images")
    p.add_argument("-o", "--output", default=None,
                   help="PNG file (default RUN/reconstructions-DATA.png; training's RUN/reconstructions.png stays)")
    p.add_argument("--data", metavar="SPEC", default=None, help="data to reconstruct (default: the run's test split)")


@command("reconstruct", "originals above their reconstructions, from the test split", _reconstruct_args)
def reconstruct(args: argparse.Namespace) -> int:
    from .. import api
    from ..latent import require
    from ..reports import reconstruction_figure

    model, spec = api.load_run(args.run, ema=not args.no_ema, device=args.device)
    require(model, "reconstruct", purpose="genlab reconstruct")
    default = Path(args.run) / f"reconstructions-{api.data_label(args.data)}.png"
    out = reconstruction_figure(model, api.run_data(spec, args.data), args.output or default, n=args.n)
    print(f"wrote {out}")
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("-k", type=int, default=1000, help="importance samples for the IWAE log-likelihood bound (VAE)")
    p.add_argument("--data", metavar="SPEC", default=None, help="evaluation data (default: the run's test split)")
    p.add_argument("--limit", type=int, default=None, help="evaluate on the first N test examples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extractor", default=None,
                   help="feature extractor for sample-quality metrics (GAN, pix2pix): classifier, pixels, inception")
    p.add_argument("--extractor-path", default=None,
                   help="its weights: a classifier run folder (default $GENLAB_FEATURE_CLASSIFIER) or a local Inception file")
    p.add_argument("-o", "--output", default=None, help="JSON file (default RUN/evaluation.json)")


@command("evaluate", "evaluate a run on held-out data; prints a table and writes JSON", _evaluate_args)
def evaluate(args: argparse.Namespace) -> int:
    from .. import api
    from ..checkpoint import atomic_write_text

    model, spec = api.load_run(args.run, ema=not args.no_ema, device=args.device)
    extractor = {"extractor": args.extractor} if args.extractor else {}
    if args.extractor_path:
        extractor["extractor_path"] = args.extractor_path
    metrics = api.evaluate(model, api.run_data(spec, args.data), k=args.k, limit=args.limit, seed=args.seed, progress=True,
                           **extractor)
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    out = Path(args.output or Path(args.run) / "evaluation.json")
    atomic_write_text(out, json.dumps(metrics, indent=2, sort_keys=True, default=str))
    print(f"wrote {out}")
    return 0


def _plot_latent_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("-o", "--output", default=None, help="PNG file (default RUN/latent-DATA.png; training's RUN/latent.png stays)")
    p.add_argument("--data", metavar="SPEC", default=None, help="data to encode (default: the run's test split)")
    p.add_argument("--limit", type=int, default=5000, help="encode at most this many examples")


@command("plot-latent", "scatter of latent codes coloured by label (PCA to 2-D when the latent is wider)", _plot_latent_args)
def plot_latent(args: argparse.Namespace) -> int:
    from .. import api
    from ..latent import require
    from ..reports import latent_figure

    model, spec = api.load_run(args.run, ema=not args.no_ema, device=args.device)
    require(model, "encoder", purpose="genlab plot-latent (to map data into the latent space)")
    default = Path(args.run) / f"latent-{api.data_label(args.data)}.png"
    out = latent_figure(model, api.run_data(spec, args.data), args.output or default, limit=args.limit)
    print(f"wrote {out}")
    return 0


def _audit_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("--classifier", required=True, metavar="RUN",
                   help="a classifier run that labels the attribute (genlab train classifier; for CelebA with "
                        "--data.options.label=NAME)")
    p.add_argument("--attr", default=None,
                   help="attribute column for multi-attribute labels (default: the one the classifier was trained on)")
    p.add_argument("--data", metavar="SPEC", default=None, help="training data whose rates are the reference (default: the run's)")
    p.add_argument("-n", type=int, default=5000, help="generated samples to classify")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--latent-density", metavar="SPEC", default=None,
                   help="sample an autoencoder from a density fitted to its training codes: gaussian or gmm:K")
    p.add_argument("-o", "--output", default=None, help="JSON file (default RUN/audit-ATTR.json)")


@command("audit", "bias audit: class/attribute rates of generated samples vs the training data", _audit_args)
def audit(args: argparse.Namespace) -> int:
    from .. import api
    from ..checkpoint import atomic_write_text
    from ..metrics.bias import format_audit

    model, spec = api.load_run(args.run, ema=not args.no_ema, device=args.device)
    classifier, classifier_spec = api.load_run(args.classifier, device=args.device)
    attribute = args.attr
    if attribute is None and classifier_spec is not None:
        attribute = classifier_spec.data.options.get("label")
    train, test = api.run_data(spec, args.data, "train"), api.run_data(spec, args.data, "test")
    result = api.audit(model, classifier, train, test, attribute=attribute, num_samples=args.n, seed=args.seed,
                       latent_density=args.latent_density)
    protocol = result["protocol"]
    line = (f"{protocol['generated']} generated samples ({protocol['sampler']}) vs {protocol['data']} "
            f"{protocol['dataset']} training labels")
    if "heldout" in protocol:
        line += f"; classifier accuracy on {protocol['heldout']} held-out: {protocol['classifier_accuracy']:.3f}"
    print(line)
    print(format_audit(result))
    out = Path(args.output or Path(args.run) / f"audit-{attribute or 'class'}.json")
    atomic_write_text(out, json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a finished run folder")


@command("report", "draw a finished run's end-of-run report (skipped in training by --train.report=false)", _report_args)
def report(args: argparse.Namespace) -> int:
    from .. import api

    summary = api.report(args.run)
    print(f"wrote the report of {args.run} ({summary['report_seconds']:.1f} s); its numbers are in {Path(args.run) / 'metrics.json'}")
    return 0
