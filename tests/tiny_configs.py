"""Tiny configs and example batches for the contract suite (tests/test_contract.py).

Every registered model must have an entry here: the contract test fails for a model without one.
A case is a config dict for ``build_model(name, config)`` and a function that makes a batch (a tuple
of tensors, as the family's ``loss`` expects) from a ``torch.Generator``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch


@dataclasses.dataclass
class TinyCase:
    config: dict[str, Any]
    batch: Callable[[torch.Generator], tuple[torch.Tensor, ...]]
    can_sample: bool = True  # model.sample(n) works without inputs


def mnist_like(g: torch.Generator, n: int = 8, shape=(1, 16, 16), classes: int = 10):
    x = torch.rand(n, *shape, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


TINY: dict[str, TinyCase] = {}


# Keys are registry names, or "name:variant" for extra configurations of the same family.
TINY["autoencoder"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 16, 16], "latent_dim": 3, "hidden_dims": [32, 16]},
    lambda g: mnist_like(g)[:1],
)
TINY["autoencoder:conv-bce"] = TinyCase(
    {"architecture": "conv", "image_shape": [1, 16, 16], "latent_dim": 3, "channels": [4, 8], "norm": "batch", "loss": "bce"},
    lambda g: mnist_like(g)[:1],
)
TINY["vae"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 16, 16], "latent_dim": 2, "hidden_dims": [32, 16]},
    lambda g: (torch.bernoulli(mnist_like(g)[0], generator=g),),
)
TINY["vae:conv-gaussian"] = TinyCase(
    {"architecture": "conv", "image_shape": [3, 12, 12], "latent_dim": 4, "channels": [4, 8], "likelihood": "gaussian", "scale": "softplus"},
    lambda g: mnist_like(g, shape=(3, 12, 12))[:1],
)
TINY["vae:laplace-shared"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [16], "likelihood": "laplace", "scale": "shared"},
    lambda g: mnist_like(g, shape=(1, 8, 8))[:1],
)
TINY["vae:cb"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [16], "likelihood": "continuous_bernoulli"},
    lambda g: mnist_like(g, shape=(1, 8, 8))[:1],
)


# Classifier (issue 3): images + labels; the adversarial variant runs PGD inside every training step.
TINY["classifier"] = TinyCase(
    {"image_shape": [1, 16, 16], "num_classes": 10, "channels": [4, 8], "kernel_size": 3, "hidden_dim": 16},
    lambda g: mnist_like(g),
    can_sample=False,
)
TINY["classifier:pgd-training"] = TinyCase(
    {"image_shape": [1, 16, 16], "num_classes": 10, "channels": [4], "kernel_size": 3, "hidden_dim": 8,
     "adversarial": "pgd", "adv_eps": 0.1, "adv_steps": 2, "adv_weight": 0.5, "augment_shift": 1},
    lambda g: mnist_like(g),
    can_sample=False,
)
