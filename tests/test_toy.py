"""Toy datasets: statistics, determinism, and the robot arm's kinematics."""
import math

import pytest
import torch

from genlab.data import DataConfig, load_dataset
from genlab.data import toy
from genlab.errors import DataError


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ring_points_sit_on_their_modes():
    for preset in ("pacgan", "veegan"):
        opts = toy.RING_PRESETS[preset]
        x, centres = toy.ring(4000, generator=g(), **opts)
        assert centres.shape == (8, 2)
        assert torch.allclose(centres.norm(dim=1), torch.full((8,), opts["radius"]))
        nearest = torch.cdist(x, centres).min(1)
        # every point is within 5 sigma of its mode, radial spread is sigma
        assert nearest.values.max() < 5 * opts["sigma"]
        assert abs(float((x - centres[nearest.indices]).std()) - opts["sigma"]) < 0.1 * opts["sigma"]
        counts = torch.bincount(nearest.indices, minlength=8).float()
        assert counts.min() > 0.8 * 4000 / 8  # equal weights


def test_grid_is_pacgan_grid():
    x, centres = toy.grid(5000, generator=g())
    assert centres.shape == (25, 2)
    assert sorted(set(centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert torch.cdist(x, centres).min(1).values.max() < 5 * 0.05
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=0.15)


def test_generators_are_deterministic_per_seed():
    a, _ = toy.two_moons(100, generator=g(3))
    b, _ = toy.two_moons(100, generator=g(3))
    c, _ = toy.two_moons(100, generator=g(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_inverse_sine_relation():
    x, t = toy.inverse_sine(5000, generator=g())
    residual = x - (t + 0.3 * torch.sin(2 * math.pi * t))
    assert residual.abs().max() <= 0.1 + 1e-6
    assert abs(float(residual.std()) - 0.2 / math.sqrt(12)) < 0.005  # U(-0.1, 0.1)
    assert 0 <= float(t.min()) and float(t.max()) <= 1


def test_forward_kinematics_known_values():
    angles = torch.tensor([[0.0, 0.0], [math.pi / 2, 0.0], [0.0, math.pi / 2]])
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.2]])
    assert torch.allclose(toy.forward_kinematics(angles), expected, atol=1e-6)


def test_inverse_kinematics_recovers_both_solutions():
    inputs, angles = toy.robot_arm(2000, generator=g())
    solutions, valid = toy.inverse_kinematics(inputs)
    # every analytic solution reaches the target, and the generating angles are one of the valid ones
    reach = (toy.forward_kinematics(solutions) - inputs[:, None]).norm(dim=-1)
    assert reach.max() < 1e-4
    match = ((solutions - angles[:, None]).abs().amax(-1) < 1e-2) & valid
    assert bool(match.any(1).all())
    two = valid.sum(1) == 2
    assert 0.3 < float(two.float().mean()) < 0.95  # a good share of targets has two answers
    # the mean of the two solutions misses the target: the reason a single Gaussian fails here
    mean_answer = solutions[two].mean(1)
    miss = (toy.forward_kinematics(mean_answer) - inputs[two]).norm(dim=-1)
    assert float((miss > 0.05).float().mean()) > 0.25


def test_registered_datasets_and_splits_differ():
    for name in ("ring8", "grid25", "two-moons", "swiss-roll", "inverse-sine", "robot-arm"):
        train = load_dataset(DataConfig(name=name, size=300))
        test = load_dataset(DataConfig(name=name, size=300), "test")
        assert len(train) == 300 and train.x.dtype == torch.float32
        assert not torch.equal(train.x[:10], test.x[:10])
    arm = load_dataset("robot-arm")
    assert arm.info["x_dim"] == 2 and arm.info["y_dim"] == 2
    assert toy.arm_from_info(arm.info)["lengths"] == (0.8, 0.2)


def test_presets_and_bad_options():
    veegan = load_dataset(DataConfig(name="ring8", options={"preset": "veegan"}))
    assert abs(float(veegan.x.norm(dim=1).mean()) - 2.0) < 0.01
    with pytest.raises(DataError, match="unknown preset"):
        load_dataset(DataConfig(name="ring8", options={"preset": "nope"}))
    with pytest.raises(DataError, match="unknown option"):
        load_dataset(DataConfig(name="ring8", options={"radiuss": 2}))
    with pytest.raises(DataError):
        toy.ring(0)
