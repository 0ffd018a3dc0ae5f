"""Two independent rulers for face images, and the degradation ladder that validates them.

A sample-quality number is only as good as the feature space it is measured in. genlab measures
faces in the features of two networks trained by shipped recipes, each cached under a fingerprint
of its recipe and its training data (a changed recipe trains afresh; an unchanged one is loaded):

* ``attributes``: a small ResNet (:mod:`genlab.models.attributes`) trained on all 40 CelebA
  attributes at once with binary cross-entropy; seed 0.
* ``ssl``: a plain strided conv net (:mod:`genlab.models.contrastive`) trained self-supervised
  with SimCLR's contrastive loss on augmented views, labels unused; seed 1.

They differ in objective, architecture and seed, so a result counts only where both agree. Neither
is a training loss anywhere in genlab (``tests/test_rulers.py`` walks the imports to keep it so): a
ruler a generator was optimised against would be gamed, not read.

Splits of the CelebA subset (:func:`face_splits`, in file order, so they never depend on a seed):
the last ``reference_size`` images (1,000: exactly the ``test`` split every genlab face benchmark
holds out of generator training) are the **reference** set of every metric; the ``heldout_size``
images before them (1,000) are real faces that neither ruler saw, the **floor** (two disjoint real
splits); the rest (8,000) train the rulers. Neither the reference nor the floor split is ever seen
by a ruler.

:func:`face_scores` measures images against the reference in each ruler's features: Fréchet
distance, KID (unbiased, mean and std over subsets), precision/recall and density/coverage
(:mod:`genlab.metrics`). :func:`degradation_ladder` builds blurred, noisy, JPEG-compressed,
attribute-dropped and blur-mixed versions of the floor split, and :func:`run_ladder` checks that
each ruler's distances rise monotonically along every rung.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DataError
from ..registry import Registry, register_feature_extractor
from .features import FeatureExtractor
from .fid import fid_from_features
from .kid import kid_from_features
from .precision_recall import density_coverage, precision_recall

log = logging.getLogger(__name__)

# -------------------------------------------------------------------------------------------- recipes


@dataclasses.dataclass(frozen=True)
class RulerRecipe:
    """How a ruler is trained: model family + config, TrainConfig fields, seed."""

    name: str
    model: str
    config: dict[str, Any]
    train: dict[str, Any]
    seed: int


RecipeFactory = Callable[..., RulerRecipe]
RULER_RECIPES: Registry[RecipeFactory] = Registry("ruler")
register_ruler = RULER_RECIPES.register
DEFAULT_RULERS: tuple[str, ...] = ("attributes", "ssl")
# Part of every fingerprint: bump it when the networks or objectives of models/attributes.py or
# models/contrastive.py change, so that no cached ruler outlives the code that trained it.
RULER_CODE_VERSION = 1


def _merge(base: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**base, **(overrides or {})}


@register_ruler("attributes")
def attributes_recipe(image_shape: Sequence[int], num_attributes: int, *, epochs: int = 10,
                      config: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None) -> RulerRecipe:
    """Ruler 1: 40-attribute multi-label ResNet, AdamW 1e-3 with a cosine schedule, batch 64."""
    return RulerRecipe("attributes", "attributes",
                       _merge({"image_shape": list(image_shape), "num_attributes": int(num_attributes)}, config),
                       _merge({"epochs": epochs, "batch_size": 64, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 5e-4,
                               "lr_schedule": "cosine", "warmup_steps": 100}, train), seed=0)


@register_ruler("ssl")
def ssl_recipe(image_shape: Sequence[int], num_attributes: int = 0, *, epochs: int = 10,
               config: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None) -> RulerRecipe:
    """Ruler 2: SimCLR encoder (labels unused), AdamW 1e-3 with a cosine schedule, batch 128."""
    return RulerRecipe("ssl", "contrastive", _merge({"image_shape": list(image_shape)}, config),
                       _merge({"epochs": epochs, "batch_size": 128, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 1e-4,
                               "lr_schedule": "cosine", "warmup_steps": 100}, train), seed=1)


def data_digest(data: Any) -> dict[str, Any]:
    """What identifies a ruler's training data: size, shape and a hash of the 8-bit pixels and labels
    (8-bit so that float round-off in a reload does not change it)."""
    digest = hashlib.sha1()
    digest.update((data.x.clamp(0, 1) * 255).round().to(torch.uint8).contiguous().numpy().tobytes())
    for labels in data.tensors[1:]:
        digest.update(labels.contiguous().numpy().tobytes())
    return {"n": len(data), "shape": list(data.x.shape[1:]), "sha1": digest.hexdigest()}


def recipe_fingerprint(recipe: RulerRecipe, data: Any) -> str:
    """12 hex digits over the recipe and the training data: the ruler's cache key."""
    key = {"version": RULER_CODE_VERSION, "recipe": dataclasses.asdict(recipe), "data": data_digest(data)}
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def default_cache() -> Path:
    from ..data.celeba import cache_dir

    return cache_dir() / "rulers"


