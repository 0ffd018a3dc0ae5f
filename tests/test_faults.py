"""Fault drills: a run survives divergence, a kill in the middle of a write, corrupted files, a
resume with new settings, a refused resume, a foreign output folder, and several processes.

Every drill uses tiny configs and finishes in seconds; the multi-process drills start torchrun and
are marked ``slow`` but run in the default ``python -m pytest``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab import api
from genlab import checkpoint as ckpt
from genlab.errors import CheckpointError, ConfigError, TrainingError

HERE = Path(__file__).parent
ROOT = HERE.parent
QUIET = ["--train.progress=false", "--train.tensorboard=false"]
VAE = ["--data.limit=256", "--model.hidden_dims=[32]", "--model.latent_dim=2", "--train.batch_size=32", *QUIET]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_tensors(path / ckpt.WEIGHTS_NAME, allow_nonfinite=True)


def _max_abs(weights: dict[str, torch.Tensor]) -> float:
    return max(float(v.abs().max()) for v in weights.values())


def _train(tmp_path: Path, *overrides: str, model: str = "vae", name: str = "run", **kwargs):
    return api.train(model, data="mnist-embedded", out=tmp_path / name, overrides=[*VAE, *overrides], **kwargs)


# ----------------------------------------------------------------------------- divergence (1, 2, 4)

def test_divergence_names_a_usable_checkpoint_and_a_lower_lr_recovers(tmp_path):
    """lr=1e6 blows the weights up at step 1 (finite loss), the loss turns non-finite a step or two
    later. Blown-up checkpoints are suspect, never the resume point; resuming with a lower lr
    continues from the last usable state (here the initial weights) and ends finite."""
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        _train(tmp_path, "--train.lr=1e6", "--train.checkpoint_every=1", "--train.max_steps=8")
    message = str(info.value)
    assert "intact" not in message and "\n" not in message
    assert "no usable checkpoint" in message and "initial weights" in message
    resume_from = ckpt.latest_checkpoint(run / "checkpoints")
    assert resume_from is None  # every checkpoint written after the blow-up is suspect
    summary = api.train(resume=run, overrides=["--train.lr=1e-3"])
    assert summary["steps"] == 8
    final = _weights(run / "model")
    assert all(torch.isfinite(v).all() for v in final.values()) and _max_abs(final) < 100
    # and it is the run a fresh start with lr=1e-3 would have made: the seed reproduces the initial weights
    api.train("vae", data="mnist-embedded", out=tmp_path / "fresh",
              overrides=[*VAE, "--train.lr=1e-3", "--train.checkpoint_every=1", "--train.max_steps=8"])
    fresh = _weights(tmp_path / "fresh" / "model")
    assert all(torch.equal(final[k], fresh[k]) for k in fresh)


def test_a_good_checkpoint_survives_rotation_while_newer_ones_are_suspect(tmp_path):
    """keep_checkpoints=1 must not rotate away the last checkpoint that training continued from."""
    run = tmp_path / "run"

    def blow_up(trainer, event, info):  # the weights go bad after step 6 (finite, but huge)
        if event == "checkpoint" and info["step"] == 6:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.mul_(1e30)

    with pytest.raises(TrainingError) as info:
        _train(tmp_path, "--train.checkpoint_every=2", "--train.keep_checkpoints=1", "--train.max_steps=20",
               "--train.checkpoint_probation=2",
               callbacks=[blow_up])
    # step 6 was written from weights that then diverged: only step 4 is known good
    assert "step-00000004" in str(info.value)
    assert ckpt.latest_checkpoint(run / "checkpoints").name == "step-00000004"
    api.train(resume=run, overrides=["--train.max_steps=10"])
    assert all(torch.isfinite(v).all() for v in _weights(run / "model").values())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    def poison(trainer, event, info):
        if event == "log" and info["step"] == 2:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("inf")

    with pytest.raises(TrainingError, match="non-finite weights at step 2") as info:
        _train(tmp_path, "--train.checkpoint_every=2", "--train.log_every=2", "--train.max_steps=6", callbacks=[poison])
    assert not (tmp_path / "run" / "checkpoints" / "step-00000002").exists()
    assert "initial weights" in str(info.value)


def test_gan_divergence_says_what_is_true_and_resume_starts_over(tmp_path):
    run = tmp_path / "gan"
    overrides = ["--data.size=512", "--train.batch_size=64", "--train.max_steps=6", "--train.lr=1e6",
                 "--model.generator_hidden=[64,64]", "--model.discriminator_hidden=[64,64]", *QUIET]
    with pytest.raises(TrainingError) as info:
        api.train("gan", config_file=ROOT / "configs" / "gan_ring8.toml", out=run, overrides=overrides)
    message = str(info.value)
    assert "intact" not in message and "no usable checkpoint" in message
    summary = api.train(resume=run, overrides=["--train.lr=1e-4"])  # restarts from the seed's initial weights
    assert summary["steps"] == 6


# ----------------------------------------------------------------------------- resume with new settings (2, 3)

def test_resume_with_a_new_lr_takes_effect_and_is_recorded(tmp_path):
    run = tmp_path / "run"
    _train(tmp_path, "--train.max_steps=8", "--train.checkpoint_every=4", "--train.log_every=2",
           "--train.lr_schedule=cosine", "--train.lr=1e-3")
    api.train(resume=run, overrides=["--train.max_steps=16", "--train.lr=2e-4"])
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    lr = {int(step): float(value) for step, name, value in rows if name == "lr"}
    # cosine over the new 16 steps from the new base lr 2e-4 (the old base lr 1e-3 must not survive)
    import math
    for step in (10, 12, 16):
        expected = 2e-4 * 0.5 * (1 + math.cos(math.pi * step / 16))
        assert lr[step] == pytest.approx(expected, rel=1e-5, abs=1e-12)
    record = json.loads((run / "run.json").read_text())
    assert record["train"]["lr"] == 2e-4 and record["train"]["max_steps"] == 16
    assert record["changes"] == [{"step": 8, "train.lr": [1e-3, 2e-4], "train.max_steps": [8, 16]}]
    # (12) one line ending and one file mode throughout, after a resume too
    assert b"\r" not in (run / "metrics.csv").read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.relative_to(run): p.stat().st_mode & 0o777 for p in run.rglob("*") if "tensorboard" not in p.parts}
    assert {m for p, m in modes.items() if (run / p).is_file()} == {0o666 & ~umask}, modes
    assert {m for p, m in modes.items() if (run / p).is_dir()} == {0o777 & ~umask}, modes


def test_refused_resume_names_the_field_and_leaves_the_run_intact(tmp_path):
    run = tmp_path / "run"
    _train(tmp_path, "--train.max_steps=4", "--train.checkpoint_every=2")
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for override, field in [("--model.latent_dim=4", "model.latent_dim"), ("--train.seed=3", "train.seed"),
                            ("--train.batch_size=16", "train.batch_size"), ("--data.limit=128", "data.limit")]:
        with pytest.raises(ConfigError, match=f"cannot change {field} on resume") as info:
            api.train(resume=run, overrides=[override, "--train.max_steps=6"])
        assert "\n" not in str(info.value)
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing removed
    assert api.train(resume=run, overrides=["--train.max_steps=6"])["steps"] == 6


# ----------------------------------------------------------------------------- multi-process (5, 6)

FAMILIES = ["autoencoder", "vae", "gan", "pix2pix"]
TRANSPORT_ERRORS = ("Address already in use", "EADDRINUSE", "Connection refused", "Connection reset by peer",
                    "RendezvousConnectionError", "RendezvousTimeoutError", "connectFullMesh")


def _worker(out: Path, families: list[str], nproc: int) -> dict[str, dict[str, torch.Tensor]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if Path("/sys/class/net/lo").exists():  # both ranks on this host: keep gloo on the loopback device
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    out.mkdir()
    args = [str(HERE / "ddp_worker.py"), str(out), ",".join(families)]
    if nproc > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0 and nproc > 1 and any(s in result.stderr for s in TRANSPORT_ERRORS):
        # the launcher's port or gloo's loopback handshake lost a race with another process on a busy
        # machine: that is the transport, not the training, so launch once more into a clean folder
        shutil.rmtree(out)
        out.mkdir()
        result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    # the workers' own messages come first in torchrun's stderr, the launcher's summary last
    assert result.returncode == 0, result.stderr[:4000] + "\n...\n" + result.stderr[-1000:]
    return {f: ckpt.load_tensors(out / f"{f}.safetensors") for f in families}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """Every family trained by one process and by two (one torchrun launch for all of them)."""
    root = tmp_path_factory.mktemp("ddp")
    return {"single": _worker(root / "single", FAMILIES, 1),
            "ddp": _worker(root / "ddp", [*FAMILIES, "vae-resume", "cyclegan", "cyclegan-resume"], 2)}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_two_processes_match_one_process(trained, family):
    """Each rank takes its share of the global batch; the VAE's reparametrisation noise and dynamic
    binarization, the GAN's latents and pix2pix's dropout are drawn for the global batch, so two
    processes train the weights one process trains (to float tolerance)."""
    single, ddp = trained["single"][family], trained["ddp"][family]
    for k in single:
        torch.testing.assert_close(single[k], ddp[k], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_two_process_resume_is_bit_identical(trained):
    """A 2-process VAE run stopped after step 8 and resumed from its step-4 checkpoint ends on the
    weights of the uninterrupted 2-process run, bit for bit: each rank's RNG state is restored."""
    whole, resumed = trained["ddp"]["vae"], trained["ddp"]["vae-resume"]
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


