"""Face images with attributes: CelebA in its standard layout, and any image folder + CSV of labels.

CelebA (Liu, Luo, Wang, Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015) ships its
aligned faces as ``img_align_celeba/`` (a folder or a zip) and ``list_attr_celeba.txt``: a count
line, a line of 40 attribute names, then ``filename v1 .. v40`` with values -1/+1. The loader takes
the centred square crop of each face (for the 178x218 originals, the usual central 178x178) and
resizes it to ``config.image_size`` (default 64) with PIL bicubic.

Decoding 10,000+ JPEGs takes seconds, so the decoded, resized uint8 array goes into the
memory-mapped store of :mod:`genlab.data.store` under ``$GENLAB_CACHE`` (default ``~/.cache/genlab``),
checked against the source files (a zip's path, size and mtime; a folder's file list with every
file's size and mtime) and the output size: the second load maps one array. A miss decodes in
worker processes, one per CPU. The store lives outside the source tree on purpose: CelebA's
licence forbids redistributing the images or anything derived from them.

Both loaders return ``(x, labels)``: ``x`` float32 (N, C, H, W) in [0, 1], ``labels`` (N, K) with
``info["attr_names"]`` naming the K columns (CelebA: int64 in {0, 1}; CSV: float32 as written).
The split is deterministic: the last ``options.test_size`` images in file order are the test set
(default ``min(1000, N // 10)``), so train/test never depends on a seed. ``options.label=NAME`` makes
one column the class label instead (``labels`` (N,) int64, ``info["num_classes"]`` set), which is how
an attribute classifier is trained: ``genlab train classifier --data celeba:DIR --data.options.label=Male``.
"""
from __future__ import annotations

import csv
import logging
import zipfile
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..registry import register_dataset
from .base import ArrayDataset, DataConfig
from .imageio import (  # noqa: F401  (load_image_files, cache_dir, to_unit_float: re-exported)
    IMAGE_SUFFIXES, cache_dir, check_options, crop_resize, decode_chunks, file_fingerprint, listing_fingerprint,
    load_image_files, open_image, to_unit_float,
)
from .store import ImageStore, StoreWriter, build_store, split_dataset

log = logging.getLogger(__name__)

Split = Literal["train", "test"]
DEFAULT_FACE_SIZE = 64


# ----------------------------------------------------------------------------------------------
# Image sources: a folder or a zip, indexed by base file name.


