"""The one image input path: open, crop, resize, convert, decode in worker processes, fingerprint
sources, validate loader options.

Every loader that reads image files (``folder``, ``celeba``, ``labelled-folder``, ``paired``,
``unpaired``) and every command that reads a user's image (``genlab latent``, the explorer's
upload, ``translate``) goes through these functions, so a grey PNG, a 16-bit PNG or a corrupt JPEG
is handled the same way everywhere. Two resize rules exist on purpose and are named for what they
do: :func:`crop_resize` (centred square crop, bicubic; faces, a model's input) and
:func:`fit_image` (the whole image, antialiased bilinear; image folders and pairs).

Decoded arrays are uint8 ``(N, H, W, C)``; :func:`to_unit_float` is the one conversion to the
float32 ``(N, C, H, W)`` in [0, 1] that models see. Decoded datasets persist in the memory-mapped
store of :mod:`genlab.data.store`, keyed by the fingerprints computed here.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
PARALLEL_MIN_FILES = 1000  # fewer files decode in this process (starting workers costs more)
SERIAL_CHUNK = 1024  # images per chunk when decoding in this process


# ----------------------------------------------------------------------------------------------
# One image.


def open_image(source: str | Path | bytes, name: str | None = None) -> Any:
    """A decoded PIL image from a file or its bytes, or one DataError line naming the file. 16-bit
    grey is scaled to 8 bits (PIL's own ``convert("L")`` would clip it)."""
    from PIL import Image, UnidentifiedImageError

    name = name or str(source)
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: unreadable or corrupt image file ({exc})") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8))
    return image


def is_grey(image: Any) -> bool:
    return image.mode in GREY_MODES


def _hwc(image: Any) -> np.ndarray:
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array  # (H, W, C)


def crop_resize(image: Any, size: int | None, channels: int = 3) -> np.ndarray:
    """PIL image -> uint8 (size, size, C): the centred square crop, bicubic-resized to ``size``
    (``None`` keeps the cropped side)."""
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if size is not None and side != size:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return _hwc(image)


def fit_image(image: Any, size: int | None, grey: bool) -> np.ndarray:
    """PIL image -> uint8 (H, W, C): grey (C = 1) or RGB, the whole image resized to ``size``×``size``
    (bilinear, PIL's antialiasing filter, no reducing gap) when given."""
    from PIL import Image

    image = image.convert("L" if grey else "RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return _hwc(image)


# ----------------------------------------------------------------------------------------------
# Arrays.


def to_unit_float(images: np.ndarray | Tensor) -> Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]: the one conversion every loader uses."""
    if isinstance(images, np.ndarray):
        with warnings.catch_warnings():  # a read-only array (a PIL image's, a memory map) is only read here
            warnings.simplefilter("ignore", UserWarning)
            images = torch.from_numpy(np.ascontiguousarray(images))
    return images.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def images_to_tensor(images: Sequence[Any], channels: int | None, size: int | None) -> Tensor:
    """PIL images -> (N, C, H, W) float32 in [0, 1]: grey when ``channels`` is 1 (or None and every
    image is grey), else RGB; resized to ``size``×``size`` when given (else all must share one size)."""
    grey = channels == 1 or (channels is None and all(is_grey(im) for im in images))
    return to_unit_float(np.stack([fit_image(im, size, grey) for im in images]))


def load_image_files(paths: Sequence[str | Path], image_shape: Sequence[int]) -> Tensor:
    """Image files -> float32 (N, C, H, W) in [0, 1] matching a model's ``image_shape`` (centre
    square crop, then resize to H; H must equal W)."""
    c, h, w = image_shape
    if h != w:
        raise DataError(f"centre-crop loading needs square images, model wants {h}x{w}")
    arrays = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise DataError(f"image file not found: {path}")
        arrays.append(crop_resize(open_image(path), h, c))
    return to_unit_float(np.stack(arrays))


# ----------------------------------------------------------------------------------------------
# Many images: worker processes.


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def decode_chunks(decode_chunk: Callable[..., Any], items: Sequence[Any], *args: Any,
                  workers: int | None = None) -> Iterator[Any]:
    """``decode_chunk(chunk, *args)`` for consecutive chunks of ``items``, yielded in order as they
    finish, so a caller can write each to disk and hold one chunk at a time. With at least
    ``PARALLEL_MIN_FILES`` items and more than one CPU the chunks run in worker processes (image
    decoding is CPU-bound Python + C; threads would share one interpreter lock).
    ``decode_chunk`` must be a module-level function (it is sent to the workers by name)."""
    workers = cpu_count() if workers is None else workers
    if workers <= 1 or len(items) < PARALLEL_MIN_FILES:
        # chunks here too, so a caller streaming to disk never holds the whole array
        size = SERIAL_CHUNK
        for i in range(0, len(items), size):
            yield decode_chunk(list(items[i : i + size]), *args)
        return
    import collections
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # a few chunks per worker balance uneven files, at most 512 images per chunk; fork starts fast and
    # the workers touch no torch
    size = min(512, -(-len(items) // (4 * workers)))
    chunks = iter([list(items[i : i + size]) for i in range(0, len(items), size)])
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        # a window of 2 chunks per worker in flight: decoded chunks never pile up in this process
        # faster than the caller consumes them (Executor.map would submit them all at once)
        pending = collections.deque(pool.submit(decode_chunk, c, *args) for c in itertools.islice(chunks, 2 * workers))
        try:
            while pending:
                result = pending.popleft().result()
                following = next(chunks, None)
                if following is not None:
                    pending.append(pool.submit(decode_chunk, following, *args))
                yield result
        finally:
            for future in pending:
                future.cancel()


def decode_in_workers(decode_chunk: Callable[..., Any], items: Sequence[Any], *args: Any,
                      workers: int | None = None) -> list[Any]:
    """All of :func:`decode_chunks`, as a list."""
    return list(decode_chunks(decode_chunk, items, *args, workers=workers))


# ----------------------------------------------------------------------------------------------
# Source identity (the store's key).


def file_fingerprint(path: Path) -> dict[str, Any]:
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "bytes": stat.st_size, "mtime": stat.st_mtime_ns}


def listing_fingerprint(root: Path, files: Sequence[str | Path]) -> dict[str, Any]:
    """A folder's identity: every file's path (relative to ``root``), size and mtime, hashed, so
    adding, removing, renaming, rewriting or touching any file changes it."""
    digest = hashlib.sha256()
    prefix = os.path.join(str(root), "")
    for file in map(str, files):
        stat = os.stat(file)
        # slicing the common prefix off is ~10x faster than os.path.relpath on 70k files
        name = file[len(prefix):] if file.startswith(prefix) else os.path.relpath(file, root)
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return {"path": str(Path(root).resolve()), "files": len(files), "listing": digest.hexdigest()}


# ----------------------------------------------------------------------------------------------
# Where decoded images are kept (genlab.data.store).


def cache_dir() -> Path:
    """``$GENLAB_CACHE``, else ``~/.cache/genlab``. Outside the source tree on purpose: CelebA's
    licence forbids redistributing the images or anything derived from them."""
    env = os.environ.get("GENLAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "genlab"


# ----------------------------------------------------------------------------------------------
# Loader options.


def check_options(config: Any, allowed: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """``config.options`` over the defaults in ``allowed``; an unknown key or a missing ``required``
    one is one DataError line naming the dataset and the valid keys."""
    unknown = sorted(set(config.options) - set(allowed))
    if unknown:
        raise DataError(f"unknown data.options {', '.join(unknown)} for {config.name!r}; "
                        f"valid: {', '.join(sorted(allowed)) or 'none'}")
    for key in required:
        if config.options.get(key) in (None, ""):
            raise DataError(f"dataset {config.name!r} needs data.options.{key}")
    return {**allowed, **config.options}
