"""StyleGAN (slides 42-44): style mixing, noise inputs and truncation, on one StyleGAN trained on MNIST
(Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019, figures 3, 4 and 8; the
network is StyleGAN2's, Karras et al., CVPR 2020).

One shared run, ``stylegan-mnist``, is behind truncation and style mixing, judged by the lecture's
MNIST digit classifier (``classifier-mnist``, trained on other weights and never on generated
digits). The noise figure has its own pair, ``stylegan-fashion`` and ``classifier-fashion``: the
same StyleGAN and classifier recipes on Fashion-MNIST, because a digit StyleGAN trained to the full
budget switches its noise inputs off (there is no stochastic detail in a digit for noise to place),
with one noise strength per feature map (StyleGAN's original form) instead of one per layer.

History, said here because both recipes changed after a full-budget result (benchmarks/RESULTS.md):
until 2026-12-06 the full MNIST run kept the smoke budget's 10x faster mapping network and covered 7 of
10 digits (8 needed; 0, 1 and 8 nearly absent); with StyleGAN's own mapping learning rate it covers 9
(4 is the one missing).
The Fashion-MNIST run had one scalar noise strength per layer, and its fine noise moved pixels by a
standard deviation of 0.0008 (0.001 needed; an earlier run of the same recipe measured 0.014): with
per-feature-map strengths the noise goes into a few maps (up to 0.12) and moves 0.0093.
A fourth figure, ``stylegan-faces``, redoes all three on faces, as the slides show them: ``stylegan-celeba``
(a 32-px face StyleGAN) judged by the lecture's Male and Smiling classifiers (``classifier-celeba-*``, trained
on real faces only). The digit and clothing figures stay: there the classifiers have ten classes, and a
swapped or resampled style can change the class outright. Its recipe changed after a full-budget result
too (2026-12-07): with one noise strength per layer its 32-px noise was switched off (strengths 0.0005 /
0.0001, fine-noise pixel std 0.0007); with one per feature map, as the Fashion-MNIST run, it moves 0.0085.

The drawing and the numbers are :mod:`genlab.reports.stylegan`'s; this module only trains, calls
them and checks their numbers.
"""
from __future__ import annotations

from typing import Any

import torch

from ..reports.stylegan import class_probabilities, noise_figure, style_mixing_figure, truncation_figure
from .core import Conditions, Context, lecture_figure, shared_run
from .shared import celeba, fashion, mnist


def _stylegan(ctx: Context, data: Any, **model: Any):
    """``configs/stylegan_mnist32.toml``'s networks (32 px, 32 feature maps, 64-d z and w) on 32 px
    ``data``: 800 steps for the smoke budget (about 2.5 CPU minutes at one thread), 10,000 for the
    full one (about an hour)."""
    return ("stylegan", {"image_shape": [1, 32, 32], "latent_dim": 64, "w_dim": 64, "mapping_depth": 2,
                         "channel_base": 1024, "channel_max": 32, "modconv": "scaled",
                         # a mapping network that learns 10x faster than the preset's: after 800 steps the
                         # samples already span several digits (0.01 gives one digit there); the MNIST run
                         # sets its own for the full budget
                         "mapping_lr_multiplier": 0.1, **model},
            data,
            {"max_steps": ctx.pick(800, 10000), "batch_size": 32, "lr": 2e-3, "betas": (0.0, 0.99),
             # smoke: no EMA (after 800 steps an average of the last ~100 iterates covers fewer digits than
             # the last iterate, and the truncation check needs >= 3 at psi = 1); full: EMA 0.998
             "ema_decay": ctx.pick(None, 0.998)})


@shared_run("stylegan-mnist")
def _stylegan_mnist(ctx: Context):
    # the 10x faster mapping network of the preset is for the 800-step smoke run only: trained to 10,000 steps
    # with it the StyleGAN dropped three digits; StyleGAN's own 0.01 keeps nine of ten (module docstring)
    return _stylegan(ctx, mnist(ctx, image_size=32), mapping_lr_multiplier=ctx.pick(0.1, 0.01))


