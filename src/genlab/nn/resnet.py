"""The ResNet translation generator of CycleGAN.

Johnson, Alahi, Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
ECCV 2016, as used by Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017 (https://arxiv.org/abs/1703.10593), Appendix 7.2:

    c7s1-64, d128, d256, R256 × n, u128, u64, c7s1-out, tanh

a 7×7 stem, two stride-2 3×3 convolutions down, ``n`` residual blocks (6 at 128 px, 9 at 256 px in
the paper), two stride-2 transposed convolutions up and a 7×7 head. Every convolution that is not
strided pads by reflection (no dark border for the discriminator to spot); normalisation is
instance norm by default, so a translation does not depend on the other images of the batch.
A pure ``nn.Module`` on images in [-1, 1]; the objective lives in :mod:`genlab.models.cyclegan`.
"""
from __future__ import annotations

from torch import Tensor, nn

from .unet import Norm, _norm


def _conv(in_channels: int, out_channels: int, kernel: int, norm: Norm) -> list[nn.Module]:
    """Reflection-padded stride-1 convolution + norm: the size is kept."""
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel, bias=norm != "batch"),
            _norm(norm, out_channels)]


class ResidualBlock(nn.Module):
    """x + (pad, conv3, norm, ReLU, pad, conv3, norm)(x): (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels, 3, norm), nn.ReLU(), *_conv(channels, channels, 3, norm))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, in_channels, S, S) in [-1, 1] -> (B, out_channels, S, S) in [-1, 1]; S divisible by 4
    (two halvings) and at least 8 (reflection padding needs a map wider than the pad)."""

    def __init__(self, in_channels: int, out_channels: int, *, num_filters: int = 64, residual_blocks: int = 9,
                 norm: Norm = "instance") -> None:
        super().__init__()
        if residual_blocks < 1:
            raise ValueError(f"residual_blocks must be >= 1, got {residual_blocks}")
        nf = num_filters
        layers: list[nn.Module] = [*_conv(in_channels, nf, 7, norm), nn.ReLU()]
        for width in (nf, 2 * nf):  # d128, d256
            layers += [nn.Conv2d(width, 2 * width, 3, 2, 1, bias=norm != "batch"), _norm(norm, 2 * width), nn.ReLU()]
        layers += [ResidualBlock(4 * nf, norm) for _ in range(residual_blocks)]  # (B, 4nf, S/4, S/4)
        for width in (4 * nf, 2 * nf):  # u128, u64
            layers += [nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1, bias=norm != "batch"),
                       _norm(norm, width // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(nf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
