"""Datasets and a batch loader with no per-example Python work.

A dataset is a tuple of tensors and a batch is one fancy-index per tensor: no
``Dataset.__getitem__`` per example and no collate. Decoded images larger than memory stay in the
memory-mapped uint8 store of :mod:`genlab.data.store`, whose :class:`~genlab.data.store.StoredDataset`
keeps this contract (a batch is still one index, its rows read from the map), and
:func:`load_dataset` settles which of the two a split is (``data.storage``).
All randomness of the data pipeline (the shuffle, dynamic binarization) is a pure function of
``(seed, epoch, step)``, so a resumed run sees exactly the batches the uninterrupted run saw.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
from torch import Tensor

from ..config import Config, check
from ..errors import DataError

# A per-batch transform: (batch tensors, generator) -> batch tensors. Vectorised over the batch.
BatchTransform = Callable[[tuple[Tensor, ...], torch.Generator], tuple[Tensor, ...]]


@dataclasses.dataclass
class ArrayDataset:
    """``tensors[0]`` is the data (``x``); optional further tensors (labels, paired images) share
    its first dimension. ``info`` describes it for model configs (``image_shape``, ``num_classes``)."""

    tensors: tuple[Tensor, ...]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    transform: BatchTransform | None = None

    def __post_init__(self) -> None:
        if not self.tensors:
            raise DataError("a dataset needs at least one tensor")
        n = self.tensors[0].shape[0]
        if n == 0:
            raise DataError(f"dataset {self.info.get('name', '')!r} is empty")
        for t in self.tensors[1:]:
            if t.shape[0] != n:
                raise DataError(f"dataset tensors disagree on length: {[t.shape[0] for t in self.tensors]}")

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    @property
    def x(self) -> Tensor:
        return self.tensors[0]

    @property
    def y(self) -> Tensor | None:
        return self.tensors[1] if len(self.tensors) > 1 else None

    def batch(self, index: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        simple = index.dtype == torch.long and index.dim() == 1
        # index_select gathers the same rows as t[index], a few times faster
        out = tuple(t.index_select(0, index) if simple and t.device == index.device else t[index] for t in self.tensors)
        if self.transform is not None:
            if generator is None:
                generator = torch.Generator().manual_seed(0)
            out = self.transform(out, generator)
        return out

    def subset(self, index: Tensor | Sequence[int]) -> "ArrayDataset":
        index = torch.as_tensor(index, dtype=torch.long)
        return ArrayDataset(tuple(t[index] for t in self.tensors), dict(self.info), self.transform)

    def head(self, n: int) -> "ArrayDataset":
        return self.subset(torch.arange(min(n, len(self))))


def _mix(*values: int) -> int:
    """Deterministic 63-bit seed from integers (splitmix-style), independent of PYTHONHASHSEED."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h ^= (v + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


_PROGRESS: list[str] = []  # descriptions of the active batch_progress blocks


@contextlib.contextmanager
def batch_progress(description: str) -> Iterator[None]:
    """Within this block every :class:`BatchLoader` pass shows a progress bar (an evaluation that
    runs for a minute says how far it is); outside it loaders are silent."""
    _PROGRESS.append(description)
    try:
        yield
    finally:
        _PROGRESS.pop()