@shared_run("stylegan-fashion")
def _stylegan_fashion(ctx: Context):
    """The same StyleGAN on Fashion-MNIST, for the noise figure: trained to the full budget on
    digits, the StyleGAN switches its noise off (learned strengths |s| < 0.004; a digit has no
    stochastic detail to explain), while cloth has texture for noise to place. One strength per
    feature map: with one per layer every map gets the same noise, those that draw the flat
    background too, and that recipe switched its fine noise off in one of two full runs; per map, the
    network can keep noise in the maps that draw the cloth (our reading of the std maps, not tested)."""
    return _stylegan(ctx, fashion(ctx, image_size=32), noise_strength="channel")


_SMOKE = "smoke: StyleGAN trained 800 steps"


def _models(ctx: Context) -> tuple[Any, Any]:
    return ctx.shared("stylegan-mnist"), ctx.shared("classifier-mnist")


# ------------------------------------------------------------------------------------ truncation

def _check_truncation(n: dict[str, Any], budget: str) -> Conditions:
    pixels, feats = n["diversity_pixels"], n["diversity_features"]
    classes = 3 if budget == "smoke" else 8
    return [(f"pixel diversity falls at every step of psi = {n['psi']}: "
             + ", ".join(f"{v:.2f}" for v in pixels), all(a > b for a, b in zip(pixels, pixels[1:]))),
            ("diversity in the classifier's features (unit-length vectors) falls at every step: " + ", ".join(f"{v:.2f}" for v in feats),
             all(a > b for a, b in zip(feats, feats[1:]))),
            (f"psi = {n['psi'][-1]:g} keeps {feats[-1] / max(feats[0], 1e-12):.2f} of the feature diversity "
             "at psi = 1 (< 0.05: one image, the average digit)", feats[-1] < 0.05 * feats[0]),
            (f"untruncated samples are diverse to begin with: {n['classes_at_psi1']} of 10 digits hold >= 2 % "
             f"of them (>= {classes})", n["classes_at_psi1"] >= classes)]


@lecture_figure("truncation", slides="42",
                claim="Truncation pulls w towards its average (w_avg + psi (w - w_avg)): as psi goes from 1 to 0 "
                      "the samples' diversity falls monotonically, down to one image, the average digit.",
                check=_check_truncation,
                smoke_note=_SMOKE + ", 200 samples, >= 3 digits at psi = 1 (full: 10,000 steps, 1,000 samples, >= 8)")
def truncation(ctx: Context) -> dict[str, Any]:
    model, classifier = _models(ctx)
    num_samples = ctx.pick(200, 1000)
    stats = truncation_figure(model, ctx.out / "truncation.png", seed=ctx.seed, num_samples=num_samples,
                              features=classifier)
    # the untruncated samples must be diverse to begin with: a collapsed generator passes trivially
    with torch.no_grad():
        z = torch.randn(num_samples, model.latent_dim, generator=ctx.generator(2))
        labels = class_probabilities(classifier, model.synthesis(model.mapping(z), noise="const").cpu()).argmax(1)
    shares = torch.bincount(labels, minlength=10).float() / num_samples
    return {"paths": [stats.pop("path")], **stats, "classes_at_psi1": int((shares >= 0.02).sum()),
            "class_shares_at_psi1": [round(float(s), 3) for s in shares]}


# ------------------------------------------------------------------------------------ style mixing

def _check_mixing(n: dict[str, Any], budget: str) -> Conditions:
    need = 1.5 if budget == "smoke" else 2.0
    return [(f"coarse swaps change the digit classifier's outputs {n['coarse_over_fine']:.2f}x as much as fine swaps "
             f"(total variation {n['coarse/output_change']:.3f} vs {n['fine/output_change']:.3f}; >= {need}x)",
             n["coarse_over_fine"] >= need),
            (f"coarse swaps flip the digit more often than fine ones ({n['coarse/label_flip_rate']:.2f} vs "
             f"{n['fine/label_flip_rate']:.2f} of pairs)", n["coarse/label_flip_rate"] > n["fine/label_flip_rate"])]


