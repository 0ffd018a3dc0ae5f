"""Paired image-to-image datasets for pix2pix: ``(a, b)`` = (input, target), both float32 in [0, 1]
shaped ``(N, C, H, W)``; ``info["input_shape"]`` is ``a``'s shape and ``info["image_shape"]`` ``b``'s.

* ``paired``: files in a folder or a ``.zip``, in either standard layout —
  *aligned* (pix2pix's ``combine_A_and_B``: A and B side by side in one image, in ``train/`` and
  ``test/`` or loose) or *two folders* with matching file stems (``trainA/ trainB/ testA/ testB/``,
  ``A/{train,test}/ B/{train,test}/``, or ``A/ B/``). Loose files are split 90/10 by ``data.seed``.
  ``data.options.direction`` is ``AtoB`` (default) or ``BtoA``.
* ``facades``: the CMP facades zip (Tyleček & Šára, GCPR 2013), labels -> photo (B->A) by default,
  64 px unless ``data.image_size`` says otherwise. Read from the zip; nothing is extracted.
* ``edges2digits``: the outline of an MNIST digit -> the digit (an edges2shoes in miniature).
* ``colorize``: a grey digit -> the same digit in a random fully saturated hue. One input has many
  right answers, so an L1-only model predicts their mean, a grey; an adversarial loss picks a hue
  (Isola et al., CVPR 2017, Sec. 4.2 and Fig. 7).

The digit tasks are built from any registered MNIST-like loader (``data.options.source``,
``mnist-embedded`` by default) and padded from 28 to 32 px (or resized to ``data.image_size``).
"""
from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from ..registry import register_dataset
from .base import ArrayDataset, DataConfig, _mix, load_dataset
from .images import Split, adapt_images, split_indices
from .imageio import IMAGE_SUFFIXES, check_options, images_to_tensor, open_image  # noqa: F401  (images_to_tensor: re-exported)

log = logging.getLogger(__name__)

DIRECTIONS = ("AtoB", "BtoA")
_LAYOUT_NAMES = {"train", "test", "val", "a", "b", "traina", "trainb", "testa", "testb"}


# ----------------------------------------------------------------------------------------------
# Files in a folder or a zip, by relative POSIX path.


class _ImageFiles:
    """The image files under a folder or inside a zip archive (read in place, never extracted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise DataError(f"{path}: expected a folder of images or a .zip of them")
            self._zip = zipfile.ZipFile(path)
            names = [n for n in self._zip.namelist() if not n.endswith("/") and "__MACOSX" not in n]
        elif path.is_dir():
            names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            raise DataError(f"paired data not found: {path}")
        self.names = sorted((n for n in names if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES), key=_natural)
        if not self.names:
            raise DataError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def open(self, name: str) -> Any:
        where = f"{self.path}/{name}"
        if self._zip is None:
            return open_image(self.path / name, where)
        try:
            data = self._zip.read(name)
        except (KeyError, OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{where}: unreadable or corrupt image file ({exc})") from None
        return open_image(data, where)


def _natural(name: str) -> list[Any]:
    """Sort key that puts ``2.jpg`` before ``10.jpg``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _under(names: list[str], *folders: str) -> list[str]:
    """Full names of the files under ``folders[0]/folders[1]/...`` (case-insensitive)."""
    prefix = "".join(f.lower() + "/" for f in folders)
    return [n for n in names if n.lower().startswith(prefix)]


def _strip_common_root(names: list[str]) -> tuple[list[str], str]:
    """``facades/trainA/1.jpg`` -> ``trainA/1.jpg`` while every file sits in one non-layout folder."""
    root = ""
    while names and all("/" in n for n in names):
        top = {n.split("/", 1)[0] for n in names}
        if len(top) != 1 or next(iter(top)).lower() in _LAYOUT_NAMES:
            break
        (first,) = top
        root += first + "/"
        names = [n.split("/", 1)[1] for n in names]
    return names, root


# ----------------------------------------------------------------------------------------------
# Layouts -> lists of (a_name, b_name) or aligned names.


