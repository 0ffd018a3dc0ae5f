"""Attribute vectors: the difference of latent means between labelled groups.

Encode a few faces that have an attribute (smiling) and a few that do not; the difference of the
two code means is a direction that adds the attribute (Larsen et al., "Autoencoding beyond pixels
using a learned similarity metric", ICML 2016; White 2016). Adding ``s * vector`` to a face's code
and decoding walks that face along it; ``s = 0`` is the plain reconstruction and negative scales
take the attribute away. Models without an encoder (GAN generators) get their codes by
optimisation (:func:`genlab.latent.project`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import DataError, GenlabError
from .interpolate import decode
from .protocols import has


def latent_codes(model: torch.nn.Module, images: Tensor, *, batch_size: int = 256, **project_options) -> Tensor:
    """Codes (N, D) of images: the encoder when the model has one, else optimisation-based inversion."""
    if has(model, "encoder"):
        from .samplers import encode_all

        return encode_all(model, images, batch_size=batch_size)
    from .projection import project

    return project(model, images, **project_options).z


def attribute_vector(model: torch.nn.Module, positives: Tensor, negatives: Tensor, **options) -> Tensor:
    """mean(code(positives)) - mean(code(negatives)): (D,). Both are image batches (N, C, H, W)."""
    if len(positives) == 0 or len(negatives) == 0:
        raise DataError(f"an attribute vector needs examples of both groups, got {len(positives)} and {len(negatives)}")
    return latent_codes(model, positives, **options).mean(0) - latent_codes(model, negatives, **options).mean(0)


def apply_attribute(model: torch.nn.Module, images: Tensor, vector: Tensor, scales: Sequence[float], *,
                    batch_size: int = 256, **options) -> Tensor:
    """Decode ``code(image) + s * vector`` for every image and scale: (N, S, C, H, W), one strip
    per image (``make_grid(out.flatten(0, 1), nrow=S)`` draws them as rows)."""
    z = latent_codes(model, images, batch_size=batch_size, **options)  # (N, D)
    return apply_to_codes(model, z, vector, scales, batch_size=batch_size)


def apply_to_codes(model: torch.nn.Module, z: Tensor, vector: Tensor, scales: Sequence[float], *,
                   batch_size: int = 256) -> Tensor:
    """:func:`apply_attribute` for codes already at hand: (N, D) -> (N, S, C, H, W)."""
    if vector.shape != z.shape[1:]:
        raise GenlabError(f"attribute vector has shape {tuple(vector.shape)}, codes are {tuple(z.shape[1:])}")
    s = torch.as_tensor(list(scales), dtype=z.dtype)  # (S,)
    codes = z[:, None, :] + s[None, :, None] * vector.to(z.dtype)  # (N, S, D)
    images = decode(model, codes.flatten(0, 1), batch_size=batch_size)
    return images.view(z.shape[0], len(s), *images.shape[1:])


def labelled_examples(labels: Tensor, names: Sequence[str], attribute: str, count: int, *,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Indices of ``count`` examples with the attribute and ``count`` without, drawn at random.
    ``labels`` is (N, K) with column ``names.index(attribute)``; values > 0.5 count as present."""
    names = list(names)
    if attribute not in names:
        close = [n for n in names if n.lower() == attribute.lower()]
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DataError(f"unknown attribute {attribute!r}{hint}; valid: {', '.join(names)}")
    if labels.dim() != 2 or labels.shape[1] != len(names):
        raise DataError(f"labels must be (N, {len(names)}), got shape {tuple(labels.shape)}")
    present = labels[:, names.index(attribute)].float() > 0.5
    pos, neg = present.nonzero().squeeze(1), (~present).nonzero().squeeze(1)
    if len(pos) < count or len(neg) < count:
        raise DataError(f"need {count} examples with and without {attribute}; the data has {len(pos)} and {len(neg)}")
    pick = lambda idx: idx[torch.randperm(len(idx), generator=generator)[:count]]  # noqa: E731
    return pick(pos), pick(neg)
