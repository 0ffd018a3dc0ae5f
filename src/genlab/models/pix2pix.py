"""pix2pix: paired image-to-image translation with a conditional GAN.

Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017 (https://arxiv.org/abs/1611.07004). A U-Net generator maps the input ``a`` to an output;
a PatchGAN discriminator judges (input, output) pairs patch by patch. The generator minimises

    L = adversarial_weight · L_GAN(G, D) + λ · |G(a) - b|₁          (λ = ``l1_weight`` = 100)

where L1 keeps the low frequencies right and the adversarial term makes the output sharp and,
where the target is ambiguous, commits to one plausible answer instead of their average. With
``adversarial_weight = 0`` the model is the L1-only baseline (no discriminator is built).

Training is two phases of the one Trainer: ``discriminator`` (real pairs vs the generator's pairs,
the objective halved as in the paper) then ``generator``; each has its own Adam (lr 2e-4, betas
(0.5, 0.999) by default — ``generator_lr``/``discriminator_lr``/``betas`` here override ``train.lr``
and ``train.betas``; set them to null to use the train config).

Batches are ``(a, b)``: input and target in [0, 1], (B, C, H, W); the networks work in [-1, 1].
λ multiplies the L1 distance in that [-1, 1] range, as in the paper; the logged ``l1`` is in [0, 1]
pixel units (half of it). The only noise is dropout: ``translate(a, n=4, stochastic=True,
generator=g)`` keeps it on at inference to draw several outputs for one input. The evaluator, the
end-of-training figure and ``genlab translate`` are in ``genlab.reports.pix2pix``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config, check
from ..errors import DataError
from ..nn.pixels import as_rgb, to_signed, to_unit
from ..nn.unet import PatchDiscriminator, UNetGenerator, patch_layers_for
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, Phase, as_images


@dataclasses.dataclass
class Pix2PixConfig(Config):
    image_shape: tuple[int, int, int] = (3, 64, 64)  # output / target (C, S, S); S a power of two >= 16
    input_shape: tuple[int, int, int] | None = None  # input (C, S, S); None = image_shape
    num_filters: int = 64  # generator width at full resolution (doubles per level, capped)
    discriminator_filters: int = 64
    max_multiplier: int = 8  # widths stop doubling at num_filters * 8 (512 in the paper)
    patch_layers: int | None = None  # stride-2 layers of the PatchGAN; None = 3 (70×70) from 64 px, fewer below
    norm: Literal["batch", "instance", "none"] = "batch"
    dropout: float = 0.5  # in the first three decoder levels; the generator's only noise
    l1_weight: float = 100.0  # λ
    adversarial_weight: float = 1.0  # 0 = the L1-only baseline
    gan_loss: Literal["vanilla", "lsgan"] = "vanilla"
    generator_lr: float | None = 2e-4
    discriminator_lr: float | None = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)
    discriminator_every: int = 1  # discriminator steps on every k-th batch

    def validate(self) -> None:
        for name in ("image_shape", "input_shape"):
            shape = getattr(self, name)
            if shape is None:
                continue
            c, h, w = shape
            check(c >= 1, f"model.{name} needs >= 1 channel, got {shape}")
            check(h == w and h >= 16 and not h & (h - 1),
                  f"pix2pix needs square power-of-two images >= 16 px, got model.{name}={list(shape)}; set data.image_size")
        if self.input_shape is not None:
            check(tuple(self.input_shape[1:]) == tuple(self.image_shape[1:]),
                  f"input and output sizes differ: {list(self.input_shape)} vs {list(self.image_shape)}")
        check(self.num_filters >= 1 and self.discriminator_filters >= 1, "model.num_filters and discriminator_filters must be >= 1")
        check(self.max_multiplier >= 1, f"model.max_multiplier must be >= 1, got {self.max_multiplier}")
        check(self.patch_layers is None or self.patch_layers >= 1, f"model.patch_layers must be >= 1, got {self.patch_layers}")
        check(0 <= self.dropout < 1, f"model.dropout must be in [0, 1), got {self.dropout}")
        check(self.l1_weight >= 0 and self.adversarial_weight >= 0, "model.l1_weight and adversarial_weight must be >= 0")
        check(self.l1_weight + self.adversarial_weight > 0, "model.l1_weight and adversarial_weight cannot both be 0")
        for name in ("generator_lr", "discriminator_lr"):
            value = getattr(self, name)
            check(value is None or value > 0, f"model.{name} must be > 0, got {value}")
        check(self.discriminator_every >= 1, f"model.discriminator_every must be >= 1, got {self.discriminator_every}")

    @property
    def in_channels(self) -> int:
        return (self.input_shape or self.image_shape)[0]


@register_model("pix2pix")
class Pix2Pix(GenerativeModel):
    """U-Net generator + PatchGAN discriminator; batches are ``(a, b)`` in [0, 1]."""

    config_class = Pix2PixConfig
    # train-config defaults for `genlab train pix2pix` (the paper: batch 1-10, 200 epochs)
    defaults: ClassVar[dict[str, Any]] = {"train": {"batch_size": 16}}

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__(config)
        size = config.image_shape[1]
        self.generator = UNetGenerator(
            config.in_channels, config.image_shape[0], size, num_filters=config.num_filters,
            max_multiplier=config.max_multiplier, norm=config.norm, dropout=config.dropout,
        )
        self.discriminator: PatchDiscriminator | None = None
        if config.adversarial_weight > 0:
            self.discriminator = PatchDiscriminator(
                config.in_channels + config.image_shape[0], num_filters=config.discriminator_filters,
                layers=config.patch_layers or patch_layers_for(size), norm=config.norm,
            )

    @property
    def adversarial(self) -> bool:
        return self.discriminator is not None

    # ------------------------------------------------------------------ training contract
    def phases(self) -> list[Phase]:
        cfg = self.config
        generator = Phase("generator", ("generator",), lr=cfg.generator_lr, betas=cfg.betas)
        if not self.adversarial:
            return [generator]
        return [
            Phase("discriminator", ("discriminator",), every=cfg.discriminator_every, lr=cfg.discriminator_lr, betas=cfg.betas),
            generator,
        ]

    def ema_modules(self) -> list[str]:
        return ["generator"]

    def _gan_loss(self, logits: Tensor, real: bool) -> Tensor:
        if self.config.gan_loss == "lsgan":
            return ((logits - 1) ** 2).mean() if real else (logits**2).mean()
        # -log sigmoid(l) for real, -log(1 - sigmoid(l)) for fake, computed stably
        return F.softplus(-logits).mean() if real else F.softplus(logits).mean()

    def loss(self, batch: Batch, phase: str = "generator") -> LossOutput:
        a, b = self._check_input(batch[0]), as_images(batch[1], self.config.image_shape, "pix2pix target")
        a, b = to_signed(a), to_signed(b)  # (B, C_in, S, S), (B, C_out, S, S)
        if phase == "discriminator":
            assert self.discriminator is not None, "the L1-only model has no discriminator phase"
            with torch.no_grad():
                fake = self.generator(a)
            real_loss = self._gan_loss(self.discriminator(torch.cat([a, b], 1)), True)
            fake_loss = self._gan_loss(self.discriminator(torch.cat([a, fake], 1)), False)
            # halved so D learns more slowly than G (paper, Sec. 3.3)
            return LossOutput(0.5 * (real_loss + fake_loss), {"real": real_loss, "fake": fake_loss})
        if phase != "generator":
            raise ValueError(f"pix2pix has phases 'discriminator' and 'generator', not {phase!r}")
        fake = self.generator(a)
        l1 = (fake - b).abs().mean()  # in [-1, 1] units, the scale λ is defined on
        terms = {"l1": l1 / 2}
        total = self.config.l1_weight * l1
        if self.discriminator is not None:
            adv = self._gan_loss(self.discriminator(torch.cat([a, fake], 1)), True)  # non-saturating
            terms["adv"] = adv
            total = total + self.config.adversarial_weight * adv
        return LossOutput(total, terms)

    preview_caption: ClassVar[str] = "each cell, top to bottom: input, output, target"  # above samples.png

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Up to 16 cells, each the input above the output above the target, in [0, 1]."""
        a, b = batch[0][:16], batch[1][:16]
        out = self(a)
        c = max(a.shape[1], b.shape[1])
        gap = torch.ones(a.shape[0], c, 1, a.shape[3], device=a.device)
        return torch.cat([as_rgb(a, c), gap, as_rgb(out, c), gap, as_rgb(b, c)], dim=2)  # (k, C, 3S + 2, S)

    # ------------------------------------------------------------------ inference
    def _check_input(self, a: Tensor) -> Tensor:
        """(B, C_in, S, S) inputs, or a flat (B, C_in*S*S) batch viewed as them; else one clear error."""
        expected = tuple(self.config.input_shape or self.config.image_shape)
        if a.dim() == 2:
            return as_images(a, expected, "pix2pix input")
        if a.dim() != 4 or tuple(a.shape[1:]) != expected:
            raise DataError(f"pix2pix input must be (N, {', '.join(map(str, expected))}); got {tuple(a.shape)}")
        return a

    def forward(self, a: Tensor) -> Tensor:
        """Deterministic translation (no dropout in eval mode): (B, C_in, S, S) -> (B, C_out, S, S), [0, 1]."""
        a = self._check_input(a)
        return to_unit(self.generator(to_signed(a)))

    @torch.no_grad()
    def translate(self, a: Tensor, n: int = 1, *, stochastic: bool = False,
                  generator: torch.Generator | None = None) -> Tensor:
        """``n`` translations of each input: (B, C_in, S, S) -> (B, n, C_out, S, S) in [0, 1].

        ``stochastic`` keeps dropout on, with masks drawn from ``generator`` (the same generator
        state gives the same outputs); otherwise all ``n`` outputs are the deterministic one.
        Call it on a model in eval mode (``genlab.load`` returns one) so batch norm uses its
        running statistics and the copies do not interact.
        """
        a = self._check_input(a)
        if n < 1:
            raise DataError(f"translate needs n >= 1, got {n}")
        repeated = to_signed(a).repeat_interleave(n, dim=0)  # (B * n, C_in, S, S)
        out = self.generator(repeated, dropout=stochastic, generator=generator)
        return to_unit(out).view(a.shape[0], n, *out.shape[1:])
