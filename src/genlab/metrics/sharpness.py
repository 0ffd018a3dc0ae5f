"""How much fine detail images carry, measured on the pixels alone (no network, so no loss can game a
feature space it was trained against): the mean squared difference of neighbouring pixels, along rows
and columns. Blurring lowers it (a blur is a low-pass filter, and these differences are the image's
highest frequencies), so the ratio of a model's reconstructions to the images they reconstruct says how
much detail survives: 1 keeps all of it, a blurry decoder scores well below 1. Noise raises it too, so
read it beside a distance to the data, never alone."""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError


def gradient_energy(images: Tensor) -> Tensor:
    """Per image (N,): the mean over rows and columns of the squared difference of neighbouring pixels,
    for images (N, C, H, W) with H, W >= 2."""
    if images.dim() != 4 or images.shape[-1] < 2 or images.shape[-2] < 2:
        raise DataError(f"gradient_energy expects images (N, C, H, W) with H, W >= 2, got {tuple(images.shape)}")
    x = images.float()
    rows = (x[..., 1:, :] - x[..., :-1, :]).square().flatten(1).mean(1)
    columns = (x[..., :, 1:] - x[..., :, :-1]).square().flatten(1).mean(1)
    return (rows + columns) / 2


def sharpness_ratio(images: Tensor, reference: Tensor) -> float:
    """Mean gradient energy of ``images`` over that of ``reference`` (e.g. reconstructions over the
    images they reconstruct): below 1 is smoother than the reference, above 1 rougher."""
    return float(gradient_energy(images).mean() / gradient_energy(reference).mean().clamp_min(torch.finfo(torch.float32).tiny))