@dataclasses.dataclass
class Ruler:
    """A trained ruler: its network (eval mode), recipe, fingerprint and cache folder."""

    name: str
    model: Any
    recipe: RulerRecipe
    fingerprint: str
    folder: Path
    trained_now: bool  # False: loaded from the cache

    @functools.cached_property
    def weights(self) -> str:
        """The first 12 hex digits of the SHA-256 of its weights file. The fingerprint names the recipe and the
        data, not the bits: the same recipe retrained on machines with other CPUs gave other networks (the committed
        results hold three builds of each ruler: attributes floor FD 2.62, 2.75 and 2.77, ssl 0.156796, 0.156798 and
        0.156801; benchmarks/RESULTS.md), so results state which build scored them."""
        digest = hashlib.sha256()
        with open(self.folder / "model" / "model.safetensors", "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:12]

    def extractor(self, *, batch_size: int = 500) -> FeatureExtractor:
        return FeatureExtractor(f"ruler-{self.name}", self.model.features,
                                f"ruler {self.name} ({self.recipe.model}, recipe {self.fingerprint})", batch_size)

    def features(self, images: Tensor) -> np.ndarray:
        return self.extractor()(images).double().numpy()


@register_feature_extractor("ruler")
def ruler_extractor(*, path: str | Path | None = None, device: str = "cpu", batch_size: int = 500, **_: Any) -> FeatureExtractor:
    """A cached ruler's features by folder (``CACHE/NAME-FINGERPRINT``), for ``genlab evaluate RUN
    --extractor ruler --extractor-path FOLDER``: one ruler per call; :func:`face_scores` runs both."""
    from ..checkpoint import load

    folder = Path(path) if path is not None else None
    if folder is None or not (folder / "model" / "config.json").is_file():
        raise ConfigError(f"the ruler extractor needs path=FOLDER of a trained ruler (a folder with model/ under "
                          f"{default_cache()}; benchmarks/face_rulers.py trains them), got {path}")
    model = load(folder / "model", device=device).eval()
    if model.registry_name not in {"attributes", "contrastive"}:
        raise ConfigError(f"{folder} holds a {model.registry_name!r} model, not a ruler (attributes or contrastive)")
    return FeatureExtractor("ruler", model.features, f"ruler {folder.name} ({model.registry_name})", batch_size, torch.device(device))


def build_ruler(name: str, data: Any, *, cache: str | Path | None = None, epochs: int | None = None,
                config: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
                threads: int | None = None) -> Ruler:
    """The ruler ``name`` trained on ``data`` (images ``x`` and, for ``attributes``, labels (N, K)):
    loaded from ``cache/NAME-FINGERPRINT`` when that folder holds a finished model, resumed from its
    checkpoint when it holds one, trained there otherwise."""
    from ..checkpoint import atomic_write_text, latest_checkpoint, load

    factory = RULER_RECIPES.get(name)
    labels = data.tensors[1] if len(data.tensors) > 1 else None
    num_attributes = int(labels.shape[1]) if labels is not None and labels.dim() == 2 else 0
    if name == "attributes" and num_attributes == 0:
        raise DataError("the attributes ruler needs training data with labels (N, K) (CelebA's attributes)")
    knobs: dict[str, Any] = {"config": config, "train": train}
    if epochs is not None:
        knobs["epochs"] = epochs
    recipe = factory(list(data.x.shape[1:]), num_attributes, **knobs)
    fingerprint = recipe_fingerprint(recipe, data)
    folder = Path(cache or default_cache()) / f"{name}-{fingerprint}"
    trained_now = not (folder / "model" / "config.json").is_file()
    if trained_now:
        _train(recipe, data, folder, resume=latest_checkpoint(folder / "checkpoints") is not None, threads=threads)
        atomic_write_text(folder / "recipe.json", json.dumps({"recipe": dataclasses.asdict(recipe),
                                                              "data": data_digest(data)}, indent=1, default=str))
    model = load(folder / "model").eval()
    return Ruler(name, model, recipe, fingerprint, folder, trained_now)


def _train(recipe: RulerRecipe, data: Any, folder: Path, *, resume: bool, threads: int | None) -> None:
    from ..models import build_model
    from ..training import TrainConfig, Trainer

    torch.manual_seed(recipe.seed)
    model = build_model(recipe.model, recipe.config)
    options = dict(seed=recipe.seed, progress=False, tensorboard=False, device="cpu", fused_optimizer=False,
                   eval_every=10**9, sample_every=10**9, log_every=50, keep_checkpoints=1, threads=threads)
    options.update(recipe.train)
    log.info("training ruler %s (%s) into %s", recipe.name, recipe.model, folder)
    Trainer(model, data, TrainConfig(**options), out_dir=folder).fit(resume=resume)


# -------------------------------------------------------------------------------------------- splits


def face_splits(path: str | Path, *, image_size: int = 64, reference_size: int = 1000, heldout_size: int = 1000,
                train_limit: int | None = None) -> dict[str, Any]:
    """CelebA at ``path`` split in file order into ``ruler_train`` (the first N - reference - heldout
    images, or the first ``train_limit`` of them), ``heldout`` (the floor: real faces no ruler saw)
    and ``reference`` (the last ``reference_size``: the ``test`` split of genlab's face benchmarks)."""
    from ..data import ArrayDataset, DataConfig, load_dataset

    config = DataConfig(name="celeba", path=str(path), image_size=image_size,
                        options={"test_size": reference_size + heldout_size})
    train, held = load_dataset(config, "train"), load_dataset(config, "test")
    if train_limit is not None:
        train = ArrayDataset(tuple(t[:train_limit] for t in train.tensors),
                             {**train.info, "filenames": train.info["filenames"][:train_limit]})

    def part(sl: slice) -> Any:
        return ArrayDataset(tuple(t[sl] for t in held.tensors), {**held.info, "filenames": held.info["filenames"][sl]})

    return {"ruler_train": train, "heldout": part(slice(0, heldout_size)), "reference": part(slice(heldout_size, None))}


# -------------------------------------------------------------------------------------------- scoring


def compare(generated: np.ndarray, reference: np.ndarray, *, k: int = 3, k_density: int = 5, kid_subsets: int = 100,
            kid_subset_size: int = 1000, seed: int = 0, protocol: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """FD, KID (mean, std over subsets), precision/recall (k) and density/coverage (k_density) of two
    (N, F) feature sets, with the protocol every reported number carries."""
    kid, kid_std = kid_from_features(generated, reference, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    return {"fid": fid_from_features(generated, reference), "kid": kid, "kid_std": kid_std,
            **precision_recall(reference, generated, k=k), **density_coverage(reference, generated, k=k_density),
            "protocol": {"num_generated": int(len(generated)), "num_reference": int(len(reference)),
                         "feature_dim": int(generated.shape[1]), "k": k, "k_density": k_density, "kid_subsets": kid_subsets,
                         "kid_subset_size": min(kid_subset_size, len(generated), len(reference)), **(protocol or {})}}


def face_scores(images: Tensor, reference: Tensor | Mapping[str, np.ndarray], rulers: Sequence[Ruler],
                **options: Any) -> dict[str, dict[str, Any]]:
    """Each ruler's metrics of ``images`` (N, C, H, W) in [0, 1] against ``reference`` (images, or a
    dict ruler name -> reference features, to skip re-extracting them): ``{ruler: {"fid", "kid",
    "kid_std", "precision", "recall", "density", "coverage", "protocol"}}``. ``options`` go to
    :func:`compare` (``k``, ``k_density``, ``kid_subsets``, ``kid_subset_size``, ``seed``)."""
    if not rulers:
        raise ConfigError("face_scores needs at least one ruler (build them with build_ruler)")
    for name, x in (("images", images), ("reference", reference)):
        if isinstance(x, Tensor) and x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
            raise DataError(f"face_scores: {name} must lie in [0, 1] (got {float(x.min()):.3g}..{float(x.max()):.3g}); "
                            "divide 8-bit images by 255 and map [-1, 1] outputs with (x + 1) / 2")
    out: dict[str, dict[str, Any]] = {}
    for ruler in rulers:
        ref = reference[ruler.name] if isinstance(reference, Mapping) else ruler.features(reference)
        out[ruler.name] = compare(ruler.features(images), ref, protocol={"extractor": ruler.extractor().description}, **options)
    return out


def rulers_agree(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]], metric: str = "fid") -> bool | None:
    """Whether every ruler ranks ``a`` and ``b`` (two :func:`face_scores` results) the same way on
    ``metric`` (lower is better): True/False, or None when some ruler calls it a tie."""
    signs = {float(np.sign(a[name][metric] - b[name][metric])) for name in a}
    if 0.0 in signs:
        return None
    return len(signs) == 1


# -------------------------------------------------------------------------------------------- degradations


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, C, H, W) with std ``sigma`` pixels (reflected borders)."""
    if sigma <= 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H


def add_noise(images: Tensor, std: float, *, seed: int = 0) -> Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed), dtype=images.dtype)
    return (images + std * noise).clamp(0, 1)


def jpeg(images: Tensor, quality: int) -> Tensor:
    """Each image through PIL's JPEG encoder at ``quality`` and back (PIL takes one image at a time)."""
    from PIL import Image

    arrays = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    out = np.empty_like(arrays)
    for i, array in enumerate(arrays):
        buffer = io.BytesIO()
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, format="JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
        out[i] = decoded[..., None] if decoded.ndim == 2 else decoded
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(images.dtype) / 255


