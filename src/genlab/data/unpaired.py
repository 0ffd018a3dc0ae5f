"""Unpaired image datasets for CycleGAN: two independent domains A and B of any sizes.

An :class:`UnpairedDataset` holds domain A as its ``tensors`` (``(x_a[, y_a])``) and domain B as
``other`` (``(x_b[, y_b])``). A batch is ``(a, b)``: ``a`` follows the loader's shuffled order of A
(an epoch is one pass over A) and ``b`` is drawn uniformly, with replacement, from all of B with the
loader's per-step generator — seeded by ``(seed, epoch, step)``, and by the first A index of the
batch so that ranks of a multi-process run draw differently — so no ``a`` is tied to any ``b``
across epochs, yet a resumed run sees exactly the batches the uninterrupted one saw. Labels, where a
domain has them, stay beside the images for evaluation (content preservation); batches never carry them.

Sources (float32 in [0, 1], ``(N, C, S, S)``):

* ``unpaired``: a folder with ``trainA/ trainB/`` (and ``testA/ testB/``, else each domain is split
  90/10 by ``data.seed``), the common CycleGAN layout. Every image is resized to ``data.image_size``,
  else to the size of the first ``trainA`` image; each domain is grey or RGB as its first image is,
  unless ``data.channels`` sets both.
* ``domains``: any two genlab datasets, ``data.options.a`` and ``data.options.b`` in ``--data``
  syntax (``mnist:../data/mnist``, ``npz:../data/usps/usps.npz``). The stated rule that matches them:
  both are resized (antialiased bilinear) to ``data.image_size``, else to the smallest power of two
  at or above the larger of the two sizes (MNIST 28 px and USPS 16 px -> 32 px); channels are
  ``data.channels`` for both if set, else each domain keeps its own (a grey A and an RGB B give a
  grey↔RGB CycleGAN, whose identity loss is then off). ``data.options.crop_a`` / ``crop_b`` keep a
  domain's central fraction first (``crop_a=0.72``: MNIST's 20-px digit box, so its digits fill the
  frame as USPS's do; the same crop as ``--data.crop=0.72`` on MNIST alone, for its classifier).
* ``celeba-attribute``: CelebA (``data.path`` as for ``celeba``) split by one attribute,
  ``data.options.attribute`` (e.g. ``Eyeglasses``): A = the faces without it, B = those with it
  (labels 0 and 1), 64 px unless ``data.image_size`` says otherwise.
* ``facades-unpaired``: the CMP facades pairs used *unpaired*: A = label maps, B = photos. In the
  training split the photos are shuffled against the label maps by ``data.seed`` and drawn
  independently anyway: the pairing is thrown away, and ``info["pairing"]`` says so. The test split
  keeps its pairs (``info["paired"] = True``) so translations can be scored against the true photo
  and labels, exactly as pix2pix's are.

Bad input is one :class:`~genlab.errors.DataError` line: an empty domain, a missing option, an
unknown attribute, domains whose images cannot be matched.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError
from ..registry import register_dataset
from .base import ArrayDataset, DataConfig, _mix, centre_crop, data_config_from_spec, load_dataset
from .images import Split, adapt_images, read_images, split_indices
from .imageio import IMAGE_SUFFIXES, check_options, is_grey, open_image

log = logging.getLogger(__name__)


@dataclasses.dataclass
class UnpairedDataset(ArrayDataset):
    """Domain A in ``tensors`` (``(x_a[, y_a])``), domain B in ``other`` (``(x_b[, y_b])``)."""

    other: tuple[Tensor, ...] = ()

    def __post_init__(self) -> None:
        name = self.info.get("name", "unpaired")
        for label, part in (("A", self.tensors), ("B", self.other)):
            if not part or part[0].shape[0] == 0:
                raise DataError(f"{name}: domain {label} is empty")
            if any(t.shape[0] != part[0].shape[0] for t in part[1:]):
                raise DataError(f"{name}: domain {label}'s images and labels disagree on length")
        super().__post_init__()

    @property
    def domain_a(self) -> tuple[Tensor, Tensor | None]:
        return self.tensors[0], self.tensors[1] if len(self.tensors) > 1 else None

    @property
    def domain_b(self) -> tuple[Tensor, Tensor | None]:
        return self.other[0], self.other[1] if len(self.other) > 1 else None

    def batch(self, index: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """``(a, b)``: A at ``index``, B drawn from ``generator`` (the loader's per-step one)."""
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        # the step's generator is the same on every rank; mixing in this share's first A index gives
        # each rank of a multi-process run its own B draws (one process: still a function of the step)
        step_seed = int(torch.randint(2**62, (1,), generator=generator))
        own = torch.Generator().manual_seed(_mix(step_seed, int(index[0]) if len(index) else 0))
        drawn = torch.randint(self.other[0].shape[0], (len(index),), generator=own)
        return self.tensors[0][index], self.other[0][drawn]

    def subset(self, index: Tensor | Any) -> "UnpairedDataset":
        """These examples of A; all of B."""
        index = torch.as_tensor(index, dtype=torch.long)
        return dataclasses.replace(self, tensors=tuple(t[index] for t in self.tensors), info=dict(self.info))

    def head(self, n: int) -> "UnpairedDataset":
        """The first ``n`` examples of each domain."""
        return dataclasses.replace(self, tensors=tuple(t[:n] for t in self.tensors),
                                   other=tuple(t[:n] for t in self.other), info=dict(self.info))


def unpaired_dataset(a: Tensor, b: Tensor, name: str, *, labels_a: Tensor | None = None,
                     labels_b: Tensor | None = None, **info: Any) -> UnpairedDataset:
    """Wrap two domains; they must share one square size (channels may differ)."""
    for label, x in (("A", a), ("B", b)):
        if x.shape[0] == 0:
            raise DataError(f"{name}: domain {label} is empty")
    if tuple(a.shape[2:]) != tuple(b.shape[2:]):
        raise DataError(f"{name}: domains A {tuple(a.shape[1:])} and B {tuple(b.shape[1:])} differ in size; set data.image_size")
    tensors = (a,) if labels_a is None else (a, labels_a)
    other = (b,) if labels_b is None else (b, labels_b)
    info = {"name": name, "image_shape": tuple(a.shape[1:]), "image_shape_b": tuple(b.shape[1:]), "num_classes": None,
            "domain_sizes": [a.shape[0], b.shape[0]], **info}
    return UnpairedDataset(tensors, info, other=other)


# ----------------------------------------------------------------------------------------------
# trainA/ trainB/ folders.


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively), sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _domain_files(root: Path, domain: str, split: Split, seed: int) -> list[Path]:
    train, test = root / f"train{domain}", root / f"test{domain}"
    if not train.is_dir():
        raise DataError(f"{root}: no train{domain}/ folder (expected trainA/ and trainB/, optionally testA/ and testB/)")
    if test.is_dir():
        files = image_files(train if split == "train" else test)
    else:
        everything = image_files(train)
        if len(everything) < 2:
            raise DataError(f"{train}: domain {domain} needs at least 2 images to split (or a test{domain}/ folder)")
        files = [everything[i] for i in split_indices(len(everything), seed, split, str(train)).tolist()]
    if not files:
        raise DataError(f"{root}: domain {domain} is empty ({split} split: no {', '.join(IMAGE_SUFFIXES)} files)")
    return files


