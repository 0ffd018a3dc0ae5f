"""A lightweight GAN that converges in few steps on few images, after FastGAN (Liu et al., "Towards
Faster and Stabilized GAN Training for High-fidelity Few-shot Image Synthesis", ICLR 2021), with
DiffAugment (Zhao et al. 2020, :mod:`genlab.nn.augment`) on everything the discriminator sees.

Generator: z (B, latent_dim) -> 4x4 by a transposed conv, then one upsampling block per octave
(nearest x2, 3x3 conv to twice the width, batch norm, GLU; a second conv at 8, 32 and 128 px as in
FastGAN) up to the image side R (64 or 128), then a 3x3 conv and tanh. Skip-layer excitation (SLE)
lets a coarse feature map gate the channels of one 16 times finer: the 4x4 map gates the 64x64 one,
the 8x8 map the 128x128 one — a cheap long skip that carries the global layout up the network.

Discriminator: a 3x3 stem at R, then residual down blocks (a 4x4 stride-2 conv path and an average
pool + 1x1 conv path, averaged) to 8x8, and a patch head (5x5 logits per image). Two small decoders
make it a self-supervised auto-encoder on *real* images: one rebuilds the whole image at R/2 from
the 8x8 features, the other one random quadrant (per image) at R/2 from that quadrant of the 16x16
features. FastGAN scores the reconstructions with a pretrained perceptual network; here the loss is
in pixel space (``reconstruction = "mse"`` or ``"l1"``), so nothing is downloaded.

Training is two phases of the one Trainer:

=================  ============================================================================
phase              minimises
=================  ============================================================================
``discriminator``  relu(1 - D(A(x))) + relu(1 + D(A(G(z)))) + w * recon(A(x))   (hinge + recon)
``generator``      -D(A(G(z)))  (hinge; or softplus(-D(A(G(z)))) with loss = "non-saturating")
=================  ============================================================================

A is the augmentation (``augment``, ``augment_p``; p ramps up over ``augment_ramp_steps``, or follows
ADA's overfitting heuristic with ``augment_target``: :class:`genlab.nn.augment.DiffAugmentSchedule`):
the same policy on real and fake images, independent draws for each, and in G's loss as well — it
is differentiable, so G learns through it. FastGAN's noise injection, second (low-resolution) D
branch and D-side SLE are left out to keep the model CPU-sized. Images are [0, 1] outside the model,
[-1, 1] inside; the EMA (``--train.ema_decay``) tracks the generator only.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config, check
from ..errors import ConfigError
from ..nn.augment import AugmentConfig, augment_schedule
from ..registry import register_model
from ..runtime import batch_randint, batch_randn
from .base import Batch, GenerativeModel, LossOutput, Phase, as_images

log = logging.getLogger(__name__)

RESOLUTIONS = (64, 128)
# width of the feature maps at each resolution, in units of the base width (FastGAN's nfc_multi)
GENERATOR_WIDTH = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1}
DISCRIMINATOR_WIDTH = {128: 1, 64: 2, 32: 4, 16: 8, 8: 16}
DECODER_WIDTH = 2  # D's decoders: this many times the base width at every resolution
DOUBLE_CONV = (8, 32, 128)  # FastGAN's UpBlockComp resolutions: two convs instead of one
EXCITATION_SOURCE = {64: 4, 128: 8}  # SLE: high resolution -> the low resolution that gates it
GLU_GAIN = 1 / math.sqrt(0.2933)  # a * sigmoid(b) of unit normals has variance E[sigmoid(b)^2] = 0.2933


@dataclasses.dataclass
class FastGANConfig(AugmentConfig):
    latent_dim: int = 128
    image_shape: tuple[int, ...] | None = None  # (C, R, R), filled from the data; R in 64, 128 (--data.image_size)
    # base widths: GENERATOR_WIDTH[r] (DISCRIMINATOR_WIDTH[r]) times this many maps at resolution r. The
    # defaults keep a 64 px step at batch 32 near half a second of one CPU core (FastGAN: 64 and 64)
    generator_channels: int = 8
    discriminator_channels: int = 4
    loss: Literal["hinge", "non-saturating"] = "hinge"  # the generator's; D's is always the hinge
    reconstruction: Literal["mse", "l1"] = "mse"  # pixel loss of D's decoders on real images
    reconstruction_weight: float = 1.0
    augment: str = "color,translation"  # DiffAugment policy; FastGAN ships with colour and translation on
    spectral_norm: bool = True  # on every conv of D, as FastGAN
    discriminator_lr: float | None = None  # None: train.lr
    generator_lr: float | None = None
    adam_betas: tuple[float, float] | None = None  # None: train.betas

    def validate(self) -> None:
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        if self.image_shape is not None:
            check(len(self.image_shape) == 3, f"model.image_shape must be (C, H, W), got {self.image_shape}")
            c, h, w = self.image_shape
            check(h == w and h in RESOLUTIONS,
                  f"fastgan needs square images of side 64 or 128, got {h}x{w}; resize with --data.image_size=64")
            check(c >= 1, f"model.image_shape needs >= 1 channel, got {c}")
        check(self.generator_channels >= 1 and self.discriminator_channels >= 1,
              "model.generator_channels and model.discriminator_channels must be >= 1")
        check(self.reconstruction_weight >= 0, f"model.reconstruction_weight must be >= 0, got {self.reconstruction_weight}")
        super().validate()


# ---------------------------------------------------------------------- generator

class UpBlock(nn.Module):
    """(B, in, r/2, r/2) -> (B, out, r, r): nearest x2, then ``convs`` x (3x3 conv to 2*out, BN, GLU)."""

    def __init__(self, in_channels: int, out_channels: int, convs: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")]
        for i in range(convs):
            # GLU halves the channels: one half gates the other (a learned, per-pixel soft mask)
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, 2 * out_channels, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(2 * out_channels), nn.GLU(dim=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SkipExcitation(nn.Module):
    """Skip-layer excitation: ``high`` (B, C_high, H, W) times per-channel gates in (0, 1) computed from
    ``low`` (B, C_low, h, w): average-pool to 4x4, a 4x4 conv to 1x1, Swish, a 1x1 conv, sigmoid."""

    def __init__(self, low_channels: int, high_channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(low_channels, high_channels, 4, 1, 0, bias=False), nn.SiLU(),
            nn.Conv2d(high_channels, high_channels, 1, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return high * self.gate(low)  # (B, C_high, 1, 1) gates broadcast over the pixels


class FastGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, resolution: int, channels: int, base: int) -> None:
        super().__init__()
        width = {r: max(1, m * base) for r, m in GENERATOR_WIDTH.items() if r <= resolution}
        self.resolutions = [r for r in sorted(width) if r > 4]
        self.initial = nn.Sequential(nn.ConvTranspose2d(latent_dim, 2 * width[4], 4, 1, 0, bias=False),
                                     nn.BatchNorm2d(2 * width[4]), nn.GLU(dim=1))  # (B, w4, 4, 4)
        self.blocks = nn.ModuleList(UpBlock(width[r // 2], width[r], 2 if r in DOUBLE_CONV else 1) for r in self.resolutions)
        self.excitations = nn.ModuleDict({str(r): SkipExcitation(width[low], width[r])
                                          for r, low in EXCITATION_SOURCE.items() if r <= resolution})
        self.to_image = nn.Conv2d(width[resolution], channels, 3, 1, 1)
        self._init_unit_variance(latent_dim)

    @torch.no_grad()
    def _init_unit_variance(self, latent_dim: int) -> None:
        """Start every batch norm's input at variance ~1, the running variance's initial value. PyTorch's
        default init (variance 1/(3 fan_in)) and GLU's gating shrink the signal ~10x per block, to ~1e-8
        before the last norm; batch norm makes the weights' scale irrelevant to training, so it would stay
        that small. An eval-mode generator whose running statistics are still near their initial values
        (an EMA generator averages them too, with a long memory) then divides by ~1 instead of ~1e-4 at
        every norm and samples flat grey images for thousands of steps."""
        for module in self.blocks.modules():
            if isinstance(module, nn.Conv2d):  # its input is a GLU output, of variance E[sigmoid(N(0,1))^2]
                nn.init.normal_(module.weight, std=GLU_GAIN / math.sqrt(module.weight[0].numel()))
        # the first layer sees z (B, latent_dim, 1, 1): each output pixel sums latent_dim unit-variance terms
        nn.init.normal_(self.initial[0].weight, std=latent_dim ** -0.5)

    def forward(self, z: Tensor) -> Tensor:
        """(B, latent_dim) -> images (B, C, R, R) in [-1, 1]."""
        x = self.initial(z[:, :, None, None])
        features = {4: x}
        for r, block in zip(self.resolutions, self.blocks):
            x = block(x)
            if str(r) in self.excitations:
                x = self.excitations[str(r)](features[EXCITATION_SOURCE[r]], x)
            features[r] = x
        return torch.tanh(self.to_image(x))


# ---------------------------------------------------------------------- discriminator

def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


class DownBlock(nn.Module):
    """(B, in, r, r) -> (B, out, r/2, r/2): the mean of a conv path and a pooled shortcut (FastGAN's DownBlockComp)."""

    def __init__(self, in_channels: int, out_channels: int, sn: bool) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _sn(nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False), sn), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2),
            _sn(nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), sn), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), _sn(nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False), sn),
                                      nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.shortcut(x)) / 2


