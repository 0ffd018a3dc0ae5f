"""Image-to-image translation (slides 34-41): pix2pix (Isola et al., "Image-to-Image Translation with
Conditional Adversarial Networks", 2017) on pairs made from digits, and CycleGAN (Zhu et al.,
"Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks", 2017) on two
digit domains that share no pairs at all."""
from __future__ import annotations

import functools
from typing import Any

import torch

from ..data import DataConfig, load_dataset
from .core import Conditions, Context, lecture_figure, shared_run
from .plots import image_panels
from .shared import mnist, predict


def _pairs(ctx: Context, name: str, split: str = "train") -> Any:
    return ctx.dataset((name, split), lambda: load_dataset(DataConfig(name=name, seed=ctx.seed), split))  # type: ignore[arg-type]


def _pix2pix(ctx: Context, task: str, channels: int, *, adversarial: bool = True):
    return ("pix2pix", {"input_shape": [1, 32, 32], "image_shape": [channels, 32, 32], "num_filters": 16,
                        "discriminator_filters": 16, "adversarial_weight": 1.0 if adversarial else 0.0},
            _pairs(ctx, task), {"max_steps": ctx.pick(300, 1200), "batch_size": 32, "lr": 2e-4, "betas": (0.5, 0.999)})


# (task, output channels, adversarial loss) by run name; "l1only" is the same generator without a discriminator
for _name, (_task, _channels, _adversarial) in {"pix2pix-edges": ("edges2digits", 1, True),
                                                "pix2pix-colorize": ("colorize", 3, True),
                                                "l1only-colorize": ("colorize", 3, False)}.items():
    shared_run(_name)(functools.partial(_pix2pix, task=_task, channels=_channels, adversarial=_adversarial))


def _diversity(model: Any, a: torch.Tensor, seed: int) -> float:
    """Mean absolute difference between two stochastic (dropout) translations of the same inputs."""
    with torch.no_grad():
        outs = model.translate(a, 2, stochastic=True, generator=torch.Generator().manual_seed(seed))  # (B, 2, C, S, S)
    return float((outs[:, 0] - outs[:, 1]).abs().mean())


