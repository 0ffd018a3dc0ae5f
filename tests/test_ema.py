"""The EMA of weights and its ramp-up: a short run's average must not keep the random initialisation."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.config import ConfigError
from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer
from genlab.training.ema import EMA


def test_the_ramped_decay_keeps_the_half_life_at_the_fraction_of_the_steps():
    ema = EMA(nn.Linear(2, 2), decay=0.999, rampup=0.05)
    assert ema.decay_at(1) < 1e-6  # the first update all but copies the live weights
    for step in (100, 1000, 10_000):  # ramping: half-life (in steps) = 0.05 * step
        assert ema.decay_at(step) ** (0.05 * step) == pytest.approx(0.5)
    assert ema.decay_at(1_000_000) == 0.999  # ramped past: the configured decay
    assert EMA(nn.Linear(2, 2), decay=0.999).decay_at(5) == 0.999  # no ramp: constant


def test_an_update_uses_the_decay_of_its_step():
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    ema = EMA(layer, decay=0.9, rampup=0.5)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update(4)  # decay 0.5 ** (1 / 2): the shadow moves 1 - 0.7071 of the way
    assert ema.shadow["weight"].item() == pytest.approx(1 - math.sqrt(0.5))
    with pytest.raises(ValueError, match="step"):
        ema.update()


def _fit(rampup: float | None) -> tuple[float, float]:
    """(distance EMA - live, distance EMA - init) of a tiny GAN's generator after 30 steps at decay 0.999."""
    torch.manual_seed(0)
    model = build_model("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [16], "discriminator_hidden": [16]})
    init = {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith("generator.")}
    data = ArrayDataset((torch.randn(64, 2) + 3,))
    config = TrainConfig(batch_size=16, max_steps=30, lr=1e-2, ema_decay=0.999, ema_rampup=rampup, progress=False,
                         eval_every=10_000, sample_every=10_000, checkpoint_every=10_000)
    trainer = Trainer(model, data, config)
    trainer.fit()
    shadow, live = trainer.ema.state_dict(), model.state_dict()

    def distance(a: dict, b: dict) -> float:
        return math.sqrt(sum(float((a[k] - b[k]).square().sum()) for k in init))
    return distance(shadow, live), distance(shadow, init)


def test_a_short_run_averages_its_trained_weights_only_with_the_ramp():
    plain_to_live, plain_to_init = _fit(None)
    ramped_to_live, ramped_to_init = _fit(0.05)
    assert plain_to_init < 0.1 * plain_to_live  # decay 0.999 over 30 steps: still the initialisation
    assert ramped_to_live < 0.1 * ramped_to_init  # ramped: near the trained weights


def test_a_bad_rampup_is_one_clear_config_error():
    with pytest.raises(ConfigError, match="train.ema_rampup"):
        TrainConfig(ema_rampup=0.0).validate()
