"""Variational autoencoders (slides 67-100; Kingma & Welling, "Auto-Encoding Variational Bayes", 2014):
the KL term pulls the codes onto the prior, so decoding prior draws gives digits where a plain
autoencoder's decoder gives noise, and the 2-D latent space fills N(0, I) by class."""
from __future__ import annotations

from typing import Any

from ..latent import decode as decode_codes
from ..latent import random_codes
from .core import Conditions, Context, lecture_figure
from .latent import map_2d
from .plots import image_panels
from .shared import frechet, mnist


def _check_samples(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"VAE prior samples are closer to test digits than AE N(0, I) samples: Fréchet distance "
             f"{n['frechet/vae_prior']:.1f} < {n['frechet/ae_standard_normal']:.1f}",
             n["frechet/vae_prior"] < n["frechet/ae_standard_normal"])]


@lecture_figure("vae-vs-ae-samples", slides="94-95",
                claim="Decoding draws from N(0, I) gives digits for a VAE (its KL term puts the codes there) but "
                      "not for a plain autoencoder of the same size.",
                check=_check_samples)
def vae_vs_ae_samples(ctx: Context) -> dict[str, Any]:
    vae, ae, classifier = ctx.shared("vae-mnist"), ctx.shared("ae-mnist"), ctx.shared("classifier-mnist")
    reference = mnist(ctx, "test").x[:1000]
    samples = {"vae_prior": decode_codes(vae, random_codes(vae, 1000, generator=ctx.generator(1))),
               "ae_standard_normal": decode_codes(ae, random_codes(ae, 1000, generator=ctx.generator(1)))}
    path = image_panels([("VAE: decode z ~ N(0, I)", samples["vae_prior"][:64], 8),
                         ("autoencoder: decode z ~ N(0, I)", samples["ae_standard_normal"][:64], 8)],
                        ctx.out / "vae-vs-ae-samples.png")
    return {"paths": [str(path)], **{f"frechet/{k}": frechet(classifier, v, reference) for k, v in samples.items()},
            "frechet/real_train": frechet(classifier, mnist(ctx).x[:1000], reference)}


def _check_vae_map(n: dict[str, Any], budget: str) -> Conditions:
    mean, std = n["code_mean"], n["code_std"]
    return [(f"the codes fill the prior: mean {mean[0]:+.2f}, {mean[1]:+.2f} (|.| < 0.3) and std {std[0]:.2f}, "
             f"{std[1]:.2f} (0.5 .. 1.5)", max(abs(m) for m in mean) < 0.3 and all(0.5 < s < 1.5 for s in std)),
            (f"and are ordered by class: 5-NN accuracy {n['knn_accuracy']:.2f} (>= 0.5; chance 0.1)", n["knn_accuracy"] >= 0.5)]


@lecture_figure("vae-latent-2d", slides="100",
                claim="A VAE with a 2-D latent space lays the test digits out by class inside N(0, I), so the "
                      "square [-3, 3]^2 decodes to digits everywhere.",
                check=_check_vae_map)
def vae_latent_2d(ctx: Context) -> dict[str, Any]:
    return map_2d(ctx, ctx.shared("vae-mnist-2d"), name="vae-latent-2d", square=3.0)