def mix(images: Tensor, other: Tensor, fraction: float, *, seed: int = 0) -> Tensor:
    """``images`` with a random ``fraction`` of them replaced by the same rows of ``other``."""
    n = images.shape[0]
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: round(fraction * n)]
    out = images.clone()
    out[chosen] = other[chosen]
    return out


def drop_attribute(images: Tensor, has_attribute: Tensor, fraction: float, *, seed: int = 0) -> Tensor:
    """A set of as many images as lack the attribute, drawn from ``images`` after removing a random
    ``fraction`` of those that have it: 0 keeps the attribute's share, 1 removes the mode entirely.
    Every level has the same size, so the distances compare without a sample-size bias."""
    g = torch.Generator().manual_seed(seed)
    has = has_attribute.bool()
    with_attr, without = torch.nonzero(has).flatten(), torch.nonzero(~has).flatten()
    if len(without) < 2 or len(with_attr) == 0:
        raise DataError(f"drop_attribute needs images with and without the attribute, got {len(with_attr)} and {len(without)}")
    kept = with_attr[torch.randperm(len(with_attr), generator=g)[: round((1 - fraction) * len(with_attr))]]
    pool = torch.cat([without, kept])
    return images[pool[torch.randperm(len(pool), generator=g)[: len(without)]]]


