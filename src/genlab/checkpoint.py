"""Two artifacts, written atomically, loaded without running code.

* The **model**: a folder with ``config.json`` (registry name + config) and ``model.safetensors``
  (and ``ema.safetensors`` when an EMA was kept). :func:`load` rebuilds the model from it alone.
* The **training state**: ``training_state.pt`` with optimizer and scheduler states, the step and
  the RNG states, read back with ``torch.load(weights_only=True)`` so a file cannot execute code.

Every file is written to a temporary name in the same folder and ``os.replace``-d into place; a model
folder and a run checkpoint folder are assembled under a temporary name and renamed whole (weights and
EMA never mismatch), then the ``latest`` pointer is replaced. A process killed at any instant leaves
either the old or the new folder, never half; what a kill leaves behind (names ending in ``.tmp``) is
removed by :func:`remove_orphans` when the run starts again.

Files prove their integrity, and loading fails closed: a ``.safetensors`` file carries in its metadata the
SHA-256 of its header and tensor bytes (:func:`file_digest` says exactly what is hashed), ``training_state.pt``
a ``training_state.sha256`` beside it, and a run checkpoint folder a ``files.sha256`` manifest of all its
files (``sha256sum -c`` reads it). A missing or mismatching checksum is refused in one line naming the file
unless the caller passes ``verify=False`` (for files written by other tools); non-finite weights are
refused unless asked (``allow_nonfinite=True``). ``training_state.pt`` is read with
``torch.load(weights_only=True)``: a file that holds anything but tensors and plain data is refused.

A checkpoint folder is deleted by renaming it to a temporary name first, so a kill mid-deletion leaves
nothing that looks like a checkpoint; :func:`latest_checkpoint` is the newest folder whose files are all
there and verified, whatever the ``latest`` pointer says (a kill can leave it one checkpoint behind).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._version import __version__
from .errors import CheckpointError
from .registry import build_model

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EMA_NAME = "ema.safetensors"
STATE_NAME = "training_state.pt"
STATE_SUM_NAME = "training_state.sha256"
MANIFEST_NAME = "files.sha256"  # every file of a run checkpoint folder, with its SHA-256; written last
GOOD_NAME = "good"  # pointer to the newest checkpoint that training went on from with finite losses
DIVERGED_PREFIX = "diverged-"  # suspect checkpoints written shortly before a divergence
MODEL_FILES = frozenset({CONFIG_NAME, WEIGHTS_NAME, EMA_NAME})
FORMAT_VERSION = 1
CHECKSUM_KEY = "sha256_header_and_data"  # safetensors metadata key; "sha256" (tensor bytes only) is the old one
LEGACY_CHECKSUM_KEY = "sha256"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- atomic primitives

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the mode open() would give
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


def file_digest(header: dict[str, Any], body: bytes) -> str:
    """SHA-256 of a safetensors file as :func:`save_tensors` records it: the header (tensor names, dtypes,
    shapes, offsets and metadata, without the checksum itself) in a canonical JSON form (sorted keys, no
    spaces), its length, then the tensor bytes. Hashing the parsed header rather than its raw bytes lets the
    checksum live inside the header it covers; what it leaves out (key order, padding) changes no tensor."""
    header = {k: v for k, v in header.items() if k != "__metadata__"} | {
        "__metadata__": {k: v for k, v in header.get("__metadata__", {}).items() if k not in (CHECKSUM_KEY, LEGACY_CHECKSUM_KEY)}}
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(struct.pack("<Q", len(canonical)) + canonical + body).hexdigest()


def _with_checksum(data: bytes) -> bytes:
    """A safetensors file with :func:`file_digest` added to the header's metadata."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    body = data[8 + size :]
    header.setdefault("__metadata__", {})[CHECKSUM_KEY] = file_digest(header, body)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(encoded)) + encoded + body


def save_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, _with_checksum(save(_state_for_safetensors(tensors), metadata=metadata)))


def _refuse_unverified(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint file {path} {what}; refused (pass verify=False to load a file another tool wrote)")


def load_tensors(path: str | Path, device: str | torch.device = "cpu", *, allow_nonfinite: bool = False,
                 verify: bool = True) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file, after checking its checksum (a file without one is refused
    unless ``verify=False``: a file written by another tool) and, unless ``allow_nonfinite``, that every
    value is finite. Files of genlab before the header was hashed carry the SHA-256 of their tensor
    bytes only (metadata key ``sha256``); that is checked."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file: {path}")
    data = path.read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        tensors = load(data)
    except Exception as exc:  # struct/json errors, SafetensorError on truncation
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"corrupt or truncated checkpoint file {path}: {first}") from None
    if verify:
        metadata, body = header.get("__metadata__") or {}, data[8 + size :]
        if CHECKSUM_KEY in metadata:
            good = file_digest(header, body) == metadata[CHECKSUM_KEY]
        elif LEGACY_CHECKSUM_KEY in metadata:
            good = hashlib.sha256(body).hexdigest() == metadata[LEGACY_CHECKSUM_KEY]
        else:
            raise _refuse_unverified(path, "carries no checksum in its metadata")
        if not good:
            raise CheckpointError(f"checkpoint file {path} fails its checksum: its bytes changed after it was written")
    if not allow_nonfinite:
        for key, value in tensors.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad = int((~torch.isfinite(value)).sum())
                raise CheckpointError(f"checkpoint file {path} holds non-finite weights ({bad} in {key!r}); "
                                      "load with allow_nonfinite=True to inspect them")
    return {k: v.to(device) for k, v in tensors.items()} if str(device) != "cpu" else tensors


