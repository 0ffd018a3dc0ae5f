"""Projection: find the latent code whose decoding best matches a given image.

Two ways in. A model with an encoder (autoencoder, VAE) maps the image to a code in one pass.
Any model that can decode (a GAN generator too) can be inverted by optimisation: start from a code,
and descend the reconstruction error with respect to the code while the weights stay fixed (Zhu et
al., "Generative Visual Manipulation on the Natural Image Manifold", ECCV 2016; Abdal et al.,
"Image2StyleGAN", ICCV 2019). The loss is non-convex, so several random starts run side by side in
one batch and each image keeps its best. ``method="hybrid"`` starts the optimisation at the
encoder's code, which fixes what the amortised encoder gets wrong on that one image.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .interpolate import decode, latent_dim

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ProjectionResult:
    z: Tensor  # (N, D) the codes found
    images: Tensor  # (N, C, H, W) their decodings
    error: Tensor  # (N,) mean squared pixel error of each decoding against its target
    history: list[float]  # mean loss per optimisation step (empty for the encoder)


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
) -> ProjectionResult:
    """Codes for ``images`` (N, C, H, W) in [0, 1] under ``model.decode``.

    ``optimize``: Adam on the codes for ``steps`` steps at ``lr`` (cosine-decayed to 5%), from
    ``init`` (zeros, N(0, I) draws, or given codes), with ``restarts`` starts per image (extra starts
    are random). ``prior_weight`` adds ``w * mean(z**2)`` to keep codes typical of an N(0, I)
    prior. ``encoder``: ``model.encode``. ``hybrid``: optimisation started at the encoder's code.
    """
    if method not in ("optimize", "encoder", "hybrid"):
        raise ConfigError(f"unknown projection method {method!r}; valid: optimize, encoder, hybrid")
    if images.dim() != 4:
        raise DataError(f"projection needs images shaped (N, C, H, W), got {tuple(images.shape)}")
    images = images.float().cpu()
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
    if steps < 1 or lr <= 0 or restarts < 1:
        raise ConfigError(f"projection needs steps >= 1, lr > 0 and restarts >= 1; got {steps}, {lr}, {restarts}")
    if loss not in ("mse", "l1"):
        raise ConfigError(f"unknown projection loss {loss!r}; valid: mse, l1")
    n = images.shape[0]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
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
    z = torch.cat([start, extra]).to(device).requires_grad_(True)  # (R*N, D): restart r of image i at r*N + i
    target = images.to(device).repeat(restarts, 1, 1, 1)

    optimizer = torch.optim.Adam([z], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    was_training = model.training
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in frozen:
        p.requires_grad_(False)  # gradients flow to z only
    history: list[float] = []
    try:
        for step in range(steps):
            decoded = model.decode(z)
            if step == 0:
                _check_shapes(decoded, images)
            diff = decoded - target
            per_image = (diff.square() if loss == "mse" else diff.abs()).flatten(1).mean(1)  # (R*N,)
            if prior_weight:
                per_image = per_image + prior_weight * z.square().mean(1)
            optimizer.zero_grad(set_to_none=True)
            per_image.sum().backward()  # a sum: each code's gradient is independent of the batch
            optimizer.step()
            schedule.step()
            history.append(float(per_image.detach().view(restarts, n).min(0).values.mean()))
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        model.train(was_training)

    codes = z.detach().cpu()
    decoded = decode(model, codes)
    error = (decoded - images.repeat(restarts, 1, 1, 1)).square().flatten(1).mean(1).view(restarts, n)
    best = error.argmin(0)  # (N,) which start won for each image
    pick = best * n + torch.arange(n)
    log.debug("projected %d images in %d steps: mean MSE %.5f", n, steps, float(error.min(0).values.mean()))
    return ProjectionResult(codes[pick], decoded[pick], error.min(0).values, history)