@lecture_figure("style-mixing", slides="43",
                claim="The coarse styles (4-8 px) decide which digit is drawn and the fine ones only stroke and "
                      "texture: swapping coarse styles from another sample changes an independent digit classifier's "
                      "outputs far more than swapping fine styles.",
                check=_check_mixing,
                smoke_note=_SMOKE + ", 200 pairs, coarse/fine >= 1.5x "
                           "(full: 10,000 steps, 1,000 pairs, >= 2x)")
def style_mixing(ctx: Context) -> dict[str, Any]:
    model, classifier = _models(ctx)
    stats = style_mixing_figure(model, ctx.out / "style-mixing.png", seed=ctx.seed, classifiers={"digit": classifier},
                                num_pairs=ctx.pick(200, 1000))
    numbers: dict[str, Any] = {"paths": [stats["path"]], "coarse_over_fine": stats["coarse_over_fine"],
                               "num_pairs": stats["num_pairs"], "layers": stats["layers"]}
    for r in ("coarse", "middle", "fine"):
        numbers[f"{r}/pixel_change"] = stats[r]["pixel_change"]
        numbers[f"{r}/output_change"] = stats[r]["output_change"]
        numbers[f"{r}/label_flip_rate"] = stats[r]["classifiers"]["digit"]["label_flip_rate"]
    return numbers


# ------------------------------------------------------------------------------------ noise

def _check_noise(n: dict[str, Any], budget: str) -> Conditions:
    # smoke: a 400-step classifier decides fewer of an 800-step StyleGAN's blurry samples
    need, moved, decided = (0.9, 1e-4, 0.3) if budget == "smoke" else (0.95, 1e-3, 0.5)
    return [(f"resampling only the fine noise leaves the class unchanged on {n['unchanged_when_decided']:.3f} of the "
             f"samples the classifier decides (top probability > 0.5; >= {need}); on every sample: "
             f"{n['unchanged_fraction']:.3f}", n["unchanged_when_decided"] >= need),
            (f"the classifier decides {n['decided_fraction']:.3f} of the samples (>= {decided})",
             n["decided_fraction"] >= decided),
            (f"while the pixels change: per-pixel std over the draws {n['pixel_std']:.4f} (> {moved:g})",
             n["pixel_std"] > moved)]


@lecture_figure("stylegan-noise", slides="44",
                claim="The per-layer noise inputs only decide stochastic detail: resampling the fine noise of a "
                      "StyleGAN trained on Fashion-MNIST moves pixels in the cloth's texture and edges but leaves "
                      "the item, as an independent classifier reads it, unchanged.",
                check=_check_noise,
                smoke_note=_SMOKE + ", 200 samples, labels unchanged on >= 90 % of the decided "
                           "samples, >= 30 % decided, pixel std > 1e-4 (full: 10,000 steps, 1,000 samples, >= 95 %, "
                           ">= 50 %, > 1e-3)")
def stylegan_noise(ctx: Context) -> dict[str, Any]:
    # Fashion-MNIST, not the digits of the other two figures: after 10,000 steps on MNIST the learned
    # noise strengths are ~0 and resampling the noise moves no pixel (benchmarks/RESULTS.md)
    model, classifier = ctx.shared("stylegan-fashion"), ctx.shared("classifier-fashion")
    stats = noise_figure(model, ctx.out / "stylegan-noise.png", seed=ctx.seed, classifiers={"item": classifier},
                         num_faces=ctx.pick(200, 1000))
    return {"paths": [stats["path"]], "unchanged_fraction": stats["unchanged_fraction"]["item"],
            "decided_fraction": stats["decided_fraction"]["item"],
            "unchanged_when_decided": stats["unchanged_when_decided"]["item"],
            "pixel_std": stats["pixel_std"], "num_samples": stats["num_faces"], "resamples": stats["resamples"],
            "noise_layers": stats["noise_layers"], "noise_strengths": stats["noise_strengths"]}