def _check_edges(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.8 if budget == "smoke" else 0.95
    return [(f"the classifier reads the same digit in output and target for {n['class_agreement']:.2f} of test inputs "
             f"(>= {need})", n["class_agreement"] >= need),
            (f"test L1 {n['l1']:.4f} is below half that of predicting the mean training digit ({n['l1_mean_digit']:.4f})",
             n["l1"] < 0.5 * n["l1_mean_digit"]),
            (f"several outputs per input differ only slightly: dropout diversity {n['dropout_diversity']:.4f} < 0.05",
             n["dropout_diversity"] < 0.05)]


@lecture_figure("pix2pix-edges", slides="35-36",
                claim="pix2pix turns the outline of a digit into that digit; its several outputs per input (dropout "
                      "noise) differ only slightly, as Isola et al. observed.",
                check=_check_edges, smoke_note="smoke: 300 steps, class agreement >= 0.8 (full: 1,200 steps, 0.95)")
def pix2pix_edges(ctx: Context) -> dict[str, Any]:
    from ..reports.pix2pix import translate_dataset, translation_rows

    model, classifier = ctx.shared("pix2pix-edges"), ctx.shared("classifier-mnist")
    test = _pairs(ctx, "edges2digits", "test")
    a, outputs, targets = translate_dataset(model, test)
    crop = (slice(None), slice(None), slice(2, 30), slice(2, 30))  # the 2-px padding back to 28 px
    agree = (predict(classifier, outputs[crop])[0] == predict(classifier, targets[crop])[0]).float().mean()
    mean_digit = _pairs(ctx, "edges2digits").tensors[1].mean(0, keepdim=True)
    path = image_panels([("input | 4 stochastic outputs | deterministic | target", translation_rows(model, a[:8], targets[:8], n=4, seed=ctx.seed), 7)],
                        ctx.out / "pix2pix-edges.png", panel_width=5.5)
    return {"paths": [str(path)], "l1": float((outputs - targets).abs().mean()),
            "l1_mean_digit": float((mean_digit - targets).abs().mean()), "class_agreement": float(agree),
            "dropout_diversity": _diversity(model, a[:200], ctx.seed)}


def _check_colorize(n: dict[str, Any], budget: str) -> Conditions:
    margin = 0.05 if budget == "smoke" else 0.2
    return [(f"pix2pix's ink is more saturated than the L1-only model's: {n['saturation/pix2pix']:.3f} vs "
             f"{n['saturation/l1_only']:.3f} (margin > {margin}; targets {n['saturation/targets']:.2f})",
             n["saturation/pix2pix"] > n["saturation/l1_only"] + margin)]


@lecture_figure("pix2pix-colorize", slides="34",
                claim="Colouring a grey digit has many right answers; L1 alone averages them to a dull grey, while "
                      "pix2pix's adversarial loss commits to vivid colours.",
                check=_check_colorize, smoke_note="smoke: 300 steps each, saturation margin > 0.05 (full: 1,200 steps, 0.2)")
def pix2pix_colorize(ctx: Context) -> dict[str, Any]:
    from ..reports.pix2pix import mean_saturation, translate_dataset, translation_rows

    test = _pairs(ctx, "colorize", "test")
    numbers: dict[str, Any] = {}
    panels = []
    for key, run in (("pix2pix", "pix2pix-colorize"), ("l1_only", "l1only-colorize")):
        model = ctx.shared(run)
        a, outputs, targets = translate_dataset(model, test)
        numbers[f"saturation/{key}"] = mean_saturation(outputs)
        numbers[f"l1/{key}"] = float((outputs - targets).abs().mean())
        numbers[f"dropout_diversity/{key}"] = _diversity(model, a[:200], ctx.seed)
        panels.append((f"{key.replace('_', '-')}: input | 4 stochastic | deterministic | target",
                       translation_rows(model, a[:8], targets[:8], n=4, seed=ctx.seed), 7))
    numbers["saturation/targets"] = mean_saturation(test.tensors[1])
    path = image_panels(panels, ctx.out / "pix2pix-colorize.png", panel_width=5.5)
    return {"paths": [str(path)], **numbers}


# ------------------------------------------------------------------------------------- CycleGAN

def _colour_digits(ctx: Context, split: str) -> Any:
    """Unpaired grey and coloured digits: A = the grey digits of one half of the split (as RGB, R = G = B),
    B = the other half, each in a random fully saturated hue (the colorize rule). No digit of A appears
    in B, so there is no pair to learn from; the labels stay beside the images for the content check
    only. Both domains are RGB, so the identity loss (0.5 lambda) applies, as in the paper."""
    from ..data.paired import hue_to_rgb
    from ..data.unpaired import unpaired_dataset

    def load() -> Any:
        x, y = mnist(ctx, split).tensors[:2]
        half = x.shape[0] // 2
        g = torch.Generator().manual_seed(ctx.seed + (0 if split == "train" else 1))
        hue = torch.rand(x.shape[0] - half, generator=g)
        b = x[half:] * hue_to_rgb(hue)[:, :, None, None]
        return unpaired_dataset(x[:half].expand(-1, 3, -1, -1).contiguous(), b, "grey-colour-digits", labels_a=y[:half], labels_b=y[half:],
                                pairing="none: A and B are disjoint halves of the digits")
    return ctx.dataset(("grey-colour-digits", split), load)


@shared_run("cyclegan-digits")
def _cyclegan_digits(ctx: Context):
    return ("cyclegan", {"image_shape": [3, 28, 28], "num_filters": 16,
                         "discriminator_filters": 16, "residual_blocks": 3},
            _colour_digits(ctx, "train"),
            {"max_steps": ctx.pick(1000, 6000), "batch_size": 8, "lr": 2e-4, "betas": (0.5, 0.999),
             "lr_schedule": "hold-linear", "hold_fraction": 0.5})


def _check_cyclegan(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.8 if budget == "smoke" else 0.9
    return [(f"the digit survives translation: the classifier reads the source digit in {n['content_a2b']:.2f} of "
             f"G(a) and {n['content_b2a']:.2f} of F(b) (>= {need})", min(n["content_a2b"], n["content_b2a"]) >= need),
            (f"a -> b -> a comes back: cycle L1 {n['cycle_l1_a']:.4f} is below a quarter of the L1 between two different "
             f"digits ({n['l1_other_digit']:.4f})", n["cycle_l1_a"] < 0.25 * n["l1_other_digit"]),
            (f"G(a) is in domain B: ink saturation {n['saturation_g_a']:.2f} (B's own {n['saturation_b']:.2f}, A's 0; "
             f"> half of B's)", n["saturation_g_a"] > 0.5 * n["saturation_b"])]


@lecture_figure("cyclegan-digits", slides="37-41",
                claim="With no pairs at all, two generators tied by a cycle-consistency loss learn to translate grey "
                      "digits to coloured ones and back: G(a) looks like domain B, F(G(a)) returns a, and the digit "
                      "itself is kept.",
                check=_check_cyclegan, smoke_note="smoke: 1,000 steps, content kept on >= 80 % (full: 6,000 steps, 90 %)")
def cyclegan_digits(ctx: Context) -> dict[str, Any]:
    from ..reports.pix2pix import mean_saturation

    model, classifier = ctx.shared("cyclegan-digits"), ctx.shared("classifier-mnist")
    test = _colour_digits(ctx, "test")
    (a, label_a), (b, label_b) = test.domain_a, test.domain_b
    a, b, label_a, label_b = a[:1000], b[:1000], label_a[:1000], label_b[:1000]
    with torch.no_grad():
        fake_b = torch.cat([model.translate(x, "a2b").cpu() for x in a.split(250)])
        fake_a = torch.cat([model.translate(x, "b2a").cpu() for x in b.split(250)])
        rec_a = torch.cat([model.translate(x, "b2a").cpu() for x in fake_b.split(250)])
    read_a = predict(classifier, a[:, :1])[0]  # what the classifier reads in the source, not the dataset label
    content_a2b = (predict(classifier, fake_b.amax(1, keepdim=True))[0] == read_a).float().mean()  # a hue's max channel is the ink
    read_b = predict(classifier, b.amax(1, keepdim=True))[0]
    content_b2a = (predict(classifier, fake_a.mean(1, keepdim=True))[0] == read_b).float().mean()
    rows = model.cycle_rows(a[:10], b[:10]).cpu()
    path = image_panels([("A = grey digits\nrows: a, G(a), F(G(a))", torch.cat(list(rows[:3])), 10),
                         ("B = coloured digits\nrows: b, F(b), G(F(b))", torch.cat(list(rows[3:])), 10)],
                        ctx.out / "cyclegan-digits.png", panel_width=5.5)
    return {"paths": [str(path)], "content_a2b": float(content_a2b), "content_b2a": float(content_b2a),
            "label_accuracy_source_a": float((read_a == label_a).float().mean()),
            "cycle_l1_a": float((rec_a - a).abs().mean()), "l1_other_digit": float((a - a.roll(1, 0)).abs().mean()),
            "saturation_g_a": mean_saturation(fake_b), "saturation_b": mean_saturation(b),
            "label_b_check": float((read_b == label_b).float().mean())}
