"""The semantic classifier's augmentation in benchmarks/cyclegan_protocol.py (random_affine): the identity
map leaves images alone, and each image's scale is drawn log-uniform in [1/max_scale, max_scale], so a
centred disc's ink grows by scale**2 and shrinks as often as it grows."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cyclegan_protocol.py"


def protocol():
    spec = importlib.util.spec_from_file_location("cyclegan_protocol", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def discs(n: int, size: int = 28, radius: float = 5.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    disc = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) <= radius**2).float()
    return disc.expand(n, 1, size, size).clone()


def test_random_affine_with_no_range_is_the_identity():
    x = torch.rand(4, 1, 28, 28)
    y = protocol().random_affine(x, torch.Generator().manual_seed(0), max_scale=1.0, max_degrees=0.0, max_shift=0.0)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_random_affine_scales_both_ways_within_the_range():
    x = discs(400)
    y = protocol().random_affine(x, torch.Generator().manual_seed(1), max_scale=1.4, max_degrees=0.0, max_shift=0.0)
    scale = (y.sum((1, 2, 3)) / x.sum((1, 2, 3))).sqrt()  # ink grows with the area: scale**2
    assert scale.min() > 1 / 1.4 - 0.05 and scale.max() < 1.4 + 0.05
    assert (scale < 0.9).float().mean() > 0.2 and (scale > 1.1).float().mean() > 0.2  # shrinks and grows
    assert abs(float(scale.log().mean())) < 0.05  # log-uniform: centred on 1 (its sd over 400 draws is ~0.01)