class BatchLoader:
    """Shuffled fixed-size batches over an :class:`ArrayDataset`.

    With ``world_size > 1`` each rank takes its contiguous share of every *global* batch, so the
    union over ranks of step ``s`` is exactly the single-process batch of step ``s`` (random batch
    transforms included: they run on the global batch).
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size % world_size:
            raise DataError(f"global batch_size {batch_size} is not divisible by world size {world_size}")
        if drop_last and len(dataset) < batch_size:
            raise DataError(f"dataset has {len(dataset)} examples, fewer than one batch of {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.device = torch.device(device)

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def order(self, epoch: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(len(self.dataset))
        g = torch.Generator().manual_seed(_mix(self.seed, epoch))
        return torch.randperm(len(self.dataset), generator=g)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        """Batches of ``epoch`` from batch index ``start`` on (for resuming mid-epoch)."""
        order = self.order(epoch)
        share = self.batch_size // self.world_size
        g = torch.Generator()
        steps: Iterator[int] = iter(range(start, self.steps_per_epoch))
        if _PROGRESS:
            from tqdm.auto import tqdm

            steps = tqdm(steps, total=self.steps_per_epoch - start, desc=_PROGRESS[-1], unit="batch", leave=False)
        for i in steps:
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            mine = slice(self.rank * share, (self.rank + 1) * share)
            g.manual_seed(_mix(self.seed, epoch, i, 1))
            if self.world_size == 1:
                batch = self.dataset.batch(index, g)
            elif self.dataset.transform is None:
                batch = self.dataset.batch(index[mine])
            else:  # a random transform (dynamic binarization) draws for the global batch: same noise per example as one process
                batch = tuple(t[mine] for t in self.dataset.batch(index, g))
            if self.device.type != "cpu":
                batch = tuple(t.to(self.device, non_blocking=True) for t in batch)
            yield batch

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        return self.epoch(0)


@dataclasses.dataclass
class DataConfig(Config):
    """Which data to train on. ``name`` is a registered dataset (``genlab.registry.DATASETS``);
    ``path`` points at files for loaders that read them (IDX folder, ``.npz``, image folder)."""

    name: str = "mnist-embedded"
    path: str | None = None
    binarize: Literal["none", "static", "dynamic"] = "none"
    threshold: float = 0.5  # static binarization: pixel > threshold
    image_size: int | None = None  # resize images to this square size
    channels: int | None = None  # force 1 (grey) or 3 (RGB)
    # keep the central fraction of each side (e.g. 0.72: MNIST's 20-px digit box of 28), then resize to
    # image_size (else back to the loaded size): digits of two datasets drawn at one scale
    crop: float | None = None
    limit: int | None = None  # keep only the first N training examples
    size: int | None = None  # number of examples for generated (toy) data
    seed: int = 0  # for generated data and data splits
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # loader-specific extras
    # where decoded images live while training (genlab.data.store): "memory" (float tensors), "mmap" (each
    # batch read from the memory-mapped uint8 store), "auto" (memory while it fits, logged). Same batches either way.
    storage: Literal["auto", "memory", "mmap"] = "auto"

    def validate(self) -> None:
        check(0.0 < self.threshold < 1.0, f"data.threshold must be in (0, 1), got {self.threshold}")
        check(self.image_size is None or self.image_size >= 4, f"data.image_size must be >= 4, got {self.image_size}")
        check(self.channels in (None, 1, 3), f"data.channels must be 1 or 3, got {self.channels}")
        check(self.crop is None or 0.0 < self.crop <= 1.0, f"data.crop must be in (0, 1], got {self.crop}")
        check(self.limit is None or self.limit >= 1, f"data.limit must be >= 1, got {self.limit}")
        check(self.size is None or self.size >= 1, f"data.size must be >= 1, got {self.size}")
        check(self.storage in ("auto", "memory", "mmap"), f"data.storage must be auto, memory or mmap, got {self.storage!r}")


# Binarization (wired into load_dataset, so it applies to every loader).

def dynamic_binarize(batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, ...]:
    """A fresh Bernoulli draw of the grey values: a batch transform for ``ArrayDataset.transform``.

    Drawn as ``u < p`` with ``u`` uniform on [0, 1), which is Bernoulli(p) exactly and, on a CPU with
    torch 2.13, the very bits ``torch.bernoulli`` draws from the same generator, only faster (0.21 vs
    0.34 ms for a 128-image MNIST batch at one thread; 0.95 ms on uniform grey values)."""
    x = batch[0]
    x = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).lt_(x)
    return (x, *batch[1:])


class _Chain:
    """Two batch transforms in sequence (a class, not a closure, so datasets stay picklable)."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def __call__(self, batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, ...]:
        return self.second(self.first(batch, generator), generator)