@pytest.mark.slow
def test_two_process_cyclegan_resume_keeps_each_ranks_pool(trained):
    """CycleGAN's discriminators judge fakes drawn from image pools that each rank fills with its own
    fakes; a 2-process run resumed from its step-4 checkpoint (pools non-empty) ends on the uninterrupted
    run's weights only if every rank gets its own pool back, not rank 0's."""
    whole, resumed = trained["ddp"]["cyclegan"], trained["ddp"]["cyclegan-resume"]
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


# ----------------------------------------------------------------------------- files (7, 8, 9)

def test_corrupted_bytes_are_detected_naming_the_file(tmp_path):
    from genlab.models import build_model

    model = build_model("vae", {"image_shape": [1, 8, 8], "hidden_dims": [16], "latent_dim": 2})
    model.save_pretrained(str(tmp_path / "m"))
    weights = tmp_path / "m" / ckpt.WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[-64:] = b"\xff" * 64  # NaN bit patterns over the last 16 floats: a valid file, wrong numbers
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum") as info:
        ckpt.load(tmp_path / "m")
    assert str(weights) in str(info.value) and "\n" not in str(info.value)


def test_non_finite_weights_are_refused_on_load_unless_asked(tmp_path):
    from genlab.models import build_model

    model = build_model("vae", {"image_shape": [1, 8, 8], "hidden_dims": [16], "latent_dim": 2})
    with torch.no_grad():
        model.decoder[0].weight.fill_(float("nan")) if isinstance(model.decoder, torch.nn.Sequential) else \
            next(model.decoder.parameters()).fill_(float("nan"))
    model.save_pretrained(str(tmp_path / "m"))  # a faithful file of bad weights: the checksum holds
    with pytest.raises(CheckpointError, match="non-finite") as info:
        ckpt.load(tmp_path / "m")
    assert str(tmp_path / "m" / ckpt.WEIGHTS_NAME) in str(info.value)
    loaded = ckpt.load(tmp_path / "m", allow_nonfinite=True)
    assert not all(torch.isfinite(p).all() for p in loaded.parameters())


