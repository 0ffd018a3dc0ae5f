from __future__ import annotations

import os
import time

import pytest
import torch

from genlab.checkpoint import (WEIGHTS_NAME, latest_checkpoint, load, load_tensors, load_training_state,
                               write_checkpoint)
from genlab.data import ArrayDataset, load_dataset
from genlab.errors import CheckpointError, ConfigError, TrainingError
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

QUIET = dict(progress=False, tensorboard=False, device="cpu")


def _ae(shape=(1, 8, 8)):
    torch.manual_seed(0)
    return build_model("autoencoder", {"image_shape": list(shape), "latent_dim": 4, "hidden_dims": [64]})


def test_loss_falls_on_real_digits():
    data = load_dataset("mnist-embedded", "train").head(512)
    test = load_dataset("mnist-embedded", "test").head(256)
    model = build_model("autoencoder", {"latent_dim": 8, "hidden_dims": [128]})
    trainer = Trainer(model, data, TrainConfig(batch_size=64, max_steps=120, eval_every=20, **QUIET), eval_data=test)
    initial = trainer.evaluate()["eval/loss"]
    result = trainer.fit()
    evals = [row["eval/loss"] for row in result.history if "eval/loss" in row]
    assert len(evals) == 7  # the initial one and every 20 steps
    assert evals[-1] < 0.6 * initial and evals[-1] < evals[1]


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    data = ArrayDataset((torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)),))

    def poison(trainer, event, info):  # weights go bad right after the step-3 checkpoint is written
        if event == "checkpoint" and info["step"] == 3:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))

    trainer = Trainer(_ae(), data, TrainConfig(batch_size=8, epochs=3, checkpoint_every=1, checkpoint_probation=1, **QUIET),
                      out_dir=tmp_path, callbacks=[poison])
    with pytest.raises(TrainingError, match="non-finite loss .* at step 3.*usable checkpoint is .*step-00000002"):
        trainer.fit()
    # step 3 had no finite step after it: suspect, set aside; step 2 had one (probation 1): the resume point
    last = latest_checkpoint(tmp_path / "checkpoints")
    assert last is not None and last.name == "step-00000002"
    assert (tmp_path / "checkpoints" / "diverged-step-00000003").is_dir()
    weights = load_tensors(last / WEIGHTS_NAME)
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (tmp_path / "model").exists()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = _ae()
    root = tmp_path / "ck"
    write_checkpoint(root, 1, model, {"step": 1})
    import genlab.checkpoint as ck

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ck, "save_training_state", crash)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(root, 2, model, {"step": 2})
    assert latest_checkpoint(root).name == "step-00000001"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000001"]  # no half-written folder


def test_corrupt_or_truncated_files_give_one_line_errors(tmp_path):
    model = _ae()
    model.save_pretrained(str(tmp_path / "m"))
    weights = tmp_path / "m" / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "m")
    assert str(weights) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="state.pt"):
        load_training_state(tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="no such model or run folder"):
        load(tmp_path / "missing")


def test_training_state_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"step": 1, "payload": Evil()}, path)
    with pytest.raises(CheckpointError):
        load_training_state(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("with_out_dir", [False, True])
def test_keep_best_keeps_the_best_evaluation_not_the_last(tmp_path, with_out_dir):
    data = load_dataset("mnist-embedded", "train").head(256)
    test = load_dataset("mnist-embedded", "test").head(128)
    torch.manual_seed(0)
    model = build_model("autoencoder", {"latent_dim": 4, "hidden_dims": [32]})

    def spoil(trainer, event, info):  # from step 40 on, every logged window ends with damaged weights
        if event == "log" and info["step"] >= 40:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.add_(0.5 * torch.randn_like(p))

    cfg = TrainConfig(batch_size=32, max_steps=60, eval_every=10, log_every=10, keep_best="loss", **QUIET)
    trainer = Trainer(model, data, cfg, eval_data=test, out_dir=tmp_path if with_out_dir else None, callbacks=[spoil])
    result = trainer.fit()
    evals = [(row["step"], row["eval/loss"]) for row in result.history if "eval/loss" in row]
    best_step, best_value = min(evals, key=lambda e: e[1])
    assert best_step < 40 and trainer.best == {"step": best_step, "value": best_value}
    assert evals[-1][1] > best_value
    trainer.restore_best()
    assert trainer.evaluate()["eval/loss"] == pytest.approx(best_value, rel=1e-6)
    if with_out_dir:  # best/ is a model folder of its own
        reloaded = load(tmp_path / "best")
        assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), trainer.model.state_dict().values()))


def test_keep_best_names_the_metrics_it_could_use():
    data = load_dataset("mnist-embedded", "train").head(64)
    cfg = TrainConfig(batch_size=32, max_steps=2, eval_every=1, keep_best="accuracy", **QUIET)
    trainer = Trainer(_ae((1, 28, 28)), data, cfg, eval_data=data)
    with pytest.raises(ConfigError, match="keep_best='accuracy' is not among the evaluation metrics: .*loss"):
        trainer.fit()  # before the first step, not at the first evaluation
    assert trainer.step == 0