# ------------------------------------------------------------------------------------ the same, on faces

FACE_STEPS = 15000  # the full budget's steps for the face StyleGAN (480k images, about 80 CPU minutes)
# the noise check's faces: those a binary classifier reads with this confidence or more (its top probability is
# never below 0.5, so "decided", > 0.5, would count the 0.45 / 0.55 faces that flip under any change), and at least
# a tenth of the faces (100 of 1,000; the bar was set after the first smoke run, where 12-19 % were)
FACE_CONFIDENT = 0.9


@shared_run("stylegan-celeba")
def _stylegan_celeba(ctx: Context):
    """``configs/stylegan_celeba32.toml``'s StyleGAN2 with 32 feature maps at every resolution (channel base
    1,024; at 2 CPU hours the 32-map net scored closer to real faces than the 64-map one, benchmarks/RESULTS.md)
    on 32-px CelebA faces, at both budgets: a 64-px StyleGAN is about 4x the cost per step on a CPU. One noise
    strength per feature map (the config has one per layer), as the Fashion-MNIST run has, for the noise slide."""
    data = celeba(ctx, image_size=32)
    return ("stylegan", {"image_shape": [3, 32, 32], "latent_dim": 128, "w_dim": 128, "mapping_depth": 4,
                         "channel_base": 1024, "channel_max": 32, "modconv": "scaled", "r1_gamma": 0.35,
                         "r1_every": 16, "style_mixing_prob": 0.9, "pl_weight": 0.0, "channels_last": True,
                         "noise_strength": "channel"},
            data, {"max_steps": ctx.pick(800, FACE_STEPS), "batch_size": 32, "lr": 2.5e-3, "betas": (0.0, 0.99),
                   "ema_decay": ctx.pick(None, 0.998)})


def _check_faces(n: dict[str, Any], budget: str) -> Conditions:
    smoke = budget == "smoke"
    need = 1.5 if smoke else 2.0
    kept = 0.9 if smoke else 0.95
    pixels, feats = n["truncation/diversity_pixels"], n["truncation/diversity_features"]
    conditions: Conditions = [
        ("truncation: pixel diversity falls at every step of psi = " + ", ".join(f"{p:g}" for p in n["truncation/psi"])
         + ": " + ", ".join(f"{v:.2f}" for v in pixels), all(a > b for a, b in zip(pixels, pixels[1:]))),
        ("truncation: diversity in the Male classifier's features (unit-length vectors) falls at every step: "
         + ", ".join(f"{v:.3f}" for v in feats), all(a > b for a, b in zip(feats, feats[1:]))),
        (f"truncation: psi = 0 keeps {feats[-1] / max(feats[0], 1e-12):.2f} of the feature diversity at psi = 1 "
         "(< 0.05: one image, the average face)", feats[-1] < 0.05 * feats[0]),
        (f"the untruncated faces are of both sexes: the Male classifier reads {n['male_share_at_psi1']:.2f} of them as "
         "male (0.15-0.85)", 0.15 <= n["male_share_at_psi1"] <= 0.85),
        (f"style mixing: coarse swaps change the Male and Smiling classifiers' outputs {n['mixing/coarse_over_fine']:.2f}x "
         f"as much as fine swaps (total variation {n['mixing/coarse/output_change']:.3f} vs "
         f"{n['mixing/fine/output_change']:.3f}; >= {need}x)", n["mixing/coarse_over_fine"] >= need),
        (f"style mixing: coarse swaps flip the sex more often than fine ones ({n['mixing/coarse/male_flip_rate']:.2f} "
         f"vs {n['mixing/fine/male_flip_rate']:.2f} of pairs)",
         n["mixing/coarse/male_flip_rate"] > n["mixing/fine/male_flip_rate"])]
    for judge in ("male", "smiling"):
        share, unchanged = n[f"noise/{judge}/confident_share"], n[f"noise/{judge}/unchanged_when_confident"]
        shown = "none" if unchanged is None else f"{unchanged:.3f}"
        conditions.append((f"noise: resampling the fine noise keeps the {judge} reading of {shown} of the faces "
                           f"it reads with confidence >= {FACE_CONFIDENT:g} (>= {kept}; they are {share:.2f} of all "
                           "faces, >= 0.1)",
                           unchanged is not None and unchanged >= kept and share >= 0.1))
    conditions.append((f"noise: while the pixels change: per-pixel std over the draws {n['noise/pixel_std']:.4f} (> 1e-3)",
                       n["noise/pixel_std"] > 1e-3))
    return conditions