_KILL_IN_WRITE = """
import os, signal, sys
import genlab.checkpoint as ck
from genlab import api
real = os.replace
def replace(src, dst):
    # die by SIGKILL at the moment the step-{step} checkpoint folder is renamed into place,
    # after its files (and the tmp files of every earlier write) were written
    if str(dst).endswith("step-{step:08d}"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
os.replace = replace
api.train("vae", data="mnist-embedded", out=sys.argv[1], overrides={overrides!r})
"""


def test_kill_during_checkpoint_write_then_restart_leaves_no_orphans(tmp_path):
    run = tmp_path / "run"
    overrides = [*VAE, "--train.max_steps=8", "--train.checkpoint_every=2"]
    script = _KILL_IN_WRITE.format(step=6, overrides=overrides)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(run)], env=env, capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    orphans = [p for p in run.rglob(".*")]
    assert orphans, "the kill left nothing behind: the drill did not hit a write"
    # a killed model export leaves its temporary folder too
    (run / ".model.x8k2.tmp").mkdir()
    (run / ".model.x8k2.tmp" / ckpt.WEIGHTS_NAME).write_bytes(b"half")
    summary = api.train(resume=run)
    assert summary["steps"] == 8
    assert [p for p in run.rglob(".*")] == []
    # it resumed from the newest complete checkpoint (step 4) and reproduces the uninterrupted run
    api.train("vae", data="mnist-embedded", out=tmp_path / "whole", overrides=overrides)
    a, b = _weights(run / "model"), _weights(tmp_path / "whole" / "model")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_model_folder_is_replaced_whole(tmp_path, monkeypatch):
    """A write of model/ killed half-way leaves the previous weights and EMA together, never a mix."""
    from genlab.models import build_model

    old = build_model("autoencoder", {"image_shape": [1, 8, 8], "hidden_dims": [8], "latent_dim": 2})
    ckpt.save_model(old, tmp_path / "model", ema_state=old.state_dict())
    new = build_model("autoencoder", {"image_shape": [1, 8, 8], "hidden_dims": [8], "latent_dim": 2})
    real = ckpt.save_tensors

    def crash_on_ema(path, tensors, metadata=None):
        if Path(path).name == ckpt.EMA_NAME:
            raise KeyboardInterrupt("killed while writing the EMA")
        real(path, tensors, metadata)

    monkeypatch.setattr(ckpt, "save_tensors", crash_on_ema)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_model(new, tmp_path / "model", ema_state=new.state_dict())
    kept = _weights(tmp_path / "model")
    assert all(torch.equal(kept[k], v) for k, v in old.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_out_over_a_foreign_folder_is_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.csv").write_text("my,own,numbers\n")
    (mine / "samples.png").write_bytes(b"my picture")
    with pytest.raises(ConfigError, match="not a genlab run.*--force"):
        _train(tmp_path, "--train.max_steps=2", name="mine")
    assert (mine / "metrics.csv").read_text() == "my,own,numbers\n" and sorted(p.name for p in mine.iterdir()) == ["metrics.csv", "samples.png"]
    assert _train(tmp_path, "--train.max_steps=2", name="mine", force=True)["steps"] == 2
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert _train(tmp_path, "--train.max_steps=2", name="empty")["steps"] == 2


# ----------------------------------------------------------------------------- commands and messages (12, 13)

def test_a_closed_pipe_ends_the_command_quietly(tmp_path, monkeypatch):
    """``genlab train --dry-run | head``: the reader went away; no BrokenPipeError traceback."""
    import io

    from genlab.cli import main

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["train", "vae", "--dry-run", "--data.limit=64", "--out", str(tmp_path / "r")]) == 141


