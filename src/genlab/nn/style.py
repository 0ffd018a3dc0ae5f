"""StyleGAN2's layers in plain PyTorch, no compiled ops (Karras et al., "Analyzing and Improving the
Image Quality of StyleGAN", CVPR 2020; the mapping network, noise inputs and style mixing come from
Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019).

* Equalised learning rate: weights are stored as N(0, 1) / lr_multiplier and scaled at run time by
  ``lr_multiplier / sqrt(fan_in)``, so Adam's per-parameter step sizes move every layer at the same
  relative speed; ``lr_multiplier = 0.01`` is the mapping network's slower learning rate.
* Modulated convolution: a per-sample style ``s`` scales the weight's input channels, and
  demodulation divides each output channel by the norm of its modulated weight, which restores unit
  output variance for unit-variance input (eq. 1-3 of StyleGAN2). The batch runs as ONE grouped
  convolution (``implementation="grouped"``: sample b's weights are group b) or as the equivalent
  "scaled" form (scale the input by ``s``, one shared-weight convolution, scale the output by the
  demodulation coefficients), which StyleGAN2 itself uses when it is faster; both are exact.
* Noise: a single-channel Gaussian image per layer, added with a learned strength that starts at 0,
  so noise is irrelevant until training finds a use for it: one scalar per layer (StyleGAN2,
  ``noise_strength="layer"``) or one per feature map (StyleGAN's original "learned per-channel scaling
  factors", ``noise_strength="channel"``), which lets a layer put noise into some maps and not others.
* Skip generator (ToRGB at every resolution, upsampled and summed) and residual discriminator with
  minibatch standard deviation (the "skip G / residual D" configuration of StyleGAN2, table 1).

Resampling uses bilinear up-sampling and 2x2 average pooling instead of the FIR filters of the
reference: the same role (low-pass before changing resolution) without a custom op.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .discriminators import MinibatchStdDev

ModconvImplementation = Literal["grouped", "scaled"]
SQRT2 = math.sqrt(2.0)


def leaky_relu_gain(x: Tensor) -> Tensor:
    """Leaky ReLU (slope 0.2) times sqrt(2): keeps the second moment of N(0, 1) input near 1."""
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; ``activation=True`` applies :func:`leaky_relu_gain`."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_gain if self.bias is not None else None
        out = F.linear(x, self.weight * self.weight_gain, bias)
        return leaky_relu_gain(out) if self.activation else out


class EqualConv2d(nn.Module):
    """Same-padded convolution with equalised learning rate; ``down=True`` follows it with 2x2
    average pooling; ``activation=True`` applies :func:`leaky_relu_gain`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: bool = False, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation, self.down = activation, down

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)
        if self.down:
            out = F.avg_pool2d(out, 2)
        return leaky_relu_gain(out) if self.activation else out


class MappingNetwork(nn.Module):
    """z -> w: normalise z to unit second moment, then ``depth`` leaky-ReLU layers at a reduced
    learning rate. Tracks the running mean of w (``w_avg``, a buffer: saved with the weights), the
    centre that truncation pulls towards."""

    def __init__(self, latent_dim: int, w_dim: int, depth: int, *, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        sizes = [latent_dim] + [w_dim] * depth
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_multiplier=lr_multiplier, activation=True)
                                      for a, b in zip(sizes[:-1], sizes[1:])])
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, *, update_w_avg: bool = False) -> Tensor:
        z = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()  # (B, latent_dim)
        w = self.layers(z)  # (B, w_dim)
        if update_w_avg:
            with torch.no_grad():
                # the tracked mean stays fp32 when the mapping runs under bf16 autocast
                self.w_avg.lerp_(w.detach().mean(0).to(self.w_avg.dtype), 1.0 - self.w_avg_beta)
        return w


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True,
                     implementation: ModconvImplementation = "grouped", eps: float = 1e-8) -> Tensor:
    """Modulated (and demodulated) convolution with 'same' padding.

    x: (B, I, H, W); weight: (O, I, k, k), already scaled; styles: (B, I) -> (B, O, H, W).
    ``grouped``: build every sample's weights (B, O, I, k, k) and run one convolution with B groups.
    ``scaled``: x * s, one shared-weight convolution, output * demodulation: the same numbers
    (linearity of convolution) without materialising B weight tensors.
    """
    b, i, h, w = x.shape
    o, _, k, _ = weight.shape
    if implementation == "grouped":
        per_sample = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)
        if demodulate:
            per_sample = per_sample * (per_sample.square().sum(dim=(2, 3, 4), keepdim=True) + eps).rsqrt()
        out = F.conv2d(x.reshape(1, b * i, h, w), per_sample.reshape(b * o, i, k, k), padding=k // 2, groups=b)
        return out.reshape(b, o, h, w)
    if implementation == "scaled":
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=k // 2)  # (B, O, H, W)
        if demodulate:
            # sum_{i,k} (w_oik s_bi)^2 = (s^2) @ (sum_k w_oik^2)^T: (B, I) @ (I, O)
            coefficients = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + eps).rsqrt()  # (B, O)
            out = out * coefficients[:, :, None, None]
        return out
    raise ValueError(f"unknown modulated-convolution implementation {implementation!r}; valid: grouped, scaled")


