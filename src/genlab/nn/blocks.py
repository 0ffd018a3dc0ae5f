"""Shared layers: MLPs and the image encoder/decoder backbones used by autoencoders and VAEs.

The conv encoder halves the resolution with each strided 4x4 conv; the decoder mirrors it with
4x4 transposed convs whose ``output_padding`` restores odd sizes exactly (28 -> 14 -> 7 -> 3 and
back 3 -> 7 -> 14 -> 28), so any image size works, not only powers of two.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import Tensor, nn

Norm = Literal["none", "batch"]


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, final_activation: nn.Module | None = None) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    if final_activation is not None:
        layers.append(final_activation)
    return nn.Sequential(*layers)


def _conv_sizes(size: int, depth: int) -> list[int]:
    sizes = [size]
    for _ in range(depth):
        sizes.append((sizes[-1] + 2 - 4) // 2 + 1)  # k=4, s=2, p=1
    return sizes


def _norm(kind: Norm, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_features): strided convs, then one linear layer."""

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], out_features: int, norm: Norm = "none") -> None:
        super().__init__()
        c, h, w = image_shape
        heights, widths = _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))
        if min(heights[-1], widths[-1]) < 1:
            raise ValueError(f"image {h}x{w} is too small for {len(channels)} stride-2 convs")
        layers: list[nn.Module] = []
        for i, out_c in enumerate(channels):
            layers += [nn.Conv2d(c, out_c, 4, 2, 1, bias=norm == "none"), _norm(norm, out_c), nn.LeakyReLU(0.2)]
            c = out_c
        self.convs = nn.Sequential(*layers)
        self.feature_shape = (c, heights[-1], widths[-1])
        self.fc = nn.Linear(math.prod(self.feature_shape), out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """(B, in_features) -> (B, out_channels, H, W): one linear layer, then transposed convs that
    mirror :class:`ConvEncoder` (``channels`` is given in encoder order)."""

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], in_features: int, out_channels: int, norm: Norm = "none") -> None:
        super().__init__()
        _, h, w = image_shape
        heights, widths = _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))
        rev = list(channels)[::-1]
        self.start_shape = (rev[0], heights[-1], widths[-1])
        self.fc = nn.Linear(in_features, math.prod(self.start_shape))
        layers: list[nn.Module] = []
        for i in range(len(rev)):
            # (in-1)*2 - 2 + 4 + output_padding = target size
            pad_h = heights[-2 - i] - 2 * heights[-1 - i]
            pad_w = widths[-2 - i] - 2 * widths[-1 - i]
            last = i == len(rev) - 1
            out_c = out_channels if last else rev[i + 1]
            layers.append(nn.ConvTranspose2d(rev[i], out_c, 4, 2, 1, output_padding=(pad_h, pad_w), bias=last or norm == "none"))
            if not last:
                layers += [_norm(norm, out_c), nn.ReLU()]
        self.convs = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = torch.relu(self.fc(z)).view(z.shape[0], *self.start_shape)
        return self.convs(h)


class MLPEncoder(nn.Module):
    """(B, C, H, W) or (B, D) -> (B, out_features)."""

    def __init__(self, input_shape: Sequence[int], hidden_dims: Sequence[int], out_features: int) -> None:
        super().__init__()
        self.net = mlp([math.prod(input_shape), *hidden_dims, out_features])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """(B, in_features) -> (B, out_features) flat; the output head reshapes."""

    def __init__(self, in_features: int, hidden_dims: Sequence[int], out_features: int) -> None:
        super().__init__()
        self.net = mlp([in_features, *hidden_dims, out_features])

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def build_encoder(architecture: str, image_shape: Sequence[int], out_features: int, *, hidden_dims: Sequence[int],
                  channels: Sequence[int], norm: Norm = "none") -> nn.Module:
    if architecture == "mlp":
        return MLPEncoder(image_shape, hidden_dims, out_features)
    return ConvEncoder(image_shape, channels, out_features, norm)


def build_decoder(architecture: str, image_shape: Sequence[int], latent_dim: int, params_per_pixel: int, *,
                  hidden_dims: Sequence[int], channels: Sequence[int], norm: Norm = "none") -> nn.Module:
    """Decoder whose output holds ``params_per_pixel`` raw values per pixel and channel, laid out
    for an output head: flat (B, P*C*H*W) for the MLP, (B, P*C, H, W) for the conv net."""
    if architecture == "mlp":
        return MLPDecoder(latent_dim, list(hidden_dims)[::-1], params_per_pixel * math.prod(image_shape))
    return ConvDecoder(image_shape, channels, latent_dim, params_per_pixel * image_shape[0], norm)