class Decoder(nn.Module):
    """D's reconstruction head: (B, in, 8, 8) -> (B, channels, size, size) in [-1, 1] by up blocks of
    ``width`` maps. It only has to make D's features informative, so it is kept narrow (cheap)."""

    def __init__(self, in_channels: int, size: int, channels: int, width: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        previous, r = in_channels, 8
        while r < size:
            r *= 2
            blocks.append(UpBlock(previous, width))
            previous = width
        self.net = nn.Sequential(*blocks, nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FastGANDiscriminator(nn.Module):
    def __init__(self, resolution: int, channels: int, base: int, sn: bool) -> None:
        super().__init__()
        width = {r: max(1, m * base) for r, m in DISCRIMINATOR_WIDTH.items() if r <= resolution}
        self.stem = nn.Sequential(_sn(nn.Conv2d(channels, width[resolution], 3, 1, 1), sn), nn.LeakyReLU(0.2))
        self.to_16 = nn.Sequential(*(DownBlock(width[r], width[r // 2], sn) for r in sorted(width, reverse=True) if r > 16))
        self.to_8 = DownBlock(width[16], width[8], sn)
        self.head = nn.Sequential(  # patch logits: 8x8 -> 5x5
            _sn(nn.Conv2d(width[8], width[8], 1, 1, 0, bias=False), sn), nn.BatchNorm2d(width[8]), nn.LeakyReLU(0.2),
            _sn(nn.Conv2d(width[8], 1, 4, 1, 0), sn), nn.Flatten(),
        )
        self.decoder_whole = Decoder(width[8], resolution // 2, channels, DECODER_WIDTH * base)
        self.decoder_part = Decoder(width[16], resolution // 2, channels, DECODER_WIDTH * base)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, C, R, R) -> features (B, C16, 16, 16) and (B, C8, 8, 8)."""
        f16 = self.to_16(self.stem(x))
        return f16, self.to_8(f16)

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, C, R, R) in [-1, 1] -> patch logits (B, 25)."""
        return self.head(self.features(x)[1])


def quadrant(x: Tensor, part: Tensor) -> Tensor:
    """The ``part[b]``-th quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of each
    ``x[b]`` (B, C, H, W) -> (B, C, H/2, W/2), one gather for the batch."""
    b, c, h, w = x.shape
    quads = x.reshape(b, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5).reshape(b, 4, c, h // 2, w // 2)
    return quads[torch.arange(b, device=x.device), part]


# ---------------------------------------------------------------------- the family

@register_model("fastgan")
class FastGAN(GenerativeModel):
    config_class: ClassVar[type[Config]] = FastGANConfig
    config: FastGANConfig
    # FastGAN's Adam (lr 2e-4, betas 0.5/0.999), batch 32 (the CPU-sized step; FastGAN uses 8 on a GPU)
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "train": {"lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 32, "ema_decay": 0.999},
        "data": {"image_size": 64},
    }

    def __init__(self, config: FastGANConfig) -> None:
        super().__init__(config)
        cfg = config
        if cfg.image_shape is None:
            raise ConfigError("fastgan needs model.image_shape (filled from --data)")
        c, r, _ = cfg.image_shape
        self.generator = FastGANGenerator(cfg.latent_dim, r, c, cfg.generator_channels)
        self.discriminator = FastGANDiscriminator(r, c, cfg.discriminator_channels, cfg.spectral_norm)
        self.augmentation = augment_schedule(cfg, "hinge")  # its state (ramp or adaptive p) is saved with the weights

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # ------------------------------------------------------------------ training
    def phases(self) -> list[Phase]:
        cfg = self.config
        return [Phase("discriminator", ("discriminator",), 1, cfg.discriminator_lr, cfg.adam_betas),
                Phase("generator", ("generator",), 1, cfg.generator_lr, cfg.adam_betas)]

    def ema_modules(self) -> list[str]:
        return ["generator"]

    @property
    def augment_probability(self) -> float:
        return self.augmentation.probability

    def _augment(self, x: Tensor) -> Tensor:
        """DiffAugment, applied alike to everything D sees (real and fake, in both phases)."""
        return self.augmentation(x)

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
        # a ramp's step count was the model's own buffer before the schedule held it
        if prefix + "steps_trained" in state_dict:
            state_dict[prefix + "augmentation.steps_trained"] = state_dict.pop(prefix + "steps_trained")
        super()._load_from_state_dict(state_dict, prefix, *args)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        x = as_images(batch[0], self.config.image_shape, "FastGAN") * 2 - 1  # (B, C, R, R) in [-1, 1]
        z = batch_randn((x.shape[0], self.config.latent_dim), device=x.device, dtype=x.dtype)
        if phase == "discriminator":
            return self._discriminator_loss(x, z)
        if phase == "generator":
            score = self.discriminator(self._augment(self.generator(z)))
            adv = -score.mean() if self.config.loss == "hinge" else F.softplus(-score).mean()
            return LossOutput(adv, {"adv": adv.detach()})
        raise ConfigError(f"FastGAN has phases 'discriminator' and 'generator', not {phase!r}")

    def _discriminator_loss(self, x: Tensor, z: Tensor) -> LossOutput:
        cfg = self.config
        with torch.no_grad():
            fake = self.generator(z)  # G is not updated in this phase
        real = self._augment(x)
        f16, f8 = self.discriminator.features(real)
        real_score = self.discriminator.head(f8)  # (B, 25) patch logits
        fake_score = self.discriminator(self._augment(fake))
        adv = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
        recon = self.reconstruction_loss(real, f16, f8)
        total = adv + cfg.reconstruction_weight * recon
        # recon keeps its graph (the Trainer detaches terms), so its gradients can be inspected
        return LossOutput(total, {"adv": adv.detach(), "recon": recon, "real_score": real_score.mean().detach(),
                                  "fake_score": fake_score.mean().detach(),
                                  **self.augmentation.step(self.training, real_score)})

    def reconstruction_loss(self, real: Tensor, f16: Tensor, f8: Tensor) -> Tensor:
        """D as an auto-encoder of real images (B, C, R, R): the whole image at R/2 from the 8x8 features,
        plus a random quadrant per image, at R/2 = its own size, from that quadrant of the 16x16 features."""
        part = batch_randint(0, 4, (real.shape[0],), device=real.device)  # (B,)
        whole = self.discriminator.decoder_whole(f8)  # (B, C, R/2, R/2)
        piece = self.discriminator.decoder_part(quadrant(f16, part))  # from (B, C16, 8, 8)
        distance = F.mse_loss if self.config.reconstruction == "mse" else F.l1_loss
        return distance(whole, F.avg_pool2d(real, 2)) + distance(piece, quadrant(real, part))

    # ------------------------------------------------------------------ generation
    def decode(self, z: Tensor, **_: Any) -> Tensor:
        """Latents (B, latent_dim) -> images (B, C, R, R) in [0, 1]."""
        return (self.generator(z) + 1) / 2

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **_: Any) -> Tensor:
        """``n`` images in [0, 1] from z ~ N(0, I)."""
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.decode(z)

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor | None:
        return self.sample(64, generator=generator)