def binarize(dataset: ArrayDataset, mode: str, threshold: float = 0.5) -> ArrayDataset:
    """``"static"``: ``x > threshold`` once, now; ``"dynamic"``: Bernoulli(x) per drawn batch."""
    if mode == "none":
        return dataset
    if mode not in ("static", "dynamic"):
        raise DataError(f"unknown binarization {mode!r}; valid: none, static, dynamic")
    with_transform = getattr(dataset, "with_transform", None)
    if mode == "dynamic" and with_transform is not None:  # a memory-mapped store: uint8 / 255 lies in [0, 1]
        transform = dynamic_binarize if dataset.transform is None else _Chain(dataset.transform, dynamic_binarize)
        return with_transform(transform, {**dataset.info, "binarize": mode})
    x, name = dataset.x, dataset.info.get("name", "?")
    if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
        raise DataError(f"cannot binarize dataset {name!r}: it needs finite float values in [0, 1]")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"cannot binarize dataset {name!r}: its values lie in [{lo:.4g}, {hi:.4g}], not [0, 1] "
            "(binarization is for grey-level images)"
        )
    info = {**dataset.info, "binarize": mode}
    if mode == "static":
        tensors = ((x > threshold).to(x.dtype), *dataset.tensors[1:])
        return ArrayDataset(tensors, info, dataset.transform)
    transform = dynamic_binarize if dataset.transform is None else _Chain(dataset.transform, dynamic_binarize)
    return ArrayDataset(dataset.tensors, info, transform)


def load_dataset(config: DataConfig | str, split: Literal["train", "test"] = "train") -> ArrayDataset:
    """Load ``split`` of the dataset ``config`` names. A string is a dataset name or a path."""
    from ..registry import DATASETS

    if isinstance(config, str):
        config = data_config_from_spec(config)
    loader = DATASETS.get(config.name)
    cropped = config.crop is not None and config.crop < 1.0
    # a crop is taken from the images at their own size and resized once, to image_size
    dataset = loader(config.replace(image_size=None) if cropped else config, split)
    if split == "train" and config.limit is not None:
        dataset = dataset.head(config.limit)
    settle = getattr(dataset, "settle", None)  # images in the memory-mapped store: keep them mapped or read them in
    if settle is not None:
        dataset = settle(config.storage)
    dataset.info.setdefault("name", config.name)
    if cropped:  # a crop is made once, in memory
        dataset = centre_crop(getattr(dataset, "in_memory", lambda: dataset)(), config.crop, config.image_size)
    if config.binarize != "none":  # after the limit: static thresholding then touches only what is kept
        dataset = binarize(dataset, config.binarize, config.threshold)
    return dataset


def centre_crop(dataset: ArrayDataset, fraction: float, image_size: int | None = None) -> ArrayDataset:
    """Every image's central ``fraction`` of height and width, resized (antialiased bilinear) to a
    square ``image_size``, else back to the loaded size. An unpaired dataset crops both domains."""

    first = dataset.tensors[0]
    if first.dim() != 4:
        raise DataError(f"data.crop needs images (N, C, H, W); {dataset.info.get('name', '?')} has shape {tuple(first.shape)}")

    def crop(x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        size = (image_size, image_size) if image_size else (h, w)
        window = x[:, :, top:top + ch, left:left + cw]
        return torch.nn.functional.interpolate(window, size=size, mode="bilinear", antialias=True,
                                               align_corners=False).clamp_(0.0, 1.0).contiguous()

    def crop_images(tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:  # images, not labels
        return tuple(crop(t) if t.dim() == 4 else t for t in tensors)

    info = {**dataset.info, "crop": fraction}
    for key in ("image_shape", "input_shape", "image_shape_b"):  # a pair's input, an unpaired dataset's B
        if image_size and key in info:
            info[key] = (info[key][0], image_size, image_size)
    changes: dict[str, Any] = {"tensors": crop_images(dataset.tensors), "info": info}
    if getattr(dataset, "other", None):  # an unpaired dataset: domain B as well
        changes["other"] = crop_images(dataset.other)
    return dataclasses.replace(dataset, **changes)


def data_config_from_spec(spec: str, base: DataConfig | None = None) -> DataConfig:
    """``--data`` value -> DataConfig: a registered name (``mnist``), ``name:path``, or a path."""
    from ..registry import DATASETS

    import os
    from pathlib import Path

    base = base or DataConfig()
    if spec in DATASETS:
        return base.replace(name=spec)
    if ":" in spec and spec.split(":", 1)[0] in DATASETS:
        name, path = spec.split(":", 1)
        return base.replace(name=name, path=path)
    looks_like_a_name = not Path(spec).exists() and os.sep not in spec and "/" not in spec and not Path(spec).suffix
    if looks_like_a_name:  # a misspelt dataset name, not a path
        raise DataError(f"unknown dataset {spec!r} and no such file or folder; datasets: {', '.join(sorted(DATASETS))} "
                        "(or give a path, or NAME:PATH)")
    return base.replace(name="auto", path=spec)
