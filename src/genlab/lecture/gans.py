"""Adversarial examples and GANs (slides 26-33 and the DCGAN / conditional samples).

Szegedy et al. 2014 and Goodfellow et al. 2015 (adversarial examples, FGSM); Madry et al. 2018 (PGD);
Goodfellow et al. 2014 (GAN); Radford et al. 2016 (DCGAN); Mirza & Osindero 2014 (conditional GAN).
"""
from __future__ import annotations

import json
from typing import Any

import torch

from ..checkpoint import atomic_write_text
from ..metrics import count_modes
from .core import Conditions, Context, lecture_figure, shared_run
from .plots import curves, image_panels
from .shared import frechet, mnist, predict, toy


def _check_adversarial(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.9 if budget == "smoke" else 0.97
    return [(f"clean test accuracy {n['clean_accuracy']:.3f} >= {need}", n["clean_accuracy"] >= need),
            (f"FGSM at eps {n['eps']} drops it to {n['fgsm_accuracy']:.3f}, by more than 0.3",
             n["fgsm_accuracy"] < n["clean_accuracy"] - 0.3)]


@lecture_figure("adversarial", slides="26-29",
                claim="A digit classifier that is right on clean test digits is fooled by perturbations too small "
                      "to change the digit for a human (L-inf eps = 0.2): a discriminator is a network that can be gamed.",
                check=_check_adversarial, smoke_note="smoke: classifier trained 400 steps, clean accuracy >= 0.9 (full: 0.97)",
                run="a classifier run on MNIST digits, in place of classifier-mnist")
def adversarial(ctx: Context) -> dict[str, Any]:
    from ..attacks import fgsm, pgd, robust_accuracy
    from ..reports.classifier import plot_adversarial

    eps = 0.2
    model = ctx.given_run("classifier")
    model = ctx.shared("classifier-mnist") if model is None else model
    test = mnist(ctx, "test")
    x, y = test.x[:10].to(model.device), test.y[:10].to(model.device)
    paths = []
    for name, x_adv in (("fgsm", fgsm(model, x, y, eps=eps)),
                        ("pgd", pgd(model, x, y, eps=eps, steps=40, generator=torch.Generator(model.device).manual_seed(ctx.seed)))):
        paths.append(str(plot_adversarial(model, x.cpu(), x_adv.cpu(), y.cpu(), ctx.out / f"adversarial-{name}.png",
                                          title=f"{name.upper()}, L-inf eps = {eps}")))
    return {"paths": paths, "eps": eps,
            "clean_accuracy": robust_accuracy(model, test.x, test.y, method=None),
            "fgsm_accuracy": robust_accuracy(model, test.x, test.y, method="fgsm", eps=eps)}


# ------------------------------------------------------------------------------------ vanilla GAN on the ring

def _mode_tracker(ctx: Context, ring: Any):
    """Trainer callback: count the ring's modes in 2,000 samples at every log step, kept in the run's
    ``modes.json`` as it goes (a resumed run continues the curve)."""
    sigma = float(ring.info["options"]["sigma"])

    def callback(trainer: Any, event: str, info: dict[str, Any]) -> None:
        if event != "log":
            return
        path = ctx.run_dir("gan-ring") / "modes.json"
        history = [h for h in (json.loads(path.read_text()) if path.is_file() else []) if h["step"] < trainer.step]
        with torch.no_grad():
            x = trainer.model.sample(2000, generator=torch.Generator().manual_seed(ctx.seed)).cpu()
        history.append({"step": trainer.step, **count_modes(x, ring.info["centres"], sigma)})
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(history))

    return callback


@shared_run("gan-ring")
def _gan_ring(ctx: Context):
    ring = toy(ctx, "ring8", 20000)
    return ("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [256] * 4, "discriminator_hidden": [128] * 3,
                    "loss": "non-saturating", "data_scale": ring.info["data_scale"]}, ring,
            # benchmarks/gan_toy.py's vanilla reference: Adam 1e-3 (0.5, 0.999), constant, batch 256
            {"max_steps": ctx.pick(4000, 20000), "batch_size": 256, "lr": 1e-3, "betas": (0.5, 0.999),
             "log_every": ctx.pick(100, 500), "callbacks": [_mode_tracker(ctx, ring)]})


