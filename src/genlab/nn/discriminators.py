"""GAN discriminators: an MLP for vectors and the DCGAN convolutional net for images.

Both end in a shared pattern — features ``h`` (B, F), then an unconditional score ``w·h + b`` plus,
when ``num_classes`` is set, the projection term ``<embed(y), h>`` of Miyato & Koyama (2018, "cGANs
with Projection Discriminator"). Options that change what the discriminator sees:

* ``spectral_norm``: every weight divided by its largest singular value (Miyato et al. 2018).
* ``minibatch_std``: the standard deviation of features across a small group of samples is appended
  as an extra feature (Karras et al. 2018), so a collapsed batch is visible to the critic.
* ``pack``: the input holds ``pack`` samples stacked feature-/channel-wise (PacGAN, Lin et al. 2018);
  the caller reshapes, the net only needs the wider input (``in_features`` / channels × pack).

Networks are pure: they take tensors and return scores (B,), nothing else.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError

Norm = Literal["batch", "layer", "none"]


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


class MinibatchStdDev(nn.Module):
    """Append the mean over features of the across-group standard deviation (one extra feature or
    channel). Groups are ``group_size`` consecutive samples; falls back to the whole batch when the
    batch does not divide."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, h: Tensor) -> Tensor:
        b = h.shape[0]
        g = self.group_size if b % self.group_size == 0 else b
        grouped = h.reshape(g, b // g, *h.shape[1:])  # (G, B/G, ...)
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B/G, ...)
        stat = std.flatten(1).mean(dim=1)  # (B/G,)
        stat = stat.repeat(g)  # (B,), sample i belongs to group i % (B/G)
        if h.dim() == 2:
            return torch.cat([h, stat[:, None]], dim=1)
        return torch.cat([h, stat.view(b, 1, 1, 1).expand(b, 1, *h.shape[2:])], dim=1)


class _ProjectionHead(nn.Module):
    """score = w·h + b (+ <embed(y), h> with labels). With packing, the ``pack`` labels of one
    packed input are embedded and summed (a projection onto the sum of their class vectors)."""

    def __init__(self, features: int, num_classes: int | None, spectral_norm: bool) -> None:
        super().__init__()
        self.linear = _sn(nn.Linear(features, 1), spectral_norm)
        self.embed = _sn(nn.Embedding(num_classes, features), spectral_norm) if num_classes else None

    def forward(self, h: Tensor, y: Tensor | None) -> Tensor:
        score = self.linear(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ConfigError("this discriminator is class-conditional and needs labels")
            e = self.embed(y.reshape(h.shape[0], -1))  # (B, pack, F)
            score = score + (e.sum(dim=1) * h).sum(dim=1)
        return score


class MLPDiscriminator(nn.Module):
    """``in_features`` -> hidden layers (LeakyReLU 0.2) -> score. ``hidden=()`` is a linear critic."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (128, 128, 128),
        *,
        num_classes: int | None = None,
        spectral_norm: bool = False,
        minibatch_std: bool = False,
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for i, h in enumerate(hidden):
            layers.append(_sn(nn.Linear(width, h), spectral_norm))
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm1d(h))
            elif norm == "layer":
                layers.append(nn.LayerNorm(h))
            layers.append(nn.LeakyReLU(0.2))
            width = h
        self.body = nn.Sequential(*layers)
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        self.head = _ProjectionHead(width + int(minibatch_std), num_classes, spectral_norm)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.body(x.flatten(1))  # (B, F)
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        return self.head(h, y)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016): 4×4 stride-2 convolutions halve the size from
    ``image_size`` (a power of two, or 28) down to 4×4 (7×7), doubling channels (capped at 8×base);
    no norm on the first layer, LeakyReLU 0.2, then a valid convolution over the last map.
    Batch norm is the paper's choice; gradient penalties need ``norm="none"`` or ``"layer"``."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        *,
        base_channels: int = 64,
        num_classes: int | None = None,
        spectral_norm: bool = False,
        minibatch_std: bool = False,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        blocks, final = 0, image_size  # halve while even and above 7: 64 -> 4x4, 28 -> 7x7
        while final % 2 == 0 and final > 7:
            final, blocks = final // 2, blocks + 1
        if blocks == 0 or final < 3:
            raise ConfigError(f"ConvDiscriminator needs an image size of the form s*2^k with 3 <= s <= 7, k >= 1 "
                              f"(16, 28, 32, 64, 128, ...), got {image_size}")
        layers: list[nn.Module] = []
        width, channels = in_channels, base_channels
        for i in range(blocks):
            layers.append(_sn(nn.Conv2d(width, channels, 4, 2, 1, bias=norm != "batch" or i == 0), spectral_norm))
            if i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(channels))
            elif i > 0 and norm == "layer":
                layers.append(nn.GroupNorm(1, channels))  # layer norm over (C, H, W)
            layers.append(nn.LeakyReLU(0.2))
            width, channels = channels, min(channels * 2, base_channels * 8)
        self.body = nn.Sequential(*layers)  # (B, width, final, final)
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        self.to_features = nn.Sequential(
            _sn(nn.Conv2d(width + int(minibatch_std), width, final, 1, 0), spectral_norm),  # (B, width, 1, 1)
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = _ProjectionHead(width, num_classes, spectral_norm)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.body(x)
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        return self.head(self.to_features(h), y)
