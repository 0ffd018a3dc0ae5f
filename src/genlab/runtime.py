"""Devices, seeds, RNG state and ``torch.distributed`` set-up.

Distributed training is plain DDP: launch with ``torchrun --nproc_per_node=N -m genlab.cli train ...``
(or the ``genlab`` script); :func:`init_distributed` reads the environment torchrun sets and picks
``nccl`` on CUDA and ``gloo`` on CPU.

Per-example noise in a training step (a VAE's reparametrisation, a GAN's latents, pix2pix's dropout)
comes from :func:`batch_randn` / :func:`batch_rand`. Inside :func:`batch_shard` (the Trainer's step
under N processes) they draw the noise of the whole *global* batch from an RNG that every rank holds
in the same state and return this rank's rows, so the noise an example gets depends on its place in
the global batch, not on the rank that holds it, and N processes train what one process trains.
Drawing N times the noise costs little next to the forward pass; keying a generator per example
would cost a kernel launch per example.

One process trains in a run folder at a time: :func:`run_lock` holds an ``flock`` on the folder's
``run.lock`` file for as long as training runs. The kernel drops the lock when its holder exits, killed
or not, so a crashed run never leaves the folder locked. Under torchrun only rank 0 takes the lock
(the ranks of one job are one writer: rank 0 writes every file) and tells the others whether it got it.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import pickle
from pathlib import Path
import random
import time
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

from .errors import ConfigError, RunInUseError

log = logging.getLogger(__name__)


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """An explicit generator for sampling, so drawing samples never disturbs the training RNG."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state_to_tensors(np.random.get_state()),
        "python": _python_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(_numpy_state_from_tensors(state["numpy"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- noise of the global batch

_SHARD: tuple[int, int] = (0, 1)  # (rank, world size) of the training step in progress


@contextlib.contextmanager
def batch_shard(rank: int, world_size: int) -> Iterator[None]:
    """Within this block, :func:`batch_randn`/:func:`batch_rand` draw for ``world_size`` times the
    local batch and return rows ``rank``; every rank must hold the same RNG state."""
    global _SHARD
    previous, _SHARD = _SHARD, (rank, world_size)
    try:
        yield
    finally:
        _SHARD = previous


def _global_draw(draw: Any, shape: Sequence[int], generator: torch.Generator | None, device: Any, dtype: Any) -> torch.Tensor:
    rank, world = _SHARD
    n = int(shape[0])
    out = draw((n * world, *shape[1:]), generator=generator, device=device, dtype=dtype)
    return out if world == 1 else out[rank * n : (rank + 1) * n]


def batch_randn(shape: Sequence[int], *, generator: torch.Generator | None = None, device: Any = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal noise for a batch (``shape[0]`` examples), a function of the global example
    under :func:`batch_shard`; one process draws exactly ``torch.randn(shape)``."""
    return _global_draw(torch.randn, shape, generator, device, dtype)


def batch_rand(shape: Sequence[int], *, generator: torch.Generator | None = None, device: Any = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform [0, 1) noise for a batch; see :func:`batch_randn`."""
    return _global_draw(torch.rand, shape, generator, device, dtype)


def batch_randint(low: int, high: int, shape: Sequence[int], *, generator: torch.Generator | None = None,
                  device: Any = None) -> torch.Tensor:
    """Integers uniform on [low, high) for a batch; see :func:`batch_randn`."""
    def draw(size: Sequence[int], *, generator: torch.Generator | None, device: Any, dtype: Any) -> torch.Tensor:
        return torch.randint(low, high, tuple(size), generator=generator, device=device)

    return _global_draw(draw, shape, generator, device, None)


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _numpy_state_to_tensors(state: tuple) -> dict[str, Any]:
    # weights_only loading accepts tensors and plain containers, not numpy arrays: convert.
    name, keys, pos, has_gauss, cached = state
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def _numpy_state_from_tensors(state: dict[str, Any]) -> tuple:
    return ("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"], state["cached"])


# --------------------------------------------------------------------------- distributed

@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment; a no-op for one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        # Tear the group down before the interpreter finalises its objects: a gloo group left to
        # the garbage collector at exit can abort the process while a peer is still connected.
        atexit.register(_destroy_process_group)
        log.info("joined process group: rank %d of %d (%s)", dist.get_rank(), world_size, backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _settled(collective: Any, tensors: Sequence[torch.Tensor]) -> None:
    """Run ``collective()`` (an ``async_op=True`` call on ``tensors``) and return once the backend has let
    go of them as well as finished.

    Gloo's worker thread drops its reference to a work just after completing it. Were that the last one,
    it would free the tensors there, and a tensor made in Python needs the GIL to free. When the process
    is exiting, that thread waits for the GIL while the interpreter finalises, and the process aborts
    ("terminate called without an active exception"); a barrier that waited on the collective holds it
    and moves the free later still. Waiting here for the tensors' reference counts to fall back leaves
    the last reference, and the freeing, to this thread.
    """
    if not hasattr(torch.Tensor, "_use_count"):  # a private counter; without it, only the wait
        collective().wait()
        return
    before = [t._use_count() for t in tensors]
    work = collective()
    work.wait()
    del work
    deadline = time.monotonic() + 10.0  # a bound, never reached in practice: the release follows at once
    while any(t._use_count() > n for t, n in zip(tensors, before)) and time.monotonic() < deadline:
        time.sleep(1e-4)


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``value`` (a list in rank order), on every rank; ``[value]`` for one process.

    ``dist.all_gather_object`` with tensors whose lifetime this module controls (see ``_settled``)."""
    if not info.enabled:
        return [value]
    device = _collective_device()
    payload = torch.frombuffer(bytearray(pickle.dumps(value)), dtype=torch.uint8).to(device)
    size = torch.tensor([payload.numel()], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(info.world_size)]
    _settled(lambda: dist.all_gather(sizes, size, async_op=True), [size, *sizes])
    lengths = [int(n) for n in torch.cat(sizes).tolist()]
    padded = torch.zeros(max(lengths), dtype=torch.uint8, device=device)
    padded[: payload.numel()] = payload
    chunks = [torch.empty_like(padded) for _ in range(info.world_size)]
    _settled(lambda: dist.all_gather(chunks, padded, async_op=True), [padded, *chunks])
    return [pickle.loads(chunk[:n].cpu().numpy().tobytes()) for chunk, n in zip(chunks, lengths)]


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def rank0_decides(flag: bool, info: DistInfo, device: Any = None) -> bool:
    """Rank 0's ``flag`` on every rank: for choices made from local clocks (whether an epoch's end gets
    its evaluation and checkpoint), which all ranks must make alike since those steps are collective."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    _settled(lambda: dist.broadcast(value, src=0, async_op=True), [value])
    return bool(value.item())


def all_reduce_mean(values: dict[str, torch.Tensor], info: DistInfo) -> dict[str, torch.Tensor]:
    if not info.enabled:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float() for k in keys])
    _settled(lambda: dist.all_reduce(stacked, async_op=True), [stacked])
    stacked /= info.world_size
    return dict(zip(keys, stacked.unbind(0)))


# --------------------------------------------------------------------------- one writer per run folder

LOCK_NAME = "run.lock"  # kept after the run (removing it would race a new locker); no dot: ".*" names are a killed write's leftovers


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, info: DistInfo, device: Any = None) -> Iterator[None]:
    """Hold ``folder/run.lock`` (created with ``folder``) within this block, or raise
    :class:`~genlab.errors.RunInUseError` on every rank when another process holds it. Collective: every
    rank of a job calls it; rank 0 alone locks. Where ``fcntl`` is missing (Windows) nothing is locked."""
    folder = Path(folder)
    handle = None
    owner = ""
    if info.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+")
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: one writer is the user's to ensure
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip()
                handle.close()
                handle = None
            else:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
    got = rank0_decides(handle is not None or not info.is_main, info, device)
    if not got:
        who = f" (pid {owner})" if owner else ""
        raise RunInUseError(f"{folder} is in use by another genlab process{who}: wait for it to finish or stop it; "
                            "two processes training one run would overwrite each other's checkpoints")
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # closing the file drops the lock; the file stays (removing it would race a new locker)