@register_dataset("unpaired")
def load_unpaired_folder(config: DataConfig, split: Split) -> UnpairedDataset:
    """``trainA/ trainB/ [testA/ testB/]`` under ``config.path``; see the module doc for sizes and channels."""
    if config.path is None:
        raise DataError("dataset 'unpaired' needs a folder with trainA/ and trainB/: --data unpaired:/path/to/folder")
    root = Path(config.path)
    if not root.is_dir():
        raise DataError(f"unpaired folder not found: {root}")
    check_options(config, {})
    files = {d: _domain_files(root, d, split, config.seed) for d in "AB"}
    first_train = _domain_files(root, "A", "train", config.seed)[0]
    size = config.image_size or open_image(first_train).size[0]
    tensors = {}
    for d in "AB":
        channels = config.channels or (1 if is_grey(open_image(files[d][0])) else 3)
        tensors[d] = read_images(files[d], channels=channels, image_size=size)
    log.info("read %d A and %d B %s images (%d px) from %s", len(files["A"]), len(files["B"]), split, size, root)
    return unpaired_dataset(tensors["A"], tensors["B"], "unpaired", path=str(root))


# ----------------------------------------------------------------------------------------------
# Any two genlab datasets.


def matched_size(*sizes: int) -> int:
    """The default common size: the smallest power of two >= the largest of ``sizes``."""
    return 2 ** math.ceil(math.log2(max(sizes)))