# --------------------------------------------------------------------------- model artifact

def save_model(model: nn.Module, directory: str | Path, *, ema_state: dict[str, Tensor] | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ ``ema.safetensors``) into ``directory``, as a
    whole: the folder is assembled under a temporary name and swapped in, so a kill leaves the old
    model or the new one. A folder that holds other files is written into file by file instead (its
    other files are the user's and stay)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(p.name not in MODEL_FILES for p in directory.iterdir())):
        return _write_model_files(model, directory, ema_state)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        _write_model_files(model, tmp, ema_state)
        replace_folder(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def replace_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target``. The old one is first renamed aside (``.NAME.old.tmp``),
    so a kill between the two renames leaves it for :func:`remove_orphans` to put back."""
    old = target.parent / f".{target.name}.old.tmp"
    if old.exists():
        remove_folder(old)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def remove_folder(path: Path) -> None:
    """Delete a folder by renaming it to a temporary name (``.NAME.*.tmp``) first: a kill mid-deletion
    leaves a name :func:`remove_orphans` removes, never a half-deleted folder under the old name."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.replace(path, tmp)  # an empty folder is replaced (POSIX rename)
    shutil.rmtree(tmp, ignore_errors=True)


def remove_orphans(run_dir: str | Path) -> list[Path]:
    """Remove what writes killed mid-way left in a run folder (temporary files and folders, whose
    names end in ``.tmp``, checkpoint folders of older versions, ``checkpoints/.step-*``, and checkpoint
    folders that miss files, left by a deletion of an older version killed half-way); a model folder
    killed between the two renames of :func:`replace_folder` is put back first."""
    run_dir = Path(run_dir)
    removed: list[Path] = []
    folders = [run_dir, *(sorted(p for p in run_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) if run_dir.is_dir() else [])]
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(".*")):
            name = path.name
            if name.endswith(".old.tmp") and path.is_dir() and not (folder / name[1 : -len(".old.tmp")]).exists():
                os.replace(path, folder / name[1 : -len(".old.tmp")])
                continue
            if name.endswith(".tmp") or (folder.name == "checkpoints" and name.startswith(".step-")):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    for path in list_checkpoints(run_dir / "checkpoints"):
        if _missing_files(path):
            remove_folder(path)
            removed.append(path)
    return removed


def _write_model_files(model: nn.Module, directory: Path, ema_state: dict[str, Tensor] | None) -> Path:
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
    latest = latest_checkpoint(path / "checkpoints")
    model_dir = path / "model"
    if model_dir.exists():  # exported: whole, or damaged (never quietly replaced by an older checkpoint)
        missing = [name for name in (CONFIG_NAME, WEIGHTS_NAME) if not (model_dir / name).is_file()]
        if not missing:
            return model_dir
        instead = f"; load a checkpoint explicitly instead, e.g. {latest}" if latest is not None else ""
        raise CheckpointError(f"{model_dir} is incomplete (no {' or '.join(missing)}){instead}")
    if latest is not None:
        return latest
    if not path.exists():
        raise CheckpointError(f"no such model or run folder: {path}")
    raise CheckpointError(f"{path} holds no genlab model (expected {CONFIG_NAME} + {WEIGHTS_NAME}, or a run folder)")


def load(path: str | Path, *, ema: bool = True, device: str | torch.device = "cpu", allow_nonfinite: bool = False,
         verify: bool = True) -> nn.Module:
    """Rebuild a model from a model folder or run folder. Uses EMA weights when saved and ``ema``.
    Files that fail or lack their checksum (unless ``verify=False``), and non-finite weights unless
    ``allow_nonfinite``, are refused."""
    directory = resolve_model_dir(path)
    meta = read_model_config(directory)
    model = build_model(meta["model"], meta["config"])
    weights = directory / EMA_NAME if ema and (directory / EMA_NAME).is_file() else directory / WEIGHTS_NAME
    state = load_tensors(directory / WEIGHTS_NAME, allow_nonfinite=allow_nonfinite, verify=verify)
    if weights.name == EMA_NAME:
        state.update(load_tensors(weights, allow_nonfinite=allow_nonfinite, verify=verify))  # EMA file holds the averaged subset of the weights
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
    data = buffer.getvalue()
    path = Path(path)
    atomic_write_bytes(path, data)
    # torch's zip reader checks no CRC: keep the digest beside the file
    atomic_write_text(path.with_suffix(".sha256"), hashlib.sha256(data).hexdigest() + "\n")


def load_training_state(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The training state, after checking ``training_state.sha256`` beside it (refused without one unless
    ``verify=False``). Only tensors and plain data are read: a file holding other objects is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file: {path}")
    digest = path.with_suffix(".sha256")
    if verify and not digest.is_file():
        raise _refuse_unverified(path, f"has no {digest.name} beside it")
    if verify and hashlib.sha256(path.read_bytes()).hexdigest() != digest.read_text().strip():
        raise CheckpointError(f"checkpoint file {path} fails its checksum: its bytes changed after it was written")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's message advises loading it unsafely; genlab never does
        found = re.search(r"GLOBAL (\S+)", re.sub(r"\x1b\[[0-9;]*m", "", str(exc)))
        what = f" (it calls {found.group(1)})" if found else ""
        raise CheckpointError(f"refused {path}: it holds Python objects other than tensors and plain data{what}, "
                              "which a genlab training state never does, and loading it could run code") from None
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
    good: str | None = None,
) -> Path:
    """Assemble ``root/step-XXXXXXXX`` under a temporary name (its files, then the ``files.sha256``
    manifest), rename it into place, then point ``root/latest`` at it and prune the older ones. Kept: the
    newest ``keep``, the known-good one (``good``, a checkpoint name, recorded in ``root/good``; the
    previous record when ``None``) and the oldest one newer than it, the candidate that becomes known good
    next: however rarely checkpoints are written, one serves its probation."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        _write_model_files(model, tmp, ema_state)
        save_training_state(tmp / STATE_NAME, training_state)
        atomic_write_text(tmp / MANIFEST_NAME, "".join(f"{_sha256(p)}  {p.name}\n" for p in sorted(tmp.iterdir())))
        if final.exists():
            remove_folder(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "latest", final.name + "\n")
    if good is not None:
        atomic_write_text(root / GOOD_NAME, good + "\n")
    known_good = _read_pointer(root / GOOD_NAME)
    existing = list_checkpoints(root)
    candidate = next((p.name for p in existing if known_good is None or p.name > known_good), None)
    protected = {final.name, known_good, candidate}
    for old in existing[: max(0, len(existing) - keep)]:
        if old.name not in protected:
            remove_folder(old)
    return final


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(path: Path) -> dict[str, str] | None:
    """File name -> SHA-256 from a checkpoint folder's manifest; ``None`` for folders of older versions."""
    manifest = path / MANIFEST_NAME
    if not manifest.is_file():
        return None
    return {name: digest for digest, name in (line.split("  ", 1) for line in manifest.read_text().splitlines() if line)}


def _missing_files(path: Path) -> bool:
    listed = _manifest(path)
    names = listed.keys() if listed is not None else (CONFIG_NAME, WEIGHTS_NAME, STATE_NAME)
    return not all((path / name).is_file() for name in names)


def checkpoint_complete(path: str | Path) -> bool:
    """All of a checkpoint folder's files are there and match its manifest (older folders, without one:
    the model and the training state are there)."""
    path = Path(path)
    if _missing_files(path):
        return False
    listed = _manifest(path)
    return listed is None or all(_sha256(path / name) == digest for name, digest in listed.items())


def list_checkpoints(root: str | Path) -> list[Path]:
    """The complete checkpoint folders under ``root``, oldest first."""
    root = Path(root)
    return sorted(p for p in root.glob("step-*") if p.is_dir()) if root.is_dir() else []


def checkpoint_step(path: str | Path) -> int:
    return int(Path(path).name.removeprefix("step-"))


def _read_pointer(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def set_aside_suspects(root: str | Path, usable_step: int) -> Path | None:
    """After a divergence: rename every checkpoint newer than ``usable_step`` to ``diverged-step-*``
    (kept for inspection, never resumed from) and point ``latest`` at the newest one left. Returns
    it, or ``None`` when none is left (a resume then starts from the initial weights)."""
    root = Path(root)
    for path in list_checkpoints(root):
        if checkpoint_step(path) > usable_step:
            target = root / f"{DIVERGED_PREFIX}{path.name}"
            if target.exists():
                remove_folder(target)
            os.replace(path, target)
    left = list_checkpoints(root)
    if left:
        atomic_write_text(root / "latest", left[-1].name + "\n")
        if _read_pointer(root / GOOD_NAME) not in {p.name for p in left}:
            atomic_write_text(root / GOOD_NAME, left[-1].name + "\n")
        return left[-1]
    for pointer in ("latest", GOOD_NAME):
        (root / pointer).unlink(missing_ok=True)
    return None


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``root`` (:func:`checkpoint_complete`), or ``None``.
    The ``latest`` pointer is not trusted: a kill between a folder's rename and the pointer's rewrite
    leaves it one checkpoint behind."""
    for path in reversed(list_checkpoints(root)):
        if checkpoint_complete(path):
            return path
        log.warning("skipping checkpoint %s: its files are missing or do not match %s", path, MANIFEST_NAME)
    return None