@dataclasses.dataclass(frozen=True)
class LadderSpec:
    """The rungs of :func:`degradation_ladder`; each family's levels go from mild to severe."""

    blur_sigmas: tuple[float, ...] = (0.5, 1.0, 2.0)
    noise_stds: tuple[float, ...] = (0.02, 0.05, 0.1)
    jpeg_qualities: tuple[int, ...] = (30, 10, 3)
    mix_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    mix_blur_sigma: float = 2.0  # the "worse model": the images blurred this much
    drop_fractions: tuple[float, ...] = (0.5, 1.0)
    drop_attribute: str | None = "Male"


def degradation_ladder(images: Tensor, *, labels: Tensor | None = None, attr_names: Sequence[str] | None = None,
                       spec: LadderSpec = LadderSpec(), seed: int = 0) -> dict[str, list[tuple[float, Tensor]]]:
    """Degraded copies of ``images`` (real, never seen by a ruler): family -> [(level, images), ...],
    level 0 first (the undegraded set, or for ``drop_attribute`` the same-size set with the mode kept)."""
    ladder: dict[str, list[tuple[float, Tensor]]] = {
        "blur": [(0.0, images)] + [(s, gaussian_blur(images, s)) for s in spec.blur_sigmas],
        "noise": [(0.0, images)] + [(s, add_noise(images, s, seed=seed + i)) for i, s in enumerate(spec.noise_stds)],
        "jpeg": [(0.0, images)] + [(float(q), jpeg(images, q)) for q in spec.jpeg_qualities],
    }
    worse = gaussian_blur(images, spec.mix_blur_sigma)
    ladder["mix_blurred"] = [(0.0, images)] + [(f, mix(images, worse, f, seed=seed)) for f in spec.mix_fractions]
    if spec.drop_attribute and labels is not None and attr_names is not None:
        if spec.drop_attribute not in attr_names:
            raise DataError(f"unknown attribute {spec.drop_attribute!r} to drop; valid: {', '.join(attr_names)}")
        has = labels[:, list(attr_names).index(spec.drop_attribute)]
        ladder[f"drop_{spec.drop_attribute}"] = [(f, drop_attribute(images, has, f, seed=seed)) for f in (0.0, *spec.drop_fractions)]
    return ladder


