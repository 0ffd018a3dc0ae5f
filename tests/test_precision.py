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
