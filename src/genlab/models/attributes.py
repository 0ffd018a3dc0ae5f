"""A small ResNet that predicts many binary attributes at once (multi-label, one sigmoid per label).

It is the first of genlab's two face *rulers* (:mod:`genlab.metrics.rulers`): its pooled features
(:meth:`AttributeNet.features`) are the space in which sample-quality metrics are measured on faces.
On CelebA it learns all 40 attributes with binary cross-entropy (the multi-task set-up of Liu et al.
2015, "Deep Learning Face Attributes in the Wild"); the network is a He et al. (2016) ResNet cut
down to one basic block per stage for 64 px images on a CPU. It is never a training loss of a
generator: a metric network that a generator was optimised against would be gamed, not measured.

Batches are ``(x, y)``: images (B, C, H, W) in [0, 1] and labels (B, num_attributes) in {0, 1}
(the ``celeba`` dataset's ``y``). The only augmentation is a horizontal flip, which keeps every
CelebA attribute's meaning.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config, check
from ..errors import DataError
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, as_images


@dataclasses.dataclass
class AttributeNetConfig(Config):
    image_shape: tuple[int, int, int] = (3, 64, 64)
    num_attributes: int = 40
    widths: tuple[int, ...] = (32, 64, 128, 256)  # one residual stage per entry; every stage after the first halves H, W
    stem_stride: int = 2  # the stem conv halves 64 px to 32 px: a quarter of the cost, and faces need no 1-px detail
    blocks_per_stage: int = 1
    flip: bool = True  # random horizontal flips while training

    def validate(self) -> None:
        check(len(self.image_shape) == 3 and min(self.image_shape) >= 1, f"model.image_shape must be (C, H, W), got {self.image_shape}")
        check(self.num_attributes >= 1, f"model.num_attributes must be >= 1, got {self.num_attributes}")
        check(len(self.widths) >= 1 and min(self.widths) >= 1, f"model.widths must be positive, got {self.widths}")
        check(self.blocks_per_stage >= 1, f"model.blocks_per_stage must be >= 1, got {self.blocks_per_stage}")
        check(self.stem_stride in (1, 2), f"model.stem_stride must be 1 or 2, got {self.stem_stride}")
        side = min(self.image_shape[1:]) // (self.stem_stride * 2 ** (len(self.widths) - 1))
        check(side >= 1, f"model.widths: {len(self.widths)} stages shrink a {self.image_shape[1]}-pixel image to nothing")


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a (strided 1x1 conv) shortcut, then ReLU (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.shortcut(x))


def random_flip(x: Tensor) -> Tensor:
    """Mirror a random half of the batch left-right (one ``where``, no loop over images)."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(-1), x)


@register_model("attributes")
class AttributeNet(GenerativeModel):
    """``forward(x) -> logits (B, num_attributes)``; ``features(x) -> (B, widths[-1])``."""

    config_class = AttributeNetConfig
    config: AttributeNetConfig
    defaults: dict[str, Any] = {"data": {"name": "celeba", "image_size": 64},
                                "train": {"epochs": 10, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine",
                                          "weight_decay": 5e-4, "optimizer": "adamw", "fused_optimizer": False}}

    def __init__(self, config: AttributeNetConfig) -> None:
        super().__init__(config)
        widths = config.widths
        self.stem = nn.Sequential(nn.Conv2d(config.image_shape[0], widths[0], 3, config.stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks: list[nn.Module] = []
        width = widths[0]
        for i, out in enumerate(widths):
            for j in range(config.blocks_per_stage):
                blocks.append(BasicBlock(width, out, stride=2 if i > 0 and j == 0 else 1))
                width = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, config.num_attributes)

    @classmethod
    def adapt_config(cls, config: dict[str, Any], data_info: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        out = super().adapt_config(config, data_info, explicit)
        if "num_attributes" not in explicit and data_info.get("num_attributes"):
            out["num_attributes"] = int(data_info["num_attributes"])
        return out

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """The stem's and every residual block's activations (B, C, H, W), fine to coarse: the layers a
        feature-consistent VAE compares (:mod:`genlab.models.feature_vae`)."""
        h = self.stem(as_images(x, self.config.image_shape, "attributes"))
        maps = [h]
        for block in self.blocks:
            h = block(h)
            maps.append(h)
        return maps

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled last-stage activations (B, widths[-1]): the ruler's feature space."""
        x = as_images(x, self.config.image_shape, "attributes")
        return self.blocks(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_attributes) logits

    def _labels(self, batch: Batch) -> tuple[Tensor, Tensor]:
        if len(batch) < 2 or batch[1].dim() != 2 or batch[1].shape[1] != self.config.num_attributes:
            got = tuple(batch[1].shape) if len(batch) > 1 else "no labels"
            raise DataError(f"attributes expects batches (images, labels (B, {self.config.num_attributes})), got labels {got}")
        return batch[0], batch[1].float()

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        x, y = self._labels(batch)
        if self.training and self.config.flip:
            x = random_flip(x)
        logits = self(x)
        bce = F.binary_cross_entropy_with_logits(logits, y)
        return LossOutput(bce, {"bce": bce, "accuracy": ((logits > 0).float() == y).float().mean()})

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        x, y = self._labels(batch)
        logits = self(x)
        correct = ((logits > 0).float() == y).float()
        # mean accuracy hides rare attributes (Bald is 2 %); the balanced one (mean of TPR and TNR) does not
        positives, negatives = y.sum(0), (1 - y).sum(0)
        tpr = (correct * y).sum(0) / positives.clamp(min=1)
        tnr = (correct * (1 - y)).sum(0) / negatives.clamp(min=1)
        both = (positives > 0) & (negatives > 0)  # attributes this batch can score both ways
        balanced = ((tpr + tnr) / 2)[both].mean() if bool(both.any()) else correct.mean()
        return {"loss": F.binary_cross_entropy_with_logits(logits, y), "accuracy": correct.mean(),
                "balanced_accuracy": balanced}