def run_ladder(rulers: Sequence[Ruler], ladder: Mapping[str, Sequence[tuple[float, Tensor]]], reference: Tensor, *,
               floor: Tensor | None = None, rising: Sequence[str] = ("fid", "kid"), **options: Any) -> dict[str, Any]:
    """Every rung of ``ladder`` scored by every ruler against ``reference``; for each family, ruler and
    metric in ``rising``: the values in level order and whether they rise strictly (``monotone``).
    ``both_rulers_monotone`` is what counts. ``floor``: a disjoint real set scored as the baseline."""
    references = {r.name: r.features(reference) for r in rulers}
    scored: dict[int, dict[str, Any]] = {}  # by id(): the families share their undegraded level-0 set

    def scores(images: Tensor) -> dict[str, Any]:
        if id(images) not in scored:
            scored[id(images)] = face_scores(images, references, rulers, **options)
        return scored[id(images)]

    out: dict[str, Any] = {"families": {}}
    if floor is not None:
        out["floor"] = scores(floor)
    for family, rungs in ladder.items():
        rows = [{"level": level, "n": int(len(images)), **scores(images)} for level, images in rungs]
        checks = {}
        for ruler in rulers:
            for metric in rising:
                values = [row[ruler.name][metric] for row in rows]
                checks[f"{ruler.name}/{metric}"] = {"values": values, "monotone": bool(np.all(np.diff(values) > 0))}
        out["families"][family] = {"rows": rows, "checks": checks,
                                   "both_rulers_monotone": all(c["monotone"] for c in checks.values())}
    out["all_monotone"] = all(f["both_rulers_monotone"] for f in out["families"].values())
    return out
