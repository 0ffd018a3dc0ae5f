"""Latent tools in StyleGAN's W space (Karras et al. 2019, section 4: W is less entangled than Z, so
straight lines and mean differences there behave better; Shen et al., "Interpreting the Latent
Space of GANs for Semantic Face Editing", CVPR 2020, find attribute directions in W).

* :func:`w_interpolation`: images along a straight line in W (Z uses slerp, :mod:`.interpolate`).
* :func:`style_codes`: w (or per-layer ws) of images, by projection (:func:`genlab.latent.project`).
* :func:`attribute_vector_w`: mean w of examples with an attribute minus mean w of those without;
  the examples are real labelled images (projected) or generated faces labelled by a classifier
  (:func:`labelled_samples_w`), which needs no projection.
* :func:`apply_w_attribute`: w + s * vector for several scales, decoded with fixed noise.
Works for any style-based generator (:class:`~genlab.latent.protocols.StyleBased`: the ``stylegan`` family).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..errors import DataError
from .interpolate import interpolation_codes
from .protocols import require


def _check(model: Any) -> None:
    require(model, "styles", purpose="the W-space tools")


@torch.no_grad()
def w_interpolation(model: Any, w0: Tensor, w1: Tensor, steps: int = 8, *, noise: str = "const") -> Tensor:
    """Decoded images on the straight line from ``w0`` to ``w1`` ((w_dim,) or (num_ws, w_dim)): (steps, C, H, W)."""
    _check(model)
    return model.synthesis(interpolation_codes(w0, w1, steps, method="lerp"), noise=noise).cpu()


def style_codes(model: Any, images: Tensor, *, space: str = "w", **project_options: Any) -> Tensor:
    """w (N, w_dim) or ws (N, num_ws, w_dim) of ``images`` by optimisation (``space`` w or w+)."""
    _check(model)
    from .projection import project

    return project(model, images, space=space, **project_options).z  # type: ignore[arg-type]


@torch.no_grad()
def labelled_samples_w(model: Any, classifier: Any, n: int, *, truncation: float = 1.0, positive_class: int = 1,
                       generator: torch.Generator | None = None, batch_size: int = 200) -> tuple[Tensor, Tensor]:
    """``n`` sampled w (n, w_dim) and whether ``classifier`` labels their images ``positive_class`` (n,) bool."""
    _check(model)
    ws, labels = [], []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), model.latent_dim, generator=generator)
        w = model.mapping(z, truncation=truncation)
        images = model.synthesis(w, noise="const")
        shape = getattr(getattr(classifier, "config", None), "image_shape", None)
        if shape is not None and tuple(images.shape[1:]) != tuple(shape):
            images = torch.nn.functional.interpolate(images, size=tuple(shape[1:]), mode="bilinear", antialias=True)
        labels.append((classifier(images.to(next(classifier.parameters()).device)).argmax(1) == positive_class).cpu())
        ws.append(w.cpu())
    return torch.cat(ws), torch.cat(labels)


def attribute_vector_w(w: Tensor, present: Tensor) -> Tensor:
    """mean(w | present) - mean(w | absent): (w_dim,) or (num_ws, w_dim) for per-layer codes."""
    present = present.bool()
    if present.all() or not present.any():
        raise DataError(f"an attribute vector needs examples with and without the attribute, got {int(present.sum())} of {len(present)}")
    return w[present].mean(0) - w[~present].mean(0)


@torch.no_grad()
def apply_w_attribute(model: Any, w: Tensor, vector: Tensor, scales: Sequence[float], *, noise: str = "const") -> Tensor:
    """Decode ``w + s * vector`` for every code and scale: (N, S, C, H, W)."""
    _check(model)
    s = torch.as_tensor(list(scales), dtype=w.dtype)
    codes = w[:, None] + s.view(1, -1, *([1] * (w.dim() - 1))) * vector.to(w.dtype)  # (N, S, ...)
    images = model.synthesis(codes.flatten(0, 1), noise=noise).cpu()
    return images.view(w.shape[0], len(s), *images.shape[1:])
