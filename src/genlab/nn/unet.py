"""pix2pix networks: a U-Net generator with skip connections and a PatchGAN discriminator.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017
(https://arxiv.org/abs/1611.07004), Appendix 6.1. Both are pure ``nn.Module``s working on images in
[-1, 1]; the objective lives in :mod:`genlab.models.pix2pix`.

* :class:`UNetGenerator` halves the image with 4×4 stride-2 convolutions down to 1×1 (depth =
  log2(size), 8 at 256 as in the paper), then doubles it back; decoder level ``i`` sees the encoder
  output of the same resolution concatenated to its input, so low-level detail (edges, positions)
  skips the bottleneck. Dropout in the first three decoder levels is the generator's only noise and
  can be kept on at inference with an explicit ``torch.Generator`` (``dropout=True``).
* :class:`PatchDiscriminator` classifies overlapping patches of the concatenated (input, output)
  pair: ``n`` stride-2 convolutions and two stride-1 ones, all 4×4, give a receptive field of
  70×70 for ``n = 3`` (the paper's choice at 256; output map 30×30). Small images get
  ``n = log2(size) - 3`` (34×34 at 32 px) so the map keeps 6×6 patches instead of collapsing.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ..runtime import batch_rand

Norm = Literal["batch", "instance", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def unet_depth(size: int) -> int:
    """Number of stride-2 levels that take a ``size``×``size`` image down to 1×1."""
    if size < 16 or size & (size - 1):
        raise ValueError(f"U-Net needs a square power-of-two image size >= 16, got {size}")
    return int(math.log2(size))


def patch_layers_for(size: int) -> int:
    """Stride-2 layers of the PatchGAN: 3 (70×70 patches) from 64 px up, fewer below."""
    return max(1, min(3, unet_depth(size) - 3))


def patch_receptive_field(layers: int) -> int:
    """Receptive field of ``layers`` stride-2 + 2 stride-1 convolutions, kernel 4: 70 for 3."""
    jumps = [2**i for i in range(layers)] + [2**layers] * 2  # input stride before each conv
    return 1 + sum(3 * j for j in jumps)


class UNetGenerator(nn.Module):
    """(B, in_channels, S, S) in [-1, 1] -> (B, out_channels, S, S) in [-1, 1].

    Channels at encoder level ``i`` are ``num_filters * min(2**i, max_multiplier)`` (64..512 in the
    paper). The innermost level has no normalisation (its map is 1×1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: int,
        *,
        num_filters: int = 64,
        max_multiplier: int = 8,
        norm: Norm = "batch",
        dropout: float = 0.5,
        dropout_levels: int = 3,
    ) -> None:
        super().__init__()
        depth = unet_depth(size)
        widths = [num_filters * min(2**i, max_multiplier) for i in range(depth)]
        self.dropout, self.dropout_levels = dropout, min(dropout_levels, depth - 1)
        self.encoder = nn.ModuleList()
        previous = in_channels
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=norm != "batch" or i in (0, depth - 1)))
            if 0 < i < depth - 1:  # no norm on the raw input level nor on the 1×1 bottleneck
                layers.append(_norm(norm, width))
            self.encoder.append(nn.Sequential(*layers))
            previous = width
        # decoder level j upsamples to the resolution of encoder level depth-2-j and concatenates it
        self.decoder = nn.ModuleList()
        for j in range(depth - 1):
            skip = widths[depth - 2 - j]
            in_width = widths[-1] if j == 0 else 2 * widths[depth - 1 - j]
            self.decoder.append(nn.Sequential(
                nn.ReLU(),
                nn.ConvTranspose2d(in_width, skip, 4, 2, 1, bias=norm != "batch"),
                _norm(norm, skip),
            ))
        self.head = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1), nn.Tanh())

    def forward(self, x: Tensor, *, dropout: bool | None = None, generator: torch.Generator | None = None,
                bottleneck_scale: float = 1.0) -> Tensor:
        """``dropout``: None = on in training mode only; True keeps it on in eval mode, drawing the
        masks from ``generator`` (the global RNG when None). ``bottleneck_scale`` multiplies the 1×1
        code (0 shows what the skip connections alone carry)."""
        use_dropout = (self.training if dropout is None else dropout) and self.dropout > 0
        skips = []
        h = x
        for level in self.encoder:
            h = level(h)
            skips.append(h)
        h = skips.pop() * bottleneck_scale  # (B, widths[-1], 1, 1)
        for j, level in enumerate(self.decoder):
            h = level(h)
            if use_dropout and j < self.dropout_levels:
                keep = batch_rand(h.shape, generator=generator, device=h.device, dtype=h.dtype) >= self.dropout
                h = h * keep / (1 - self.dropout)
            h = torch.cat([h, skips.pop()], dim=1)  # (B, 2 * skip, S_j, S_j)
        return self.head(h)


class PatchDiscriminator(nn.Module):
    """(B, channels, S, S) -> (B, 1, S', S') logits, one per overlapping patch.

    ``channels`` is input + output channels: the discriminator judges a pair, not an image alone.
    """

    def __init__(self, channels: int, *, num_filters: int = 64, layers: int = 3, norm: Norm = "batch") -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(channels, num_filters, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = num_filters
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            out = num_filters * min(2**i, 8)
            modules += [nn.Conv2d(width, out, 4, stride, 1, bias=norm != "batch"), _norm(norm, out), nn.LeakyReLU(0.2)]
            width = out
        modules.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*modules)
        self.receptive_field = patch_receptive_field(layers)

    def forward(self, pair: Tensor) -> Tensor:
        return self.net(pair)
