"""StyleGAN2 on a CPU (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR
2020), with the style mixing, noise inputs and truncation of StyleGAN (Karras et al., CVPR 2019).

A mapping network turns z into w; every synthesis layer gets its own copy of w as a style (the
rows of ``ws``, shape (B, num_ws, w_dim)), so styles can be swapped between images layer by layer:
coarse layers (4-8 px) set pose and face shape, fine ones colour and texture. Per-layer noise
images decide the stochastic details. Layers live in :mod:`genlab.nn.style`.

Training is phases of the one Trainer (the stylegan2-ada design):

==================  =========================  ============================================
phase               every                      minimises
==================  =========================  ============================================
``generator``       1                          softplus(-D(G(z)))  (non-saturating logistic)
``discriminator``   1                          softplus(D(G(z))) + softplus(-D(x))
``discriminator_r1``  ``r1_every`` (16)        r1_every * gamma/2 * E||grad_x D(x)||^2 (lazy R1)
``generator_pl``    ``pl_every`` (4), optional pl_every * pl_weight * (|J^T y| - a)^2 (path length)
==================  =========================  ============================================

With ``r1_every = 1`` the R1 term joins the discriminator phase instead (no lazy phase). DiffAugment
(Zhao et al. 2020; ``augment``, off by default) puts D(A(.)) in place of D(.) in every row: A on the
reals and fakes of the D phase, on the reals of the R1 term (differentiated w.r.t. the clean reals,
through A, as DiffAugment's and stylegan2-ada's StyleGAN2 losses do), and on the fakes of G's loss. Fakes use
style-mixing regularisation: with probability ``style_mixing_prob`` the layers from a random cutoff
on take a second z's w. ``w_avg`` (truncation's centre) and ``pl_mean`` are buffers, saved with
the weights, so resume is exact. As in stylegan2-ada, a lazy phase steps its player's own optimizer
(``Phase(optimizer=...)``), whose lr and betas the Trainer scales by k/(k+1) (lr * k/(k+1),
beta ** (k/(k+1)) for interval k): one Adam per player, whose moments see the regulariser's gradients.
So gamma sets the size of the R1 step against the main loss's gradients; with ``lazy_optimizer="own"`` every
R1 step moves each weight by about one lr whatever gamma is, and a gamma tuned there is far weaker here
(the face config's 0.05 gave 7-50x smaller R1 steps; benchmarks/lazy_r1_step.py measures it).

Inference API: :meth:`StyleGAN.sample`, :meth:`StyleGAN.mapping`, :meth:`StyleGAN.synthesis`,
:meth:`StyleGAN.mix` (named layer ranges ``coarse`` / ``middle`` / ``fine`` or explicit indices),
:meth:`StyleGAN.truncate`, :meth:`StyleGAN.noise_inputs`. Images are [0, 1] outside, [-1, 1] inside.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from typing import Any, ClassVar, Iterable, Literal, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config, check
from ..errors import ConfigError, DataError
from ..nn.augment import AugmentConfig, augment_schedule
from ..nn.style import NoiseStrength, ResidualDiscriminator, StyleGenerator
from ..registry import register_model
from ..runtime import batch_rand, batch_randint, batch_randn
from .base import Batch, GenerativeModel, LossOutput, Phase, as_images
from .gan import r1_penalty

log = logging.getLogger(__name__)

NoiseMode = Literal["random", "const", "none"]
NoiseSpec = Union[str, Sequence[Union[Tensor, None]]]
LayerSpec = Union[str, int, Iterable[int]]
LAYER_RANGES = ("coarse", "middle", "fine")


@dataclasses.dataclass
class StyleGANConfig(AugmentConfig):
    latent_dim: int = 128  # size of z
    w_dim: int = 128  # size of w (and of each layer's style input)
    mapping_depth: int = 4  # StyleGAN uses 8; 2-4 suffice at 32x32 (stylegan2-ada's CIFAR config uses 2)
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    image_shape: tuple[int, ...] | None = None  # (C, R, R), filled from the data; R a power of two in 16..128
    channel_base: int = 4096  # feature maps at resolution r: min(channel_base / r, channel_max)
    channel_max: int = 128
    modconv: Literal["grouped", "scaled"] = "scaled"  # same numbers; scaled is 1.5-1.8x faster on a CPU (benchmarks/stylegan_modconv.py)
    channels_last: bool = False  # generator weights in channels-last memory: a further 1.05-1.8x for "scaled" on a CPU
    mbstd_group: int = 4
    # the noise inputs' learned strength: one scalar per layer (StyleGAN2) or one per feature map (StyleGAN)
    noise_strength: NoiseStrength = "layer"
    r1_gamma: float = 0.05  # R1 weight gamma; 0 = off
    r1_every: int = 16  # lazy R1: its own phase on every r1_every-th step, scaled by r1_every (1 = every D step)
    # which Adam steps a lazy phase (R1, path length): "shared" = its player's own (stylegan2-ada, with lr and betas
    # scaled for the interval); "own" = a second Adam over the same weights (genlab before 2026-12-04), for comparison
    lazy_optimizer: Literal["shared", "own"] = "shared"
    style_mixing_prob: float = 0.9
    pl_weight: float = 0.0  # path-length regularisation weight (StyleGAN2: 2); 0 = off
    pl_every: int = 4
    pl_decay: float = 0.01  # rate of the running mean of path lengths
    pl_batch_shrink: int = 2  # the path-length phase uses batch_size / shrink samples
    generator_lr: float | None = None  # None: train.lr
    discriminator_lr: float | None = None
    adam_betas: tuple[float, float] | None = None  # None: train.betas

    def validate(self) -> None:
        check(self.latent_dim >= 1 and self.w_dim >= 1, "model.latent_dim and model.w_dim must be >= 1")
        check(self.mapping_depth >= 1, f"model.mapping_depth must be >= 1, got {self.mapping_depth}")
        check(self.mapping_lr_multiplier > 0, "model.mapping_lr_multiplier must be > 0")
        check(0 <= self.w_avg_beta < 1, f"model.w_avg_beta must be in [0, 1), got {self.w_avg_beta}")
        if self.image_shape is not None:
            check(len(self.image_shape) == 3, f"model.image_shape must be (C, H, W), got {self.image_shape}")
            c, h, w = self.image_shape
            check(h == w and h in (16, 32, 64, 128),
                  f"stylegan needs square images of side 16, 32, 64 or 128, got {h}x{w}; resize with --data.image_size=32")
            check(c in (1, 3), f"model.image_shape needs 1 or 3 channels, got {c}")
        check(self.channel_base >= 1 and self.channel_max >= 1, "model.channel_base and model.channel_max must be >= 1")
        check(self.mbstd_group >= 1, "model.mbstd_group must be >= 1")
        check(self.r1_gamma >= 0 and self.pl_weight >= 0, "model.r1_gamma and model.pl_weight must be >= 0")
        check(self.r1_every >= 1 and self.pl_every >= 1, "model.r1_every and model.pl_every must be >= 1")
        check(0 <= self.style_mixing_prob <= 1, f"model.style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        check(0 < self.pl_decay <= 1 and self.pl_batch_shrink >= 1, "model.pl_decay must be in (0, 1], pl_batch_shrink >= 1")
        super().validate()


@register_model("stylegan")
class StyleGAN(GenerativeModel):
    config_class: ClassVar[type[Config]] = StyleGANConfig
    config: StyleGANConfig
    channels_last_faster = True  # NHWC: 1.20x fp32, 1.22x bf16 (benchmarks/precision_throughput.py)
    # StyleGAN2's optimiser (Adam, beta1 = 0, beta2 = 0.99) and an EMA generator; 32x32 images.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "train": {"lr": 2.5e-3, "betas": (0.0, 0.99), "batch_size": 32, "ema_decay": 0.998},
        "data": {"image_size": 32},
    }

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__(config)
        cfg = config
        if cfg.image_shape is None:
            raise ConfigError("stylegan needs model.image_shape (filled from --data)")
        c, r, _ = cfg.image_shape
        self.is_image = True
        self.generator = StyleGenerator(cfg.latent_dim, cfg.w_dim, cfg.mapping_depth, r, c, channel_base=cfg.channel_base,
                                        channel_max=cfg.channel_max, lr_multiplier=cfg.mapping_lr_multiplier,
                                        w_avg_beta=cfg.w_avg_beta, implementation=cfg.modconv,
                                        noise_strength=cfg.noise_strength)
        self.discriminator = ResidualDiscriminator(r, c, channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                                   mbstd_group=cfg.mbstd_group)
        if cfg.channels_last:
            self.generator.to(memory_format=torch.channels_last)
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean of path lengths (training state)
        self.augmentation = augment_schedule(cfg)

    # ------------------------------------------------------------------ structure
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def num_ws(self) -> int:
        """Styles per image: one per conv layer, plus the last ToRGB's."""
        return self.generator.num_ws

    @property
    def style_resolutions(self) -> list[int]:
        """The resolution at which each of the ``num_ws`` styles acts."""
        synthesis = self.generator.synthesis
        return synthesis.conv_resolutions + [synthesis.resolutions[-1]]

    def range_resolutions(self) -> dict[str, list[int]]:
        """``coarse`` / ``middle`` / ``fine`` as resolutions. At 1024 px StyleGAN calls 4-8 coarse,
        16-32 middle and 64-1024 fine; scaled to 16-128 px: coarse 4-8 (4 at 16 px), fine the top
        resolution (64-128 at 128 px), middle in between."""
        res = self.generator.synthesis.resolutions
        n_coarse = 1 if len(res) <= 3 else 2
        n_fine = 2 if len(res) >= 6 else 1
        return {"coarse": res[:n_coarse], "middle": res[n_coarse:len(res) - n_fine], "fine": res[len(res) - n_fine:]}

    def layer_indices(self, layers: LayerSpec) -> list[int]:
        """Style indices for a named range (coarse, middle, fine, all) or explicit indices."""
        if isinstance(layers, str):
            if layers == "all":
                return list(range(self.num_ws))
            ranges = self.range_resolutions()
            if layers not in ranges:
                raise ConfigError(f"unknown layer range {layers!r}; valid: coarse, middle, fine, all, or layer indices")
            return [i for i, r in enumerate(self.style_resolutions) if r in ranges[layers]]
        indices = [layers] if isinstance(layers, int) else [int(i) for i in layers]
        bad = [i for i in indices if not 0 <= i < self.num_ws]
        if bad:
            raise ConfigError(f"layer indices {bad} out of range: this generator has {self.num_ws} styles (0..{self.num_ws - 1})")
        return sorted(set(indices))

    def noise_layers(self, layers: LayerSpec) -> list[int]:
        """Noise-input indices (one per conv) at the resolutions of a named range, or explicit ones."""
        num = self.generator.synthesis.num_convs
        if isinstance(layers, str):
            resolutions = self.range_resolutions().get(layers) if layers != "all" else self.generator.synthesis.resolutions
            if resolutions is None:
                raise ConfigError(f"unknown layer range {layers!r}; valid: coarse, middle, fine, all, or noise indices")
            return [j for j, r in enumerate(self.generator.synthesis.conv_resolutions) if r in resolutions]
        indices = [layers] if isinstance(layers, int) else [int(i) for i in layers]
        if any(not 0 <= j < num for j in indices):
            raise ConfigError(f"noise indices {indices} out of range: this generator has {num} noise inputs")
        return sorted(set(indices))

    # ------------------------------------------------------------------ inference API
    def mapping(self, z: Tensor, *, truncation: float = 1.0) -> Tensor:
        """z (B, latent_dim) -> w (B, w_dim), optionally pulled towards w_avg: w_avg + psi (w - w_avg)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise DataError(f"mapping expects z of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        w = self.generator.mapping(z.to(self.device))
        return w if truncation == 1.0 else torch.lerp(self.generator.mapping.w_avg, w, truncation)

    def truncate(self, w: Tensor, truncation: float = 1.0, truncation_cutoff: int | None = None) -> Tensor:
        """w (B, w_dim) or ws (B, num_ws, w_dim) -> ws with the first ``truncation_cutoff`` styles
        (all when None) pulled towards w_avg by psi = ``truncation``."""
        ws = self._as_ws(w)
        if truncation == 1.0:
            return ws
        cutoff = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
        psi = torch.ones(self.num_ws, 1, device=ws.device, dtype=ws.dtype)
        psi[:cutoff] = truncation
        return torch.lerp(self.generator.mapping.w_avg, ws, psi)  # psi broadcasts over (B, num_ws, w_dim)

    def noise_inputs(self, n: int, noise: NoiseSpec = "random", *, generator: torch.Generator | None = None) -> list[Tensor | None]:
        """One noise image (n or 1, 1, r, r) or None per conv layer: fresh N(0, 1) draws (``random``),
        the fixed maps saved with the model (``const``), none (``none``), or a given list."""
        synthesis = self.generator.synthesis
        if isinstance(noise, str):
            if noise == "random":
                return [batch_randn((n, 1, r, r), generator=generator, device=self.device) for r in synthesis.conv_resolutions]
            if noise == "const":
                return list(synthesis.const_noise())
            if noise == "none":
                return [None] * synthesis.num_convs
            raise ConfigError(f"unknown noise mode {noise!r}; valid: random, const, none, or one tensor per layer")
        noise = list(noise)
        if len(noise) != synthesis.num_convs:
            raise ConfigError(f"noise needs one entry per conv layer ({synthesis.num_convs}), got {len(noise)}")
        for j, (t, r) in enumerate(zip(noise, synthesis.conv_resolutions)):
            if t is not None and (t.dim() != 4 or tuple(t.shape[1:]) != (1, r, r) or t.shape[0] not in (1, n)):
                raise DataError(f"noise input {j} must be ({n} or 1, 1, {r}, {r}), got {tuple(t.shape)}")
        return noise

    def synthesis(self, ws: Tensor, *, noise: NoiseSpec = "random", generator: torch.Generator | None = None) -> Tensor:
        """ws (B, num_ws, w_dim), or one w (B, w_dim) for every layer -> images (B, C, R, R) in [0, 1]."""
        ws = self._as_ws(ws.to(self.device))
        image = self.generator(ws, self.noise_inputs(ws.shape[0], noise, generator=generator))
        return (image + 1) / 2

    @torch.no_grad()
    def sample(self, n: int, *, truncation: float | None = 1.0, truncation_cutoff: int | None = None,
               noise: NoiseSpec = "random", generator: torch.Generator | None = None, label: Any = None, **_: Any) -> Tensor:
        """``n`` images in [0, 1] from z ~ N(0, I), truncated towards the mean w by psi = ``truncation``
        on the first ``truncation_cutoff`` styles (all when None)."""
        if label is not None:
            raise ConfigError("stylegan is unconditional; it takes no label")
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        ws = self.truncate(self.mapping(z), 1.0 if truncation is None else truncation, truncation_cutoff)
        return self.synthesis(ws, noise=noise, generator=generator)

    @torch.no_grad()
    def mix(self, z_a: Tensor, z_b: Tensor, layers: LayerSpec, *, noise: NoiseSpec = "const", truncation: float = 1.0,
            generator: torch.Generator | None = None) -> Tensor:
        """Images of z_a with the styles of ``layers`` (coarse, middle, fine, all or indices) taken
        from z_b: (B, C, R, R) in [0, 1]. Default noise ``const``: the same noise as z_a's own image."""
        if z_a.shape != z_b.shape:
            raise DataError(f"mix needs z_a and z_b of the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
        ws_a = self.truncate(self.mapping(z_a), truncation)
        ws_b = self.truncate(self.mapping(z_b), truncation)
        return self.synthesis(self.mix_ws(ws_a, ws_b, layers), noise=noise, generator=generator)

    def mix_ws(self, ws_a: Tensor, ws_b: Tensor, layers: LayerSpec) -> Tensor:
        """ws_a with the rows ``layers`` replaced by ws_b's (for projected, real images too)."""
        ws_a, ws_b = self._as_ws(ws_a), self._as_ws(ws_b)
        take = torch.zeros(self.num_ws, 1, dtype=torch.bool, device=ws_a.device)
        take[self.layer_indices(layers)] = True
        return torch.where(take, ws_b, ws_a)

    def decode(self, z: Tensor) -> Tensor:
        """z -> images in [0, 1] with the constant noise: deterministic, for the latent tools."""
        return self.synthesis(self.mapping(z), noise="const")

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z)

    def _as_ws(self, w: Tensor) -> Tensor:
        if w.dim() == 2 and w.shape[1] == self.config.w_dim:
            return w[:, None].expand(-1, self.num_ws, -1)
        if w.dim() == 3 and tuple(w.shape[1:]) == (self.num_ws, self.config.w_dim):
            return w
        raise DataError(f"expected w (B, {self.config.w_dim}) or ws (B, {self.num_ws}, {self.config.w_dim}), got {tuple(w.shape)}")

    # ------------------------------------------------------------------ training
    def phases(self) -> list[Phase]:
        cfg = self.config
        phases = [Phase("generator", ("generator",), 1, cfg.generator_lr, cfg.adam_betas),
                  Phase("discriminator", ("discriminator",), 1, cfg.discriminator_lr, cfg.adam_betas)]
        if cfg.r1_gamma > 0 and cfg.r1_every > 1:
            phases.append(Phase("discriminator_r1", ("discriminator",), cfg.r1_every, cfg.discriminator_lr, cfg.adam_betas,
                                optimizer="discriminator" if cfg.lazy_optimizer == "shared" else None))
        if cfg.pl_weight > 0:
            phases.append(Phase("generator_pl", ("generator",), cfg.pl_every, cfg.generator_lr, cfg.adam_betas,
                                optimizer="generator" if cfg.lazy_optimizer == "shared" else None))
        return phases

    def ema_modules(self) -> list[str]:
        return ["generator"]

    def _real(self, batch: Batch) -> Tensor:
        return as_images(batch[0], self.config.image_shape, "stylegan") * 2 - 1

    def _training_ws(self, n: int, *, update_w_avg: bool) -> Tensor:
        """Styles for fakes with style-mixing regularisation: (n, num_ws, w_dim)."""
        device, cfg = self.device, self.config
        # batch_randn / batch_rand: under N processes each example's noise is a function of its place in
        # the global batch, so ranks draw different latents and N processes train what one process trains
        w = self.generator.mapping(batch_randn((n, cfg.latent_dim), device=device), update_w_avg=update_w_avg)
        ws = w[:, None].expand(-1, self.num_ws, -1)
        if cfg.style_mixing_prob > 0:
            w2 = self.generator.mapping(batch_randn((n, cfg.latent_dim), device=device))
            cutoff = batch_randint(1, self.num_ws, (n,), device=device)
            cutoff = torch.where(batch_rand((n,), device=device) < cfg.style_mixing_prob, cutoff, self.num_ws)
            take = torch.arange(self.num_ws, device=device)[None] >= cutoff[:, None]  # (n, num_ws): layers from w2
            ws = torch.where(take[..., None], w2[:, None], ws)
        return ws

    def _fake(self, ws: Tensor) -> Tensor:
        return self.generator(ws, self.noise_inputs(ws.shape[0], "random"))  # (B, C, R, R) in [-1, 1]

    def loss(self, batch: Batch, phase: str = "generator") -> LossOutput:
        cfg = self.config
        real = self._real(batch)
        n = real.shape[0]
        if phase == "generator":
            fake = self._fake(self._training_ws(n, update_w_avg=self.training))
            adv = F.softplus(-self.discriminator(self.augmentation(fake))).mean()  # G learns through A
            return LossOutput(adv, {"adv": adv.detach()})
        if phase == "discriminator":
            with torch.no_grad():
                fake = self.augmentation(self._fake(self._training_ws(n, update_w_avg=False)))
            inline_r1 = cfg.r1_gamma > 0 and cfg.r1_every == 1
            with torch.enable_grad() if inline_r1 else contextlib.nullcontext():
                real_in = real.detach().requires_grad_(inline_r1)  # R1's gradient is w.r.t. these clean reals
                real_score, fake_score = self.discriminator(self.augmentation(real_in)), self.discriminator(fake)
                adv = F.softplus(fake_score).mean() + F.softplus(-real_score).mean()
                terms = {"adv": adv.detach(), "real_score": real_score.mean().detach(), "fake_score": fake_score.mean().detach()}
                total = adv
                if inline_r1:
                    r1 = r1_penalty(real_score, real_in)
                    terms["r1"] = r1.detach()
                    total = total + 0.5 * cfg.r1_gamma * r1
            terms.update(self.augmentation.step(self.training, real_score))
            return LossOutput(total, terms)
        if phase == "discriminator_r1":
            with torch.enable_grad():
                real_in = real.detach().requires_grad_(True)
                r1 = r1_penalty(self.discriminator(self.augmentation(real_in)), real_in)
            return LossOutput(0.5 * cfg.r1_gamma * cfg.r1_every * r1, {"r1": r1.detach()})
        if phase == "generator_pl":
            return self._path_length_loss(max(1, n // cfg.pl_batch_shrink))
        raise ConfigError(f"stylegan has phases {', '.join(p.name for p in self.phases())}, not {phase!r}")

    def _path_length_loss(self, n: int) -> LossOutput:
        """StyleGAN2's path-length regulariser: |J_w^T y| for y ~ N(0, I) / sqrt(pixels) should be
        the same for every w; the penalty is its squared deviation from a running mean ``pl_mean``."""
        cfg = self.config
        with torch.enable_grad():
            ws = self._training_ws(n, update_w_avg=False)
            image = self._fake(ws)
            pl_noise = batch_randn(image.shape, device=image.device, dtype=image.dtype) / math.sqrt(image.shape[2] * image.shape[3])
            (grad,) = torch.autograd.grad((image * pl_noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()  # (n,)
            pl_mean = torch.lerp(self.pl_mean, lengths.detach().mean(), cfg.pl_decay)
            if self.training:
                self.pl_mean.copy_(pl_mean)
            penalty = (lengths - pl_mean).square().mean()
        return LossOutput(penalty * cfg.pl_weight * cfg.pl_every, {"pl_penalty": penalty.detach(), "pl_mean": pl_mean})

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        """The two players' losses (the regularisers need input gradients; they are logged in training)."""
        out: dict[str, Tensor] = {}
        for phase in ("generator", "discriminator"):
            result = self.loss(batch, phase)
            out[f"{phase}/loss"] = result.total.detach()
            out.update({f"{phase}/{k}": v for k, v in result.terms.items()})
        return out

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor | None:
        return self.sample(64, generator=generator, noise="const")
