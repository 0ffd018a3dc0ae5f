"""A feature-consistent VAE (Hou, Shen, Sun, Qiu, "Deep Feature Consistent Variational Autoencoder",
WACV 2017): the VAE of :mod:`genlab.models.vae` whose reconstructions must also match the data in the
feature maps of a frozen image network, which sharpens what a pixel likelihood alone leaves blurry.

Training minimises, per example,

    -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) + feature_weight * sum_l mean_l (phi_l(x) - phi_l(x_hat))^2

with x_hat the decoder's mean image for the same draw of z ~ q(z|x) that the pixel term scores (one encoder
and one decoder pass per step, as in the plain VAE) and phi_l the feature maps of ``feature_network``
(a genlab model with ``feature_maps(x) -> [Tensor]``, e.g. an ``attributes`` network), each layer's squared
error averaged over its units. Hou et al. drop the pixel term and use VGG; genlab keeps the pixel
likelihood beside the feature term and uses an in-project network trained by genlab (nothing is
downloaded). **What the objective still bounds:** the first two terms are the negative ELBO, so
``elbo``/``iwae_nll`` and the reported likelihoods are those of the pixel decoder p(x|z) and remain
valid bounds and estimates of log p(x) for it; the feature term is a penalty outside the bound, so the
trained model is not the ELBO's maximiser and its likelihood may be worse than the plain VAE's; what
it buys is measured in sample and reconstruction quality, not in nats.

The network that judges features must not be the one that measures the result: genlab's face rulers
(:mod:`genlab.metrics.rulers`) are never a loss; train a separate network for this (another recipe or
seed). Like CycleGAN's semantic classifier, it is frozen, never saved with the VAE, and loaded by the
caller (``genlab train`` reads ``model.feature_network``; in Python :meth:`set_feature_network`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..config import check
from ..nn.frozen import FrozenInput, FrozenNetwork
from ..registry import register_model
from ..runtime import batch_randn
from ..distributions.losses import kl_standard_normal
from .base import Batch, LossOutput, as_images
from .vae import VAE, VAEConfig


@dataclasses.dataclass
class FeatureVAEConfig(VAEConfig):
    architecture: Literal["mlp", "conv"] = "conv"  # faces: a conv VAE with a Gaussian decoder by default
    likelihood: Literal["bernoulli", "continuous_bernoulli", "gaussian", "laplace"] = "gaussian"
    feature_network: str | None = None  # model/run folder of a genlab network with feature_maps (training only)
    feature_weight: float = 1.0  # lambda of the feature term (0 = the plain VAE)
    feature_layers: tuple[int, ...] = ()  # indices into feature_maps(x); () = all of them

    def validate(self) -> None:
        super().validate()
        check(self.feature_weight >= 0, f"model.feature_weight must be >= 0, got {self.feature_weight}")
        check(all(i >= 0 for i in self.feature_layers), f"model.feature_layers must be >= 0, got {list(self.feature_layers)}")


@register_model("feature-vae")
class FeatureVAE(VAE):
    """A VAE with a feature-consistency term; sampling, encoding and the likelihood bounds are the VAE's."""

    config_class = FeatureVAEConfig
    config: FeatureVAEConfig
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"train": {"epochs": 30, "lr": 1e-3}}
    frozen_inputs: ClassVar[dict[str, FrozenInput]] = {
        "feature_network": FrozenInput(weight="feature_weight", setter="set_feature_network", needs="feature-maps")}

    def __init__(self, config: FeatureVAEConfig) -> None:
        super().__init__(config)
        self._network = FrozenNetwork(  # frozen, not saved, handed over by the caller
            "model.feature_weight > 0 needs a feature network: set model.feature_network (a genlab attributes run, "
            "not a face ruler) for genlab train, or call set_feature_network(module)")

    def set_feature_network(self, network: nn.Module) -> None:
        """Use ``network`` (images in [0, 1] -> ``feature_maps``) for the feature term, frozen."""
        self._network.set(network)

    def feature_network(self) -> nn.Module:
        return self._network.get(self.device)

    def feature_distance(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """sum over the chosen layers of the mean squared difference of their activations, per example (B,)."""
        network = self.feature_network()
        with torch.no_grad():
            target = network.feature_maps(x)
        recon = network.feature_maps(x_hat)
        layers = self.config.feature_layers or range(len(target))
        return sum((recon[i] - target[i]).square().flatten(1).mean(1) for i in layers)  # type: ignore[return-value]

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        if self.config.feature_weight == 0:
            return super().loss(batch, phase)
        x = as_images(batch[0], self.config.image_shape, "feature-vae")
        mu, logvar = self.posterior(x)
        z = mu + batch_randn(mu.shape, device=mu.device, dtype=mu.dtype) * torch.exp(0.5 * logvar)  # as the VAE draws it
        raw = self.decoder(z)  # one decoder pass: the pixel NLL and the feature term judge the same reconstruction
        out = self.objective(self.head.mean_nll(raw, x), kl_standard_normal(mu, logvar).mean())
        features = self.feature_distance(x, self.head(raw).mean.clamp(0, 1)).mean()
        return LossOutput(out.total + self.config.feature_weight * features, {**out.terms, "features": features})