@register_dataset("domains")
def load_domains(config: DataConfig, split: Split) -> UnpairedDataset:
    """Domain A = the dataset ``options.a`` names, B = ``options.b`` (``--data`` syntax), matched by the module doc's rule."""
    opts = check_options(config, {"a": None, "b": None, "crop_a": None, "crop_b": None}, required=("a", "b"))
    parts = {}
    for key in ("a", "b"):
        sub = data_config_from_spec(str(opts[key]), DataConfig(seed=config.seed))
        if sub.name == "domains":
            raise DataError("data.options.a and .b must name ordinary datasets, not 'domains'")
        parts[key] = load_dataset(sub, split)
        if isinstance(parts[key], UnpairedDataset):
            raise DataError(f"data.options.{key}={opts[key]!r} is itself unpaired; name a single-domain dataset")
    xa, xb = parts["a"].x, parts["b"].x
    size = config.image_size or matched_size(xa.shape[2], xa.shape[3], xb.shape[2], xb.shape[3])
    for key in ("a", "b"):  # a domain's central crop, resized once to the matched size
        if opts[f"crop_{key}"] is not None:
            fraction = float(opts[f"crop_{key}"])
            if not 0.0 < fraction <= 1.0:
                raise DataError(f"data.options.crop_{key} must be in (0, 1], got {opts[f'crop_{key}']}")
            parts[key] = centre_crop(parts[key], fraction, size)
    xa, xb = parts["a"].x, parts["b"].x
    xa = adapt_images(xa, image_size=size, channels=config.channels)
    xb = adapt_images(xb, image_size=size, channels=config.channels)
    log.info("domains %s (%d) and %s (%d), %s split, at %d px", opts["a"], len(xa), opts["b"], len(xb), split, size)
    return unpaired_dataset(xa, xb, "domains", labels_a=parts["a"].y, labels_b=parts["b"].y,
                            domains=[str(opts["a"]), str(opts["b"])],
                            class_names=parts["a"].info.get("class_names"))


# ----------------------------------------------------------------------------------------------
# CelebA attribute: A = without, B = with.


@register_dataset("celeba-attribute")
def load_celeba_attribute(config: DataConfig, split: Split) -> UnpairedDataset:
    """CelebA faces without (A) and with (B) ``options.attribute``; ``options.test_size`` as for ``celeba``."""
    opts = check_options(config, {"attribute": None, "test_size": None, "attr_file": None}, required=("attribute",))
    passed = {k: opts[k] for k in ("test_size", "attr_file") if opts[k] is not None}
    faces = load_dataset(DataConfig(name="celeba", path=config.path, image_size=config.image_size,
                                    channels=config.channels, seed=config.seed, options=passed), split)
    names = faces.info["attr_names"]
    attribute = str(opts["attribute"])
    if attribute not in names:
        raise DataError(f"unknown CelebA attribute {attribute!r} (data.options.attribute); valid: {', '.join(names)}")
    has = faces.y[:, names.index(attribute)] > 0  # (N,)
    a, b = faces.x[~has], faces.x[has]
    for label, x, what in (("A", a, "without"), ("B", b, "with")):
        if x.shape[0] == 0:
            raise DataError(f"celeba-attribute: domain {label} ({what} {attribute}) is empty in the {split} split")
    log.info("celeba %s: %d faces without %s (A), %d with (B)", split, len(a), attribute, len(b))
    return unpaired_dataset(a, b, "celeba-attribute", labels_a=torch.zeros(len(a), dtype=torch.long),
                            labels_b=torch.ones(len(b), dtype=torch.long), attribute=attribute,
                            path=faces.info.get("path"))


# ----------------------------------------------------------------------------------------------
# Facades, pairing thrown away.


@register_dataset("facades-unpaired")
def load_facades_unpaired(config: DataConfig, split: Split) -> UnpairedDataset:
    """Facades label maps (A) and photos (B); training pairs discarded, test pairs kept for scoring."""
    check_options(config, {})
    pairs = load_dataset(DataConfig(name="facades", path=config.path, image_size=config.image_size,
                                    channels=config.channels, seed=config.seed), split)
    labels_map, photos = pairs.tensors[0], pairs.tensors[1]  # facades' default direction: labels -> photo
    if split == "train":
        g = torch.Generator().manual_seed(_mix(config.seed, 11))
        photos = photos[torch.randperm(len(photos), generator=g)]
        return unpaired_dataset(labels_map, photos, "facades-unpaired", path=pairs.info.get("path"),
                                pairing="discarded: photos shuffled against the label maps, each drawn independently")
    return unpaired_dataset(labels_map, photos, "facades-unpaired", path=pairs.info.get("path"), paired=True,
                            pairing="test split kept paired, only to score translations against the true image")
