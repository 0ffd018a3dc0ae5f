"""Precision choice: bf16 only where the hardware runs it natively; fp32 elsewhere."""
from __future__ import annotations

import pytest
import torch

from genlab import precision
from genlab.errors import ConfigError


def _cpuinfo(tmp_path, flags: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    return str(path)


@pytest.mark.parametrize("flags, native", [
    ("fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni", True),   # AVX-512 BF16 (Cooper Lake, Zen 4)
    ("fpu avx2 avx512f amx_bf16 amx_tile", True),                      # AMX (Sapphire Rapids)
    ("fpu sse2 avx2 fma", False),                                      # AVX2 only: oneDNN would emulate bf16
    ("fpu avx2 avx512f avx512bw avx512vl", False),                     # AVX-512 without BF16: emulated too
])
def test_auto_picks_bf16_only_on_a_cpu_that_runs_it_natively(tmp_path, monkeypatch, flags, native):
    path = _cpuinfo(tmp_path, flags)
    read = precision.cpu_flags.__wrapped__  # the uncached reader
    monkeypatch.setattr(precision, "cpu_flags", lambda: read(path))
    assert precision.native_bf16(torch.device("cpu")) is native
    assert precision.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    # an explicit choice is honoured either way
    assert precision.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert precision.resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_flags_are_read_from_the_first_cpu_and_missing_cpuinfo_means_no_native_bf16(tmp_path):
    assert "avx512_bf16" in precision.cpu_flags.__wrapped__(_cpuinfo(tmp_path, "avx2 avx512_bf16"))
    assert precision.cpu_flags.__wrapped__(str(tmp_path / "absent")) == frozenset()


def test_unknown_precision_is_one_clear_error():
    with pytest.raises(ConfigError, match="train.precision must be one of fp32, bf16, auto"):
        precision.resolve_precision("fp16", torch.device("cpu"))


def test_autocast_runs_matmuls_in_bf16_and_fp32_is_untouched():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with precision.autocast("bf16", torch.device("cpu")):
        assert (a @ b).dtype == torch.bfloat16
    with precision.autocast("fp32", torch.device("cpu")):
        assert (a @ b).dtype == torch.float32


# ----------------------------------------------------------------------------- the Trainer at a precision

def _dcgan():
    from genlab.models import build_model

    torch.manual_seed(0)
    return build_model("gan", {"image_shape": [1, 16, 16], "latent_dim": 4, "generator_channels": 4,
                               "discriminator_channels": 4})


def _data():
    from genlab.data import ArrayDataset

    return ArrayDataset((torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(1)),))


def _config(**kw):
    from genlab.training import TrainConfig

    base = dict(batch_size=16, max_steps=6, progress=False, tensorboard=False, device="cpu", log_every=2,
                checkpoint_every=3, keep_checkpoints=4, eval_every=10**6, sample_every=10**6)
    return TrainConfig(**{**base, **kw})


def test_bf16_runs_the_forward_in_bf16_and_keeps_weights_gradients_and_optimizer_state_fp32():
    from genlab.training import Trainer

    model = _dcgan()
    seen = []
    handle = model.discriminator.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    trainer = Trainer(model, _data(), _config(precision="bf16", max_steps=2))
    trainer.fit()
    handle.remove()
    assert trainer.precision == "bf16" and torch.bfloat16 in seen
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(v.dtype == torch.float32 for opt in trainer.optimizers.values() for state in opt.state.values()
               for v in state.values() if isinstance(v, torch.Tensor) and v.is_floating_point())
    assert all(isinstance(v, float) and v == v for row in trainer.history for v in row.values())  # logged in fp32, finite
    seen.clear()
    fp32 = _dcgan()
    handle = fp32.discriminator.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    Trainer(fp32, _data(), _config(max_steps=1)).fit()
    assert set(seen) == {torch.float32}


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_killed_bf16_run_resumes_bit_identically(tmp_path, channels_last):
    from genlab.checkpoint import load_tensors
    from genlab.training import Trainer

    straight = _dcgan()
    Trainer(straight, _data(), _config(precision="bf16", channels_last=channels_last), out_dir=tmp_path / "a").fit()
    first = _dcgan()
    Trainer(first, _data(), _config(precision="bf16", channels_last=channels_last, max_steps=3), out_dir=tmp_path / "b").fit()
    resumed = _dcgan()
    Trainer(resumed, _data(), _config(precision="bf16", channels_last=channels_last), out_dir=tmp_path / "b").fit(resume=True)
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    saved = load_tensors(tmp_path / "b" / "model" / "model.safetensors")
    assert all(v.dtype != torch.bfloat16 for v in saved.values())  # checkpoints stay fp32