class _ImageSource:
    """Image files of a folder (searched recursively) or a zip archive, by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{path}: not a readable zip archive ({exc})") from None
            members = [m for m in self._zip.namelist() if m.lower().endswith(IMAGE_SUFFIXES)]
            self.members = {m.rsplit("/", 1)[-1]: m for m in members}
        else:
            files = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            self.members = {p.name: str(p) for p in files}

    def fingerprint(self) -> dict[str, Any]:
        if self._zip is not None:
            return file_fingerprint(self.path)
        return listing_fingerprint(self.path, sorted(self.members.values()))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _decode_members(members: list[str], source: str, is_zip: bool, size: int | None, channels: int) -> np.ndarray:
    """One chunk of an image source -> uint8 (n, size, size, C); runs in a worker process."""
    archive = zipfile.ZipFile(source) if is_zip else None
    try:
        out: np.ndarray | None = None
        for i, member in enumerate(members):
            data: bytes | Path = archive.read(member) if archive is not None else Path(member)
            name = f"{source}:{member.rsplit('/', 1)[-1]}"
            array = crop_resize(open_image(data, name), size, channels)
            if out is None:
                out = np.empty((len(members), *array.shape), dtype=np.uint8)
            elif array.shape != out.shape[1:]:
                raise DataError(
                    f"{name} crops to {array.shape[1]}x{array.shape[0]}, earlier images to "
                    f"{out.shape[2]}x{out.shape[1]}; set data.image_size to resize them all"
                )
            out[i] = array
        assert out is not None
        return out
    finally:
        if archive is not None:
            archive.close()


def _decode_all(source: _ImageSource, names: Sequence[str], size: int | None, channels: int) -> Iterator[np.ndarray]:
    """Decoded uint8 (n, size, size, C) chunks of ``names`` in order, from worker processes."""
    members = [source.members[name] for name in names]
    yield from decode_chunks(_decode_members, members, str(source.path), source._zip is not None, size, channels)


def _stored(kind: str, source: _ImageSource, names: Sequence[str], size: int | None, channels: int,
            identity: dict[str, Any], fingerprint: dict[str, Any], label_names: list[str]) -> ImageStore:
    """The store of ``names`` decoded from ``source``: opened if current, else decoded into it."""

    def same_size(writer: StoreWriter, chunk: np.ndarray) -> None:
        if writer.image_shape is not None and chunk.shape[1:3] != writer.image_shape[:2]:
            raise DataError(f"{source.path}: images crop to {chunk.shape[2]}x{chunk.shape[1]} and to "
                            f"{writer.image_shape[1]}x{writer.image_shape[0]}; set data.image_size to resize them all")

    return build_store(kind, {**identity, "size": size, "channels": channels}, fingerprint, len(names),
                       lambda: _decode_all(source, names, size, channels), check=same_size,
                       extras={"labels": {"names": list(label_names), "from": "the label file in the fingerprint"}})


# ----------------------------------------------------------------------------------------------
# Splits and the dataset object.


def _split_index(n: int, split: Split, options: dict[str, Any], source: str) -> slice:
    test_size = int(options.get("test_size", min(1000, n // 10)))
    if not 1 <= test_size < n:
        raise DataError(f"{source}: test_size must be in 1..{n - 1} for {n} images, got {test_size}")
    return slice(n - test_size, n) if split == "test" else slice(0, n - test_size)


def _dataset(name: str, store: ImageStore, labels: Tensor, attr_names: list[str], filenames: list[str],
             split: Split, config: DataConfig, source: Path) -> ArrayDataset:
    part = _split_index(len(store), split, config.options, str(source))
    info = {
        "name": name, "image_shape": tuple(store.shape[1:]), "attr_names": list(attr_names),
        "num_attributes": len(attr_names), "filenames": filenames[part], "path": str(source), "num_classes": None,
    }
    y = labels[part]
    if "label" in config.options:  # one column as the class label, e.g. to train a classifier on "Smiling"
        column, num_classes = _label_column(labels, attr_names, str(config.options["label"]), source)
        y = labels[part, column].long()
        info.update(label=attr_names[column], num_classes=num_classes)
    dataset = split_dataset(store, part, (y,), info)
    log.info("loaded %d %s images %s with %d attributes from %s", len(dataset), split, tuple(store.shape[1:]),
             len(attr_names), source)
    return dataset


def _label_column(labels: Tensor, names: list[str], label: str, source: Path) -> tuple[int, int]:
    """The column named ``label`` and its number of classes; its values must be integers >= 0."""
    if label not in names:
        raise DataError(f"{source}: unknown label {label!r} (data.options.label); valid: {', '.join(names)}")
    column = names.index(label)
    values = labels[:, column]
    if bool((values < 0).any()) or bool((values != values.round()).any()):
        raise DataError(f"{source}: label {label!r} must hold class indices (integers >= 0)")
    return column, max(int(values.max()) + 1, 2)


# ----------------------------------------------------------------------------------------------
# CelebA.


def read_attribute_file(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """``list_attr_celeba.txt`` -> (attribute names, file names, int8 (N, K) array in {0, 1})."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read attribute file ({exc})") from None
    lines = [line for line in lines if line.strip()]
    if len(lines) < 2:
        raise DataError(f"{path}: attribute file needs a count line and a names line")
    names = lines[1].split()
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise DataError(f"{path}:{number}: expected a file name and {len(names)} values, got {len(parts)} fields")
        try:
            values = [int(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{path}:{number}: attribute values must be -1/1 (or 0/1)") from None
        if any(v not in (-1, 0, 1) for v in values):
            raise DataError(f"{path}:{number}: attribute values must be -1/1 (or 0/1)")
        files.append(parts[0])
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: attribute file lists no images")
    return names, files, (np.asarray(rows, dtype=np.int8) > 0).astype(np.int8)


def _find_celeba(path: Path, options: dict[str, Any]) -> tuple[Path, Path]:
    """(image folder or zip, attribute file) from a dataset folder, or from the images themselves."""
    if not path.exists():
        raise DataError(f"celeba path not found: {path}")
    attr_opt = options.get("attr_file")
    if path.is_file():
        images, folder = path, path.parent
    else:
        folder = path
        candidates = sorted(path.glob("img_align_celeba*.zip")) + sorted(
            p for p in path.glob("img_align_celeba*") if p.is_dir())
        if not candidates:
            candidates = sorted(path.glob("*.zip"))
        if not candidates:
            if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
                candidates = [path]
            else:
                raise DataError(f"{path}: no img_align_celeba folder or zip (nor any .zip or images) found")
        images = candidates[0]
    if attr_opt:
        attributes = Path(attr_opt)
    else:
        found = sorted(folder.glob("list_attr_celeba*.txt"))
        if not found:
            raise DataError(f"{folder}: no list_attr_celeba*.txt; set data.options.attr_file")
        attributes = found[0]
    if not attributes.is_file():
        raise DataError(f"celeba attribute file not found: {attributes}")
    return images, attributes


@register_dataset("celeba")
def load_celeba(config: DataConfig, split: Split) -> ArrayDataset:
    """CelebA at ``config.path`` (a folder holding ``img_align_celeba`` as folder or zip and
    ``list_attr_celeba*.txt``, or the zip/folder itself with ``options.attr_file``)."""
    if config.path is None:
        raise DataError("dataset 'celeba' needs its folder: --data celeba:/path/to/celeba")
    check_options(config, dict.fromkeys(("attr_file", "test_size", "label")))
    images_path, attr_path = _find_celeba(Path(config.path), config.options)
    size = config.image_size or DEFAULT_FACE_SIZE
    channels = config.channels or 3
    names, files, attributes = read_attribute_file(attr_path)
    source = _ImageSource(images_path)
    try:
        keep = [i for i, f in enumerate(files) if f in source.members]
        if not keep:
            raise DataError(f"none of the {len(files)} images listed in {attr_path} is in {images_path}")
        if len(keep) < len(files):
            log.warning("%s: %d of %d listed images are missing from %s; using the %d present",
                        attr_path, len(files) - len(keep), len(files), images_path, len(keep))
        files = [files[i] for i in keep]
        attributes = attributes[keep]
        fingerprint = {"images": source.fingerprint(), "attributes": file_fingerprint(attr_path)}
        store = _stored("celeba", source, files, size, channels, {"kind": "celeba", "images": str(images_path.resolve()),
                        "attributes": str(attr_path.resolve())}, fingerprint, names)
    finally:
        source.close()
    labels = torch.from_numpy(attributes.astype(np.int64))
    return _dataset("celeba", store, labels, names, files, split, config, images_path)


# ----------------------------------------------------------------------------------------------
# Any image folder + CSV of labels.


def read_label_csv(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """CSV with a header: the first column names the image file, every other column is a numeric
    label -> (label names, file names, float32 (N, K))."""
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    if len(rows) < 2 or len(rows[0]) < 2:
        raise DataError(f"{path}: need a header (file, label, ...) and at least one row")
    header = [h.strip() for h in rows[0]]
    files, values = [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: {len(row)} fields, header has {len(header)}")
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError:
            raise DataError(f"{path}:{number}: labels must be numbers, got {row[1:]}") from None
        files.append(row[0].strip())
    return header[1:], files, np.asarray(values, dtype=np.float32)


@register_dataset("labelled-folder")
def load_labelled_folder(config: DataConfig, split: Split) -> ArrayDataset:
    """Images under ``config.path`` (folder or zip) with labels from a CSV (``options.csv``, else
    the one ``*.csv`` in the folder). Rows follow the CSV's order."""
    if config.path is None:
        raise DataError("dataset 'labelled-folder' needs a folder: --data labelled-folder:/path/to/images")
    check_options(config, dict.fromkeys(("csv", "test_size", "label")))
    root = Path(config.path)
    if not root.exists():
        raise DataError(f"labelled-folder path not found: {root}")
    if "csv" in config.options:
        csv_path = Path(config.options["csv"])
    else:
        found = sorted((root if root.is_dir() else root.parent).glob("*.csv"))
        if len(found) != 1:
            raise DataError(f"{root}: expected exactly one .csv of labels, found {len(found)}; set data.options.csv")
        csv_path = found[0]
    if not csv_path.is_file():
        raise DataError(f"label CSV not found: {csv_path}")
    names, files, labels = read_label_csv(csv_path)
    source = _ImageSource(root)
    try:
        missing = [f for f in files if Path(f).name not in source.members]
        if missing:
            raise DataError(f"{csv_path} lists {len(missing)} image(s) not found under {root}, e.g. {missing[0]}")
        files = [Path(f).name for f in files]
        channels = config.channels or 3
        fingerprint = {"images": source.fingerprint(), "csv": file_fingerprint(csv_path)}
        store = _stored("labelled", source, files, config.image_size, channels,
                        {"kind": "labelled-folder", "images": str(root.resolve()), "csv": str(csv_path.resolve())}, fingerprint,
                        names)
    finally:
        source.close()
    return _dataset("labelled-folder", store, torch.from_numpy(labels), names, files, split, config, root)
