"""Speed as users run it: the threads setting, the cheap per-epoch extras (a capped evaluation during
training, curves redrawn on a time budget) and flat inputs accepted by every image family."""
from __future__ import annotations

import json
import time

import pytest
import torch

from genlab.data import ArrayDataset
from genlab.errors import DataError
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer
from tiny_configs import TINY


def _tiny_vae():
    return build_model("vae", {"image_shape": [1, 4, 4], "latent_dim": 2, "hidden_dims": [8]})


def _images(n: int, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    return ArrayDataset((torch.bernoulli(torch.rand(n, 1, 4, 4, generator=g), generator=g),), {"name": "tiny"})


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------- threads

def test_train_threads_is_the_thread_count_inside_the_run(restore_threads):
    torch.set_num_threads(1)
    seen: list[int] = []
    config = TrainConfig(max_steps=3, batch_size=8, log_every=1, progress=False, tensorboard=False, fused_optimizer=False, threads=2)
    Trainer(_tiny_vae(), _images(32), config, callbacks=[lambda tr, event, info: seen.append(torch.get_num_threads())]).fit()
    assert seen and set(seen) == {2}
    with pytest.raises(Exception, match="train.threads must be >= 1"):
        TrainConfig(threads=0)


def test_run_json_records_the_threads(tmp_path, restore_threads):
    from genlab import api

    torch.set_num_threads(1)
    api.train("classifier", data="mnist-embedded", out=tmp_path / "run",  # a family without an end-of-run report
              overrides=["--data.limit=64", "--train.max_steps=2", "--train.batch_size=32", "--train.threads=2",
                         "--train.progress=false", "--model.channels=[2]", "--model.hidden_dim=4"])
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["train"]["threads"] == 2 and run["threads_used"] == 2


def test_inspect_commands_take_threads(tmp_path, restore_threads, capsys):
    from genlab.cli import main

    torch.set_num_threads(1)
    # the run does not exist: the command fails after the thread count is set
    assert main(["evaluate", str(tmp_path / "missing"), "--threads", "3"]) == 2
    assert torch.get_num_threads() == 3
    assert main(["sample", str(tmp_path / "missing"), "--threads", "2"]) == 2
    assert torch.get_num_threads() == 2
    assert main(["lecture", "--only", "no-such-figure", "--threads", "3", "--out", str(tmp_path / "l")]) == 2
    assert torch.get_num_threads() == 3
    assert main(["figure", "lerp-vs-slerp", "--run", str(tmp_path / "missing"), "--threads", "2"]) == 2
    assert torch.get_num_threads() == 2
    with pytest.raises(SystemExit):
        main(["sample", str(tmp_path / "missing"), "--threads", "0"])
    assert "expected an integer >= 1" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- extras

def test_evaluation_scores_a_fixed_head_during_training_and_everything_at_the_end():
    model = _tiny_vae()
    sizes: list[int] = []
    original = model.evaluate

    def counting(batch):
        sizes.append(batch[0].shape[0])
        return original(batch)

    model.evaluate = counting  # type: ignore[method-assign]
    config = TrainConfig(epochs=3, batch_size=8, eval_examples=20, progress=False, tensorboard=False, fused_optimizer=False,
                         epoch_extras_budget=0)  # every epoch's end evaluates
    trainer = Trainer(model, _images(64), config, eval_data=_images(50, seed=1))
    evals: list[int] = []
    trainer.callbacks.append(lambda tr, event, info: evals.append(sum(sizes)) if event == "eval" else None)
    trainer.fit()
    per_eval = [b - a for a, b in zip([0] + evals, evals)]
    assert per_eval == [24, 24, 50]  # 20 rounded up to three batches of 8, then the whole set

    # eval_examples=None keeps the whole set every time
    sizes.clear()
    evals.clear()
    trainer = Trainer(model, _images(64), TrainConfig(epochs=2, batch_size=8, eval_examples=None, progress=False,
                                                      tensorboard=False, epoch_extras_budget=0), eval_data=_images(50, seed=1))
    trainer.callbacks.append(lambda tr, event, info: evals.append(sum(sizes)) if event == "eval" else None)
    trainer.fit()
    assert evals == [50, 100]


def test_best_weights_are_chosen_on_the_same_head_as_the_evaluations_during_training():
    config = TrainConfig(epochs=2, batch_size=8, eval_examples=16, keep_best="loss", progress=False, tensorboard=False, fused_optimizer=False)
    trainer = Trainer(_tiny_vae(), _images(64), config, eval_data=_images(50, seed=1))
    judged: list[float] = []
    track = trainer._track_best
    trainer._track_best = lambda metrics: (judged.append(metrics["eval/loss"]), track(metrics))[1]  # type: ignore[method-assign]
    trainer.fit()
    trainer.model.eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(config.seed + 1)
        head = [float(trainer.model.evaluate((b,))["loss"]) for b in _images(50, seed=1).x[:16].split(8)]
    # the last evaluation logs the whole set, but judges the best on the 16 examples the others scored
    assert judged[-1] == pytest.approx(sum(head) / 2, rel=1e-6)
    assert judged[-1] != pytest.approx(trainer.last_eval["eval/loss"], rel=1e-6)


def test_curves_are_redrawn_within_a_time_budget_and_always_at_the_end(tmp_path):
    drawn: list[int] = []

    def slow_plot(history, path):
        time.sleep(0.2)  # a 0.2 s drawing may recur only after 10 s
        drawn.append(len(history))
        return path

    config = TrainConfig(epochs=4, batch_size=8, progress=False, tensorboard=False, fused_optimizer=False,
                         epoch_extras_budget=0)  # a preview after every epoch: the curves' own budget decides
    Trainer(_tiny_vae(), _images(32), config, eval_data=_images(16, seed=1), out_dir=tmp_path, plot_curves=slow_plot).fit()
    assert len(drawn) == 2  # after the first epoch, and at the end (not after each of the 4 epochs)
    assert (tmp_path / "samples.png").is_file() and len(list((tmp_path / "samples").glob("*.png"))) == 4


# ---------------------------------------------------------------------------------------- flat inputs

IMAGE_CASES = sorted(name for name, case in TINY.items() if case.batch(torch.Generator().manual_seed(0))[0].dim() == 4)


def _flat(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(t.flatten(1) if t.dim() == 4 else t for t in batch)


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_every_image_family_takes_a_flat_batch(name):
    case = TINY[name]
    model = build_model(name.split(":")[0], case.config).eval()
    batch = case.batch(torch.Generator().manual_seed(0))
    for phase in model.phases():
        torch.manual_seed(0)
        shaped = model.loss(batch, phase.name).total
        torch.manual_seed(0)
        flat = model.loss(_flat(batch), phase.name).total
        assert torch.equal(shaped, flat), (name, phase.name)


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_a_wrong_shape_is_one_line_naming_the_expected_shape(name):
    case = TINY[name]
    model = build_model(name.split(":")[0], case.config).eval()
    x, *rest = case.batch(torch.Generator().manual_seed(0))
    bad = (torch.rand(x.shape[0], x[0].numel() + 1), *rest)
    for phase in model.phases():
        with pytest.raises(DataError) as info:
            model.loss(bad, phase.name)
        message = str(info.value)
        assert "\n" not in message and str(tuple(bad[0].shape)) in message
        assert ", ".join(map(str, x.shape[1:])) in message


def test_vae_bounds_on_a_flat_batch_equal_those_on_images():
    vae = _tiny_vae().eval()
    x = _images(6).x
    for fn in (vae.elbo, lambda b: vae.iwae_nll(b, 7)):
        torch.manual_seed(3)
        shaped = fn(x)
        torch.manual_seed(3)
        assert torch.equal(fn(x.flatten(1)), shaped)
    assert vae.reconstruct(x.flatten(1)).shape == x.shape
