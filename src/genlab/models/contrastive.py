"""A self-supervised image encoder trained contrastively (SimCLR: Chen, Kornblith, Norouzi, Hinton
2020, "A Simple Framework for Contrastive Learning of Visual Representations").

Each image is augmented twice; the encoder + projection head map the 2B views to unit vectors, and
the NT-Xent loss (cross-entropy over cosine similarities at temperature ``temperature``) asks each
view to pick its twin out of the other 2B - 2 views. The pooled encoder features (before the
projection head, as in the paper) are the feature space of genlab's second face *ruler*
(:mod:`genlab.metrics.rulers`), chosen to differ from the first one (:mod:`genlab.models.attributes`)
in objective (no labels), architecture (a plain strided conv net with GroupNorm and SiLU, no
residuals, no BatchNorm) and seed.

The augmentations are random resized crops, horizontal flips and colour jitter (brightness,
contrast, saturation, random greyscale), all batched (one ``grid_sample`` for the crops). SimCLR's
Gaussian blur is left out on purpose, and no noise is added: an encoder trained to ignore blur and
noise could not measure them, and a ruler must see the degradations it is asked to rank.

Batches are ``(x,)`` or ``(x, labels)``; labels are ignored.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config, check
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, as_images


@dataclasses.dataclass
class ContrastiveConfig(Config):
    image_shape: tuple[int, int, int] = (3, 64, 64)
    channels: tuple[int, ...] = (32, 64, 128, 128)  # one stride-2 conv stage per entry
    projection_dim: int = 64
    temperature: float = 0.2
    crop_scale: tuple[float, float] = (0.4, 1.0)  # area fraction of the random resized crop
    jitter: float = 0.3  # strength of brightness / contrast / saturation jitter
    grey_prob: float = 0.2
    norm: Literal["group", "batch"] = "group"  # after each conv; group: per image, so blind to a small global change

    def validate(self) -> None:
        check(len(self.image_shape) == 3 and min(self.image_shape) >= 1, f"model.image_shape must be (C, H, W), got {self.image_shape}")
        check(len(self.channels) >= 1 and min(self.channels) >= 1, f"model.channels must be positive, got {self.channels}")
        side = min(self.image_shape[1:]) // 2 ** len(self.channels)
        check(side >= 1, f"model.channels: {len(self.channels)} stride-2 stages shrink a {self.image_shape[1]}-pixel image to nothing")
        check(self.projection_dim >= 1, f"model.projection_dim must be >= 1, got {self.projection_dim}")
        check(self.temperature > 0, f"model.temperature must be > 0, got {self.temperature}")
        lo, hi = self.crop_scale
        check(0 < lo <= hi <= 1, f"model.crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        check(0 <= self.jitter < 1, f"model.jitter must be in [0, 1), got {self.jitter}")
        check(0 <= self.grey_prob <= 1, f"model.grey_prob must be in [0, 1], got {self.grey_prob}")


def _groups(channels: int) -> int:
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def augment(x: Tensor, *, crop_scale: tuple[float, float], jitter: float, grey_prob: float) -> Tensor:
    """One random view of each image (B, C, H, W) in [0, 1]: resized crop + flip, colour jitter."""
    b, c, _, _ = x.shape
    device = x.device
    lo, hi = crop_scale
    side = (lo + (hi - lo) * torch.rand(b, device=device)).sqrt()  # crop side as a fraction of the image side
    shift = (1 - side)[:, None] * (2 * torch.rand(b, 2, device=device) - 1)  # keep the crop inside the image
    flip = torch.where(torch.rand(b, device=device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 1, 1] = side * flip, side
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, H, W)
    if jitter > 0:
        def factor() -> Tensor:
            return 1 + jitter * (2 * torch.rand(b, 1, 1, 1, device=device) - 1)

        x = x * factor()  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor() + mean  # contrast
        if c == 3:
            grey = x.mean(dim=1, keepdim=True)
            x = (x - grey) * factor() + grey  # saturation
    if c == 3 and grey_prob > 0:
        grey = torch.rand(b, 1, 1, 1, device=device) < grey_prob
        x = torch.where(grey, x.mean(dim=1, keepdim=True).expand_as(x), x)
    return x.clamp(0, 1)


def nt_xent(z: Tensor, temperature: float) -> Tensor:
    """NT-Xent over 2B unit vectors ``z``: rows i and i + B are the two views of one image."""
    n = z.shape[0] // 2
    similarity = z @ z.t() / temperature  # (2B, 2B)
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    twins = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, twins)


@register_model("contrastive")
class ContrastiveEncoder(GenerativeModel):
    """``features(x) -> (B, channels[-1])``; ``forward(x)`` -> unit projections (B, projection_dim)."""

    config_class = ContrastiveConfig
    config: ContrastiveConfig
    defaults: dict[str, Any] = {"data": {"name": "celeba", "image_size": 64},
                                "train": {"epochs": 10, "batch_size": 128, "lr": 1e-3, "lr_schedule": "cosine",
                                          "optimizer": "adamw", "weight_decay": 1e-4, "fused_optimizer": False}}

    def __init__(self, config: ContrastiveConfig) -> None:
        super().__init__(config)
        layers: list[nn.Module] = []
        width = config.image_shape[0]
        for channels in config.channels:
            layers += [nn.Conv2d(width, channels, 4, 2, 1), self._norm(channels), nn.SiLU(),
                       nn.Conv2d(channels, channels, 3, 1, 1), self._norm(channels), nn.SiLU()]
            width = channels
        self.encoder = nn.Sequential(*layers)
        self.projection = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, config.projection_dim))

    def _norm(self, channels: int) -> nn.Module:
        return nn.GroupNorm(_groups(channels), channels) if self.config.norm == "group" else nn.BatchNorm2d(channels)

    def features(self, x: Tensor) -> Tensor:
        """Average-pooled encoder activations (B, channels[-1]), before the projection head."""
        x = as_images(x, self.config.image_shape, "contrastive")
        return self.encoder(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.projection(self.features(x)), dim=1)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        cfg = self.config
        x = as_images(batch[0], cfg.image_shape, "contrastive")
        views = torch.cat([augment(x, crop_scale=cfg.crop_scale, jitter=cfg.jitter, grey_prob=cfg.grey_prob) for _ in range(2)])
        z = self(views)  # (2B, projection_dim)
        loss = nt_xent(z, cfg.temperature)
        with torch.no_grad():  # how often the twin is the nearest view: the task's accuracy
            n = x.shape[0]
            similarity = (z @ z.t()).fill_diagonal_(-2)
            hits = similarity.argmax(1) == torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return LossOutput(loss, {"nt_xent": loss, "twin_accuracy": hits.float().mean()})