def test_log_lines_print_above_the_progress_bar(capsys):
    import logging

    from tqdm import tqdm

    from genlab.cli import _TqdmHandler

    logger = logging.getLogger("genlab.test_faults")
    logger.addHandler(_TqdmHandler())
    logger.propagate = False
    try:
        with tqdm(total=10, desc="bar", file=sys.stderr) as bar:
            bar.update(3)
            logger.warning("step 3 eval done")
    finally:
        logger.handlers.clear()
    lines = [line.split("\r")[-1] for line in capsys.readouterr().err.split("\n")]
    assert "step 3 eval done" in lines  # on a line of its own, not glued to the bar


def test_evaluate_shows_progress(capsys):
    from genlab.data import ArrayDataset
    from genlab.models import build_model

    model = build_model("vae", {"image_shape": [1, 8, 8], "hidden_dims": [16], "latent_dim": 2})
    data = ArrayDataset((torch.rand(40, 1, 8, 8).round(),))
    metrics = api.evaluate(model, data, k=4, batch_size=10, progress=True)
    assert metrics["examples"] == 40
    err = capsys.readouterr().err
    assert "evaluate vae" in err and "0/4" in err  # a bar over the 4 batches


def test_reconstruct_keeps_the_training_figure_and_path_data_names_the_run(tmp_path):
    import numpy as np

    from genlab.cli import main
    from genlab.models import build_model

    model = build_model("autoencoder", {"image_shape": [1, 28, 28], "hidden_dims": [8], "latent_dim": 2})
    model.save_pretrained(str(tmp_path / "run"))
    (tmp_path / "run" / "reconstructions.png").write_bytes(b"made by training")
    assert main(["reconstruct", str(tmp_path / "run"), "--data", "mnist-embedded", "-n", "8"]) == 0
    assert (tmp_path / "run" / "reconstructions.png").read_bytes() == b"made by training"
    assert (tmp_path / "run" / "reconstructions-mnist-embedded.png").is_file()
    digits = tmp_path / "digits.npz"
    np.savez(digits, x=np.random.default_rng(0).integers(0, 255, (64, 8, 8), dtype=np.uint8))
    summary = api.train("vae", data=str(digits), dry_run=True, overrides=["--model.hidden_dims=[8]"])
    assert Path(summary["run_dir"]).name == "vae-digits"


def test_toy_rings_are_named_by_what_they_are():
    from genlab.data import DataConfig, load_dataset
    from genlab.errors import DataError

    twelve = load_dataset(DataConfig(name="ring", size=64, options={"modes": 12}))
    assert twelve.info["name"] == "ring" and len(twelve.info["centres"]) == 12
    assert len(load_dataset(DataConfig(name="ring8", size=64)).info["centres"]) == 8
    with pytest.raises(DataError, match="ring8 is ring with modes=8.*--data ring --data.options.modes=12"):
        load_dataset(DataConfig(name="ring8", size=64, options={"modes": 12}))
    assert len(load_dataset(DataConfig(name="grid", size=64, options={"side": 3})).info["centres"]) == 9


def test_readme_mdn_example_selects_on_validation_and_restores():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("### Mixture density network"):]
    block = block[: block.index("```", block.index("```python") + 3)]
    assert "keep_best" not in block or ("restore_best()" in block and "eval_data=test" not in block)


@pytest.mark.parametrize("draw", ["randn", "rand", "randint"])
def test_batch_noise_is_the_global_draw_sliced_by_rank(draw):
    """One process draws exactly what torch draws; rank r of N draws rows r of the global batch."""
    from genlab import runtime

    fns = {"randn": (runtime.batch_randn, lambda s: torch.randn(s)), "rand": (runtime.batch_rand, lambda s: torch.rand(s)),
           "randint": (lambda s: runtime.batch_randint(1, 9, s), lambda s: torch.randint(1, 9, s))}
    ours, theirs = fns[draw]
    torch.manual_seed(5)
    whole = theirs((8, 3))
    torch.manual_seed(5)
    assert torch.equal(ours((8, 3)), whole)
    for rank in range(2):
        with runtime.batch_shard(rank, 2):
            torch.manual_seed(5)
            assert torch.equal(ours((4, 3)), whole[rank * 4:(rank + 1) * 4])


# ----------------------------------------------------------------------------- run-level faults (issue 22)

def _one_line_genlab_error(info) -> str:
    from genlab.errors import GenlabError

    assert isinstance(info.value, GenlabError), repr(info.value)
    message = str(info.value)
    assert "\n" not in message and message
    return message


_SRC = Path(api.__file__).resolve().parents[1]  # the genlab under test, for the subprocesses


def _cli_error(capsys) -> str:
    """The one error line a failed command printed (log lines from before the failure may precede it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


_RANK_WRITES = """
import os, sys
import genlab.checkpoint as ck
from genlab import api
rank = int(os.environ.get("RANK", "0"))
real = ck.atomic_write_bytes
def guarded(path, data):
    # rank 0 cleans the run folder's temporary files at start-up: another rank writing one then loses it
    if rank != 0:
        raise AssertionError(f"rank {{rank}} wrote {{path}}")
    return real(path, data)
