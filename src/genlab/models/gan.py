"""Generative adversarial networks (Goodfellow et al. 2014), DCGAN (Radford et al. 2016) and the
class-conditional GAN (Mirza & Osindero 2014; projection discriminator of Miyato & Koyama 2018).

The game is two phases of the one Trainer: ``discriminator`` (update D on a real batch and a fake
batch drawn from G with gradients off) then ``generator`` (update G through D). ``Phase.every`` sets
the D:G ratio. Objectives — all written on the discriminator's raw score ``d`` (a logit):

===============  ====================================  ===========================
loss             discriminator minimises               generator minimises
===============  ====================================  ===========================
non-saturating   softplus(-d_real) + softplus(d_fake)  softplus(-d_fake)
minimax          same                                  -softplus(d_fake)
hinge            relu(1 - d_real) + relu(1 + d_fake)   -d_fake          (Lim & Ye 2017)
least-squares    ½(d_real - 1)² + ½ d_fake²            ½(d_fake - 1)²   (Mao et al. 2017)
wgan-gp          d_fake - d_real + λ(‖∇d(x̂)‖ - 1)²     -d_fake          (Gulrajani et al. 2017)
===============  ====================================  ===========================

Options: R1 penalty γ/2·E‖∇d(x_real)‖² (Mescheder et al. 2018), spectral norm and minibatch
standard deviation in D, PacGAN packing (D judges ``pack`` samples at once; Lin et al. 2018), an
EMA of the generator (``--train.ema_decay``; ``ema_modules`` names only the generator), and for
image GANs DiffAugment (Zhao et al. 2020, :mod:`genlab.nn.augment`; ``augment``, off by default):
the same differentiable augmentation A on real and fake images wherever D sees them, and on the
fakes of G's loss, so D is trained on, and G through, A(x); see :class:`DiffAugmentSchedule`.
Images live in [0, 1] outside the model and in [-1, 1] inside (tanh generator output). The evaluator
(mode counts, FID/KID/precision-recall) and the end-of-training figure are in ``genlab.reports.gan``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from typing import Any, Callable, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config, check
from ..errors import ConfigError, DataError
from ..grids import scatter_image
from ..nn.augment import AugmentConfig, augment_schedule, parse_policy
from ..nn.discriminators import ConvDiscriminator, MLPDiscriminator
from ..nn.generators import ConvGenerator, MLPGenerator
from ..registry import register_model
from ..runtime import batch_rand, batch_randn
from .base import Batch, GenerativeModel, LossOutput, Phase, as_images

log = logging.getLogger(__name__)

Loss = Literal["non-saturating", "minimax", "hinge", "least-squares", "wgan-gp"]

DISCRIMINATOR_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "non-saturating": lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
    "minimax": lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
    "hinge": lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
    "least-squares": lambda real, fake: 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean(),
    "wgan-gp": lambda real, fake: fake.mean() - real.mean(),
}
GENERATOR_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "non-saturating": lambda fake: F.softplus(-fake).mean(),
    "minimax": lambda fake: -F.softplus(fake).mean(),  # = mean log(1 - sigmoid(d)): saturates early on
    "hinge": lambda fake: -fake.mean(),
    "least-squares": lambda fake: 0.5 * (fake - 1).square().mean(),
    "wgan-gp": lambda fake: -fake.mean(),
}


@dataclasses.dataclass
class GANConfig(AugmentConfig):
    """Vectors (``x_dim``) get MLPs; images (``image_shape``) get the DCGAN conv nets."""

    latent_dim: int = 64
    x_dim: int | None = None  # filled from vector data
    image_shape: tuple[int, ...] | None = None  # (C, H, W), filled from image data
    architecture: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for images, mlp for vectors
    generator_hidden: tuple[int, ...] = (256, 256, 256, 256)  # MLP generator widths
    discriminator_hidden: tuple[int, ...] = (128, 128, 128)  # MLP discriminator widths
    generator_channels: int = 64  # DCGAN generator base width
    discriminator_channels: int = 64  # DCGAN discriminator base width
    upsampling: Literal["transposed", "upsample"] = "transposed"
    loss: Loss = "non-saturating"
    gp_weight: float = 10.0  # wgan-gp lambda
    r1_weight: float = 0.0  # R1 gamma; 0 = off
    spectral_norm: bool = False
    minibatch_std: bool = False
    pack: int = 1  # PacGAN degree: D sees this many samples at once
    discriminator_norm: Literal["auto", "batch", "layer", "none"] = "auto"
    discriminator_every: int = 1  # D steps on steps where step % every == 0
    generator_every: int = 1  # e.g. 5 with wgan-gp: five D steps per G step
    discriminator_lr: float | None = None  # None: train.lr (two time-scale update rule when they differ)
    generator_lr: float | None = None
    adam_betas: tuple[float, float] | None = None  # None: train.betas
    # Vectors: the networks see x / data_scale and the generator's output is multiplied back, so a
    # mixture spread over ±4 (grid25) reaches them at unit scale, where default initialisation and
    # Adam's step sizes are tuned. Toy datasets fill it with their standard deviation.
    data_scale: float = 1.0

    def validate(self) -> None:
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(self.x_dim is None or self.x_dim >= 1, f"model.x_dim must be >= 1, got {self.x_dim}")
        super().validate()
        check(not (parse_policy(self.augment) and self.image_shape is None and self.x_dim is not None),
              f"model.augment={self.augment!r} augments images, but this GAN models vectors (x_dim={self.x_dim}); drop it")
        if self.image_shape is not None:
            check(len(self.image_shape) == 3, f"model.image_shape must be (C, H, W), got {self.image_shape}")
            c, h, w = self.image_shape
            check(h == w and (h == 28 or (16 <= h <= 256 and h & (h - 1) == 0)) or self.resolved_architecture == "mlp",
                  f"model.image_shape: conv GANs need square images of side 28 or a power of two in 16..256, got {h}x{w}")
        check(self.architecture != "conv" or self.image_shape is not None, "model.architecture=conv needs image data")
        check(self.pack >= 1, f"model.pack must be >= 1, got {self.pack}")
        check(self.data_scale > 0, f"model.data_scale must be > 0, got {self.data_scale}")
        check(self.gp_weight >= 0 and self.r1_weight >= 0, "model.gp_weight and model.r1_weight must be >= 0")
        check(self.discriminator_every >= 1 and self.generator_every >= 1, "model.discriminator_every and model.generator_every must be >= 1")
        penalised = self.loss == "wgan-gp" or self.r1_weight > 0
        check(not (penalised and self.discriminator_norm == "batch"),
              "model.discriminator_norm=batch mixes samples, which makes gradient penalties (wgan-gp, r1) ill-defined; use none or layer")

    @property
    def resolved_architecture(self) -> str:
        if self.architecture != "auto":
            return self.architecture
        return "conv" if self.image_shape is not None else "mlp"

    @property
    def resolved_norm(self) -> str:
        if self.discriminator_norm != "auto":
            return self.discriminator_norm
        plain = self.loss != "wgan-gp" and self.r1_weight == 0 and not self.spectral_norm
        return "batch" if plain and self.resolved_architecture == "conv" else "none"

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.image_shape) if self.image_shape is not None else (int(self.x_dim),)  # type: ignore[arg-type]


@dataclasses.dataclass
class CGANConfig(GANConfig):
    num_classes: int | None = None  # filled from labelled data
    label_dim: int = 16  # size of the label embedding concatenated to z

    def validate(self) -> None:
        super().validate()
        check(self.num_classes is None or self.num_classes >= 2, f"model.num_classes must be >= 2, got {self.num_classes}")
        check(self.label_dim >= 1, f"model.label_dim must be >= 1, got {self.label_dim}")


class LabelConditioned(nn.Module):
    """G(z, y) = net([z, embed(y)]): the label enters the generator as a learned embedding."""

    def __init__(self, net: nn.Module, num_classes: int, label_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, label_dim)
        self.net = net

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(y)], dim=1))


def truncated_normal(shape: tuple[int, ...], truncation: float, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """N(0, 1) restricted to [-t, t] by inverse-CDF sampling (the truncation trick, Brock et al. 2019)."""
    if truncation <= 0:
        raise ConfigError(f"truncation must be > 0, got {truncation}")
    edge = 0.5 * (1 + math.erf(truncation / math.sqrt(2)))  # Phi(t)
    u = torch.rand(shape, generator=generator, device=device) * (2 * edge - 1) + (1 - edge)
    return math.sqrt(2) * torch.erfinv(2 * u - 1)


@register_model("gan")
class GAN(GenerativeModel):
    config_class: ClassVar[type[Config]] = GANConfig
    # DCGAN's Adam settings; `genlab train gan` starts from these unless overridden
    defaults: ClassVar[dict[str, Any]] = {"train": {"lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 64}}
    config: GANConfig
    channels_last_faster = True  # NHWC: 1.13x fp32 for DCGAN's convolutions (benchmarks/precision_throughput.py)

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        cfg = config
        # checked here, not in validate(): `genlab train` validates the config before --data fills the shape
        check(cfg.x_dim is not None or cfg.image_shape is not None,
              "GAN needs the data shape: model.x_dim for vectors or model.image_shape for images (filled from --data)")
        self.is_image = cfg.image_shape is not None
        num_classes = self._num_classes()
        g_in = cfg.latent_dim + (cfg.label_dim if num_classes else 0)  # type: ignore[attr-defined]
        out_act = "tanh" if self.is_image else "none"
        if cfg.resolved_architecture == "conv":
            c, h, _ = cfg.image_shape  # type: ignore[misc]
            net: nn.Module = ConvGenerator(g_in, (c, h, h), mode=cfg.upsampling, base_channels=cfg.generator_channels,
                                           output_activation=out_act)
            self.discriminator: nn.Module = ConvDiscriminator(
                c * cfg.pack, h, base_channels=cfg.discriminator_channels, num_classes=num_classes,
                spectral_norm=cfg.spectral_norm, minibatch_std=cfg.minibatch_std, norm=cfg.resolved_norm)  # type: ignore[arg-type]
        else:
            net = MLPGenerator(g_in, cfg.data_shape, hidden_dims=cfg.generator_hidden, output_activation=out_act)
            self.discriminator = MLPDiscriminator(
                math.prod(cfg.data_shape) * cfg.pack, cfg.discriminator_hidden, num_classes=num_classes,
                spectral_norm=cfg.spectral_norm, minibatch_std=cfg.minibatch_std, norm=cfg.resolved_norm)  # type: ignore[arg-type]
        self.generator: nn.Module = LabelConditioned(net, num_classes, cfg.label_dim) if num_classes else net  # type: ignore[attr-defined]
        # checked here too: a config validated before --data filled x_dim could not tell vectors from images
        check(self.is_image or not parse_policy(cfg.augment),
              f"model.augment={cfg.augment!r} augments images, but this GAN models vectors; drop it")
        self.augmentation = augment_schedule(cfg, cfg.loss)

    def _num_classes(self) -> int | None:
        return None

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # ------------------------------------------------------------------ training
    def phases(self) -> list[Phase]:
        cfg = self.config
        return [
            Phase("discriminator", ("discriminator",), cfg.discriminator_every, cfg.discriminator_lr, cfg.adam_betas),
            Phase("generator", ("generator",), cfg.generator_every, cfg.generator_lr, cfg.adam_betas),
        ]

    def ema_modules(self) -> list[str]:
        return ["generator"]

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        x, y = self._inputs(batch)
        z = batch_randn((x.shape[0], self.config.latent_dim), device=x.device)  # per global example
        if phase == "discriminator":
            return self._discriminator_loss(x, y, z)
        if phase == "generator":  # A is differentiable: G learns through the augmentation D sees
            fake_score = self.discriminator(self._pack(self.augmentation(self._generate(z, y))), self._pack_labels(y))
            adv = GENERATOR_LOSSES[self.config.loss](fake_score)
            return LossOutput(adv, {"adv": adv.detach()})
        raise ConfigError(f"GAN has phases 'discriminator' and 'generator', not {phase!r}")

    def _discriminator_loss(self, x: Tensor, y: Tensor | None, z: Tensor) -> LossOutput:
        cfg = self.config
        with torch.no_grad():
            fake_x = self.augmentation(self._generate(z, y))  # G is not updated in this phase
        labels = self._pack_labels(y)
        penalised = cfg.r1_weight > 0 or cfg.loss == "wgan-gp"
        # penalties differentiate D w.r.t. its input, also when evaluate() runs under no_grad
        with torch.enable_grad() if penalised else contextlib.nullcontext():
            # R1 differentiates D(A(x)) w.r.t. the clean x, through A: DiffAugment's default loss for
            # StyleGAN2 (ns_DiffAugment_r1) and stylegan2-ada's augment pipe do the same (its other
            # variant, ns_r1_DiffAugment, takes the gradient at A(x)). Without augmentation, A(x) = x.
            clean = x.detach().requires_grad_(cfg.r1_weight > 0)
            real_x = self.augmentation(clean)
            real = self._pack(real_x)
            real_score = self.discriminator(real, labels)  # (B/pack,)
            fake_score = self.discriminator(self._pack(fake_x), labels)
            adv = DISCRIMINATOR_LOSSES[cfg.loss](real_score, fake_score)
            total = adv
            terms = {"adv": adv, "real_score": real_score.mean(), "fake_score": fake_score.mean()}
            if cfg.loss == "wgan-gp":
                # between the images D scored (augmented when augmentation is on)
                gp = gradient_penalty(self.discriminator, real_x, fake_x, labels, self._pack)
                terms["gp"] = gp
                total = total + cfg.gp_weight * gp
            if cfg.r1_weight > 0:
                r1 = r1_penalty(real_score, clean)
                terms["r1"] = r1
                total = total + 0.5 * cfg.r1_weight * r1
        terms.update(self.augmentation.step(self.training, real_score))
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})

    def _inputs(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        x = batch[0]
        if self.is_image:  # a flat (B, C*H*W) batch too
            x = as_images(x, self.config.data_shape, "GAN")
        if tuple(x.shape[1:]) != self.config.data_shape:
            raise DataError(f"GAN expects data of shape {self.config.data_shape}, got {tuple(x.shape[1:])}")
        if x.shape[0] % self.config.pack:
            raise DataError(f"batch size {x.shape[0]} is not a multiple of model.pack={self.config.pack}")
        return (x * 2 - 1 if self.is_image else x / self.config.data_scale), None

    def _generate(self, z: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(z)

    def _pack(self, x: Tensor) -> Tensor:
        """(B, C, ...) -> (B/pack, pack*C, ...): PacGAN stacks samples along the first feature axis."""
        p = self.config.pack
        return x if p == 1 else x.reshape(x.shape[0] // p, p * x.shape[1], *x.shape[2:])

    def _pack_labels(self, y: Tensor | None) -> Tensor | None:
        return y

    # ------------------------------------------------------------------ generation
    def _labels(self, n: int, label: Any, device: torch.device) -> Tensor | None:
        if label is not None:
            raise ConfigError("this GAN is unconditional; labels need a cgan")
        return None

    def decode(self, z: Tensor, label: Any = None) -> Tensor:
        """Latents (B, latent_dim) -> samples: images in [0, 1], or vectors as the data."""
        out = self._generate(z, self._labels(z.shape[0], label, z.device))
        return (out + 1) / 2 if self.is_image else out * self.config.data_scale

    def forward(self, z: Tensor, label: Any = None) -> Tensor:
        return self.decode(z, label)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, label: Any = None,
               truncation: float | None = None, **_: Any) -> Tensor:
        """``n`` samples from z ~ N(0, I) (or truncated to [-t, t] per coordinate)."""
        shape = (n, self.config.latent_dim)
        if truncation is None:
            z = torch.randn(shape, generator=generator, device=self.device)
        else:
            z = truncated_normal(shape, truncation, generator=generator, device=self.device)
        return self.decode(z, label)

    @property
    def preview_caption(self) -> str | None:
        """Above samples.png: on 2-D data, which colour is which."""
        return None if self.is_image else "grey: data, red: generated samples"

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor | None:
        if self.is_image:
            return self.sample(64, generator=generator)
        if self.config.data_shape == (2,):
            return scatter_image(batch[0], self.sample(1024, generator=generator))[None]
        return None


@register_model("cgan")
class CGAN(GAN):
    """Class-conditional GAN: batches are (x, y); G sees an embedding of y, D projects onto it."""

    config_class: ClassVar[type[Config]] = CGANConfig
    config: CGANConfig

    def _num_classes(self) -> int | None:
        check(self.config.num_classes is not None, "cgan needs model.num_classes (labelled data fills it)")
        return self.config.num_classes

    def _inputs(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        x, _ = super()._inputs(batch)
        if len(batch) < 2:
            raise DataError("cgan needs labelled batches (x, y)")
        y = batch[1].long()
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.config.num_classes):  # type: ignore[operator]
            raise DataError(f"labels must lie in [0, {self.config.num_classes}), got [{int(y.min())}, {int(y.max())}]")
        return x, y

    def _generate(self, z: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(z, y)

    def _pack_labels(self, y: Tensor | None) -> Tensor | None:
        return None if y is None else y.reshape(-1, self.config.pack)

    def _labels(self, n: int, label: Any, device: torch.device) -> Tensor:
        k = int(self.config.num_classes)  # type: ignore[arg-type]
        if label is None:
            return torch.arange(n, device=device) % k  # every class in turn
        y = torch.as_tensor(label, device=device).long().reshape(-1)
        if y.numel() == 1:
            y = y.expand(n)
        if y.numel() != n or int(y.min()) < 0 or int(y.max()) >= k:
            raise ConfigError(f"label must be one class or {n} classes in [0, {k}), got {label!r}")
        return y

    @property
    def preview_caption(self) -> str | None:
        return f"row k: 8 samples of class k (k = 0 .. {self.config.num_classes - 1})" if self.is_image else super().preview_caption

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor | None:
        if self.is_image:  # rows of 8 samples per class
            k = int(self.config.num_classes)  # type: ignore[arg-type]
            labels = torch.arange(k, device=self.device).repeat_interleave(8)
            return self.sample(len(labels), generator=generator, label=labels)
        return super().preview(batch, generator=generator)


# ---------------------------------------------------------------------- penalties

def _input_gradient(score: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(score.sum(), inputs, create_graph=True)
    return grad.flatten(1)  # (B, features)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, labels: Tensor | None,
                     pack: Callable[[Tensor], Tensor] = lambda x: x) -> Tensor:
    """WGAN-GP: E[(‖∇_x̂ D(x̂)‖₂ - 1)²] at x̂ = ε·real + (1-ε)·fake, ε ~ U(0, 1) per sample; the norm
    is taken over the discriminator's (packed) input."""
    eps = batch_rand((real.shape[0], *([1] * (real.dim() - 1))), device=real.device, dtype=real.dtype)
    mixed = pack(torch.lerp(fake.detach(), real.detach(), eps)).requires_grad_(True)
    grad = _input_gradient(discriminator(mixed, labels), mixed)
    return (grad.norm(dim=1) - 1).square().mean()


def r1_penalty(real_score: Tensor, real: Tensor) -> Tensor:
    """R1: E‖∇_x D(x)‖² on real data (``real`` must require grad and produce ``real_score``). The squared
    norm is summed over all the inputs of one score, so with PacGAN (``pack`` images per score, ``real``
    the unpacked (B, C, H, W)) it is the norm over the packed input, and the mean is over the scores."""
    return _input_gradient(real_score, real).reshape(len(real_score), -1).square().sum(dim=1).mean()