def _check_ring(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.3 if budget == "smoke" else 0.8
    return [(f"samples move onto the modes: high-quality fraction {n['first/high_quality']:.2f} at step "
             f"{n['first/step']} -> {n['final/high_quality']:.2f} at the end (> {need})",
             n["final/high_quality"] > need and n["final/high_quality"] > n["first/high_quality"]),
            (f"coverage is unstable: the modes covered vary between {n['later/min_modes']:.0f} and "
             f"{n['later/max_modes']:.0f} of 8 over the last three quarters of training (or stay below 8)",
             n["later/max_modes"] > n["later/min_modes"] or n["later/max_modes"] < 8)]


@lecture_figure("gan-ring-modes", slides="30-33",
                claim="A vanilla GAN (non-saturating loss, no tricks) on a ring of 8 Gaussians puts its samples on "
                      "the modes, but which and how many modes it covers keeps changing during training: mode collapse "
                      "and mode hopping.",
                check=_check_ring, smoke_note="smoke: 4,000 steps, final high-quality fraction > 0.3 (full: 20,000 steps, 0.8)")
def gan_ring(ctx: Context) -> dict[str, Any]:
    from ..viz import plot_samples_vs_data

    model = ctx.shared("gan-ring")
    history = json.loads((ctx.run_dir("gan-ring") / "modes.json").read_text())
    ring = toy(ctx, "ring8", 4000, "test")
    samples = model.sample(2500, generator=ctx.generator()).cpu()
    final = count_modes(samples, ring.info["centres"], float(ring.info["options"]["sigma"]))
    steps = [h["step"] for h in history]
    paths = [str(plot_samples_vs_data(samples, ring.x, ctx.out / "gan-ring-samples.png",
                                      title=f"vanilla GAN, {steps[-1]} steps: {final['modes']:.0f}/8 modes")),
             str(curves({"modes covered (of 8)": (steps, [h["modes"] for h in history]),
                         "high-quality fraction x 8": (steps, [8 * h["high_quality"] for h in history])},
                        ctx.out / "gan-ring-modes.png", xlabel="training step", ylabel="count",
                        title="modes counted in 2,000 samples over training"))]
    later = [h for h in history if h["step"] > steps[-1] // 4] or history
    return {"paths": paths, **{f"final/{k}": v for k, v in final.items()},
            "first/step": history[0]["step"], "first/high_quality": history[0]["high_quality"],
            "later/min_modes": min(h["modes"] for h in later), "later/max_modes": max(h["modes"] for h in later),
            "modes_over_training": [[h["step"], h["modes"]] for h in history]}


# ------------------------------------------------------------------------------------ DCGAN and conditional

def _check_dcgan(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.3 if budget == "smoke" else 0.7
    return [(f"{n['confident_fraction']:.2f} of samples are read as a digit with confidence > 0.9 (>= {need})",
             n["confident_fraction"] >= need),
            (f"all digit classes appear: {n['classes_present']} of 10 hold >= 2 % of the samples (>= 9)",
             n["classes_present"] >= 9),
            (f"Fréchet distance to test digits {n['frechet/dcgan']:.1f} is below that of pixel-shuffled digits "
             f"{n['frechet/shuffled']:.1f}", n["frechet/dcgan"] < n["frechet/shuffled"])]


@lecture_figure("dcgan-mnist", slides="31-33",
                claim="A DCGAN trained on MNIST generates new digits of every class that a classifier reads "
                      "confidently.",
                check=_check_dcgan, smoke_note="smoke: 1,000 steps at half width, >= 30 % confident samples (full: 10,000 steps, 70 %)")
def dcgan_mnist(ctx: Context) -> dict[str, Any]:
    model, classifier = ctx.shared("dcgan-mnist"), ctx.shared("classifier-mnist")
    train, test = mnist(ctx), mnist(ctx, "test")
    samples = model.sample(1000, generator=ctx.generator()).cpu()
    labels, confidence = predict(classifier, samples)
    shares = torch.bincount(labels, minlength=10).float() / len(labels)
    reference, real = test.x[:1000], train.x[:1000]
    # the same training digits with their pixels shuffled: the right ink, no digit
    order = torch.rand(real.shape[0], real[0].numel(), generator=ctx.generator(1)).argsort(1)
    shuffled = real.flatten(1).gather(1, order).view_as(real)
    path = image_panels([("DCGAN samples", samples[:64], 8), ("training digits", real[:64], 8)],
                        ctx.out / "dcgan-mnist.png")
    return {"paths": [str(path)], "confident_fraction": float((confidence > 0.9).float().mean()),
            "classes_present": int((shares >= 0.02).sum()), "class_shares": [round(float(s), 3) for s in shares],
            "frechet/dcgan": frechet(classifier, samples, reference),
            "frechet/shuffled": frechet(classifier, shuffled, reference),
            "frechet/real_train": frechet(classifier, real, reference)}


def _check_cgan(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.5 if budget == "smoke" else 0.9
    return [(f"the classifier reads the requested digit in {n['label_accuracy']:.2f} of conditional samples (>= {need}; "
             "chance 0.1)", n["label_accuracy"] >= need)]


@lecture_figure("cgan-mnist", slides="34-36",
                claim="A class-conditional GAN draws the digit it is asked for: row k of its samples is digit k.",
                check=_check_cgan, smoke_note="smoke: 1,000 steps at half width, label accuracy >= 0.5 (full: 5,000 steps, 0.9)")
def cgan_mnist(ctx: Context) -> dict[str, Any]:
    model, classifier = ctx.shared("cgan-mnist"), ctx.shared("classifier-mnist")
    per_class = 100
    requested = torch.arange(10).repeat_interleave(per_class)
    with torch.no_grad():
        samples = torch.cat([model.sample(per_class, generator=ctx.generator(k), label=k).cpu() for k in range(10)])
    labels, _ = predict(classifier, samples)
    rows = samples.view(10, per_class, *samples.shape[1:])[:, :10].flatten(0, 1)
    path = image_panels([("row k: cgan.sample(10, label=k)", rows, 10)], ctx.out / "cgan-mnist.png", panel_width=5)
    accuracy = (labels == requested).float().view(10, per_class).mean(1)
    return {"paths": [str(path)], "label_accuracy": float(accuracy.mean()),
            "label_accuracy_per_class": [round(float(a), 3) for a in accuracy]}
