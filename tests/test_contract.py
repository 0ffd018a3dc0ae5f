"""One contract, every registered model (tiny configs from tests/tiny_configs.py):
shapes and finite losses, a train step changes each phase's parameters, evaluation and sampling
change nothing, save -> load reproduces outputs, and a run killed after a checkpoint and resumed (warm-up +
cosine schedule, EMA) runs only the remaining steps and ends bit-identical to the uninterrupted run."""
from __future__ import annotations

import copy

import pytest
import torch

import genlab
from genlab.checkpoint import load, save_model
from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.registry import MODELS
from genlab.training import TrainConfig, Trainer

from tiny_configs import TINY

CASES = sorted(TINY)


def _build(key: str):
    name = key.split(":")[0]
    torch.manual_seed(0)
    return build_model(name, copy.deepcopy(TINY[key].config))


def _batch(key: str):
    return TINY[key].batch(torch.Generator().manual_seed(1))


def _tiny_train_config(**kw) -> TrainConfig:
    base = dict(batch_size=4, max_steps=2, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                eval_every=10**6, sample_every=10**6, checkpoint_every=10**6, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_every_registered_model_has_a_tiny_case():
    covered = {key.split(":")[0] for key in TINY}
    assert set(MODELS) <= covered, f"add tests/tiny_configs.py entries for {sorted(set(MODELS) - covered)}"


@pytest.mark.parametrize("key", CASES)
def test_loss_is_finite_scalar_for_every_phase(key):
    model = _build(key)
    batch = _batch(key)
    for phase in model.phases():
        out = model.loss(batch, phase.name)
        assert out.total.dim() == 0 and torch.isfinite(out.total), (phase.name, out.total)
        assert all(torch.isfinite(v).all() for v in out.terms.values())


@pytest.mark.parametrize("key", CASES)
def test_train_step_changes_each_phases_parameters(key):
    model = _build(key)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = ArrayDataset(_batch(key))
    Trainer(model, data, _tiny_train_config(max_steps=max(p.every for p in model.phases()) + 1)).fit()
    for phase in model.phases():
        names = {n for n, p in model.named_parameters() if any(p is q for q in model.phase_parameters(phase))}
        changed = [n for n in names if not torch.equal(before[n], dict(model.named_parameters())[n])]
        assert changed, f"phase {phase.name!r} updated none of its parameters"


@pytest.mark.parametrize("key", CASES)
def test_eval_and_sampling_change_nothing(key):
    model = _build(key).eval()
    before = _state(model)
    batch = _batch(key)
    model.evaluate(batch)
    model.preview(batch, generator=torch.Generator().manual_seed(0))
    if TINY[key].can_sample:
        samples = model.sample(3, generator=torch.Generator().manual_seed(0))
        assert samples.shape[0] == 3 and torch.isfinite(samples).all()
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("key", CASES)
def test_save_load_roundtrip_is_identical(key, tmp_path):
    model = _build(key).eval()
    batch = _batch(key)
    save_model(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    torch.manual_seed(3)
    a = model.evaluate(batch)
    torch.manual_seed(3)
    b = loaded.evaluate(batch)
    assert all(torch.equal(a[k], b[k]) for k in a)


class _Killed(Exception):
    """Stands in for a kill: raised by a callback right after a checkpoint is written."""


def _kill_after_checkpoint(step: int):
    def callback(trainer, event, info):
        if event == "checkpoint" and info["step"] == step:
            raise _Killed
    return callback


def _log_steps(steps: list[int]):
    """Records the step of every log row (``log_every=1``: one row per step the Trainer runs)."""
    def callback(trainer, event, info):
        if event == "log":
            steps.append(int(info["step"]))
    return callback


@pytest.mark.parametrize("key", CASES)
def test_resume_continues_from_the_checkpoint_to_the_uninterrupted_weights(key, tmp_path):
    """Warm-up + cosine schedule and EMA, killed mid-run, resumed in a fresh Trainer: the resumed run
    starts at the checkpoint's step (runs only the remaining steps) and ends bit-identical to the
    uninterrupted run, EMA included. With at least two steps after the checkpoint, a scheduler that
    is not restored gives a different learning rate (and weights)."""
    every = max(p.every for p in _build(key).phases())
    stop, total = 2 * every, 4 * every + 1
    data = ArrayDataset(_batch(key))
    # the EMA ramps (its decay depends on the step), so a resume that lost the step count would differ too
    settings = dict(max_steps=total, ema_decay=0.9, ema_rampup=0.5, lr_schedule="cosine", warmup_steps=2, min_lr_ratio=0.0)
    uninterrupted = _build(key)
    full = Trainer(uninterrupted, data, _tiny_train_config(**settings))
    full.fit()

    with pytest.raises(_Killed):
        Trainer(_build(key), data, _tiny_train_config(**settings, checkpoint_every=stop), out_dir=tmp_path,
                callbacks=[_kill_after_checkpoint(stop)]).fit()
    resumed = _build(key)
    torch.manual_seed(1234)  # a new process would not share this one's RNG state
    steps_run: list[int] = []
    trainer = Trainer(resumed, data, _tiny_train_config(**settings), out_dir=tmp_path, callbacks=[_log_steps(steps_run)])
    result = trainer.fit(resume=True)
    assert steps_run == list(range(stop + 1, total + 1)), f"resumed run logged steps {steps_run}, not {stop + 1}..{total}"
    assert result.step == total
    for k, v in uninterrupted.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    for name, sched in full.schedulers.items():
        assert trainer.schedulers[name].get_last_lr() == sched.get_last_lr(), name
    for k, v in full.ema.state_dict().items():
        assert torch.equal(v, trainer.ema.state_dict()[k]), f"ema {k}"
