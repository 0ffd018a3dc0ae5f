"""Latent-space tools for any model that can ``decode(z)`` (autoencoders, VAEs, GAN generators):
interpolation (lerp, slerp, strips, 4-corner grids), attribute vectors, latent-density samplers
and projection of images into the latent space; for StyleGAN, the same in W (:mod:`.styles`).
What a model can do (decode, encode, style mixing, ...) is checked in :mod:`.protocols`."""
from .directions import apply_attribute, apply_to_codes, attribute_vector, labelled_examples, latent_codes
from .interpolate import (
    decode, expected_gaussian_norm, grid_codes, interpolation_codes, interpolation_grid, interpolation_strip, lerp,
    norm_profile, random_codes, seed_codes, slerp,
)
from .protocols import MissingCapability, has, image_shape, latent_dim, require, takes_label
from .projection import ProjectionResult, project
from .samplers import LatentDensity, encode_all, fit_latent_density, sample_images
from .styles import apply_w_attribute, attribute_vector_w, labelled_samples_w, style_codes, w_interpolation

__all__ = [
    "apply_attribute", "apply_to_codes", "attribute_vector", "labelled_examples", "latent_codes",
    "decode", "expected_gaussian_norm", "grid_codes", "interpolation_codes", "interpolation_grid",
    "interpolation_strip", "lerp", "norm_profile", "random_codes", "seed_codes", "slerp",
    "MissingCapability", "has", "image_shape", "latent_dim", "require", "takes_label",
    "ProjectionResult", "project", "LatentDensity", "encode_all", "fit_latent_density", "sample_images",
    "apply_w_attribute", "attribute_vector_w", "labelled_samples_w", "style_codes", "w_interpolation",
]