class ModulatedConv2d(nn.Module):
    """A learned affine map of w gives the per-input-channel style (bias 1: starts as identity
    modulation); the convolution is modulated by it and, if ``demodulate``, demodulated."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, implementation: ModconvImplementation = "grouped") -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.implementation: ModconvImplementation = implementation

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # (B, I)
        return modulated_conv2d(x, self.weight * self.weight_gain, styles, demodulate=self.demodulate,
                                implementation=self.implementation)


NoiseStrength = Literal["layer", "channel"]


class NoiseInjection(nn.Module):
    """x + strength * noise, the learned strength initialised to 0: a scalar (``channels=None``) or
    one value per feature map, shape (C, 1, 1), given ``channels``."""

    def __init__(self, channels: int | None = None) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()) if channels is None else torch.zeros(channels, 1, 1))

    def magnitude(self) -> float:
        """The root-mean-square strength: |s| for a scalar, over the feature maps otherwise."""
        return float(self.strength.detach().float().pow(2).mean().sqrt())

    def forward(self, x: Tensor, noise: Tensor | None) -> Tensor:
        return x if noise is None else x + self.strength * noise  # noise: (B or 1, 1, H, W)


class StyledConv(nn.Module):
    """(up-sample) -> modulated 3x3 conv -> noise -> bias -> leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, up: bool = False,
                 implementation: ModconvImplementation = "grouped", noise_strength: NoiseStrength = "layer") -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, implementation=implementation)
        self.noise = NoiseInjection(out_channels if noise_strength == "channel" else None)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.noise(self.conv(x, w), noise)
        return leaky_relu_gain(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation (it sets the output's colour scale)."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int, *,
                 implementation: ModconvImplementation = "grouped") -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False, implementation=implementation)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: channel_base / resolution, capped at channel_max, at least 1."""
    return max(1, min(channel_base // resolution, channel_max))


class SynthesisNetwork(nn.Module):
    """Learned 4x4 constant -> one styled conv at 4x4 -> per resolution up to ``resolution``: an
    up-sampling styled conv and a styled conv; a ToRGB after each resolution, summed through
    up-sampling skips.

    Conv layer j (0 .. num_convs-1) takes ``ws[:, j]`` and noise input j; the ToRGB after conv j
    takes ``ws[:, j + 1]`` (StyleGAN2's indexing), so there are ``num_ws = num_convs + 1`` styles.
    """

    def __init__(self, w_dim: int, resolution: int, image_channels: int, *, channel_base: int, channel_max: int,
                 implementation: ModconvImplementation = "grouped", noise_strength: NoiseStrength = "layer") -> None:
        super().__init__()
        self.resolutions = [2 ** k for k in range(2, int(math.log2(resolution)) + 1)]  # [4, 8, ..., R]
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        convs: list[StyledConv] = [StyledConv(ch[0], ch[0], w_dim, implementation=implementation,
                                              noise_strength=noise_strength)]
        to_rgb: list[ToRGB] = [ToRGB(ch[0], image_channels, w_dim, implementation=implementation)]
        self.conv_resolutions = [4]
        for prev, cur, r in zip(ch[:-1], ch[1:], self.resolutions[1:]):
            convs += [StyledConv(prev, cur, w_dim, up=True, implementation=implementation, noise_strength=noise_strength),
                      StyledConv(cur, cur, w_dim, implementation=implementation, noise_strength=noise_strength)]
            to_rgb.append(ToRGB(cur, image_channels, w_dim, implementation=implementation))
            self.conv_resolutions += [r, r]
        self.convs, self.to_rgb = nn.ModuleList(convs), nn.ModuleList(to_rgb)
        self.num_convs = len(convs)
        self.num_ws = self.num_convs + 1
        for j, r in enumerate(self.conv_resolutions):  # fixed noise for noise="const", saved with the weights
            self.register_buffer(f"noise_const_{j}", torch.randn(1, 1, r, r))

    def const_noise(self) -> list[Tensor]:
        return [getattr(self, f"noise_const_{j}") for j in range(self.num_convs)]

    def set_implementation(self, implementation: ModconvImplementation) -> None:
        for module in self.modules():
            if isinstance(module, ModulatedConv2d):
                module.implementation = implementation

    def forward(self, ws: Tensor, noise: Sequence[Tensor | None]) -> Tensor:
        """ws: (B, num_ws, w_dim); noise: one (B or 1, 1, r, r) tensor or None per conv -> (B, C, R, R)."""
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # (B, ch, 4, 4)
        x = self.convs[0](x, ws[:, 0], noise[0])
        image = self.to_rgb[0](x, ws[:, 1])
        for block in range(1, len(self.resolutions)):
            j = 2 * block - 1
            x = self.convs[j](x, ws[:, j], noise[j])
            x = self.convs[j + 1](x, ws[:, j + 1], noise[j + 1])
            image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False) + self.to_rgb[block](x, ws[:, j + 2])
        return image


class ResidualBlock(nn.Module):
    """Discriminator block: two 3x3 convs (the second halves the resolution) beside a 1x1 skip that
    pools, summed and scaled by 1/sqrt(2) to keep the variance."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv2 = EqualConv2d(in_channels, out_channels, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + self.conv2(self.conv1(x))) / SQRT2


class ResidualDiscriminator(nn.Module):
    """FromRGB -> residual blocks R -> 4 -> minibatch stddev -> 3x3 conv -> dense -> a logit per image."""

    def __init__(self, resolution: int, image_channels: int, *, channel_base: int, channel_max: int,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        resolutions = [2 ** k for k in range(int(math.log2(resolution)), 1, -1)]  # [R, ..., 4]
        ch = [channels_at(r, channel_base, channel_max) for r in resolutions]
        self.from_rgb = EqualConv2d(image_channels, ch[0], 1, activation=True)
        self.blocks = nn.Sequential(*[ResidualBlock(a, b) for a, b in zip(ch[:-1], ch[1:])])
        self.minibatch_std = MinibatchStdDev(mbstd_group)
        self.conv = EqualConv2d(ch[-1] + 1, ch[-1], 3, activation=True)
        self.dense = EqualLinear(ch[-1] * 16, ch[-1], activation=True)
        self.out = EqualLinear(ch[-1], 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.from_rgb(x))  # (B, ch, 4, 4)
        h = self.conv(self.minibatch_std(h))
        return self.out(self.dense(h.flatten(1))).squeeze(1)  # (B,)


class StyleGenerator(nn.Module):
    """Mapping network + synthesis network: the generator as one module (one EMA, one phase)."""

    def __init__(self, latent_dim: int, w_dim: int, mapping_depth: int, resolution: int, image_channels: int, *,
                 channel_base: int, channel_max: int, lr_multiplier: float = 0.01, w_avg_beta: float = 0.995,
                 implementation: ModconvImplementation = "grouped", noise_strength: NoiseStrength = "layer") -> None:
        super().__init__()
        self.mapping = MappingNetwork(latent_dim, w_dim, mapping_depth, lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, resolution, image_channels, channel_base=channel_base,
                                          channel_max=channel_max, implementation=implementation,
                                          noise_strength=noise_strength)
        self.num_ws = self.synthesis.num_ws

    def forward(self, ws: Tensor, noise: Sequence[Tensor | None]) -> Tensor:
        return self.synthesis(ws, noise)  # (B, C, R, R) in about [-1, 1]
