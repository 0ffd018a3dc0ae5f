"""Two artifacts, written atomically, loaded without running code.

* The **model**: a folder with ``config.json`` (registry name + config) and ``model.safetensors``
  (and ``ema.safetensors`` when an EMA was kept). :func:`load` rebuilds the model from it alone.
* The **training state**: ``training_state.pt`` with optimizer and scheduler states, the step and
  the RNG states, read back with ``torch.load(weights_only=True)`` so a file cannot execute code.

Every file is written to a temporary name in the same folder and ``os.replace``-d into place; a run
checkpoint folder is assembled under a temporary name and renamed whole, then the ``latest`` pointer
is replaced. A process killed at any instant leaves either the old or the new checkpoint, never half.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EMA_NAME = "ema.safetensors"
STATE_NAME = "training_state.pt"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- atomic primitives

def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _state_for_safetensors(module: nn.Module | dict[str, Tensor]) -> dict[str, Tensor]:
    state = module.state_dict() if isinstance(module, nn.Module) else module
    # safetensors refuses shared storage and non-contiguous views: store independent copies.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save(_state_for_safetensors(tensors), metadata=metadata))


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file: {path}")
    try:
        return load_file(str(path), device=str(device))
    except Exception as exc:  # safetensors raises SafetensorError / OSError on truncation
        raise CheckpointError(f"corrupt or truncated checkpoint file {path}: {str(exc).splitlines()[0]}") from None


# --------------------------------------------------------------------------- model artifact

def save_model(model: nn.Module, directory: str | Path, *, ema_state: dict[str, Tensor] | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ ``ema.safetensors``) into ``directory``."""
    from . import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "genlab_version": __version__,
        "model": model.registry_name,  # type: ignore[attr-defined]
        "config": model.config.to_dict(),  # type: ignore[attr-defined]
    }
    save_tensors(directory / WEIGHTS_NAME, model.state_dict(), metadata={"model": meta["model"]})
    if ema_state is not None:
        save_tensors(directory / EMA_NAME, ema_state)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2, sort_keys=True))
    return directory


def read_model_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file: {path}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt checkpoint file {path}: {exc}") from None
    if not isinstance(meta, dict) or "model" not in meta or "config" not in meta:
        raise CheckpointError(f"corrupt checkpoint file {path}: expected keys 'model' and 'config'")
    return meta


def resolve_model_dir(path: str | Path) -> Path:
    """A model folder, a run folder (its exported ``model/``, else its latest checkpoint), or a
    checkpoint folder."""
    path = Path(path)
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).exists():
        return path
    if (path / "model" / CONFIG_NAME).is_file():
        return path / "model"
    latest = latest_checkpoint(path / "checkpoints")
    if latest is not None:
        return latest
    if not path.exists():
        raise CheckpointError(f"no such model or run folder: {path}")
    raise CheckpointError(f"{path} holds no genlab model (expected {CONFIG_NAME} + {WEIGHTS_NAME}, or a run folder)")


def load(path: str | Path, *, ema: bool = True, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a model folder or run folder. Uses EMA weights when saved and ``ema``."""
    from .models import build_model  # registers every family

    directory = resolve_model_dir(path)
    meta = read_model_config(directory)
    model = build_model(meta["model"], meta["config"])
    weights = directory / EMA_NAME if ema and (directory / EMA_NAME).is_file() else directory / WEIGHTS_NAME
    state = load_tensors(directory / WEIGHTS_NAME)
    if weights.name == EMA_NAME:
        state.update(load_tensors(weights))  # EMA file holds the averaged subset of the weights
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {directory} do not fit the model in its config.json: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model.to(device)


# --------------------------------------------------------------------------- training state

def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_training_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"corrupt or truncated checkpoint file {path}: {first}") from None


# --------------------------------------------------------------------------- run checkpoints

def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def write_checkpoint(
    root: str | Path,
    step: int,
    model: nn.Module,
    training_state: dict[str, Any],
    *,
    ema_state: dict[str, Tensor] | None = None,
    keep: int = 2,
) -> Path:
    """Assemble ``root/step-XXXXXXXX`` under a temporary name, rename it into place, then point
    ``root/latest`` at it and prune all but the newest ``keep`` checkpoints."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save_model(model, tmp, ema_state=ema_state)
        save_training_state(tmp / STATE_NAME, training_state)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "latest", final.name + "\n")
    existing = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in existing[: max(0, len(existing) - keep)]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    root = Path(root)
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if candidate.is_dir():
            return candidate
    existing = sorted(p for p in root.glob("step-*") if p.is_dir()) if root.is_dir() else []
    return existing[-1] if existing else None
