"""Numeric precision of training: fp32, or bfloat16 autocast where the hardware runs it natively.

``bf16`` runs the forward pass and the loss under ``torch.autocast(dtype=torch.bfloat16)``: matrix
products and convolutions take bf16 inputs and accumulate in fp32, while reductions, normalisations,
softmax and the log-likelihoods stay in fp32 (autocast's own op lists). Weights, gradients and
optimizer state stay fp32 ("master weights"), so checkpoints are fp32 whatever the precision, and no
loss scaling is needed: bf16 has fp32's exponent range, so gradients do not underflow as fp16's do.

``auto`` picks bf16 only where it is native — a CUDA device that supports it, or a CPU with the
AVX-512 BF16 or AMX-BF16 instructions (x86) or the BF16 extension (Arm) — and fp32 elsewhere: on a CPU
without them oneDNN emulates bf16 and a step gets slower, not faster. The CPU's instruction flags
are read from ``/proc/cpuinfo``; where that is not available (macOS, Windows) ``auto`` stays fp32.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import ContextManager, Literal

import torch

from .errors import ConfigError

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")
# instruction-set flags that mean a CPU multiplies bf16 natively (x86: AVX-512 BF16, AMX; Arm: FEAT_BF16)
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU listed in ``cpuinfo`` (empty where it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):  # x86 / Arm
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix products natively (faster than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(cpu_flags() & NATIVE_BF16_FLAGS)
    return False


def resolve_precision(requested: str, device: torch.device) -> Literal["fp32", "bf16"]:
    """The precision a run uses: ``requested`` itself, or for ``auto`` bf16 where it is native."""
    if requested not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if requested == "bf16" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.precision=bf16 is not supported on a {device.type} device; use fp32")
    return requested  # type: ignore[return-value]


def autocast(precision: str, device: torch.device) -> ContextManager[object]:
    """The context that runs a forward pass and its loss at ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def resolve_channels_last(requested: bool | str, model: torch.nn.Module) -> bool:
    """Whether a run keeps its convolution weights in channels-last (NHWC) memory: ``requested`` itself, or
    for ``auto`` the model family's measured answer (``channels_last_faster``, set where
    ``benchmarks/precision_throughput.py`` found NHWC faster: VAE, GAN/DCGAN, StyleGAN; the U-Net and ResNet
    generators of pix2pix and CycleGAN run 3-9 % slower in it on a CPU, so they stay NCHW)."""
    if requested == "auto":
        return bool(getattr(model, "channels_last_faster", False))
    if isinstance(requested, bool):
        return requested
    raise ConfigError(f"train.channels_last must be true, false or auto, got {requested!r}")


def check_compile(device: torch.device) -> None:
    """``train.compile`` on a CPU needs the C++ compiler inductor calls (``$CXX``, else g++; clang++ on macOS):
    without one, a clear line now instead of a compiler traceback at the first step."""
    import os
    import shutil
    import sys

    if device.type != "cpu":
        return
    compiler = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    if shutil.which(compiler) is None:
        raise ConfigError(f"train.compile needs a C++ compiler for torch.compile's CPU backend and {compiler!r} is "
                          "not on the PATH: install it (e.g. apt-get install g++) or leave train.compile off")
