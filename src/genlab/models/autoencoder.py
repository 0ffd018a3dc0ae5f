"""Deterministic autoencoder: encoder -> code z -> decoder, trained to reconstruct its input
(Hinton & Salakhutdinov 2006). Its codes have no prior, so ``sample`` from N(0, I) gives poor
images; :class:`genlab.latent.LatentDensity` fits a density to the codes instead.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config, check
from ..nn.blocks import build_decoder, build_encoder
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, as_images


@dataclasses.dataclass
class AutoencoderConfig(Config):
    architecture: Literal["mlp", "conv"] = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 16
    hidden_dims: tuple[int, ...] = (512, 256)
    channels: tuple[int, ...] = (32, 64)
    norm: Literal["none", "batch"] = "none"
    loss: Literal["mse", "l1", "bce"] = "mse"

    def validate(self) -> None:
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(len(self.image_shape) == 3 and min(self.image_shape) >= 1, f"model.image_shape must be (C, H, W), got {self.image_shape}")
        check(self.architecture == "mlp" or len(self.channels) >= 1, "model.channels must list at least one conv width")


@register_model("autoencoder")
class Autoencoder(GenerativeModel):
    config_class = AutoencoderConfig
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"train": {"epochs": 30}}
    config: AutoencoderConfig

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        c = config
        kwargs = {"hidden_dims": c.hidden_dims, "channels": c.channels, "norm": c.norm}
        self.encoder = build_encoder(c.architecture, c.image_shape, c.latent_dim, **kwargs)
        self.decoder = build_decoder(c.architecture, c.image_shape, c.latent_dim, 1, **kwargs)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def _images(self, x: Tensor) -> Tensor:
        return as_images(x, self.config.image_shape, "autoencoder")  # a flat (B, C*H*W) batch too

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(self._images(x))

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(z.shape[0], *self.config.image_shape)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def sample(self, n: int, *, generator: torch.Generator | None = None, **kwargs: Any) -> Tensor:
        """Decode z ~ N(0, I): the naive sampler (fit a LatentDensity to the codes for a good one)."""
        return self.decode(torch.randn(n, self.latent_dim, generator=generator, device=self.device))

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """Per-example loss (B,), averaged over pixels."""
        x = self._images(x)
        logits = self.decode_logits(self.encode(x))
        if self.config.loss == "bce":
            err = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        elif self.config.loss == "l1":
            err = (torch.sigmoid(logits) - x).abs()
        else:
            err = (torch.sigmoid(logits) - x).square()
        return err.flatten(1).mean(1)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        recon = self.reconstruction_error(batch[0]).mean()
        return LossOutput(recon, {"recon": recon})

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        x = self._images(batch[0])
        recon = self.reconstruction_error(x).mean()
        mse = (self.reconstruct(x) - x).square().mean()
        return {"loss": recon, "recon": recon, "mse": mse}

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        x = self._images(batch[0][:32])
        # originals and reconstructions interleaved row by row
        return torch.stack([x, self.reconstruct(x)], dim=1).flatten(0, 1)