def test_auto_is_decided_by_the_probe_and_recorded_in_run_json(tmp_path, monkeypatch):
    import json

    from genlab import api
    from genlab import precision as precision_module

    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision_module, "native_bf16", lambda device, native=native: native)
        out = tmp_path / expected
        dry = api.train("vae", data="mnist-embedded", out=str(out), dry_run=True,
                        overrides=["train.precision=auto", "data.limit=64", "model.hidden_dims=[16]"])
        assert dry["precision"] == expected
        api.train("vae", data="mnist-embedded", out=str(out),
                  overrides=["train.precision=auto", "train.max_steps=2", "train.batch_size=16", "data.limit=64",
                             "model.hidden_dims=[16]", "train.progress=false"])
        record = json.loads((out / "run.json").read_text())
        assert record["train"]["precision"] == "auto" and record["precision_used"] == expected


def test_channels_last_auto_follows_the_family_measurement_and_is_recorded(tmp_path):
    import json

    from genlab import api
    from genlab.models import build_model
    from genlab.training import Trainer

    def nhwc(model) -> bool:
        return any(p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
                   for p in model.parameters())

    dcgan = _dcgan()
    trainer = Trainer(dcgan, _data(), _config(max_steps=1))  # default: auto
    assert trainer.channels_last is True and nhwc(dcgan)  # DCGAN measured faster in NHWC
    pix = build_model("pix2pix", {"image_shape": [3, 16, 16], "input_shape": [3, 16, 16], "num_filters": 4})
    assert precision.resolve_channels_last("auto", pix) is False  # pix2pix measured slower in NHWC
    assert precision.resolve_channels_last(True, pix) is True and precision.resolve_channels_last(False, dcgan) is False
    off = _dcgan()
    assert Trainer(off, _data(), _config(max_steps=1, channels_last=False)).channels_last is False and not nhwc(off)
    with pytest.raises(ConfigError, match="train.channels_last must be true, false or auto"):
        precision.resolve_channels_last("nhwc", dcgan)
    api.train("vae", data="mnist-embedded", out=str(tmp_path / "run"),
              overrides=["model.architecture=conv", "train.max_steps=1", "train.batch_size=16", "data.limit=32",
                         "train.progress=false", "train.report=false"])
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["train"]["channels_last"] == "auto" and record["channels_last_used"] is True


# ----------------------------------------------------------------------------- train.compile

def test_compile_without_a_compiler_is_one_clear_error(monkeypatch):
    from genlab.training import Trainer

    monkeypatch.setenv("CXX", "no-such-compiler++")
    with pytest.raises(ConfigError, match="train.compile needs a C\\+\\+ compiler .*no-such-compiler"):
        Trainer(_dcgan(), _data(), _config(compile=True))


@pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="torch.compile's CPU backend needs g++")
def test_compile_runs_the_loss_compiled_matches_eager_and_resumes_bit_identically(tmp_path):
    from torch._dynamo.utils import counters

    from genlab.training import Trainer

    eager = _dcgan()
    Trainer(eager, _data(), _config()).fit()
    counters.clear()
    straight = _dcgan()
    Trainer(straight, _data(), _config(compile=True), out_dir=tmp_path / "a").fit()
    assert counters["stats"]["unique_graphs"] >= 2  # one graph per phase: the loss really ran compiled
    for name, value in eager.state_dict().items():  # the same computation (the same noise draws), fused differently
        assert torch.allclose(value.float(), straight.state_dict()[name].float(), atol=1e-5), name
    first = _dcgan()
    Trainer(first, _data(), _config(compile=True, max_steps=3), out_dir=tmp_path / "b").fit()
    resumed = _dcgan()
    Trainer(resumed, _data(), _config(compile=True), out_dir=tmp_path / "b").fit(resume=True)
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
