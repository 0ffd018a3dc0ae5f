"""A small CNN image classifier (LeNet-style: two conv + max-pool stages, one hidden layer).

It is the model adversarial examples are made for (:mod:`genlab.attacks`), and its penultimate layer
(:meth:`Classifier.features`) is the feature space of genlab's image metrics on MNIST-like data.
``adversarial="pgd"`` turns on adversarial training (Madry et al. 2018): every step draws *fresh*
adversarial examples against the current weights and trains on them; ``adversarial="fgsm"`` with
``adv_weight=0.5`` is Goodfellow et al.'s (2015) mixed clean/adversarial objective.

Batches are ``(x, y)``: images (B, C, H, W) in [0, 1] and integer labels (B,). The evaluator (test
accuracy, accuracy under attack) is in ``genlab.reports.classifier``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks import eval_mode, fgsm, pgd
from ..config import Config, check
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, as_images


@dataclasses.dataclass
class ClassifierConfig(Config):
    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    channels: tuple[int, ...] = (32, 64)  # one conv + 2x2 max-pool stage per entry
    kernel_size: int = 5
    hidden_dim: int = 128  # width of the feature layer
    dropout: float = 0.3
    augment_shift: int = 2  # random translation by up to this many pixels while training (0 = off)
    augment_scale: float = 1.0  # random affine while training: scale log-uniform in [1/s, s] (1 = off)
    augment_degrees: float = 0.0  # random rotation in +-degrees while training, with augment_scale's affine map (0 = off)
    adversarial: Literal["none", "fgsm", "pgd"] = "none"
    adv_eps: float = 0.3
    adv_norm: Literal["linf", "l2"] = "linf"
    adv_steps: int = 7  # PGD steps during training
    adv_step_size: float | None = None  # default 2.5 * eps / steps
    adv_weight: float = 1.0  # share of the loss on adversarial examples; the rest on clean ones

    def validate(self) -> None:
        check(len(self.image_shape) == 3 and min(self.image_shape) >= 1, f"model.image_shape must be (C, H, W), got {self.image_shape}")
        check(self.num_classes >= 2, f"model.num_classes must be >= 2, got {self.num_classes}")
        check(len(self.channels) >= 1 and min(self.channels) >= 1, f"model.channels must be positive, got {self.channels}")
        side = min(self.image_shape[1:]) // 2 ** len(self.channels)
        check(side >= 1, f"model.channels: {len(self.channels)} pooling stages shrink a {self.image_shape[1]}-pixel image to nothing")
        check(self.kernel_size >= 1 and self.kernel_size % 2 == 1, f"model.kernel_size must be odd, got {self.kernel_size}")
        check(self.hidden_dim >= 1, f"model.hidden_dim must be >= 1, got {self.hidden_dim}")
        check(0 <= self.dropout < 1, f"model.dropout must be in [0, 1), got {self.dropout}")
        check(self.augment_shift >= 0, f"model.augment_shift must be >= 0, got {self.augment_shift}")
        check(self.augment_scale >= 1, f"model.augment_scale must be >= 1 (1 = off), got {self.augment_scale}")
        check(0 <= self.augment_degrees <= 180, f"model.augment_degrees must be in [0, 180], got {self.augment_degrees}")
        check(self.adv_eps > 0, f"model.adv_eps must be > 0, got {self.adv_eps}")
        check(self.adv_steps >= 1, f"model.adv_steps must be >= 1, got {self.adv_steps}")
        check(0 < self.adv_weight <= 1, f"model.adv_weight must be in (0, 1], got {self.adv_weight}")


def random_shift(x: Tensor, max_shift: int) -> Tensor:
    """Translate each image by its own random integer offset in [-max_shift, max_shift]^2, filling
    with zeros (the background of MNIST-like data). One gather for the whole batch."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b), device=x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_affine(x: Tensor, *, max_scale: float = 1.4, max_degrees: float = 15.0, max_shift: float = 3.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """``x`` (B, C, H, W) under one random affine map per image (batched, bilinear, zero fill): a scale
    log-uniform in [1/max_scale, max_scale] (the same range both ways, so neither a smaller nor a larger
    framing is favoured), a rotation uniform in +-max_degrees and a shift uniform in +-max_shift pixels.
    A classifier trained so reads digits across datasets' framings (MNIST's 20-px box, USPS's full frame)
    without seeing the other dataset."""
    n, (h, w) = len(x), x.shape[-2:]
    u = torch.rand(n, 4, generator=generator).to(x.device) * 2 - 1
    scale = torch.exp(u[:, 0] * math.log(max_scale))
    angle = u[:, 1] * math.radians(max_degrees)  # a true rotation on square images
    shift = u[:, 2:] * (2 * max_shift / torch.tensor([w, h], device=x.device))  # affine_grid's units: half the side is 1
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # the grid maps output to input: inverse scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@register_model("classifier")
class Classifier(GenerativeModel):
    """``forward(x) -> logits (B, num_classes)``; ``features(x) -> (B, hidden_dim)``."""

    config_class = ClassifierConfig
    config: ClassifierConfig
    # 30 epochs of the 4,000-image split with shift augmentation and a cosine schedule reach ~98 %
    defaults: dict[str, Any] = {"data": {"name": "mnist-embedded"},
                                "train": {"epochs": 30, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine",
                                          "fused_optimizer": False}}

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        c, h, w = config.image_shape
        layers: list[nn.Module] = []
        width = c
        for channels in config.channels:
            layers += [nn.Conv2d(width, channels, config.kernel_size, padding=config.kernel_size // 2), nn.ReLU(), nn.MaxPool2d(2)]
            width = channels
        self.conv = nn.Sequential(*layers)
        shrink = 2 ** len(config.channels)
        flat = width * (h // shrink) * (w // shrink)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(flat, config.hidden_dim), nn.ReLU())
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_dim, config.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer activations (B, hidden_dim): the feature space for image metrics."""
        x = as_images(x, self.config.image_shape, "classifier")  # a flat (B, C*H*W) batch too
        return self.hidden(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.dropout(self.features(x)))  # (B, num_classes) logits

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self(x).argmax(1)

    # ------------------------------------------------------------------ training
    def adversarial_examples(self, x: Tensor, y: Tensor) -> Tensor:
        """Fresh adversarial examples against the current weights (model in eval mode meanwhile,
        so dropout does not mask the gradient the attack follows)."""
        cfg = self.config
        with eval_mode(self):
            if cfg.adversarial == "fgsm":
                return fgsm(self, x, y, eps=cfg.adv_eps, norm=cfg.adv_norm)
            return pgd(self, x, y, eps=cfg.adv_eps, norm=cfg.adv_norm, steps=cfg.adv_steps, step_size=cfg.adv_step_size)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        x, y = batch[0], batch[1]
        cfg = self.config
        if self.training and (cfg.augment_scale > 1 or cfg.augment_degrees > 0):
            x = random_affine(x, max_scale=cfg.augment_scale, max_degrees=cfg.augment_degrees, max_shift=cfg.augment_shift)
        elif self.training and cfg.augment_shift:
            x = random_shift(x, cfg.augment_shift)
        if cfg.adversarial == "none":
            logits = self(x)
            ce = F.cross_entropy(logits, y)
            return LossOutput(ce, {"ce": ce, "accuracy": (logits.argmax(1) == y).float().mean()})
        x_adv = self.adversarial_examples(x, y)
        adv_logits = self(x_adv)
        adv_ce = F.cross_entropy(adv_logits, y)
        terms = {"adv_ce": adv_ce, "adv_accuracy": (adv_logits.argmax(1) == y).float().mean()}
        total = adv_ce
        if cfg.adv_weight < 1:
            clean_logits = self(x)
            clean_ce = F.cross_entropy(clean_logits, y)
            terms.update(ce=clean_ce, accuracy=(clean_logits.argmax(1) == y).float().mean())
            total = cfg.adv_weight * adv_ce + (1 - cfg.adv_weight) * clean_ce
        return LossOutput(total, terms)

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        x, y = batch[0], batch[1]
        logits = self(x)
        out = {"loss": F.cross_entropy(logits, y), "accuracy": (logits.argmax(1) == y).float().mean()}
        if self.config.adversarial != "none":
            # robustness against the training attack itself: a one-step-trained model that overfits
            # to one-step attacks (high FGSM, collapsing PGD accuracy) shows it here while training
            cfg = self.config
            x_fgsm = fgsm(self, x, y, eps=cfg.adv_eps, norm=cfg.adv_norm)  # the attacks enable grad themselves
            out["fgsm_accuracy"] = (self(x_fgsm).argmax(1) == y).float().mean()
            if cfg.adversarial == "pgd":
                out["pgd_accuracy"] = (self(self.adversarial_examples(x, y)).argmax(1) == y).float().mean()
        return out
