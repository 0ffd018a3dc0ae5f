"""Small generated datasets for conditional density models and mode-collapse experiments.

* Bishop's inverted sinusoid (Bishop 1994, "Mixture Density Networks"): ``x = t + 0.3 sin(2 pi t) + U(-0.1, 0.1)``;
  predicting ``t`` from ``x`` has up to three right answers for one input.
* 2-joint robot-arm inverse kinematics (Bishop 1994, sec. 4): predict the joint angles from the end
  position. Most targets are reached by an elbow-up *and* an elbow-down configuration, so the
  conditional mean of the angles is a wrong answer. :func:`forward_kinematics` checks answers.
* 2-D Gaussian mixtures: a ring of 8 and a 5x5 grid of 25 (the mode-collapse benchmarks of
  Metz et al. 2017, VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018)), two moons and
  a swiss roll.

Every generator takes ``n`` and a ``torch.Generator`` and is a pure function of them. Registered
datasets read ``DataConfig.size`` (training examples), ``DataConfig.seed`` and loader options
(``--data.options.preset=veegan``); the test split is drawn from an independent seed. ``ring``
(``--data.options.modes=12``) and ``grid`` (``--data.options.side=7``) are the families; ``ring8`` and
``grid25`` are the benchmarks' members of them, with the count fixed.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from ..errors import DataError
from ..registry import register_dataset
from .base import ArrayDataset, DataConfig, _mix

# ----------------------------------------------------------------------------- presets
# Ring: 8 modes on a circle. Grid: side x side modes at spacing * {-(side-1)/2 .. (side-1)/2}.
RING_PRESETS: dict[str, dict[str, float]] = {
    "pacgan": {"radius": 1.0, "sigma": 0.01},  # Lin et al. 2018: unit circle, sigma 0.01
    "veegan": {"radius": 2.0, "sigma": 0.02},  # Srivastava et al. 2017: radius 2, sigma 0.02
}
GRID_PRESETS: dict[str, dict[str, float]] = {
    "pacgan": {"spacing": 2.0, "sigma": 0.05},  # modes at {-4, -2, 0, 2, 4}^2
    "veegan": {"spacing": 2.0, "sigma": 0.05},  # same grid, covariance 0.0025 I
}

# Bishop's arm: link lengths 0.8 and 0.2, shoulder in (0.3, 1.2) rad. The elbow range (-pi/2, pi/2)
# (Bishop's (pi/2, 3pi/2) with his minus-sign convention) holds both the elbow-up and elbow-down
# configuration of most reachable targets.
ARM_LENGTHS = (0.8, 0.2)
ARM_THETA1 = (0.3, 1.2)
ARM_THETA2 = (-math.pi / 2, math.pi / 2)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, dim: int = 1) -> Tensor:
    return low + (high - low) * torch.rand(n, dim, generator=generator)


def _check_n(n: int) -> None:
    if n < 1:
        raise DataError(f"number of points must be >= 1, got {n}")


# ----------------------------------------------------------------------------- 2-D mixtures

def ring_centres(modes: int = 8, radius: float = 1.0) -> Tensor:
    angles = 2 * math.pi * torch.arange(modes, dtype=torch.float32) / modes
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)  # (modes, 2)


def grid_centres(side: int = 5, spacing: float = 2.0) -> Tensor:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (side^2, 2)


def _mixture(n: int, centres: Tensor, sigma: float, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Equal-weight isotropic Gaussians: points (n, 2) and the component each came from (n,)."""
    _check_n(n)
    if sigma < 0:
        raise DataError(f"sigma must be >= 0, got {sigma}")
    labels = torch.randint(0, centres.shape[0], (n,), generator=generator)
    noise = torch.randn(n, centres.shape[1], generator=generator)
    return centres[labels] + sigma * noise, labels


