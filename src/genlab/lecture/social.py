"""Social impact (slides 112-113): a generative model can amplify the skew of its training data.
A classifier labels generated samples and their class rates are compared with the training labels
(:func:`genlab.api.audit`: same classifier on held-out real data, confusion-corrected rates)."""
from __future__ import annotations

from typing import Any

from .. import api
from .core import Conditions, Context, lecture_figure
from .plots import image_panels
from .shared import celeba, mnist


def _rates_plot(audit: dict[str, Any], path: Any, title: str) -> str:
    from ..viz import grouped_bars

    rows = audit["classes"]
    key = "generated_rate_corrected" if "generated_rate_corrected" in rows[0] else "generated_rate"
    series = {"training data": [r["data_rate"] for r in rows],
              "generated (corrected)" if key.endswith("corrected") else "generated": [r[key] for r in rows]}
    return str(grouped_bars([str(r["class"]) for r in rows], series, path, ylabel="share", title=title))


def _summary(audit: dict[str, Any]) -> dict[str, Any]:
    rows = audit["classes"]
    return {"total_variation": audit["total_variation"], "majority_class": audit["majority_class"],
            "amplification": audit["amplification"], "max_abs_z": max(abs(r["same_lens_z"]) for r in rows),
            "classifier_accuracy": audit["protocol"]["classifier_accuracy"],
            "rates": {r["class"]: [round(r["data_rate"], 3), round(r["generated_rate_corrected"], 3)] for r in rows}}


def _check_mnist(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"the DCGAN's class shares differ from the data's beyond sampling noise: largest |z| {n['max_abs_z']:.1f} "
             f"(> 3) against the same classifier on real digits", n["max_abs_z"] > 3),
            (f"total variation {n['total_variation']:.3f} between generated and training class shares (> 0.02)",
             n["total_variation"] > 0.02)]


@lecture_figure("bias-mnist", slides="112-113",
                claim="A generator does not reproduce its training data's proportions: the DCGAN over-produces some "
                      "digits and under-produces others, well beyond sampling noise.",
                check=_check_mnist)
def bias_mnist(ctx: Context) -> dict[str, Any]:
    model, classifier = ctx.shared("dcgan-mnist"), ctx.shared("classifier-mnist")
    audit = api.audit(model, classifier, mnist(ctx), mnist(ctx, "test"), num_samples=ctx.pick(2000, 10000), seed=ctx.seed)
    path = _rates_plot(audit, ctx.out / "bias-mnist.png", "digit shares: training data vs DCGAN samples")
    return {"paths": [path], **_summary(audit)}


def _check_celeba(n: dict[str, Any], budget: str) -> Conditions:
    amplification = n["amplification"]  # None when the audit could not correct the shares
    shown = "an unmeasured amount" if amplification is None else f"{amplification:+.3f}"
    return [(f"the majority ({n['majority_class']}) grows in the samples by {shown} (corrected share, > 0)",
             amplification is not None and amplification > 0)]


@lecture_figure("bias-celeba", slides="112-113",
                claim="Sampling a face autoencoder (codes from a Gaussian fitted to its training codes) amplifies "
                      "the majority of a binary attribute (Male): the minority is generated less often than it occurs.",
                check=_check_celeba, smoke_note="smoke: 32-px faces, 600-step feature-consistent VAE and Male classifier "
                                                "(full: 64 px, 8,000 and 2,000 steps)")
def bias_celeba(ctx: Context) -> dict[str, Any]:
    """Audits the lecture's sharpest face model, the feature-consistent VAE (slides 97-98), whose decoded
    draws read as faces, so the classifier labels faces rather than blurs."""
    train, test = celeba(ctx), celeba(ctx, "test")
    model, classifier = ctx.shared("feature-vae-celeba"), ctx.shared("classifier-celeba-male")
    audit = api.audit(model, classifier, train, test, attribute="Male", num_samples=ctx.pick(2000, 5000),
                      seed=ctx.seed, latent_density="gaussian")
    path = _rates_plot(audit, ctx.out / "bias-celeba.png", "Male: training faces vs decoded fitted-Gaussian samples")
    # what the classifier labelled: draws of the audit's sampler (same density, same seed)
    draws = api.sample(model, 32, seed=ctx.seed, latent_density="gaussian", fit_data=train.x)
    shown = image_panels([("feature-consistent VAE, codes from a Gaussian fitted to its training codes: the kind of "
                           "sample the audit labels", draws, 8)], ctx.out / "bias-celeba-samples.png")
    return {"paths": [path, str(shown)], **_summary(audit)}