def test_hold_linear_schedule_holds_then_decays_to_the_floor():
    """CycleGAN's recipe: lr constant for the first half of training, then linear to the floor."""
    data = ArrayDataset((torch.rand(64, 1, 8, 8),))
    cfg = TrainConfig(max_steps=100, batch_size=16, lr=2e-3, lr_schedule="hold-linear", hold_fraction=0.5,
                      min_lr_ratio=0.1, **QUIET)
    trainer = Trainer(_ae(), data, cfg)
    sched = trainer._make_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2e-3))
    factors = [sched.lr_lambdas[0](s) for s in range(101)]
    assert factors[0] == factors[49] == 1.0
    assert factors[75] == pytest.approx(0.1 + 0.9 * 0.5)
    assert factors[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    with pytest.raises(Exception, match="hold_fraction"):
        TrainConfig(lr_schedule="hold-linear", hold_fraction=1.0)


def test_a_phase_that_runs_every_k_steps_follows_the_same_schedule():
    """Lazy R1 runs every 4th step on the discriminator's optimizer; the learning rate it steps with is
    still the schedule's value at the training step, not at the count of R1 steps."""
    torch.manual_seed(0)
    model = build_model("stylegan", {"latent_dim": 8, "w_dim": 8, "mapping_depth": 2, "channel_base": 64,
                                     "channel_max": 8, "r1_every": 4, "image_shape": [1, 16, 16]})
    data = ArrayDataset((torch.rand(64, 1, 16, 16),))
    cfg = TrainConfig(max_steps=18, batch_size=8, lr=2e-3, lr_schedule="linear", min_lr_ratio=0.0, **QUIET)
    trainer = Trainer(model, data, cfg)
    seen: list[tuple[int, float]] = []
    run_phase = trainer._run_phase

    def spy(phase, batch):
        optimizer = trainer.optimizers[phase.optimizer_name]
        if phase.name == "discriminator_r1":
            hook = optimizer.register_step_pre_hook(lambda opt, a, k: seen.append((trainer.step, opt.param_groups[0]["lr"])))
            try:
                return run_phase(phase, batch)
            finally:
                hook.remove()
        return run_phase(phase, batch)

    trainer._run_phase = spy  # type: ignore[method-assign]
    trainer.fit()
    base = trainer.schedulers["discriminator"].base_lrs[0]
    assert [s for s, _ in seen] == [0, 4, 8, 12, 16]
    for step, lr in seen:  # the lr of this step (not of the next, which the main phase sets after its update)
        assert lr == pytest.approx(base * (1 - step / 18)), step


@pytest.mark.parametrize("keep_best", [None, "loss"])
def test_per_epoch_extras_skip_short_epochs_within_their_budget(tmp_path, monkeypatch, keep_best):
    """Epochs of a few milliseconds with extras of 30 ms: under a 2 % budget the extras run after the
    first epoch and at the last step only (keep_best still evaluates every epoch); with no budget, after
    every epoch. The weights do not depend on which epochs got extras."""
    data = ArrayDataset((torch.rand(64, 1, 8, 8),))
    slow_write = Trainer.write_preview

    def write_preview(self, *args, **kwargs):
        time.sleep(0.03)  # an extra that costs far more than 2 % of these epochs
        return slow_write(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "write_preview", write_preview)
    weights = {}
    for budget in (0.0, 0.02):
        events: list[str] = []
        cfg = TrainConfig(batch_size=16, epochs=10, epoch_extras_budget=budget, keep_best=keep_best, **QUIET)
        trainer = Trainer(_ae(), data, cfg, eval_data=data, out_dir=tmp_path / f"b{budget}",
                          callbacks=[lambda t, event, info: events.append(event)])
        result = trainer.fit()
        evals = [row["step"] for row in result.history if "eval/loss" in row]
        weights[budget] = trainer.model.state_dict()
        if budget == 0:
            assert events.count("checkpoint") == 10 and evals == list(range(4, 41, 4))
        else:
            assert events.count("checkpoint") == 2  # after epoch 1 and at the last step
            assert evals == (list(range(4, 41, 4)) if keep_best else [4, 40])
    assert all(torch.equal(weights[0.0][k], weights[0.02][k]) for k in weights[0.0])


def test_time_in_callbacks_does_not_count_towards_the_extras_budget(tmp_path, monkeypatch):
    """The budget is a share of the training's own time. A callback that pauses 0.6 s at every epoch's end
    (as a benchmark that interleaves runs does) would otherwise make extras of ~0.05 s due every epoch under
    a 20 % budget; epochs of a few milliseconds of training leave them to the first epoch and the last step."""
    data = ArrayDataset((torch.rand(64, 1, 8, 8),))
    slow_write = Trainer.write_preview

    def write_preview(self, *args, **kwargs):
        time.sleep(0.03)
        return slow_write(self, *args, **kwargs)

    def pause(trainer, event, info):
        if event == "epoch":
            time.sleep(0.6)
        events.append(event)

    monkeypatch.setattr(Trainer, "write_preview", write_preview)
    events: list[str] = []
    cfg = TrainConfig(batch_size=16, epochs=5, epoch_extras_budget=0.2, **QUIET)
    Trainer(_ae(), data, cfg, eval_data=data, out_dir=tmp_path / "run", callbacks=[pause]).fit()
    assert events.count("epoch") == 5
    assert events.count("checkpoint") == 2  # after epoch 1 and at the last step, as without the pauses