def _pair_by_stem(a_names: list[str], b_names: list[str], depth: int, where: str) -> list[tuple[str, str]]:
    """Match A and B files whose paths, below their first ``depth`` folders, agree up to the suffix."""

    def by_stem(names: list[str], side: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for n in names:
            stem = str(PurePosixPath(*PurePosixPath(n).parts[depth:]).with_suffix(""))
            if stem in out:
                raise DataError(f"{where}: two {side} files share the name {stem!r} ({out[stem]}, {n})")
            out[stem] = n
        return out

    a, b = by_stem(a_names, "A"), by_stem(b_names, "B")
    missing_b, missing_a = sorted(set(a) - set(b), key=_natural), sorted(set(b) - set(a), key=_natural)
    if missing_a or missing_b:
        side, names = ("B", missing_b) if missing_b else ("A", missing_a)
        raise DataError(f"{where}: missing pair: {len(names)} file(s) have no {side} partner, e.g. {names[0]!r}")
    return [(a[s], b[s]) for s in sorted(a, key=_natural)]


def _find_layout(names: list[str], split: Split, seed: int, where: str) -> tuple[str, list[Any]]:
    """("two", [(a, b), ...]) or ("aligned", [name, ...]) for ``split``, from the folder names."""
    tops = {n.split("/", 1)[0].lower() for n in names if "/" in n}

    def select(items: list[Any]) -> list[Any]:  # loose files: a seeded 90/10 split
        index = split_indices(len(items), seed, split, where)
        return [items[i] for i in sorted(index.tolist())]

    if {f"{split}a", f"{split}b"} <= tops:  # trainA/ trainB/ testA/ testB/
        return "two", _pair_by_stem(_under(names, f"{split}A"), _under(names, f"{split}B"), 1, where)
    if {"a", "b"} <= tops:
        a_split, b_split = _under(names, "A", split), _under(names, "B", split)
        if a_split or b_split:  # A/train/ B/train/
            return "two", _pair_by_stem(a_split, b_split, 2, where)
        return "two", select(_pair_by_stem(_under(names, "A"), _under(names, "B"), 1, where))
    if split in tops:  # aligned: train/ test/
        return "aligned", _under(names, split)
    if {"traina", "testa", "train", "test"} & tops:
        raise DataError(f"{where}: no {split!r} data (found folders {', '.join(sorted(tops))})")
    return "aligned", select(names)


def _check_sizes(sizes: list[tuple[int, int]], names: list[str], image_size: int | None, where: str) -> None:
    if image_size is None and len(set(sizes)) > 1:
        other = next(i for i, s in enumerate(sizes) if s != sizes[0])
        raise DataError(
            f"{where}: size mismatch between pairs ({names[0]} is {sizes[0][0]}x{sizes[0][1]}, {names[other]} is "
            f"{sizes[other][0]}x{sizes[other][1]}); set data.image_size to resize them all"
        )


def _read_pairs(files: _ImageFiles, split: Split, image_size: int | None, channels: int | None,
                seed: int) -> tuple[Tensor, Tensor, str, int]:
    names, root = _strip_common_root(files.names)
    where = str(files.path)
    kind, items = _find_layout(names, split, seed, where)
    if not items:
        raise DataError(f"{where}: no {split!r} images")
    if kind == "two":
        a_images, b_images = [], []
        for a_name, b_name in items:
            a, b = files.open(root + a_name), files.open(root + b_name)
            if a.size != b.size:
                raise DataError(f"{where}: size mismatch in pair {a_name!r}/{b_name!r}: A is {a.size[0]}x{a.size[1]}, "
                                f"B is {b.size[0]}x{b.size[1]}")
            a_images.append(a)
            b_images.append(b)
        _check_sizes([im.size for im in a_images], [n for n, _ in items], image_size, where)
    else:
        a_images, b_images = [], []
        for name in items:
            im = files.open(root + name)
            width, height = im.size
            if width % 2:
                raise DataError(f"{where}/{name}: aligned A|B image has odd width {width}; expected two halves side by side")
            a_images.append(im.crop((0, 0, width // 2, height)))
            b_images.append(im.crop((width // 2, 0, width, height)))
        _check_sizes([im.size for im in a_images], items, image_size, where)
    a_tensor, b_tensor = images_to_tensor(a_images, channels, image_size), images_to_tensor(b_images, channels, image_size)
    return a_tensor, b_tensor, kind, len(items)


def read_paired(path: str | Path, split: Split, *, direction: str = "AtoB", image_size: int | None = None,
                channels: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Read ``split`` of a paired folder or zip as (input, target) tensors; see the module doc."""
    if direction not in DIRECTIONS:
        raise DataError(f"data.options.direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    files = _ImageFiles(Path(path))
    try:
        a_tensor, b_tensor, kind, count = _read_pairs(files, split, image_size, channels, seed)
    finally:
        files.close()
    log.info("read %d %s pairs (%s) from %s", count, split, kind, files.path)
    return (a_tensor, b_tensor) if direction == "AtoB" else (b_tensor, a_tensor)


def paired_dataset(a: Tensor, b: Tensor, name: str, **info: Any) -> ArrayDataset:
    return ArrayDataset((a, b), {"name": name, "image_shape": tuple(b.shape[1:]), "input_shape": tuple(a.shape[1:]),
                                 "num_classes": None, **info})


@register_dataset("paired")
def load_paired(config: DataConfig, split: Split) -> ArrayDataset:
    """Aligned A|B images or two folders with matching names, from ``config.path`` (folder or zip)."""
    if config.path is None:
        raise DataError("dataset 'paired' needs a folder or zip: --data paired:/path/to/pairs")
    opts = check_options(config, {"direction": "AtoB"})
    a, b = read_paired(config.path, split, direction=opts["direction"], image_size=config.image_size,
                       channels=config.channels, seed=config.seed)
    return paired_dataset(a, b, "paired", path=str(config.path), direction=opts["direction"])


def _facades_path(config: DataConfig) -> Path:
    """``config.path`` (the zip, or a folder holding it or the extracted files), else
    ``$GENLAB_DATA/facades``, else ``./data/facades``."""
    env = os.environ.get("GENLAB_DATA")
    candidates = [Path(config.path)] if config.path else ([Path(env) / "facades"] if env else []) + [Path("data/facades")]
    for path in candidates:
        if path.is_dir():
            zips = sorted(path.glob("*.zip"))
            return zips[0] if len(zips) == 1 else path
        if path.is_file():
            return path
    raise DataError(
        f"facades data not found; looked in {', '.join(map(str, candidates))}"
        + ("" if env or config.path else " (GENLAB_DATA is unset)")
        + ". Use --data facades:/path/to/facades_256_AB_jpg.zip"
    )


@register_dataset("facades")
def load_facades(config: DataConfig, split: Split) -> ArrayDataset:
    """CMP facades (400 train / 106 test pairs), labels -> photo by default, resized to 64 px."""
    opts = check_options(config, {"direction": "BtoA"})
    path = _facades_path(config)
    a, b = read_paired(path, split, direction=opts["direction"], image_size=config.image_size or 64,
                       channels=config.channels, seed=config.seed)
    return paired_dataset(a, b, "facades", path=str(path), direction=opts["direction"])


# ----------------------------------------------------------------------------------------------
# Tasks made from MNIST digits.


def _digits(config: DataConfig, split: Split, extra: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
    """Digits of ``options.source`` as (N, 1, S, S) in [0, 1]: 28 px padded to 32, then resized."""
    opts = check_options(config, {"source": "mnist-embedded", **extra})
    base = load_dataset(DataConfig(name=opts["source"], path=config.path, seed=config.seed), split)
    x = adapt_images(base.x, channels=1)
    if tuple(x.shape[2:]) == (28, 28):
        x = F.pad(x, (2, 2, 2, 2))  # (N, 1, 32, 32): a power of two, the digit still centred
    return adapt_images(x, image_size=config.image_size or 32), opts


def digit_outlines(x: Tensor, threshold: float = 0.5) -> Tensor:
    """The one-pixel ring just outside each stroke: dilate(ink) - ink, ink = x > threshold."""
    ink = (x > threshold).float()
    dilated = F.max_pool2d(ink, 3, stride=1, padding=1)
    return dilated - ink


def hue_to_rgb(hue: Tensor) -> Tensor:
    """Hues in [0, 1) -> fully saturated, full-value RGB colours, shape (*hue.shape, 3)."""
    h = hue.unsqueeze(-1) * 6
    offsets = hue.new_tensor([3.0, 2.0, 4.0])
    signs = hue.new_tensor([1.0, -1.0, -1.0])
    base = hue.new_tensor([-1.0, 2.0, 2.0])
    return (base + signs * (h - offsets).abs()).clamp(0, 1)


@register_dataset("edges2digits")
def load_edges2digits(config: DataConfig, split: Split) -> ArrayDataset:
    """Outline of an MNIST digit -> the digit (both grey, 32 px by default)."""
    x, opts = _digits(config, split, {"threshold": 0.5})
    return paired_dataset(digit_outlines(x, float(opts["threshold"])), x, "edges2digits", source=opts["source"])


@register_dataset("colorize")
def load_colorize(config: DataConfig, split: Split) -> ArrayDataset:
    """Grey digit -> the digit in a random hue (uniform on the colour wheel, fixed per example)."""
    x, opts = _digits(config, split, {})
    g = torch.Generator().manual_seed(_mix(config.seed, 0 if split == "train" else 1, 0xC0102))
    hue = torch.rand(x.shape[0], generator=g)
    colour = hue_to_rgb(hue)[:, :, None, None]  # (N, 3, 1, 1)
    return paired_dataset(x, x * colour, "colorize", source=opts["source"])