ck.atomic_write_bytes = guarded
api.train("vae", data="mnist-embedded", out=sys.argv[1], overrides={overrides!r})
"""


@pytest.mark.slow
def test_under_torchrun_only_rank_0_writes_the_run_folder(tmp_path):
    """(1) Every rank wrote run.json while rank 0 removed orphan temporary files: rank 1's ``.run.json.*.tmp``
    vanished under it (FileNotFoundError before step 1 in 3 of 5 launches). Only rank 0 writes; the others
    wait at a barrier. A write from rank 1 fails this drill deterministically, not 3 times in 5."""
    run = tmp_path / "run"
    script = tmp_path / "worker.py"
    script.write_text(_RANK_WRITES.format(overrides=[*VAE, "--train.max_steps=4", "--train.checkpoint_every=2",
                                                     "--train.device=cpu"]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(_SRC), os.environ.get("PYTHONPATH", "")])}
    if Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(run)]
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0 and any(s in result.stderr for s in TRANSPORT_ERRORS):
        shutil.rmtree(run, ignore_errors=True)
        result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads((run / "run.json").read_text())["model"] == "vae"
    assert (run / "model" / ckpt.CONFIG_NAME).is_file() and not list(run.rglob("*.tmp"))


def test_a_second_process_on_a_run_is_refused_in_one_line(tmp_path, capsys):
    """(2) Two trainings of one run both trained: the second died mid-checkpoint and metrics.csv ended
    with duplicate rows. While a run trains, a second ``genlab train --resume RUN`` is refused in one line."""
    from genlab.cli import main

    run = tmp_path / "run"
    _train(tmp_path, "--train.max_steps=8", "--train.checkpoint_every=4", "--train.log_every=2")
    refused: list[Exception] = []
    codes: list[int] = []

    def second_process(trainer, event, info):
        if event == "checkpoint" and info["step"] == 12:
            try:
                api.train(resume=run, overrides=["--train.max_steps=16"])
            except Exception as exc:  # noqa: BLE001  (the drill inspects whatever it was)
                refused.append(exc)
            codes.append(main(["train", "--resume", str(run), "--train.max_steps=16"]))

    api.train(resume=run, overrides=["--train.max_steps=16"], callbacks=[second_process])
    assert len(refused) == 1, "the second process trained too"
    message = _one_line_genlab_error(type("Info", (), {"value": refused[0]}))
    assert str(run) in message and "in use" in message and str(os.getpid()) in message
    assert codes == [2] and "in use" in _cli_error(capsys)
    rows = [tuple(line.split(",")[:2]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert len(rows) == len(set(rows)), "metrics.csv holds duplicate rows"
    assert max(int(step) for step, _ in rows) == 16


def test_a_killed_process_leaves_no_stuck_lock(tmp_path):
    """(2) The lock is the kernel's (flock): a holder killed by SIGKILL releases it."""
    run = tmp_path / "run"
    _train(tmp_path, "--train.max_steps=4", "--train.checkpoint_every=2")
    holder = ("import sys, time\nfrom genlab.runtime import DistInfo, run_lock\n"
              "with run_lock(sys.argv[1], DistInfo()):\n    print('locked', flush=True)\n    time.sleep(120)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(_SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", holder, str(run)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(Exception) as info:
            api.train(resume=run, overrides=["--train.max_steps=6"])
        assert f"pid {proc.pid}" in _one_line_genlab_error(info)
    finally:
        proc.kill()
        proc.wait()
    assert api.train(resume=run, overrides=["--train.max_steps=6"])["steps"] == 6


class _Stop(Exception):
    pass


def test_resume_history_accumulates_each_change_with_its_step(tmp_path):
    """(3, 8) A plain --resume erased run.json's history of changes, and a resume with a change kept only
    the newest entry (run.json then claimed an lr the run never had before it). Every entry is kept, with
    the step it took effect at and the old and new values, and matches the lr metrics.csv logged."""
    run = tmp_path / "run"
    _train(tmp_path, "--train.max_steps=8", "--train.checkpoint_every=4", "--train.log_every=1", "--train.lr=1e-3")

    def killed_at_12(trainer, event, info):
        if event == "checkpoint" and info["step"] == 12:
            raise _Stop

    with pytest.raises(_Stop):
        api.train(resume=run, overrides=["--train.lr=5e-4", "--train.max_steps=16"], callbacks=[killed_at_12])
    first = {"step": 8, "train.lr": [1e-3, 5e-4], "train.max_steps": [8, 16]}
    api.train(resume=run)  # plain resume: from step 12 to 16
    assert json.loads((run / "run.json").read_text())["changes"] == [first]
    api.train(resume=run, overrides=["--train.lr=2e-4", "--train.max_steps=20"])
    record = json.loads((run / "run.json").read_text())
    assert record["changes"] == [first, {"step": 16, "train.lr": [5e-4, 2e-4], "train.max_steps": [16, 20]}]
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    logged = {int(step): float(value) for step, name, value in rows if name == "lr"}
    # an entry at step s claims its new lr for the updates after step s (the row of step s logs update s's)
    claimed = {s: 1e-3 if s <= 8 else 5e-4 if s <= 16 else 2e-4 for s in logged}
    assert logged == pytest.approx(claimed, rel=1e-5)


def test_disk_full_during_a_checkpoint_is_one_line_and_the_last_checkpoint_resumes(tmp_path, monkeypatch):
    """(4) ENOSPC mid-checkpoint: the data on disk was intact, but the user got an OSError traceback."""
    import errno

    run = tmp_path / "run"
    real = ckpt.save_training_state

    def full_at_step_8(path, state):
        if "step-00000008" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, state)

    monkeypatch.setattr(ckpt, "save_training_state", full_at_step_8)
    with pytest.raises(Exception) as info:
        _train(tmp_path, "--train.max_steps=8", "--train.checkpoint_every=4")
    message = _one_line_genlab_error(info)
    assert "no space" in message.lower() and "free" in message
    assert str(run / "checkpoints" / "step-00000004") in message and "intact" in message
    monkeypatch.undo()
    assert not list(run.rglob("*.tmp"))
    assert ckpt.latest_checkpoint(run / "checkpoints").name == "step-00000004"
    assert api.train(resume=run)["steps"] == 8


