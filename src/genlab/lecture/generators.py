"""Generator networks (slides 18-23): what an untrained generator already does to noise, and why
training one by pairing its samples with random data points collapses it to the data mean."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .core import Conditions, Context, lecture_figure, shared_run
from .shared import mnist, toy


def _check_random(n: dict[str, Any], budget: str) -> Conditions:
    out, z = max(abs(v) for v in n["excess_kurtosis"]), max(abs(v) for v in n["input_excess_kurtosis"])
    return [(f"output |excess kurtosis| {out:.2f} > 1 (Gaussian: 0)", out > 1.0),
            (f"control: the N(0, I) input's |excess kurtosis| {z:.3f} < 0.1", z < 0.1)]


@lecture_figure("random-generator", slides="17-18",
                claim="An untrained 2 -> 12x100 ReLU -> 2 network maps 100,000 Gaussian points to a folded, "
                      "heavy-tailed, clearly non-Gaussian distribution: depth alone makes complex densities.",
                check=_check_random)
def random_generator(ctx: Context) -> dict[str, Any]:
    from ..nn.generators import MLPGenerator
    from ..viz import scatter_panels

    n = 100_000
    torch.manual_seed(ctx.seed)
    generator = MLPGenerator(2, 2, hidden_dims=[100] * 12, activation="relu", init="glorot").eval()
    z = torch.randn(n, 2, generator=ctx.generator())
    with torch.no_grad():
        x = generator(z)
    path = scatter_panels([(f"input z ~ N(0, I), n = {n:,}", z), ("untrained 2 -> 12 x 100 ReLU (Glorot) -> 2", x)],
                          ctx.out / "random-generator.png")
    return {"paths": [str(path)], "excess_kurtosis": _excess_kurtosis(x), "input_excess_kurtosis": _excess_kurtosis(z)}


def _excess_kurtosis(x: Tensor) -> list[float]:
    """Per coordinate E[((x - mean) / std)^4] - 3: 0 for a Gaussian, > 0 for heavy tails."""
    return [float(v) for v in (((x - x.mean(0)) / x.std(0)) ** 4).mean(0) - 3]


def lag_correlation(images: Tensor, lag: int) -> float:
    """Mean Pearson correlation of horizontally ``lag``-apart pixels within each image and channel."""
    x = images - images.mean(dim=(2, 3), keepdim=True)  # (N, C, H, W)
    a, b = x[..., :, :-lag], x[..., :, lag:]
    return float(((a * b).sum((2, 3)) / (a.square().sum((2, 3)) * b.square().sum((2, 3))).sqrt().clamp_min(1e-12)).mean())


def periodic_share(images: Tensor, period: int) -> float:
    """Share of each image's variance in its mean ``period`` x ``period`` tile (a grid-locked pattern
    such as a checkerboard): about period^2 / (H W) for white noise."""
    n, c, h, w = images.shape
    x = images - images.mean(dim=(2, 3), keepdim=True)
    tile = x.view(n, c, h // period, period, w // period, period).mean(dim=(2, 4))  # (N, C, p, p)
    return float((tile.square().mean(dim=(2, 3)) / x.square().mean(dim=(2, 3)).clamp_min(1e-12)).mean())


def _check_conv(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"up-sampling gives smooth blobs: neighbouring pixels correlate at {n['upsample/lag1']:.2f} (> 0.3; "
             f"white noise {n['noise/lag1']:.3f})", n["upsample/lag1"] > 0.3 and abs(n["noise/lag1"]) < 0.05),
            (f"transposed convolutions give a grid-locked pattern: the mean 8x8 tile holds {n['transposed/periodic8']:.3f} "
             f"of the variance (> 0.1; white noise {n['noise/periodic8']:.3f}, up-sampling {n['upsample/periodic8']:.3f})",
             n["transposed/periodic8"] > 0.1 and n["noise/periodic8"] < 0.05)]


@lecture_figure("untrained-conv", slides="19",
                claim="Untrained convolutional generators already produce spatially structured images (smooth "
                      "blobs from up-sampling, checkerboards from transposed convolutions): the architecture is a prior.",
                check=_check_conv)
def untrained_conv(ctx: Context) -> dict[str, Any]:
    from ..nn.generators import ConvGenerator
    from .plots import image_panels

    result: dict[str, Any] = {}
    panels = []
    for mode in ("upsample", "transposed"):
        torch.manual_seed(ctx.seed)
        # batch-norm on batch statistics, as while training (with fresh running statistics, eval-mode
        # BN would normalise nothing and the signal would fade into the last layer's bias)
        generator = ConvGenerator(100, (3, 64, 64), mode=mode, base_channels=32).train()
        with torch.no_grad():
            images = generator(torch.randn(36, 100, generator=ctx.generator()))  # (36, 3, 64, 64)
        result.update({f"{mode}/lag1": lag_correlation(images, 1), f"{mode}/periodic8": periodic_share(images, 8)})
        # untrained outputs sit near 0.5: each image's contrast is stretched, per channel, so the structure shows
        flat = images.flatten(2)
        lo, hi = flat.min(2).values[..., None, None], flat.max(2).values[..., None, None]
        panels.append((f"untrained ConvGenerator, mode={mode!r} (contrast stretched)", (images - lo) / (hi - lo).clamp_min(1e-8), 6))
    noise = torch.rand(36, 3, 64, 64, generator=ctx.generator(1))
    result.update({"noise/lag1": lag_correlation(noise, 1), "noise/periodic8": periodic_share(noise, 8)})
    path = image_panels(panels, ctx.out / "untrained-conv.png", panel_width=5.5)
    return {"paths": [str(path)], **result}


@shared_run("naive-ring")
def _naive_ring(ctx: Context):
    return ("naive", {"x_dim": 2, "latent_dim": 2, "loss": "mse"}, toy(ctx, "ring8", 10000),
            {"max_steps": ctx.pick(800, 2000), "batch_size": 128, "lr": 1e-3})


@shared_run("naive-mnist")
def _naive_mnist(ctx: Context):
    return ("naive", {"image_shape": [1, 28, 28], "latent_dim": 16, "loss": "mse", "hidden_dims": [256, 256]},
            mnist(ctx), {"max_steps": ctx.pick(400, 1500), "batch_size": 64, "lr": 1e-3})


def _check_naive(n: dict[str, Any], budget: str) -> Conditions:
    out = []
    for what in ("ring", "mnist"):
        spread, offset = n[f"{what}/spread_ratio"], n[f"{what}/mean_offset"]
        excess, untrained = n[f"{what}/excess_mse"], n[f"{what}/untrained/excess_mse"]
        out += [(f"{what}: the samples sit at the data mean, {offset:.3f} data spreads away (< 0.25)", offset < 0.25),
                (f"{what}: and spread {spread:.3f} of the data's spread (< 0.25)", spread < 0.25),
                # an untrained generator also has a small spread; only training towards the mean cuts the loss
                (f"{what}: training brought the pairing loss to its optimum, the data mean: MSE above the data's "
                 f"variance {excess:.4f} of it, under half the untrained generator's {untrained:.4f}",
                 excess < 0.5 * untrained)]
    return out


@lecture_figure("naive-collapse", slides="21-23",
                claim="A generator trained to match randomly paired data points by MSE collapses to the data mean "
                      "(a blurry average digit, the centre of the ring) instead of learning the distribution.",
                check=_check_naive)
def naive_collapse(ctx: Context) -> dict[str, Any]:
    from ..models import build_model
    from ..reports.naive import collapse_stats
    from ..viz import plot_samples_vs_data

    result: dict[str, Any] = {"paths": []}
    for what, data in (("ring", toy(ctx, "ring8", 4000, "test")), ("mnist", mnist(ctx, "test"))):
        model = ctx.shared(f"naive-{what}")
        n = min(4000, len(data))
        samples = model.sample(n, generator=ctx.generator()).cpu()
        stats = collapse_stats(samples, data.x)
        result.update({f"{what}/{k}": v for k, v in stats.items()})
        # the same network at its initialisation (the shared run's seed and config), as the control
        name, config, _, _ = ctx.recipe(f"naive-{what}")
        torch.manual_seed(ctx.seed)
        untrained = build_model(name, config).eval()
        before = collapse_stats(untrained.sample(n, generator=ctx.generator()).cpu(), data.x)
        result.update({f"{what}/untrained/{k}": before[k] for k in ("spread_ratio", "mean_offset", "excess_mse")})
        result["paths"].append(str(plot_samples_vs_data(
            samples, data.x[:4000], ctx.out / f"naive-collapse-{what}.png",
            title=f"naive MSE generator on {what}: spread ratio {stats['spread_ratio']:.3f}")))
    return result
