"""Paths through a latent space: lerp, slerp, decoded strips and 4-corner grids.

Linear interpolation between two draws of a d-dimensional N(0, I) cuts through the middle of the
distribution: the midpoint of two near-orthogonal codes of norm ~sqrt(d) has norm ~sqrt(d/2), a
region the decoder never saw. Spherical interpolation (Shoemake 1985; White, "Sampling Generative
Networks", 2016) walks the great circle instead, so equal-norm endpoints keep their norm all the
way. Here the direction follows the great circle and the norm is interpolated linearly, which is
the classical slerp when the norms are equal and stays well defined when they are not.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import Tensor

from ..batching import eval_mode, map_batches, module_device
from ..errors import GenlabError
from .protocols import latent_dim, require

Method = Literal["lerp", "slerp"]


def _as_steps(t: float | Tensor, like: Tensor) -> tuple[Tensor, bool]:
    """``t`` as a (T, 1, ..., 1) tensor broadcastable against (T, *like.shape); flag if scalar."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    scalar = t.dim() == 0
    t = t.reshape(-1, *([1] * like.dim()))
    return t, scalar


def lerp(z0: Tensor, z1: Tensor, t: float | Tensor) -> Tensor:
    """``(1 - t) z0 + t z1``. ``z0``, ``z1``: (..., D); ``t`` a float -> (..., D), or (T,) -> (T, ..., D)."""
    steps, scalar = _as_steps(t, z0)
    out = z0 + steps * (z1 - z0)
    return out[0] if scalar else out