def _deny_writes_under(monkeypatch, folder: Path) -> None:
    """chmod a-w does not stop root: refuse creating folders and opening files under ``folder`` the way
    a read-only folder would, whoever runs the tests."""
    import builtins
    import errno

    from genlab import runtime

    real_mkdir, real_open, real_mkstemp = Path.mkdir, builtins.open, ckpt.tempfile.mkstemp

    def denied(path) -> bool:
        return Path(path).resolve().is_relative_to(folder.resolve())

    def mkdir(self, *args, **kwargs):
        if denied(self) and not self.exists():
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and denied(dir):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(runtime, "open", open_, raising=False)
    monkeypatch.setattr(ckpt.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("case", ["out", "resume"])
def test_a_read_only_folder_is_one_line_naming_it(tmp_path, monkeypatch, capsys, case):
    """(5) --out in a read-only folder, or --resume of a read-only run: a PermissionError traceback."""
    from genlab.cli import main

    run = tmp_path / ("ro" if case == "resume" else "ro/run")
    if case == "resume":
        _train(tmp_path, "--train.max_steps=2", name="ro")
    else:
        run.parent.mkdir()
    locked = run if case == "resume" else run.parent
    for path in [locked, *locked.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        if os.access(locked, os.W_OK):  # root: the mode bits do not bind, so deny the writes instead
            _deny_writes_under(monkeypatch, locked)
        argv = (["train", "--resume", str(run), "--train.max_steps=4"] if case == "resume" else
                ["train", "vae", "--data", "mnist-embedded", "--out", str(run), *VAE, "--train.max_steps=2"])
        assert main(argv) == 2
        err = _cli_error(capsys)
        assert str(run) in err and "writable" in err, err
    finally:
        for path in [locked, *locked.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_garbage_run_files_and_an_out_that_is_a_file_are_one_line(tmp_path, capsys):
    """(6) A binary run.json (UnicodeDecodeError), a run.json holding a JSON list (TypeError) and an
    --out naming an existing file (FileExistsError) ended in tracebacks."""
    from genlab.cli import main

    run = tmp_path / "run"
    run.mkdir()
    for content in (b"\x80\xff\x00\xfe garbage \x9c", b"[1, 2, 3]", b'{"model": "vae", "model_config": [], "data": 3}'):
        (run / "run.json").write_bytes(content)
        with pytest.raises(Exception) as info:
            api.train(resume=run)
        assert str(run / "run.json") in _one_line_genlab_error(info)
        with pytest.raises(Exception) as info:
            api.load_run(run)
        _one_line_genlab_error(info)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for out in (afile, afile / "run"):
        assert main(["train", "vae", "--data", "mnist-embedded", "--out", str(out), *VAE, "--train.max_steps=2"]) == 2
        err = _cli_error(capsys)
        assert str(afile) in err and "is a file" in err, err
    assert afile.read_text() == "mine"


def test_a_missing_model_config_is_refused_and_an_unfinished_run_says_which_checkpoint(tmp_path, caplog, capsys):
    """(11) A run whose model/config.json is missing silently loaded its latest checkpoint instead. A
    damaged model/ is refused, naming what is missing and the checkpoint to load instead; a run that never
    exported model/ (still training, or stopped) loads its latest checkpoint and says which in one log line."""
    import logging

    from genlab.cli import main

    run = tmp_path / "run"
    _train(tmp_path, "--train.max_steps=4", "--train.checkpoint_every=2")
    (run / "model" / ckpt.CONFIG_NAME).unlink()
    with pytest.raises(Exception) as info:
        api.load_run(run)
    message = _one_line_genlab_error(info)
    assert str(run / "model") in message and ckpt.CONFIG_NAME in message and "step-00000004" in message
    assert main(["sample", str(run), "-o", str(tmp_path / "s.png")]) == 2
    assert "incomplete" in _cli_error(capsys)
    for load in (api.load_run, ckpt.load):  # genlab.load is checkpoint.load: the Python API refuses it too, rather than loading step 4 quietly
        with pytest.raises(Exception) as info:
            load(run)
        assert "incomplete" in _one_line_genlab_error(info)
    shutil.rmtree(run / "model")
    with caplog.at_level(logging.INFO, logger="genlab.api"):
        model, spec = api.load_run(run)
    said = [r.getMessage() for r in caplog.records if "latest checkpoint" in r.getMessage()]
    assert len(said) == 1 and str(run / "checkpoints" / "step-00000004") in said[0]
    assert spec is not None and spec.model == "vae"
@pytest.mark.parametrize("labelled", [True, False], ids=["labelled-a", "unlabelled-a"])
def test_cyclegan_keep_best_checks_its_metric_on_both_domains(tmp_path, labelled):
    """train.keep_best's pre-flight evaluated domain A's tensors alone: with labels it failed with a
    shape error about domain B, without them with an IndexError. It now evaluates an (a, b) batch,
    as every later evaluation does, and keeps the best weights."""
    from genlab import build_model
    from genlab.data.unpaired import unpaired_dataset
    from genlab.errors import DataError
    from genlab.training import TrainConfig, Trainer

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(12, 1, 8, 8, generator=g), torch.rand(10, 3, 8, 8, generator=g)
    labels = {"labels_a": torch.randint(10, (12,), generator=g)} if labelled else {}
    data = unpaired_dataset(a, b, "tiny", **labels)
    torch.manual_seed(0)
    model = build_model("cyclegan", {"image_shape": [1, 8, 8], "image_shape_b": [3, 8, 8], "num_filters": 2,
                                     "discriminator_filters": 2, "residual_blocks": 1, "pool_size": 2})
    config = TrainConfig(max_steps=4, batch_size=4, lr=1e-3, seed=0, progress=False, tensorboard=False, device="cpu",
                         eval_every=2, sample_every=10**9, checkpoint_every=10**9, keep_best="generators/cycle_a",
                         fused_optimizer=False)
    Trainer(model, data, config, eval_data=data, out_dir=tmp_path).fit()
    assert (tmp_path / "best" / "config.json").is_file()
    with pytest.raises(DataError, match="both domains"):
        model.evaluate(data.tensors)  # domain A alone: one clear line


# ----------------------------------------------------------------------------- checkpoint policy faults

_KILL_IN_ROTATION = """
import os, shutil, signal, sys
import genlab.checkpoint as ck
from genlab import api
where = sys.argv[2]
real_rmtree, real_replace = shutil.rmtree, os.replace
def rmtree(path, *args, **kwargs):
    # the rotation after step 6 deletes step 2: die by SIGKILL with half of its files gone
    if where == "delete" and "step-00000002" in str(path) and os.path.isdir(path):
        for name in sorted(os.listdir(path))[:2]:
            os.unlink(os.path.join(path, name))
        os.kill(os.getpid(), signal.SIGKILL)
    return real_rmtree(path, *args, **kwargs)
def replace(src, dst):
    # step 6's folder is in place; die while the latest pointer is rewritten to name it
    if where == "latest" and os.path.basename(dst) == "latest" and "step-00000006" in open(src).read():
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
shutil.rmtree, os.replace = rmtree, replace
api.train("vae", data="mnist-embedded", out=sys.argv[1], overrides={overrides!r})
"""


@pytest.mark.parametrize("where", ["delete", "latest"])
def test_kill_during_rotation_leaves_only_complete_checkpoints_and_resumes_from_the_newest(tmp_path, where):
    """A kill inside the deletion of an old checkpoint must not leave a half-deleted ``step-*`` folder
    (deletion renames it to a temporary name first); a kill while ``latest`` is rewritten must not send
    the resume back to an older step (latest is the newest complete folder, not the pointer)."""
    run = tmp_path / "run"
    # probation 2: step 4 is known good after step 6, so the rotation after step 6 deletes step 2
    overrides = [*VAE, "--train.max_steps=8", "--train.checkpoint_every=2", "--train.checkpoint_probation=2",
                 "--train.log_every=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = _KILL_IN_ROTATION.format(overrides=overrides)
    result = subprocess.run([sys.executable, "-c", script, str(run), where], env=env, capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    root = run / "checkpoints"
    ckpt.remove_orphans(run)  # what start-up does: then every checkpoint folder left is whole and loads
    assert [p for p in run.rglob(".*")] == []
    for folder in ckpt.list_checkpoints(root):
        ckpt.read_model_config(folder)
        ckpt.load_training_state(folder / ckpt.STATE_NAME)
    assert ckpt.latest_checkpoint(root).name == "step-00000006"
    resumed_from: list[int] = []
    summary = api.train(resume=run, callbacks=[lambda t, event, info: resumed_from.append(info["step"]) if event == "log" else None])
    assert summary["steps"] == 8 and resumed_from[0] == 7  # it went on from step 6
    api.train("vae", data="mnist-embedded", out=tmp_path / "whole", overrides=overrides)
    a, b = _weights(run / "model"), _weights(tmp_path / "whole" / "model")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_known_good_checkpoint_exists_whatever_the_cadence(tmp_path):
    """checkpoint_every=10 with the default keep_checkpoints=2 and probation 100: rotation keeps a candidate
    until it has served its probation, so a divergence after 150 healthy steps resumes from a known-good
    checkpoint instead of setting them all aside and starting over."""
    run = tmp_path / "run"

    def blow_up(trainer, event, info):  # the weights go bad after step 150 (finite, but huge)
        if event == "checkpoint" and info["step"] == 150:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.mul_(1e30)

    with pytest.raises(TrainingError) as info:
        _train(tmp_path, "--train.checkpoint_every=10", "--train.max_steps=200", callbacks=[blow_up])
    message = str(info.value)
    assert "no usable checkpoint" not in message and "The last usable checkpoint is" in message
    usable = ckpt.latest_checkpoint(run / "checkpoints")
    assert usable is not None and ckpt.checkpoint_step(usable) <= 150 - 100
    assert f"{usable}" in message
    assert all(torch.isfinite(v).all() for v in _weights(usable).values())


def test_checksums_fail_closed_naming_the_file_unless_verify_is_false(tmp_path):
    """A .safetensors without a checksum, a training_state.pt without its .sha256 and a header changed after
    writing are refused in one line naming the file; verify=False loads files other tools wrote."""
    from safetensors.torch import save_file

    from genlab.models import build_model

    model = build_model("vae", {"image_shape": [1, 8, 8], "hidden_dims": [16], "latent_dim": 2})
    foreign = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(foreign))  # another tool: no checksum
    with pytest.raises(CheckpointError, match="verify=False") as info:
        ckpt.load_tensors(foreign)
    assert str(foreign) in str(info.value) and "\n" not in str(info.value)
    assert ckpt.load_tensors(foreign, verify=False).keys() == model.state_dict().keys()

    # the header is covered: rename a tensor (same length, so the file stays valid) and it is refused
    ckpt.save_tensors(tmp_path / "m.safetensors", {"weight_a": torch.ones(3), "weight_b": torch.zeros(3)})
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data.replace(b"weight_a", b"weight_c", 1))
    with pytest.raises(CheckpointError, match="checksum") as info:
        ckpt.load_tensors(tmp_path / "m.safetensors")
    assert str(tmp_path / "m.safetensors") in str(info.value)

    state = tmp_path / "training_state.pt"
    ckpt.save_training_state(state, {"step": 3})
    assert ckpt.load_training_state(state)["step"] == 3
    state.with_suffix(".sha256").unlink()
    with pytest.raises(CheckpointError, match="verify=False") as info:
        ckpt.load_training_state(state)
    assert str(state) in str(info.value) and "\n" not in str(info.value)
    assert ckpt.load_training_state(state, verify=False)["step"] == 3


def test_a_training_state_holding_code_is_refused_in_genlabs_words(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "training_state.pt"
    torch.save({"step": 1, "payload": Evil()}, path)
    import hashlib

    path.with_suffix(".sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest() + "\n")  # a faithful digest
    with pytest.raises(CheckpointError) as info:
        ckpt.load_training_state(path)
    message = str(info.value)
    assert message.startswith(f"refused {path}: it holds Python objects") and "system" in message
    assert "\n" not in message and "\x1b" not in message and "weights_only" not in message.lower()
    assert not (tmp_path / "pwned").exists()


_SIGKILL_DRILL = r"""
import copy, os, signal, sys
import torch
sys.path.insert(0, sys.argv[1])
from tiny_configs import TINY
from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

key, out, mode = sys.argv[2], sys.argv[3], sys.argv[4]

def model():
    torch.manual_seed(0)
    return build_model(key.split(":")[0], copy.deepcopy(TINY[key].config))

every = max(p.every for p in model().phases())
stop, total = 2 * every, 4 * every + 1
data = ArrayDataset(TINY[key].batch(torch.Generator().manual_seed(1)))
config = TrainConfig(batch_size=4, max_steps=total, lr=1e-2, ema_decay=0.9, lr_schedule="cosine", warmup_steps=2,
                     checkpoint_every=stop, eval_every=10**6, sample_every=10**6, log_every=1, progress=False,
                     tensorboard=False, device="cpu")

def die(trainer, event, info):  # SIGKILL one step after the checkpoint, mid-run
    if event == "log" and info["step"] == stop + 1:
        os.kill(os.getpid(), signal.SIGKILL)

if mode == "kill":
    Trainer(model(), data, config, out_dir=out, callbacks=[die]).fit()
else:  # a fresh process resumes, then trains the same run uninterrupted
    Trainer(model(), data, config, out_dir=out).fit(resume=True)
    Trainer(model(), data, config, out_dir=out + "-whole").fit()
"""


from tiny_configs import TINY  # noqa: E402  (the contract suite's tiny configs: one case per family)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(key for key in TINY if ":" not in key))
def test_sigkill_then_resume_is_bit_identical(tmp_path, family):
    """Every family: a run SIGKILLed a step after its checkpoint and resumed in a new process ends on the
    weights and EMA of the uninterrupted run, bit for bit, and its metrics.csv has no duplicated rows."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", _SIGKILL_DRILL, str(HERE), family, str(run), "kill"],
                            env=env, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (run / "model").exists(), "the run finished before it could be killed"
    resumed = subprocess.run([sys.executable, "-c", _SIGKILL_DRILL, str(HERE), family, str(run), "resume"],
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name in (ckpt.WEIGHTS_NAME, ckpt.EMA_NAME):
        a, b = ckpt.load_tensors(run / "model" / name), ckpt.load_tensors(tmp_path / "run-whole" / "model" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:2]) for r in rows]
    assert len(keys) == len(set(keys))
    assert keys == [tuple(r.split(",")[:2]) for r in (tmp_path / "run-whole" / "metrics.csv").read_text().splitlines()[1:]]
