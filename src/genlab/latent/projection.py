"""Projection: find the latent code whose decoding best matches a given image.

Two ways in. A model with an encoder (autoencoder, VAE) maps the image to a code in one pass.
Any model that can decode (a GAN generator too) can be inverted by optimisation: start from a code,
and descend the reconstruction error with respect to the code while the weights stay fixed (Zhu et
al., "Generative Visual Manipulation on the Natural Image Manifold", ECCV 2016; Abdal et al.,
"Image2StyleGAN", ICCV 2019). The loss is non-convex, so several random starts run side by side in
one batch and each image keeps its best. ``method="hybrid"`` starts the optimisation at the
encoder's code, which fixes what the amortised encoder gets wrong on that one image.

A StyleGAN can be inverted in three spaces (``space=``): ``z``; ``w``, one style shared by every
layer, started at the mean style ``w_avg`` (Karras et al. 2020, appendix D); and ``w+``, a separate
style per layer (Abdal et al. 2019), which fits real images far better at the cost of codes the
mapping network never produces. The constant noise maps stay fixed, so a code alone decides the image.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Literal

import torch
from torch import Tensor

from ..batching import map_batches, module_device
from ..errors import ConfigError, DataError
from .interpolate import decode
from .protocols import latent_dim, require

log = logging.getLogger(__name__)


Space = Literal["z", "w", "w+"]


@dataclasses.dataclass
class ProjectionResult:
    z: Tensor  # (N, D) the codes found: z, or w (N, w_dim) for space="w", ws (N, num_ws, w_dim) for "w+"
    images: Tensor  # (N, C, H, W) their decodings
    error: Tensor  # (N,) mean squared pixel error of each decoding against its target
    history: list[float]  # mean loss per optimisation step (empty for the encoder)
    space: str = "z"  # which space the codes live in


def project(
    model: torch.nn.Module,
    images: Tensor,
    *,
    method: Literal["optimize", "encoder", "hybrid"] = "optimize",
    steps: int = 300,
    lr: float = 0.05,
    init: Literal["zeros", "random"] | Tensor = "zeros",
    restarts: int = 1,
    prior_weight: float = 0.0,
    loss: Literal["mse", "l1"] = "mse",
    generator: torch.Generator | None = None,
    space: Space = "z",
) -> ProjectionResult:
    """Codes for ``images`` (N, C, H, W) in [0, 1] under ``model.decode``.

    ``optimize``: Adam on the codes for ``steps`` steps at ``lr`` (cosine-decayed to 5%), from
    ``init`` (zeros, N(0, I) draws, or given codes), with ``restarts`` starts per image (extra starts
    are random). ``prior_weight`` adds ``w * mean(z**2)`` to keep codes typical of an N(0, I)
    prior. ``encoder``: ``model.encode``. ``hybrid``: optimisation started at the encoder's code.
    ``space="w"`` / ``"w+"`` (StyleGAN models): optimise w or per-layer ws instead of z, from
    ``w_avg`` (``init="zeros"``) or mapped random z; ``prior_weight`` then pulls towards ``w_avg``.
    """
    if method not in ("optimize", "encoder", "hybrid"):
        raise ConfigError(f"unknown projection method {method!r}; valid: optimize, encoder, hybrid")
    if space not in ("z", "w", "w+"):
        raise ConfigError(f"unknown projection space {space!r}; valid: z, w, w+")
    if images.dim() != 4:
        raise DataError(f"projection needs images shaped (N, C, H, W), got {tuple(images.shape)}")
    images = images.detach().float().cpu()
    if space != "z":
        if method != "optimize":
            raise ConfigError(f"projection into {space!r} is by optimisation (method='optimize'), not {method!r}")
        return _project_styles(model, images, space, steps=steps, lr=lr, init=init, restarts=restarts,
                               prior_weight=prior_weight, loss=loss, generator=generator)
    if method in ("encoder", "hybrid"):
        from .samplers import encode_all

        z = encode_all(model, images)
        if method == "encoder":
            recon = decode(model, z)
            _check_shapes(recon, images)
            return ProjectionResult(z, recon, (recon - images).square().flatten(1).mean(1), [])
        init = z
    return _optimize(model, images, steps=steps, lr=lr, init=init, restarts=restarts,
                     prior_weight=prior_weight, loss=loss, generator=generator)


def _check_shapes(decoded: Tensor, images: Tensor) -> None:
    if decoded.shape[1:] != images.shape[1:]:
        raise DataError(f"images are {tuple(images.shape[1:])} but the model decodes {tuple(decoded.shape[1:])}")


def _optimize(model: torch.nn.Module, images: Tensor, *, steps: int, lr: float, init: str | Tensor, restarts: int,
              prior_weight: float, loss: str, generator: torch.Generator | None) -> ProjectionResult:
    n = images.shape[0]
    if isinstance(init, Tensor):
        start = init.detach().float().cpu()
        if start.shape[0] != n:
            raise DataError(f"init has {start.shape[0]} codes for {n} images")
    elif init == "zeros":
        start = torch.zeros(n, latent_dim(model))
    elif init == "random":
        start = torch.randn(n, latent_dim(model), generator=generator)
    else:
        raise ConfigError(f"unknown projection init {init!r}; valid: zeros, random, or a tensor of codes")
    extra = torch.randn((restarts - 1) * n, start.shape[1], generator=generator)
    return _descend(model, images, torch.cat([start, extra]), model.decode, lambda z: z.square().mean(1),
                    steps=steps, lr=lr, restarts=restarts, prior_weight=prior_weight, loss=loss, space="z")


def _project_styles(model: torch.nn.Module, images: Tensor, space: str, *, steps: int, lr: float, init: str | Tensor,
                    restarts: int, prior_weight: float, loss: str, generator: torch.Generator | None) -> ProjectionResult:
    """Projection into W or W+ of a model with ``mapping``/``synthesis``/``truncate`` (StyleGAN)."""
    require(model, "styles", purpose=f"projection into {space!r}")
    n = images.shape[0]
    with torch.no_grad():
        w_avg = model.generator.mapping.w_avg.detach().float().cpu()  # type: ignore[union-attr]

        def mapped(count: int) -> Tensor:  # w of random z: (count, w_dim), or ws for w+
            w = model.mapping(torch.randn(count, latent_dim(model), generator=generator)).cpu()  # type: ignore[operator]
            return w if space == "w" else model.truncate(w).cpu()  # type: ignore[operator]

        if isinstance(init, Tensor):
            start = init.detach().float().cpu()
            if start.shape[0] != n:
                raise DataError(f"init has {start.shape[0]} codes for {n} images")
            if space == "w+" and start.dim() == 2:
                start = model.truncate(start).cpu()  # type: ignore[operator]  # one w -> the same w for every layer
        elif init == "zeros":
            start = w_avg.expand(n, -1) if space == "w" else model.truncate(w_avg.expand(n, -1)).cpu()  # type: ignore[operator]
        elif init == "random":
            start = mapped(n)
        else:
            raise ConfigError(f"unknown projection init {init!r}; valid: zeros (w_avg), random, or a tensor of codes")
        expected = 2 if space == "w" else 3
        if start.dim() != expected:
            raise DataError(f"space={space!r} needs init codes with {expected} dimensions, got {tuple(start.shape)}")
        parts = [start] + ([mapped((restarts - 1) * n)] if restarts > 1 else [])
        codes = torch.cat(parts).clone()  # own memory: each layer's style is a separate variable

    def decode_styles(ws: Tensor) -> Tensor:
        return model.synthesis(ws, noise="const")  # type: ignore[operator]

    def prior(ws: Tensor) -> Tensor:
        return (ws - w_avg.to(ws.device)).square().flatten(1).mean(1)

    return _descend(model, images, codes, decode_styles, prior, steps=steps, lr=lr, restarts=restarts,
                    prior_weight=prior_weight, loss=loss, space=space)


def _descend(model: torch.nn.Module, images: Tensor, codes: Tensor, decode_fn, prior_fn, *, steps: int, lr: float,
             restarts: int, prior_weight: float, loss: str, space: str) -> ProjectionResult:
    """Adam on ``codes`` ((R*N, ...): restart r of image i at r*N + i) against ``images``; each
    image keeps the restart whose decoding is closest."""
    if steps < 1 or lr <= 0 or restarts < 1:
        raise ConfigError(f"projection needs steps >= 1, lr > 0 and restarts >= 1; got {steps}, {lr}, {restarts}")
    if loss not in ("mse", "l1"):
        raise ConfigError(f"unknown projection loss {loss!r}; valid: mse, l1")
    n = images.shape[0]
    device = module_device(model)
    z = codes.to(device).requires_grad_(True)
    target = images.to(device).repeat(restarts, 1, 1, 1)

    optimizer = torch.optim.Adam([z], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    was_training = model.training
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in frozen:
        p.requires_grad_(False)  # gradients flow to the codes only
    history: list[float] = []
    try:
        for step in range(steps):
            decoded = decode_fn(z)
            if step == 0:
                _check_shapes(decoded, images)
            diff = decoded - target
            per_image = (diff.square() if loss == "mse" else diff.abs()).flatten(1).mean(1)  # (R*N,)
            if prior_weight:
                per_image = per_image + prior_weight * prior_fn(z)
            optimizer.zero_grad(set_to_none=True)
            per_image.sum().backward()  # a sum: each code's gradient is independent of the batch
            optimizer.step()
            schedule.step()
            history.append(float(per_image.detach().view(restarts, n).min(0).values.mean()))
        with torch.no_grad():
            found = z.detach()
            decoded = map_batches(decode_fn, found, batch_size=256)
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        model.train(was_training)

    codes_out = found.cpu()
    error = (decoded - images.repeat(restarts, 1, 1, 1)).square().flatten(1).mean(1).view(restarts, n)
    best = error.argmin(0)  # (N,) which start won for each image
    pick = best * n + torch.arange(n)
    log.debug("projected %d images into %s in %d steps: mean MSE %.5f", n, space, steps, float(error.min(0).values.mean()))
    return ProjectionResult(codes_out[pick], decoded[pick], error.min(0).values, history, space)