def slerp(z0: Tensor, z1: Tensor, t: float | Tensor, *, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation along the last dimension; shapes as :func:`lerp`.

    Exact endpoints; constant norm between equal-norm endpoints. Degenerate cases are finite:
    nearly parallel endpoints follow the (vanishing) arc, antipodal ones turn through a fixed
    direction orthogonal to ``z0``, and a zero endpoint gives the straight line.
    """
    steps, scalar = _as_steps(t, z0)
    n0 = z0.norm(dim=-1, keepdim=True)  # (..., 1)
    n1 = z1.norm(dim=-1, keepdim=True)
    u0 = z0 / n0.clamp_min(eps)
    u1 = z1 / n1.clamp_min(eps)
    cos = (u0 * u1).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    ortho = u1 - cos * u0  # the part of u1 orthogonal to u0; its norm is sin(omega)
    sin = ortho.norm(dim=-1, keepdim=True)
    omega = torch.atan2(sin, cos)  # accurate near 0 and pi, unlike acos
    # Unit tangent at u0 towards u1. When sin ~ 0 it is undefined: for parallel endpoints any
    # orthogonal direction works (omega ~ 0 multiplies it); for antipodal ones every great circle
    # through u0 reaches u1, so pick one deterministically.
    fallback = _orthogonal_unit(u0)
    tangent = torch.where(sin > eps, ortho / sin.clamp_min(eps), fallback)
    direction = torch.cos(steps * omega) * u0 + torch.sin(steps * omega) * tangent  # (T, ..., D)
    norm = n0 + steps * (n1 - n0)
    out = norm * direction
    # a zero endpoint has no direction: the straight line is the only sensible path
    degenerate = (n0 <= eps) | (n1 <= eps)
    out = torch.where(degenerate, z0 + steps * (z1 - z0), out)
    return out[0] if scalar else out


def _orthogonal_unit(u: Tensor) -> Tensor:
    """A unit vector orthogonal to each unit row of ``u`` (..., D): Gram-Schmidt on the basis
    vector where ``u`` is smallest (never parallel to ``u`` when D >= 2)."""
    if u.shape[-1] < 2:
        return torch.zeros_like(u)
    index = u.abs().argmin(dim=-1, keepdim=True)
    e = torch.zeros_like(u).scatter_(-1, index, 1.0)
    v = e - (e * u).sum(-1, keepdim=True) * u
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


INTERPOLATORS = {"lerp": lerp, "slerp": slerp}


def _interpolator(method: str):
    try:
        return INTERPOLATORS[method]
    except KeyError:
        raise GenlabError(f"unknown interpolation {method!r}; valid: {', '.join(INTERPOLATORS)}") from None


def interpolation_codes(z0: Tensor, z1: Tensor, steps: int, *, method: Method = "lerp") -> Tensor:
    """``steps`` codes from ``z0`` to ``z1`` inclusive: (D,) endpoints -> (steps, D)."""
    if steps < 2:
        raise GenlabError(f"an interpolation needs steps >= 2, got {steps}")
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype, device=z0.device)
    return _interpolator(method)(z0, z1, t)


def grid_codes(corners: Tensor, steps: int, *, method: Method = "lerp") -> Tensor:
    """Bilinear (or bi-spherical) interpolation between 4 corner codes (4, D) given as top-left,
    top-right, bottom-left, bottom-right -> (steps * steps, D) in row-major order."""
    if corners.dim() != 2 or corners.shape[0] != 4:
        raise GenlabError(f"a grid needs 4 corner codes (4, D), got shape {tuple(corners.shape)}")
    left = interpolation_codes(corners[0], corners[2], steps, method=method)  # (steps, D) down the left edge
    right = interpolation_codes(corners[1], corners[3], steps, method=method)
    t = torch.linspace(0.0, 1.0, steps, dtype=corners.dtype, device=corners.device)
    rows = _interpolator(method)(left, right, t)  # (steps[col], steps[row], D)
    return rows.transpose(0, 1).reshape(steps * steps, -1)


def decode(model: torch.nn.Module, z: Tensor, *, batch_size: int = 256) -> Tensor:
    """``model.decode`` in eval mode and in batches: (N, D) -> images (N, C, H, W) on the CPU."""
    require(model, "decoder", purpose="the latent tools")
    with eval_mode(model):
        return map_batches(model.decode, z, batch_size=batch_size, device=module_device(model))


def random_codes(model: torch.nn.Module, n: int, *, generator: torch.Generator | None = None) -> Tensor:
    """n draws of N(0, I) in the model's latent space (on the CPU; decoding moves them)."""
    return torch.randn(n, latent_dim(model), generator=generator)


def seed_codes(model: torch.nn.Module, seeds: Sequence[int]) -> Tensor:
    """One N(0, I) code per seed, each drawn alone from ``torch.Generator().manual_seed(seed)``:
    (len(seeds), D). Seed s gives the same code in ``genlab interpolate --seeds``, ``genlab grid``
    and the explorer, however many other seeds are asked for with it."""
    dim = latent_dim(model)
    if not len(seeds):
        return torch.empty(0, dim)
    return torch.cat([torch.randn(1, dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def interpolation_strip(model: torch.nn.Module, z0: Tensor, z1: Tensor, steps: int = 8, *,
                        method: Method = "lerp") -> Tensor:
    """Decoded images along the path from ``z0`` to ``z1``: (steps, C, H, W)."""
    return decode(model, interpolation_codes(z0, z1, steps, method=method))


def interpolation_grid(model: torch.nn.Module, corners: Tensor, steps: int = 8, *,
                       method: Method = "lerp") -> Tensor:
    """Decoded (steps * steps, C, H, W) grid between 4 corner codes, row-major (see
    :func:`grid_codes`); save with ``nrow=steps``."""
    return decode(model, grid_codes(corners, steps, method=method))


def norm_profile(z0: Tensor, z1: Tensor, steps: int = 11, *, method: Method = "lerp") -> Tensor:
    """Norms along the path, (steps,) or (steps, ...) for batched endpoints: the number that shows
    lerp shrinking Gaussian codes towards the origin."""
    return interpolation_codes(z0, z1, steps, method=method).norm(dim=-1)


def expected_gaussian_norm(dim: int) -> float:
    """E|z| for z ~ N(0, I_d): sqrt(2) Gamma((d+1)/2) / Gamma(d/2) (about sqrt(d - 1/2))."""
    return math.sqrt(2.0) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))
