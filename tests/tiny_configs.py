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
TINY["vae:kl-warmup"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [16], "kl_warmup_steps": 3},
    lambda g: (torch.bernoulli(mnist_like(g, shape=(1, 8, 8))[0], generator=g),),
)
TINY["vae:conv-gaussian"] = TinyCase(
    {"architecture": "conv", "image_shape": [3, 12, 12], "latent_dim": 4, "channels": [4, 8], "likelihood": "gaussian", "scale": "softplus"},
    lambda g: mnist_like(g, shape=(3, 12, 12))[:1],
)
TINY["vae:laplace-shared"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [16], "likelihood": "laplace", "scale": "shared"},
    lambda g: mnist_like(g, shape=(1, 8, 8))[:1],
)
# the contract builds models from configs alone: the feature term needs a network handed over by the caller,
# so the contract runs the family with it off; tests/test_feature_vae.py covers the term
TINY["feature-vae"] = TinyCase(
    {"image_shape": [3, 12, 12], "latent_dim": 4, "channels": [4, 8], "feature_weight": 0.0},
    lambda g: mnist_like(g, shape=(3, 12, 12))[:1],
)
TINY["vae:cb"] = TinyCase(
    {"architecture": "mlp", "image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [16], "likelihood": "continuous_bernoulli"},
    lambda g: mnist_like(g, shape=(1, 8, 8))[:1],
)


# GAN family: vectors with the MLP nets, images with the DCGAN nets; variants cover every loss and option.
def _points(g: torch.Generator, n: int = 8):
    return (torch.randn(n, 2, generator=g),)


TINY["gan"] = TinyCase(
    {"x_dim": 2, "latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16]}, _points,
)
TINY["gan:mlp-pack-mbstd-ls"] = TinyCase(
    {"x_dim": 2, "latent_dim": 3, "generator_hidden": [16], "discriminator_hidden": [16], "loss": "least-squares",
     "pack": 2, "minibatch_std": True, "generator_every": 2}, _points,
)
TINY["gan:dcgan"] = TinyCase(
    {"image_shape": [1, 16, 16], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4},
    lambda g: mnist_like(g)[:1],
)
TINY["gan:dcgan-wgan-gp-r1"] = TinyCase(
    {"image_shape": [3, 16, 16], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4,
     "loss": "wgan-gp", "r1_weight": 1.0, "pack": 2, "upsampling": "upsample"},
    lambda g: mnist_like(g, shape=(3, 16, 16))[:1],
)
TINY["gan:dcgan28-hinge-sn"] = TinyCase(
    {"image_shape": [1, 28, 28], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4,
     "loss": "hinge", "spectral_norm": True, "minibatch_std": True},
    lambda g: mnist_like(g, shape=(1, 28, 28))[:1],
)
TINY["cgan"] = TinyCase(
    {"image_shape": [1, 16, 16], "num_classes": 10, "latent_dim": 4, "label_dim": 3,
     "generator_channels": 4, "discriminator_channels": 4},
    lambda g: mnist_like(g),
)
TINY["cgan:mlp-pack-minimax"] = TinyCase(
    {"x_dim": 2, "num_classes": 3, "latent_dim": 2, "generator_hidden": [16], "discriminator_hidden": [16],
     "pack": 2, "loss": "minimax"},
    lambda g: (torch.randn(8, 2, generator=g), torch.randint(0, 3, (8,), generator=g)),
)


# pix2pix: batches are (input, target) pairs; grey -> colour with the GAN, colour -> colour L1-only.
TINY["pix2pix"] = TinyCase(
    {"image_shape": [3, 16, 16], "input_shape": [1, 16, 16], "num_filters": 4, "discriminator_filters": 4},
    lambda g: (torch.rand(4, 1, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g)),
    can_sample=False,
)
TINY["pix2pix:lsgan-instance-32"] = TinyCase(
    {"image_shape": [3, 32, 32], "num_filters": 2, "max_multiplier": 4, "discriminator_filters": 2, "norm": "instance",
     "gan_loss": "lsgan", "discriminator_every": 2},
    lambda g: (torch.rand(4, 3, 32, 32, generator=g), torch.rand(4, 3, 32, 32, generator=g)),
    can_sample=False,
)
TINY["pix2pix:l1-only"] = TinyCase(
    {"image_shape": [1, 16, 16], "num_filters": 4, "adversarial_weight": 0.0},
    lambda g: (torch.rand(4, 1, 16, 16, generator=g), torch.rand(4, 1, 16, 16, generator=g)),
    can_sample=False,
)

# CycleGAN: unpaired (a, b) batches; grey <-> RGB with the ResNet generators, RGB <-> RGB with U-Nets,
# the non-saturating loss and the identity term; small pools so they fill within the contract's steps.
TINY["cyclegan"] = TinyCase(
    {"image_shape": [1, 8, 8], "image_shape_b": [3, 8, 8], "num_filters": 2, "discriminator_filters": 2,
     "residual_blocks": 1, "pool_size": 4},
    lambda g: (torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)),
    can_sample=False,
)
TINY["cyclegan:unet-nonsaturating-identity"] = TinyCase(
    {"image_shape": [3, 16, 16], "generator": "unet", "num_filters": 2, "discriminator_filters": 2,
     "gan_loss": "non-saturating", "identity_weight": 0.5, "pool_size": 2},
    lambda g: (torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g)),
    can_sample=False,
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


# Conditional density models (issue 3): batches are (inputs, targets).
def _regression(g: torch.Generator, n: int = 8, x_dim: int = 2, y_dim: int = 2):
    return torch.randn(n, x_dim, generator=g), torch.randn(n, y_dim, generator=g)


TINY["mdn"] = TinyCase({"x_dim": 2, "y_dim": 2, "hidden_dims": [8], "num_components": 3}, _regression, can_sample=False)
TINY["mdn:laplace-exp"] = TinyCase(
    {"x_dim": 2, "y_dim": 2, "hidden_dims": [8, 8], "num_components": 2, "component": "laplace", "scale": "exp", "activation": "relu"},
    _regression, can_sample=False,
)
TINY["regressor"] = TinyCase({"x_dim": 2, "y_dim": 2, "hidden_dims": [8]}, _regression, can_sample=False)
TINY["regressor:mse"] = TinyCase({"x_dim": 2, "y_dim": 2, "hidden_dims": [8], "likelihood": "mse"}, _regression, can_sample=False)
TINY["naive"] = TinyCase({"x_dim": 2, "latent_dim": 2, "hidden_dims": [8]}, lambda g: (torch.randn(8, 2, generator=g),))
TINY["naive:conv-bce"] = TinyCase(
    {"image_shape": [1, 16, 16], "latent_dim": 3, "generator": "conv", "base_channels": 4, "loss": "bce"},
    lambda g: mnist_like(g),
)
TINY["naive:mlp-l1-images"] = TinyCase(
    {"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [8], "loss": "l1"},
    lambda g: mnist_like(g, shape=(1, 8, 8))[:1],
)


# StyleGAN: every phase on at small intervals (lazy R1 and path length every 2 steps).
TINY["stylegan"] = TinyCase(
    {"image_shape": [3, 16, 16], "latent_dim": 4, "w_dim": 4, "mapping_depth": 2, "channel_base": 64, "channel_max": 8,
     "r1_every": 2, "pl_weight": 1.0, "pl_every": 2, "modconv": "grouped"},
    lambda g: mnist_like(g, shape=(3, 16, 16))[:1],
)
TINY["stylegan:inline-r1-1ch-channels-last"] = TinyCase(
    {"image_shape": [1, 16, 16], "latent_dim": 4, "w_dim": 4, "mapping_depth": 1, "channel_base": 64, "channel_max": 8,
     "r1_every": 1, "style_mixing_prob": 0.5, "channels_last": True},
    lambda g: mnist_like(g)[:1],
)


# FastGAN: 64 px with every default (hinge, MSE reconstruction, colour + translation); 128 px grey with
# the non-saturating G loss, L1 reconstruction, all three augmentations at p = 0.5 ramped over 3 steps.
TINY["fastgan"] = TinyCase(
    {"image_shape": [3, 64, 64], "latent_dim": 8, "generator_channels": 1, "discriminator_channels": 1},
    lambda g: mnist_like(g, n=4, shape=(3, 64, 64))[:1],
)
TINY["fastgan:128-grey-ns-l1-ramp-nosn"] = TinyCase(
    {"image_shape": [1, 128, 128], "latent_dim": 8, "generator_channels": 1, "discriminator_channels": 1,
     "loss": "non-saturating", "reconstruction": "l1", "augment": "color,translation,cutout", "augment_p": 0.5,
     "augment_ramp_steps": 3, "spectral_norm": False},
    lambda g: mnist_like(g, n=4, shape=(1, 128, 128))[:1],
)


# Sentence VAE (issue 26): (tokens, lengths) batches of padded word ids; the AE is the same network.
def _sentences(g: torch.Generator, n: int = 8, length: int = 7, vocab: int = 12):
    lengths = torch.randint(2, length + 1, (n,), generator=g)
    tokens = torch.randint(4, vocab, (n, length), generator=g)
    positions = torch.arange(length)
    tokens = torch.where(positions < lengths[:, None] - 1, tokens, torch.zeros_like(tokens))
    tokens[torch.arange(n), lengths - 1] = 2  # <eos>, then <pad>
    return tokens, lengths


_TINY_VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", *(f"w{i}" for i in range(8))]
TINY["sentence-vae"] = TinyCase(
    {"vocab": _TINY_VOCAB, "max_length": 7, "embedding_dim": 6, "hidden_dim": 8, "latent_dim": 3, "kl_warmup_steps": 3},
    _sentences,
)
TINY["sentence-vae:autoencoder-linear"] = TinyCase(
    {"vocab": _TINY_VOCAB, "max_length": 7, "embedding_dim": 6, "hidden_dim": 8, "latent_dim": 3,
     "variational": False, "kl_schedule": "linear", "word_dropout": 0.5},
    _sentences,
)


# The face rulers' feature networks (genlab.metrics.rulers): a multi-label ResNet and a contrastive encoder.
TINY["attributes"] = TinyCase(
    {"image_shape": [3, 16, 16], "num_attributes": 5, "widths": [4, 8], "stem_stride": 1},
    lambda g: (torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, 2, (8, 5), generator=g)),
    can_sample=False,
)
TINY["contrastive"] = TinyCase(
    {"image_shape": [3, 16, 16], "channels": [4, 8], "projection_dim": 4},
    lambda g: mnist_like(g, shape=(3, 16, 16))[:1],
    can_sample=False,
)


# DiffAugment on the DCGAN and StyleGAN (issue 24): all three ops at p = 0.5, ramped over 3 D steps, so
# the SIGKILL drill (tests/test_gan.py, tests/test_stylegan.py) kills a run halfway up the ramp.
TINY["gan:dcgan-diffaugment-ramp"] = TinyCase(
    {"image_shape": [1, 16, 16], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4,
     "augment": "color,translation,cutout", "augment_p": 0.5, "augment_ramp_steps": 3, "r1_weight": 1.0,
     "discriminator_norm": "none"},
    lambda g: mnist_like(g)[:1],
)
# ADA's adaptive p, moving every 4 D steps by 16 images / 80 = 0.2: the drill (batch 4, checkpoint at step 2,
# killed at 3, 5 steps) kills it between two moves, with the running sums of two steps in the checkpoint
TINY["gan:dcgan-diffaugment-adaptive"] = TinyCase(
    {"image_shape": [1, 16, 16], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4,
     "augment": "color,translation,cutout", "augment_target": 0.6, "augment_speed_kimg": 0.08,
     "discriminator_norm": "none"},
    lambda g: mnist_like(g)[:1],
)
TINY["stylegan:diffaugment-ramp"] = TinyCase(
    {"image_shape": [3, 16, 16], "latent_dim": 4, "w_dim": 4, "mapping_depth": 1, "channel_base": 64, "channel_max": 8,
     "r1_every": 2, "modconv": "grouped", "augment": "color,translation,cutout", "augment_p": 0.5,
     "augment_ramp_steps": 6},
    lambda g: mnist_like(g, shape=(3, 16, 16))[:1],
)
