"""CycleGAN's steganography (slide 39), measured: Chu, Zhmoginov and Sandler ("CycleGAN, a Master of
Steganography", 2017, https://arxiv.org/abs/1712.02950) showed that the generators can hide the source
image inside the translation as a faint signal the cycle reads and the eye (or a classifier) does not.
If so, a perturbation that barely changes G(a) (PSNR >= 35 dB) breaks F(G(a)); a translation that
carries its content visibly survives it. Compared: the plain recipe and one trained with a
noise-injected cycle (``model.cycle_noise``; Bashkirova, Usman and Saenko, "Adversarial Self-Defense
for Cycle-Consistent GANs", NeurIPS 2019), both on grey (1 channel) <-> coloured digits, where the
identity loss cannot apply (it needs equal channels) and hiding was seen (benchmarks/RESULTS.md).
The ruler is the lecture's MNIST classifier, never part of any CycleGAN loss."""
from __future__ import annotations

from typing import Any

import torch

from .core import Conditions, Context, lecture_figure, shared_run
from .plots import image_panels
from .shared import predict
from .translation import _colour_digits

PSNR_DB = 35.0  # the perturbation's size: noise of std 10^(-35/20) = 0.018 on G(a)
CYCLE_NOISE = 0.05  # sigma of the training-time noise of the content-keeping recipe, [0, 1] pixels
RECIPES = {"plain": 0.0, "noisy cycle": CYCLE_NOISE}


def _grey_colour_digits(ctx: Context, split: str) -> Any:
    """:func:`genlab.lecture.translation._colour_digits` with domain A kept at one grey channel."""
    from ..data.unpaired import unpaired_dataset

    def load() -> Any:
        data = _colour_digits(ctx, split)
        (a, label_a), (b, label_b) = data.domain_a, data.domain_b
        return unpaired_dataset(a[:, :1].contiguous(), b, "grey1-colour-digits", labels_a=label_a, labels_b=label_b,
                                pairing="none: A and B are disjoint halves of the digits")
    return ctx.dataset(("grey1-colour-digits", split), load)


def _recipe(ctx: Context, cycle_noise: float):
    return ("cyclegan", {"image_shape": [1, 28, 28], "image_shape_b": [3, 28, 28], "num_filters": 16,
                         "discriminator_filters": 16, "residual_blocks": 3, "cycle_noise": cycle_noise},
            _grey_colour_digits(ctx, "train"),
            {"max_steps": ctx.pick(1000, 6000), "batch_size": 8, "lr": 2e-4, "betas": (0.5, 0.999),
             "lr_schedule": "hold-linear", "hold_fraction": 0.5})


shared_run("cyclegan-grey-plain")(lambda ctx: _recipe(ctx, 0.0))
shared_run("cyclegan-grey-noisy-cycle")(lambda ctx: _recipe(ctx, CYCLE_NOISE))
_RUNS = {"plain": "cyclegan-grey-plain", "noisy cycle": "cyclegan-grey-noisy-cycle"}


def _check(n: dict[str, Any], budget: str) -> Conditions:
    drop = {k: n[f"{k}/acc_back_clean"] - n[f"{k}/acc_back_perturbed"] for k in ("plain", "noisy cycle")}
    need = 0.1 if budget == "smoke" else 0.2
    return [(f"the perturbation barely changes G(a): PSNR {n['plain/psnr_db']:.1f} / {n['noisy cycle/psnr_db']:.1f} dB "
             f"(>= {PSNR_DB - 0.5:.1f})", min(n["plain/psnr_db"], n["noisy cycle/psnr_db"]) >= PSNR_DB - 0.5),
            (f"plain recipe: the cycle needs what the eye cannot see — the classifier reads the digit of F(G(a)) in "
             f"{n['plain/acc_back_clean']:.2f} clean vs {n['plain/acc_back_perturbed']:.2f} perturbed (a drop >= {need})",
             drop["plain"] >= need),
            (f"noisy-cycle recipe: the content survives — the same perturbation drops F(G(a))'s accuracy by "
             f"{drop['noisy cycle']:.2f} (clean {n['noisy cycle/acc_back_clean']:.2f}; < {need / 2:.2f}, half the plain "
             f"recipe's threshold)", drop["noisy cycle"] < need / 2),
            (f"noisy-cycle recipe: G(a) shows the digit more often — classifier on G(a) {n['noisy cycle/content_a2b']:.2f} "
             f"vs plain {n['plain/content_a2b']:.2f}", n["noisy cycle/content_a2b"] > n["plain/content_a2b"])]


@lecture_figure("cyclegan-steganography", slides="39",
                claim="The plain CycleGAN hides the source digit in G(a) as a faint signal: noise that leaves G(a) "
                      "visibly unchanged (PSNR >= 35 dB) destroys F(G(a)). Adding noise inside the cycle during "
                      "training makes hiding useless, and the content stays where it can be seen.",
                check=_check, smoke_note="smoke: 1,000 steps per recipe, F(G(a)) accuracy drop >= 0.1 for the plain "
                                         "recipe (full: 6,000 steps, 0.2)")
def cyclegan_steganography(ctx: Context) -> dict[str, Any]:
    from ..reports.cyclegan import steganography

    classifier = ctx.shared("classifier-mnist")
    classify = lambda x: predict(classifier, x)[0]  # noqa: E731
    test = _grey_colour_digits(ctx, "test")
    a, label_a = test.domain_a[0][:1000], test.domain_a[1][:1000]
    numbers: dict[str, Any] = {"cycle_noise": CYCLE_NOISE, "perturbation_std": 10 ** (-PSNR_DB / 20)}
    panels = []
    for key, run in _RUNS.items():
        model = ctx.shared(run)
        s = steganography(model, a, kind="noise", size=10 ** (-PSNR_DB / 20), classify=classify, labels=label_a, seed=ctx.seed)
        with torch.no_grad():  # the brightest channel of a coloured digit is its ink
            fake_b = torch.cat([model.translate(x, "a2b").cpu() for x in a.split(250)])
        numbers[f"{key}/content_a2b"] = float((classify(fake_b.amax(1, keepdim=True)) == label_a).float().mean())
        images = s.pop("images")
        numbers.update({f"{key}/{k}": v for k, v in s.items() if k not in ("perturbation", "n")})
        rows = [images["x"].expand(-1, 3, -1, -1), images["translation"], images["perturbed"],
                images["back"].expand(-1, 3, -1, -1), images["back_perturbed"].expand(-1, 3, -1, -1)]
        panels.append((f"{key}: a | G(a) | G(a)+noise ({s['psnr_db']:.0f} dB) | F(G(a)) | F(G(a)+noise)",
                       torch.cat(rows), 10))
    path = image_panels(panels, ctx.out / "cyclegan-steganography.png", panel_width=5.5)
    return {"paths": [str(path)], **numbers}
