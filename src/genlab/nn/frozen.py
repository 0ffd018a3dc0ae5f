"""A frozen network that a model's loss uses but the model neither trains nor saves (CycleGAN's semantic
classifier, the feature-consistent VAE's judge of features).

The network is held outside the model's module tree, so it is in neither ``parameters()`` nor
``state_dict()``: a checkpoint of the model never carries it, and loading a model never needs it. The
caller hands it over (``genlab train`` loads it from a path in the model's config); it is moved to the
model's device when the loss asks for it, since the Trainer may move the model after it was set.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class FrozenInput:
    """A model's declaration (``GenerativeModel.frozen_inputs``, keyed by the config field naming a saved
    model's folder) of a frozen network its loss reads: the loss is on while the config field ``weight`` is
    above 0; whoever builds the model (``genlab.api.attach_frozen_inputs``) loads the network, checks it has
    capability ``needs`` (``genlab.latent.protocols``) and hands it to the method ``setter``."""

    weight: str
    setter: str
    needs: str | None = None


class FrozenNetwork:
    """Holds one frozen network; ``missing`` is the one-line error when a loss asks before one was set."""

    def __init__(self, missing: str) -> None:
        self.missing = missing
        self._network: nn.Module | None = None

    def set(self, network: nn.Module) -> None:
        network.eval().requires_grad_(False)
        self._network = network

    def get(self, device: torch.device) -> nn.Module:
        if self._network is None:
            raise ConfigError(self.missing)
        if next(self._network.parameters()).device != device:
            self._network.to(device)
        return self._network
