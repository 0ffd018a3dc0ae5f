"""Pixel ranges shared by the image-to-image families: the data is in [0, 1], the networks work in
[-1, 1] (a tanh output), and a grey image is shown beside a colour one by repeating its channel."""
from __future__ import annotations

from torch import Tensor


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2 - 1


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]."""
    return (x + 1) / 2


def as_rgb(x: Tensor, channels: int) -> Tensor:
    """(N, 1, H, W) repeated to ``channels`` channels when ``channels > 1``; other inputs unchanged."""
    return x.expand(-1, channels, -1, -1) if x.shape[1] == 1 and channels > 1 else x