@lecture_figure("stylegan-faces", slides="42-44",
                claim="The slides' three StyleGAN experiments on faces: truncation towards the average w lowers the "
                      "faces' diversity step by step down to one average face; swapping the coarse styles of a "
                      "face changes what independent sex and smile classifiers read far more than swapping the fine "
                      "styles; resampling the fine noise moves pixels but keeps those readings.",
                check=_check_faces,
                smoke_note="smoke: StyleGAN trained 800 steps, 200 samples and pairs, coarse/fine >= 1.5x, readings "
                           "kept on >= 90 % of the faces read with confidence >= 0.9 (full: 15,000 steps, 1,000, >= 2x, "
                           ">= 95 %)")
def stylegan_faces(ctx: Context) -> dict[str, Any]:
    model = ctx.shared("stylegan-celeba")
    judges = {"male": ctx.shared("classifier-celeba-male"), "smiling": ctx.shared("classifier-celeba-smiling")}
    n = ctx.pick(200, 1000)
    numbers: dict[str, Any] = {"num_samples": n}
    truncation = truncation_figure(model, ctx.out / "stylegan-faces-truncation.png", seed=ctx.seed, num_samples=n,
                                   features=judges["male"])
    numbers.update({f"truncation/{k}": truncation[k] for k in ("psi", "diversity_pixels", "diversity_features")})
    with torch.no_grad():
        z = torch.randn(n, model.latent_dim, generator=ctx.generator(2))
        faces = model.synthesis(model.mapping(z), noise="const").cpu()
    numbers["male_share_at_psi1"] = float(class_probabilities(judges["male"], faces).argmax(1).float().mean())
    mixing = style_mixing_figure(model, ctx.out / "stylegan-faces-mixing.png", seed=ctx.seed, classifiers=judges,
                                 num_pairs=n)
    numbers["mixing/coarse_over_fine"] = mixing["coarse_over_fine"]
    for r in ("coarse", "middle", "fine"):
        numbers[f"mixing/{r}/output_change"] = mixing[r]["output_change"]
        numbers[f"mixing/{r}/male_flip_rate"] = mixing[r]["classifiers"]["male"]["label_flip_rate"]
    noise = noise_figure(model, ctx.out / "stylegan-faces-noise.png", seed=ctx.seed, classifiers=judges, num_faces=n,
                         decided_at=FACE_CONFIDENT)
    numbers["noise/pixel_std"] = noise["pixel_std"]
    numbers["noise/strengths"] = noise["noise_strengths"]  # per layer, coarse to fine: a switched-off input reads ~0
    for judge in judges:
        numbers[f"noise/{judge}/confident_share"] = noise["decided_fraction"][judge]
        # None: no face read with that confidence (noise_stats reports 0 there, which would read as all flipped)
        numbers[f"noise/{judge}/unchanged_when_confident"] = (noise["unchanged_when_decided"][judge]
                                                               if noise["decided_fraction"][judge] > 0 else None)
        numbers[f"noise/{judge}/unchanged_fraction"] = noise["unchanged_fraction"][judge]
    return {"paths": [truncation["path"], mixing["path"], noise["path"]], **numbers}
