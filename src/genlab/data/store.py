"""Decoded images on disk, memory-mapped: datasets larger than memory, and the decode cache.

A store is a folder under :func:`~genlab.data.imageio.cache_dir` holding ``images.u8``, the raw
uint8 array ``(N, C, H, W)`` (C-order, no header), and ``manifest.json``: format version, the
store's identity (what was decoded and how: the source path, output size and channels), the
source's fingerprint (every file's size and mtime, see :mod:`genlab.data.imageio`), the shape, the
byte count and loader extras. The manifest is written **last**, atomically, after the array is
flushed to disk, and removed **first** before a rebuild, so a process killed at any point leaves
no store that a later open trusts: :func:`open_store` accepts a store only when the manifest
exists, names this identity, fingerprint and format, and the array file has exactly the bytes the
shape needs. A changed source rebuilds the store in place (one folder per identity, so an edited
200k-image folder does not leave a stale 2.4 GB copy behind). Builders on one machine take a file
lock, so two ranks of a ``torchrun`` decode once and the second one opens what the first wrote.

A loader returns a split as a :class:`StoredDataset`, which reads each batch's rows from the
memory map and converts them to float on the fly, so a process's memory is bounded by its batch,
not the dataset (the page cache, shared by the ranks of a machine, holds what the OS can spare).
:func:`~genlab.data.load_dataset` then settles it, after ``data.limit`` (so only kept rows are ever
read in), per ``data.storage``: ``mmap`` keeps it mapped, ``memory`` reads it into a float tensor
(what genlab always did), ``auto`` (the default) holds it in memory while its float32 tensor takes at
most :data:`MEMORY_SHARE` of this machine's RAM divided among its local ranks; the choice is logged.
Both give bit-identical batches: the same rows, the same ``/ 255`` in float32.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import mmap
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .base import ArrayDataset, BatchTransform
from .imageio import cache_dir

log = logging.getLogger(__name__)

STORE_VERSION = 1  # bump when the layout or the decoding (crop, resize) changes
MANIFEST, IMAGES = "manifest.json", "images.u8"
MEMORY_SHARE = 0.25  # 'auto' keeps a split in memory while its float32 tensor is under this share of RAM
STORAGE_MODES = ("auto", "memory", "mmap")
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)  # absent on Windows


# ----------------------------------------------------------------------------------------------
# The store on disk.


class ImageStore:
    """An opened, checked store: ``array`` is the read-only uint8 memory map (N, C, H, W)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path, self.manifest = path, manifest
        self.shape: tuple[int, ...] = tuple(manifest["shape"])
        with open(path / IMAGES, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(mmap, "MADV_RANDOM"):
            # batches gather scattered rows: no readahead around each row read from a cold cache
            # (what the reads map into this process is released after each batch: release())
            self._map.madvise(mmap.MADV_RANDOM)
        self.array = np.frombuffer(self._map, dtype=np.uint8).reshape(self.shape)  # read-only, (N, C, H, W)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def extras(self) -> dict[str, Any]:
        return dict(self.manifest.get("extras", {}))

    def gather(self, rows: Tensor) -> Tensor:
        """Float32 (n, C, H, W) in [0, 1] of ``rows``: only those rows are read from the map."""
        out = torch.from_numpy(self.array.take(rows.numpy(), axis=0)).float().div_(255.0)
        self.release()
        return out

    def release(self) -> None:
        """Unmap the pages read so far from this process (they stay in the shared page cache). A page cache
        of large folios maps up to 2 MB around each row read whatever the readahead advice: measured, 100
        batches of 64 random rows put the whole 2.4 GB store of 200k 64x64 images in the process's RSS."""
        if _MADV_DONTNEED is not None:  # (and with it mmap.madvise)
            self._map.madvise(_MADV_DONTNEED)


def store_path(kind: str, identity: dict[str, Any], root: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps({"v": STORE_VERSION, **identity}, sort_keys=True).encode()).hexdigest()[:16]
    return (root or cache_dir()) / f"{kind}-{identity.get('size')}-{digest}"


def _writable_root() -> Path:
    """The cache folder, else (a read-only home) a per-user folder under the system's temp dir."""
    import tempfile

    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"genlab-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    log.warning("cannot write the image store under %s; using %s (set GENLAB_CACHE to keep it)", root, fallback)
    return fallback


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable store manifest %s (%s)", path / MANIFEST, exc)
        return None
    return manifest if isinstance(manifest, dict) else None


def _why_untrusted(path: Path, manifest: dict[str, Any] | None, identity: dict[str, Any],
                   fingerprint: dict[str, Any]) -> str | None:
    """None when the store at ``path`` may be used, else why not (for the log)."""
    if manifest is None:
        return "no manifest (never built, or a build was interrupted)"
    if manifest.get("version") != STORE_VERSION:
        return f"format {manifest.get('version')}, this genlab writes {STORE_VERSION}"
    if manifest.get("identity") != _jsonable(identity):
        return "a different source or decoding"
    if manifest.get("source") != _jsonable(fingerprint):
        return "the source files changed since it was built"
    try:
        shape = [int(d) for d in manifest["shape"]]
        size = (path / IMAGES).stat().st_size
    except (KeyError, TypeError, ValueError, OSError) as exc:
        return f"unusable manifest or array ({exc})"
    if len(shape) != 4 or size != math.prod(shape) or manifest.get("bytes") != size:
        return f"array file has {size} bytes, the manifest's shape {shape} needs {math.prod(shape)}"
    return None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def open_store(kind: str, identity: dict[str, Any], fingerprint: dict[str, Any],
               root: Path | None = None) -> ImageStore | None:
    """The store for ``identity`` if it is complete and was built from ``fingerprint``, else None."""
    path = store_path(kind, identity, root)
    manifest = _read_manifest(path)
    why = _why_untrusted(path, manifest, identity, fingerprint)
    if why is None:
        assert manifest is not None
        return ImageStore(path, manifest)
    if path.exists():
        log.info("not using the store %s: %s", path, why)
    return None


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """One builder per store on this machine (the ranks of a torchrun share the cache folder)."""
    import fcntl

    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class StoreWriter:
    """Receives decoded uint8 (n, H, W, C) chunks in row order and writes them as (n, C, H, W)."""

    def __init__(self, path: Path, count: int) -> None:
        self.path, self.count, self.written = path, count, 0
        self.file = path / (IMAGES + ".partial")
        self.array: np.memmap | None = None

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(H, W, C) of the rows written so far, None before the first chunk."""
        if self.array is None:
            return None
        _, c, h, w = self.array.shape
        return h, w, c

    def add(self, chunk: np.ndarray) -> None:
        n, h, w, c = chunk.shape
        if self.written + n > self.count:
            raise DataError(f"{self.path}: decoder returned more than the {self.count} images it was given")
        if self.array is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self.array = np.memmap(self.file, dtype=np.uint8, mode="w+", shape=(self.count, c, h, w))
        elif (h, w) != tuple(self.array.shape[2:]):
            raise DataError(f"{self.path}: an image decodes to {w}x{h}, earlier ones to "
                            f"{self.array.shape[3]}x{self.array.shape[2]}; set data.image_size to resize them all")
        if c != self.array.shape[1]:
            if c == 1:  # a grey chunk in an RGB store: its channel repeated, as PIL's convert("RGB") does
                chunk = np.repeat(chunk, self.array.shape[1], axis=3)
            else:  # the first colour image after grey ones: the whole store becomes RGB
                self._promote(c)
        self.array[self.written : self.written + n] = chunk.transpose(0, 3, 1, 2)
        self.written += n

    def _promote(self, channels: int) -> None:
        assert self.array is not None
        old, old_file = self.array, self.file.with_suffix(".grey")
        old.flush()
        del self.array
        os.replace(self.file, old_file)
        grey = np.memmap(old_file, dtype=np.uint8, mode="r", shape=old.shape)
        self.array = np.memmap(self.file, dtype=np.uint8, mode="w+", shape=(self.count, channels, *old.shape[2:]))
        for start in range(0, self.written, 4096):  # blocks: the copy never holds the whole store
            stop = min(start + 4096, self.written)
            self.array[start:stop] = grey[start:stop]  # (n, 1, H, W) broadcast over C
        del grey, old
        old_file.unlink()

    def finish(self) -> tuple[int, ...]:
        if self.array is None or self.written != self.count:
            raise DataError(f"{self.path}: decoded {self.written} of {self.count} images")
        self.array.flush()
        shape = tuple(self.array.shape)
        del self.array
        with open(self.file, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.file, self.path / IMAGES)  # a new inode: maps of an old array stay valid
        return shape


def build_store(kind: str, identity: dict[str, Any], fingerprint: dict[str, Any], count: int,
                chunks: Callable[[], Iterable[np.ndarray]], *, check: Callable[[StoreWriter, np.ndarray], None] | None = None,
                extras: dict[str, Any] | None = None) -> ImageStore:
    """The store for ``identity``: opened if complete and current, else built from ``chunks()``
    (decoded uint8 (n, H, W, C) arrays in row order, ``count`` rows in all). ``check(writer,
    chunk)`` may refuse a chunk (an image of the wrong size) before it is written."""
    store = open_store(kind, identity, fingerprint)
    if store is not None:
        log.debug("read %s images from the store %s", kind, store.path)
        return store
    root = _writable_root()
    path = store_path(kind, identity, root)
    with _build_lock(path):
        store = open_store(kind, identity, fingerprint, root)  # another process built it while this one waited
        if store is not None:
            return store
        (path / MANIFEST).unlink(missing_ok=True)  # first: a kill from here on leaves an untrusted store
        start = time.perf_counter()
        writer = StoreWriter(path, count)
        try:
            for chunk in _progress(chunks(), count, f"decoding {kind}"):
                if check is not None:
                    check(writer, chunk)
                writer.add(chunk)
            shape = writer.finish()
        except BaseException:
            writer.file.unlink(missing_ok=True)
            raise
        seconds = time.perf_counter() - start
        manifest = {"version": STORE_VERSION, "identity": _jsonable(identity), "source": _jsonable(fingerprint),
                    "shape": list(shape), "dtype": "uint8", "layout": "NCHW", "bytes": math.prod(shape),
                    "decode_seconds": round(seconds, 3), "extras": _jsonable(extras or {})}
        from ..checkpoint import atomic_write_text

        atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1))  # last: the store is now trusted
    log.info("decoded %d %s images %s in %.1f s into the store %s", count, kind, tuple(shape[1:]), seconds, path)
    return ImageStore(path, manifest)


def _progress(chunks: Iterable[np.ndarray], total: int, description: str) -> Iterator[np.ndarray]:
    """Yields the chunks; a progress bar on a terminal when there are many images, a log line each 10 %."""
    bar = None
    if total >= 5000:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=description, unit="img", leave=False, disable=None)
    done, next_log = 0, total // 10
    try:
        for chunk in chunks:
            yield chunk
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            if total >= 5000 and done >= next_log:
                log.info("%s: %d of %d images", description, done, total)
                next_log += total // 10
    finally:
        if bar is not None:
            bar.close()


# ----------------------------------------------------------------------------------------------
# A split as a dataset.


class StoredDataset(ArrayDataset):
    """Examples ``rows`` of a memory-mapped uint8 store, with in-memory per-example ``labels``.

    :meth:`batch` reads only the rows of the index from the map and converts them to float32
    ``/ 255`` — exactly what the in-memory path does once for all — so the same index gives the same
    bits. ``tensors`` (and ``x``) materialise the whole split as float in memory, once, for code that
    wants every image (a report over the test set); training never touches them. :meth:`head` is a
    view (still stored), :meth:`subset` an in-memory copy of just those examples.
    """

    def __init__(self, store: ImageStore, rows: Tensor, labels: tuple[Tensor, ...] = (),
                 info: dict[str, Any] | None = None, transform: BatchTransform | None = None) -> None:
        self.store, self.rows, self.labels = store, rows.long(), tuple(labels)
        self.info, self.transform = dict(info or {}), transform
        self._tensors: tuple[Tensor, ...] | None = None
        if len(self.rows) == 0:
            raise DataError(f"dataset {self.info.get('name', '')!r} is empty")
        if any(t.shape[0] != len(self.rows) for t in self.labels):
            raise DataError(f"stored images and labels disagree on length: {len(self.rows)} vs "
                            f"{[t.shape[0] for t in self.labels]}")

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"StoredDataset({len(self)} of {self.store.path}, info={self.info.get('name')!r})"

    @property
    def tensors(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        if self._tensors is None:
            log.info("holding all %d stored images of %s in memory as float", len(self), self.info.get("name", "?"))
            self._tensors = (self._gather(self.rows), *self.labels)
        return self._tensors

    @property
    def y(self) -> Tensor | None:
        return self.labels[0] if self.labels else None

    def _gather(self, rows: Tensor) -> Tensor:
        return self.store.gather(rows)  # (n, C, H, W)

    def batch(self, index: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        index = index.long()
        out = (self._gather(self.rows[index]), *(t.index_select(0, index) for t in self.labels))
        if self.transform is not None:
            out = self.transform(out, generator if generator is not None else torch.Generator().manual_seed(0))
        return out

    def subset(self, index: Tensor | Sequence[int]) -> ArrayDataset:
        index = torch.as_tensor(index, dtype=torch.long)
        return ArrayDataset(self.batch_tensors(index), dict(self.info), self.transform)

    def batch_tensors(self, index: Tensor) -> tuple[Tensor, ...]:
        """The examples at ``index`` before any batch transform."""
        return (self._gather(self.rows[index]), *(t[index] for t in self.labels))

    def head(self, n: int) -> "StoredDataset":
        return self.with_rows(torch.arange(min(n, len(self))))

    def with_rows(self, index: Tensor) -> "StoredDataset":
        return StoredDataset(self.store, self.rows[index], tuple(t[index] for t in self.labels), self.info, self.transform)

    def with_transform(self, transform: BatchTransform | None, info: dict[str, Any]) -> "StoredDataset":
        return StoredDataset(self.store, self.rows, self.labels, info, transform)

    def in_memory(self) -> ArrayDataset:
        return ArrayDataset(self.tensors, dict(self.info), self.transform)

    def settle(self, storage: str) -> ArrayDataset:
        """This dataset in memory or still mapped, as ``storage`` (``data.storage``) says; see
        :func:`choose_storage`."""
        chosen = choose_storage(storage, len(self), self.store.shape[1:], str(self.info.get("name", "data")))
        return self if chosen == "mmap" else self.in_memory()


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def choose_storage(mode: str, count: int, image_shape: Sequence[int], name: str) -> str:
    """``memory`` or ``mmap`` for a split of ``count`` images; ``auto`` keeps it in memory while its
    float32 tensor fits in :data:`MEMORY_SHARE` of RAM shared by this machine's ranks. Logged."""
    if mode not in STORAGE_MODES:
        raise DataError(f"data.storage must be one of {', '.join(STORAGE_MODES)}, got {mode!r}")
    need = count * math.prod(image_shape) * 4
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    budget = int(_physical_memory() * MEMORY_SHARE / ranks)
    chosen = mode if mode != "auto" else ("memory" if need <= budget else "mmap")
    why = "data.storage" if mode != "auto" else (f"{need / 2**30:.2f} GiB as float32 "
                                                 f"{'<=' if chosen == 'memory' else '>'} budget {budget / 2**30:.2f} GiB")
    log.info("%s: %d images held %s (%s)", name, count,
             "in memory" if chosen == "memory" else "in the memory-mapped store", why)
    return chosen


def split_dataset(store: ImageStore, rows: Tensor | Sequence[int] | slice, labels: tuple[Tensor, ...],
                  info: dict[str, Any]) -> StoredDataset:
    """The examples ``rows`` of ``store`` (``labels`` already in ``rows`` order) as a dataset that reads
    the map; :func:`genlab.data.load_dataset` then settles where it lives (:meth:`StoredDataset.settle`),
    after ``data.limit``, so only what is kept is ever held in memory."""
    if isinstance(rows, slice):
        rows = torch.arange(len(store))[rows]
    rows = torch.as_tensor(rows, dtype=torch.long)
    return StoredDataset(store, rows, labels, {**info, "image_shape": tuple(store.shape[1:])})


__all__ = ["ImageStore", "StoredDataset", "StoreWriter", "build_store", "choose_storage", "open_store",
           "split_dataset", "store_path", "STORAGE_MODES"]