def ring(n: int, *, modes: int = 8, radius: float = 1.0, sigma: float = 0.01,
         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` points from ``modes`` Gaussians evenly spaced on a circle -> (points (n, 2), centres (modes, 2)).
    The defaults are the PacGAN preset; ``ring(n, **RING_PRESETS["veegan"])`` gives VEEGAN's."""
    if modes < 1 or radius <= 0:
        raise DataError(f"ring needs modes >= 1 and radius > 0, got modes={modes}, radius={radius}")
    centres = ring_centres(modes, radius)
    return _mixture(n, centres, sigma, generator)[0], centres


def grid(n: int, *, side: int = 5, spacing: float = 2.0, sigma: float = 0.05,
         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` points from a ``side`` x ``side`` grid of Gaussians centred on the origin
    -> (points (n, 2), centres (side^2, 2)). Defaults: PacGAN's {-4, -2, 0, 2, 4}^2 with sigma 0.05."""
    if side < 1 or spacing <= 0:
        raise DataError(f"grid needs side >= 1 and spacing > 0, got side={side}, spacing={spacing}")
    centres = grid_centres(side, spacing)
    return _mixture(n, centres, sigma, generator)[0], centres


def two_moons(n: int, *, noise: float = 0.05, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two interleaved half circles -> (points (n, 2), moon index (n,)), as scikit-learn's make_moons."""
    _check_n(n)
    labels = torch.randint(0, 2, (n,), generator=generator)
    t = math.pi * torch.rand(n, generator=generator)
    upper = torch.stack([t.cos(), t.sin()], dim=1)
    lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
    points = torch.where(labels[:, None] == 0, upper, lower)
    return points + noise * torch.randn(n, 2, generator=generator), labels


def swiss_roll(n: int, *, noise: float = 0.05, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A 2-D swiss roll (spiral r = t, t in [1.5 pi, 4.5 pi], scaled by 1/5 to about [-2.8, 2.8])
    -> (points (n, 2), position along the roll t (n,))."""
    _check_n(n)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
    points = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 5
    return points + noise * torch.randn(n, 2, generator=generator), t


# ----------------------------------------------------------------------------- regression toys

def inverse_sine(n: int, *, amplitude: float = 0.3, noise: float = 0.1,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Bishop's inverted sinusoid: t ~ U(0, 1), x = t + amplitude sin(2 pi t) + U(-noise, noise).
    Returns (inputs x (n, 1), targets t (n, 1)): the task is to predict t from x."""
    _check_n(n)
    t = torch.rand(n, 1, generator=generator)
    x = t + amplitude * torch.sin(2 * math.pi * t) + _uniform(n, -noise, noise, generator)
    return x, t


def forward_kinematics(angles: Tensor, lengths: tuple[float, float] = ARM_LENGTHS) -> Tensor:
    """End position (..., 2) of a 2-joint planar arm with joint angles (..., 2) = (shoulder, elbow);
    the elbow angle is relative to the first link."""
    l1, l2 = lengths
    t1, t2 = angles[..., 0], angles[..., 0] + angles[..., 1]
    return torch.stack([l1 * t1.cos() + l2 * t2.cos(), l1 * t1.sin() + l2 * t2.sin()], dim=-1)


def inverse_kinematics(
    targets: Tensor,
    lengths: tuple[float, float] = ARM_LENGTHS,
    theta1_range: tuple[float, float] = ARM_THETA1,
    theta2_range: tuple[float, float] = ARM_THETA2,
) -> tuple[Tensor, Tensor]:
    """Both analytic solutions for targets (N, 2) -> (angles (N, 2, 2), valid (N, 2)). Solution 0 has
    a non-negative elbow angle, solution 1 the mirrored one; ``valid`` says which lie within the joint
    ranges (and that the target is reachable). ``valid.sum(1) == 2`` marks two-solution targets."""
    l1, l2 = lengths
    r2 = (targets ** 2).sum(-1)
    cos2 = (r2 - l1 ** 2 - l2 ** 2) / (2 * l1 * l2)
    reachable = cos2.abs() <= 1 + 1e-6
    elbow = torch.acos(cos2.clamp(-1, 1))
    solutions = []
    for t2 in (elbow, -elbow):
        t1 = torch.atan2(targets[:, 1], targets[:, 0]) - torch.atan2(l2 * t2.sin(), l1 + l2 * t2.cos())
        t1 = torch.remainder(t1 + math.pi, 2 * math.pi) - math.pi  # into [-pi, pi)
        solutions.append(torch.stack([t1, t2], dim=-1))
    angles = torch.stack(solutions, dim=1)  # (N, 2, 2)
    eps = 1e-6
    valid = (
        reachable[:, None]
        & (angles[..., 0] >= theta1_range[0] - eps) & (angles[..., 0] <= theta1_range[1] + eps)
        & (angles[..., 1] >= theta2_range[0] - eps) & (angles[..., 1] <= theta2_range[1] + eps)
    )
    # a target on the elbow-straight line has one solution counted twice: keep one
    duplicate = (angles[:, 0] - angles[:, 1]).abs().amax(-1) < 1e-6
    valid[:, 1] &= ~duplicate
    return angles, valid


def robot_arm(
    n: int,
    *,
    lengths: tuple[float, float] = ARM_LENGTHS,
    theta1_range: tuple[float, float] = ARM_THETA1,
    theta2_range: tuple[float, float] = ARM_THETA2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Joint angles drawn uniformly from the ranges and their end positions.
    Returns (inputs = end positions (n, 2), targets = angles (n, 2)): predict the angles."""
    _check_n(n)
    if theta1_range[0] >= theta1_range[1] or theta2_range[0] >= theta2_range[1]:
        raise DataError(f"joint ranges must be (low, high) with low < high, got {theta1_range}, {theta2_range}")
    if min(lengths) <= 0:
        raise DataError(f"link lengths must be > 0, got {lengths}")
    angles = torch.cat([_uniform(n, *theta1_range, generator), _uniform(n, *theta2_range, generator)], dim=1)
    return forward_kinematics(angles, lengths), angles


# ----------------------------------------------------------------------------- registration

_TRAIN_SIZE = 10_000
_TEST_SIZE = 2_000


def _split_generator(config: DataConfig, split: str) -> torch.Generator:
    # independent streams per split: the test set never overlaps the training draw
    return torch.Generator().manual_seed(_mix(config.seed, 0 if split == "train" else 1, 0x70F))


def _size(config: DataConfig, split: str) -> int:
    size = config.size or _TRAIN_SIZE
    return size if split == "train" else max(1, min(_TEST_SIZE, size))


def _options(config: DataConfig, allowed: dict[str, Any], presets: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """Loader options: defaults, then a named preset, then explicit options (typed like the default)."""
    options = dict(config.options)
    out = dict(allowed)
    preset = options.pop("preset", None)
    if preset is not None:
        if presets is None or preset not in presets:
            valid = ", ".join(sorted(presets or {})) or "(none)"
            raise DataError(f"unknown preset {preset!r} for dataset {config.name!r}; valid: {valid}")
        out.update(presets[preset])
    for key, value in options.items():
        if key not in allowed:
            raise DataError(f"unknown option {key!r} for dataset {config.name!r}; valid: preset, {', '.join(sorted(allowed))}")
        default = allowed[key]
        try:
            if isinstance(default, tuple):
                value = tuple(float(v) for v in (value.split(",") if isinstance(value, str) else value))
                if len(value) != len(default):
                    raise ValueError
            else:
                value = type(default)(value)
        except (TypeError, ValueError):
            raise DataError(f"option {key!r} of dataset {config.name!r} must look like {default!r}, got {value!r}") from None
        out[key] = value
    return out


def _points_dataset(name: str, make: Callable[..., tuple[Tensor, Tensor]], defaults: dict[str, Any],
                    presets: dict[str, dict[str, float]] | None, centres_of: Callable[..., Tensor] | None,
                    *, member_of: str | None = None, fixed: dict[str, Any] | None = None) -> None:
    """Register ``name``; with ``member_of`` it is that dataset with the ``fixed`` options (``ring8``
    is ``ring`` with 8 modes), and changing a fixed option points to the family instead."""
    fixed = fixed or {}

    def load(config: DataConfig, split: Literal["train", "test"]) -> ArrayDataset:
        for key in sorted(set(config.options) & set(fixed)):
            raise DataError(f"{name} is {member_of} with {key}={fixed[key]}; for another {key} use "
                            f"--data {member_of} --data.options.{key}={config.options[key]}")
        opts = {**_options(config, {k: v for k, v in defaults.items() if k not in fixed}, presets), **fixed}
        g = _split_generator(config, split)
        points, second = make(_size(config, split), generator=g, **opts)
        # data_scale: the spread a model may divide by to see the points at unit scale (GANConfig.data_scale)
        info: dict[str, Any] = {"name": name, "x_dim": 2, "data_shape": (2,), "options": opts,
                                "data_scale": round(float(points.std()), 4)}
        if centres_of is not None:
            centres = second  # ring/grid return their centres; labels are the nearest centre
            labels = torch.cdist(points, centres).argmin(1)
            info["centres"] = centres.tolist()
            return ArrayDataset((points, labels), info)
        return ArrayDataset((points, second), info)

    register_dataset(name)(load)


_RING = {"modes": 8, "radius": 1.0, "sigma": 0.01}
_GRID = {"side": 5, "spacing": 2.0, "sigma": 0.05}
_points_dataset("ring", ring, _RING, RING_PRESETS, ring_centres)
_points_dataset("ring8", ring, _RING, RING_PRESETS, ring_centres, member_of="ring", fixed={"modes": 8})
_points_dataset("grid", grid, _GRID, GRID_PRESETS, grid_centres)
_points_dataset("grid25", grid, _GRID, GRID_PRESETS, grid_centres, member_of="grid", fixed={"side": 5})
_points_dataset("two-moons", two_moons, {"noise": 0.05}, None, None)
_points_dataset("swiss-roll", swiss_roll, {"noise": 0.05}, None, None)


@register_dataset("inverse-sine")
def _load_inverse_sine(config: DataConfig, split: Literal["train", "test"]) -> ArrayDataset:
    opts = _options(config, {"amplitude": 0.3, "noise": 0.1})
    x, t = inverse_sine(_size(config, split), generator=_split_generator(config, split), **opts)
    return ArrayDataset((x, t), {"name": "inverse-sine", "x_dim": 1, "y_dim": 1, "task": "regression", "options": opts})


@register_dataset("robot-arm")
def _load_robot_arm(config: DataConfig, split: Literal["train", "test"]) -> ArrayDataset:
    opts = _options(config, {"lengths": ARM_LENGTHS, "theta1_range": ARM_THETA1, "theta2_range": ARM_THETA2})
    inputs, angles = robot_arm(_size(config, split), generator=_split_generator(config, split), **opts)
    # "arm" lets evaluators check predicted angles with forward kinematics
    return ArrayDataset((inputs, angles), {"name": "robot-arm", "x_dim": 2, "y_dim": 2, "task": "regression",
                                           "arm": {k: list(v) for k, v in opts.items()}, "options": opts})


def arm_from_info(info: dict[str, Any]) -> dict[str, tuple[float, float]] | None:
    """The arm geometry a robot-arm dataset was generated with (``None`` for other datasets)."""
    arm = info.get("arm")
    return None if arm is None else {k: tuple(float(x) for x in v) for k, v in arm.items()}
