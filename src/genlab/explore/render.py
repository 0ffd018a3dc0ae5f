"""What the explorer draws: validated query parameters -> images decoded by genlab's latent tools -> one PNG.

Every view is a still frame of a lecture figure that a person wants to drag: a sample grid
(:func:`genlab.api.sample`, what ``genlab sample`` draws), a lerp/slerp path between two codes
(White, "Sampling Generative Networks", 2016), an attribute vector added at a chosen scale (Larsen
et al., ICML 2016), the decoded plane of a 2-D latent space and, for StyleGAN (Karras et al., CVPR
2019), truncation and style mixing. The server and the tests call the same :meth:`Explorer.render`,
so the PNG a browser shows is exactly what the Python API returns for the same parameters.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import logging
import math
import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError, GenlabError
from ..latent import apply_to_codes, seed_codes, attribute_vector, decode, grid_codes, labelled_examples, latent_codes, lerp, slerp
from ..latent.protocols import has, image_shape, latent_dim, takes_label
from ..viz import make_grid, to_uint8

log = logging.getLogger(__name__)

SEED_MAX = 2**31 - 1
MAX_QUERY_CHARS = 2048
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")
MAX_UPLOAD_PIXELS = 4096 * 4096  # decoded size: a small file can still claim a huge image
MIXING_LAYERS = ("coarse", "middle", "fine")


class BadParameter(GenlabError):
    """A request the explorer refuses; the message is the one-line reason the client gets with a 400."""


class Stopping(GenlabError):
    """The explorer is shutting down: a projection or an attribute vector was interrupted between two
    steps (the server answers 503)."""


def is_stylegan(model: nn.Module) -> bool:
    """StyleGAN by what it can do: a mapping network, a synthesis network, truncation and style mixing."""
    return has(model, "styles")


class _WithLabel(nn.Module):
    """A cGAN with its class fixed, so the latent tools (which call ``decode(z)``) draw one class."""

    def __init__(self, model: nn.Module, label: int) -> None:
        super().__init__()
        self.model, self.label, self.latent_dim = model, label, model.latent_dim
        self.training = model.training  # the latent tools restore this mode on the way out

    def decode(self, z: Tensor) -> Tensor:
        return self.model.decode(z, label=self.label)


class _Stepwise(nn.Module):
    """The model as the latent tools see it during a long computation (a projection, an encoded batch).

    Every ``decode``/``encode`` call first checks ``stopped`` (the explorer's stop flag, or the caller
    gave up), so a shutdown interrupts a projection within one step. The model is the explorer's own
    copy for long computations, which no render uses, so no lock is needed; were it the one renders
    use, ``lock`` is taken for each call only, and renders still run between two steps.
    """

    def __init__(self, model: nn.Module, latent_dim: int, lock: threading.Lock | None, stopped: Callable[[], bool]) -> None:
        super().__init__()
        self.model, self.latent_dim, self._lock, self._stopped = model, latent_dim, lock, stopped
        self.training = model.training  # the latent tools restore this mode on the way out
        if has(model, "encoder"):  # latent_codes picks the encoder when the wrapper has one: only when the model does
            self.encode = self._encode

    def _check(self) -> None:
        if self._stopped():
            raise Stopping("server stopping: the computation was interrupted")

    def decode(self, z: Tensor) -> Tensor:
        self._check()
        with self._lock or contextlib.nullcontext():
            return self.model.decode(z)

    def _encode(self, x: Tensor) -> Tensor:
        self._check()
        with self._lock or contextlib.nullcontext():
            return self.model.encode(x)


# ---------------------------------------------------------------------------------------- parameters

Parser = Callable[[str, str], Any]


def _integer(low: int, high: int) -> Parser:
    def parse(name: str, text: str) -> int:
        if not re.fullmatch(r"-?\d{1,12}", text):
            raise BadParameter(f"{name} must be an integer, got {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise BadParameter(f"{name} must lie in [{low}, {high}], got {value}")
        return value
    return parse


def _number(low: float, high: float) -> Parser:
    def parse(name: str, text: str) -> float:
        try:
            value = float(text) if len(text) <= 32 else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BadParameter(f"{name} must be a finite number, got {text[:40]!r}")
        if not low <= value <= high:
            raise BadParameter(f"{name} must lie in [{low:g}, {high:g}], got {value:g}")
        return value
    return parse


def _choice(options: Sequence[str]) -> Parser:
    def parse(name: str, text: str) -> str:
        if text not in options:
            raise BadParameter(f"{name} must be one of {', '.join(options)}; got {text[:40]!r}")
        return text
    return parse


@dataclasses.dataclass
class View:
    """A validated request: the view's name and its parameters with defaults filled in."""

    name: str
    params: dict[str, Any]


# ---------------------------------------------------------------------------------------- explorer

class Explorer:
    """One loaded model and everything the page can ask of it.

    ``labelled`` is a dataset with labels (class labels, or CelebA-style attribute columns) that the
    attribute vectors are computed from; ``attributes`` restricts which labels the page offers.
    Rendering holds a lock: one model, used by one request at a time.
    """

    def __init__(self, model: nn.Module, *, labelled: Any = None, attributes: Sequence[str] | None = None,
                 labelled_count: int = 20, project_steps: int = 200, max_uploads: int = 32,
                 max_upload_bytes: int = 5 * 2**20, name: str = "", cache_dir: str | Path | None = None) -> None:
        self.model = model.eval()
        self.name = name or getattr(model, "registry_name", type(model).__name__)
        self.stylegan = is_stylegan(model)
        self.decodes = has(model, "decoder")  # a StyleGAN without decode(z) gets samples and mixing only
        if not (self.decodes or self.stylegan):
            raise ConfigError(f"model {self.name!r} has no decode(z): explore works for models that decode a latent "
                              "code (autoencoder, vae, gan, cgan, stylegan)")
        self.latent_dim = latent_dim(model)
        self.num_classes = int(model.config.num_classes) if takes_label(model) else None
        self.labelled_count, self.project_steps = labelled_count, project_steps
        self.max_uploads, self.max_upload_bytes = max_uploads, max_upload_bytes
        self._lock = threading.Lock()  # the model: one forward pass at a time
        self._background: ThreadPoolExecutor | None = None  # the one thread for projections (made on first need)
        self._background_lock = threading.Lock()
        self._stop = threading.Event()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._weights_digest: str | None = None
        self._worker_model: nn.Module | None = None  # the copy that projections use (made on first need)
        self._vectors: dict[str, Tensor] = {}
        self._vectors_lock = threading.Lock()
        self._pending: dict[str, Future] = {}  # attribute vectors being computed: later askers wait for the first
        self.uploads: OrderedDict[str, Tensor] = OrderedDict()  # id -> code (D,), oldest first
        self._upload_count = 0
        self.image_shape = image_shape(model)  # (C, H, W), declared by the config or measured there
        self._label_names: list[str] = []  # every label column of the labelled data
        self.attributes, self._labels, self._label_images = self._attribute_labels(labelled, attributes)

    # ------------------------------------------------------------------ labels
    def _attribute_labels(self, data: Any, wanted: Sequence[str] | None) -> tuple[list[str], Tensor | None, Tensor | None]:
        """Label names and an (N, K) label matrix: attribute columns as they are, classes one-hot."""
        if data is None or getattr(data, "y", None) is None:
            if wanted:
                raise DataError("--labels needs labelled data, and this run's data has no labels")
            return [], None, None
        y = data.y
        if y.dim() == 2 and data.info.get("attr_names"):
            names = list(data.info["attr_names"])
        elif y.dim() == 1:
            k = int(y.max()) + 1
            names = [str(n) for n in (data.info.get("class_names") or range(k))][:k]
            y = torch.nn.functional.one_hot(y.long(), len(names))  # (N, K)
        else:
            return [], None, None
        if wanted:
            unknown = [w for w in wanted if w not in names]
            if unknown:
                raise DataError(f"unknown label(s) {', '.join(unknown)}; valid: {', '.join(names)}")
            offered = list(wanted)
        else:
            offered = names
        self._label_names = names
        return offered, y, data.x

    def attribute_vector(self, attribute: str, label: int | None = None) -> Tensor:
        """mean code of ``labelled_count`` examples with the attribute minus that of as many without.

        Kept in memory and, with ``cache_dir``, on disk (keyed by the weights, the examples and the
        projection settings). It is computed on the background thread with a copy of the model, not
        under the renders' lock, so other views render meanwhile, and it checks the stop flag at every
        step. A second request for the same vector waits for the first one's result."""
        key = f"{attribute}/{label}"
        with self._vectors_lock:
            if key in self._vectors:
                return self._vectors[key]
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
        if not owner:
            return future.result()
        try:
            vector = self._load_or_compute_vector(attribute, label)
        except BaseException as exc:
            with self._vectors_lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._vectors_lock:
            self._vectors[key] = vector
            del self._pending[key]
        future.set_result(vector)
        return vector

    def _load_or_compute_vector(self, attribute: str, label: int | None) -> Tensor:
        from .. import checkpoint as ckpt

        if self._labels is None or self._label_images is None:
            raise BadParameter("this model has no labelled data, so there are no attribute vectors")
        pos, neg = labelled_examples(self._labels, self._label_names, attribute, self.labelled_count,
                                     generator=torch.Generator().manual_seed(0))
        positives, negatives = self._label_images[pos], self._label_images[neg]
        path = self._vector_path(attribute, label, positives, negatives)
        if path is not None and path.is_file():
            try:
                vector = ckpt.load_tensors(path)["vector"]
                if vector.shape == (self.latent_dim,):
                    log.debug("explore: attribute vector %r read from %s", attribute, path)
                    return vector
            except (GenlabError, KeyError) as exc:  # a damaged cache file is recomputed, not trusted
                log.warning("explore: ignoring the cached attribute vector %s (%s)", path, exc)
        vector = self._in_background(
            lambda stopped: attribute_vector(self._stepwise(label, stopped), positives, negatives, steps=self.project_steps))
        if path is not None:
            try:
                ckpt.save_tensors(path, {"vector": vector}, metadata={"attribute": attribute, "label": str(label)})
            except OSError as exc:  # a read-only run folder: the vector lives in memory only
                log.warning("explore: cannot cache the attribute vector in %s (%s)", path.parent, exc.strerror or exc)
        return vector

    def _vector_path(self, attribute: str, label: int | None, positives: Tensor, negatives: Tensor) -> Path | None:
        """The cache file of one vector: its name hashes everything the vector depends on."""
        if self.cache_dir is None:
            return None
        if self._weights_digest is None:  # once: the weights do not change while the explorer runs
            weights = hashlib.sha256()
            for name, tensor in sorted(self.model.state_dict().items()):
                weights.update(name.encode() + str(tensor.dtype).encode())
                # raw bytes through uint8: numpy has no bfloat16
                weights.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            self._weights_digest = weights.hexdigest()
        key = hashlib.sha256()
        method = "encoder" if has(self.model, "encoder") else f"project:{self.project_steps}"
        for part in (self._weights_digest, attribute, str(label), str(self.labelled_count), method):
            key.update(part.encode() + b"\0")
        for images in (positives, negatives):
            key.update(images.detach().float().cpu().contiguous().numpy().tobytes())
        slug = re.sub(r"[^A-Za-z0-9_-]", "_", attribute)[:40]
        return self.cache_dir / f"attribute-{slug}-{key.hexdigest()[:20]}.safetensors"

    def _in_background(self, work: Callable[[Callable[[], bool]], Tensor]) -> Tensor:
        """Run a long computation (a projection, a batch through the encoder) on the explorer's one
        background thread, which runs at a lower scheduling priority where the system allows, so renders
        on other threads keep their frame time, and wait for it. ``work`` gets ``stopped()``, true once
        the explorer stops or the caller gave up waiting (a KeyboardInterrupt): it then ends within a step."""
        with self._background_lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(1, thread_name_prefix="explore-background", initializer=_lower_priority)
        gave_up = threading.Event()
        future = self._background.submit(work, lambda: self._stop.is_set() or gave_up.is_set())
        try:
            return future.result()
        except BaseException:
            gave_up.set()  # interrupted while waiting: the projection must not outlive its caller
            raise

    def _stepwise(self, label: int | None, stopped: Callable[[], bool]) -> _Stepwise:
        """The model for a long computation (on the background thread): a copy of the weights made once,
        so a projection runs beside renders (on another core) instead of taking turns with them."""
        if self._worker_model is None:
            with self._lock:
                try:
                    self._worker_model = copy.deepcopy(self.model)
                except Exception as exc:  # a model that cannot be copied shares the renders' lock, step by step
                    log.debug("explore: projecting with the rendering model (%s: cannot copy it: %s)", self.name, exc)
                    self._worker_model = self.model
        model = self._worker_model
        if self.num_classes is not None and label is not None:
            model = _WithLabel(model, label)
        return _Stepwise(model, self.latent_dim, self._lock if self._worker_model is self.model else None, stopped)

    def stop(self) -> None:
        """Interrupt projections and attribute vectors in progress (they raise :class:`Stopping` within
        one step) and refuse new ones; renders still finish. The server calls this when it closes."""
        self._stop.set()

    # ------------------------------------------------------------------ what the page can ask for
    def views(self) -> dict[str, dict[str, Parser]]:
        """Each view's parameters and their parsers (type and range)."""
        seed, labels = _integer(0, SEED_MAX), {}
        if self.num_classes is not None:
            labels = {"label": _integer(0, self.num_classes - 1)}
        endpoint = self._endpoint
        views: dict[str, dict[str, Parser]] = {"samples": {"seed": seed, "n": _integer(1, 64), **labels}}
        if self.stylegan:
            views["samples"]["truncation"] = _number(0.0, 2.0)
            views["mix"] = {"a": seed, "b": seed, "layers": self._layers}
        if not self.decodes:
            return views
        views["interpolate"] = {"a": endpoint, "b": endpoint, "t": _number(0.0, 1.0), "method": _choice(("lerp", "slerp")), **labels}
        if self.attributes:
            views["attribute"] = {"attr": _choice(self.attributes), "scale": _number(-5.0, 5.0), "seed": seed,
                                  "n": _integer(1, 16), **labels}
        if self.latent_dim == 2:
            views["map"] = {"extent": _number(0.1, 10.0), "steps": _integer(2, 32), **labels}
            views["point"] = {"x": _number(-10.0, 10.0), "y": _number(-10.0, 10.0), **labels}
        return views

    DEFAULTS: dict[str, Any] = {"seed": 0, "n": 16, "a": "0", "b": "1", "t": "0.5", "method": "lerp", "label": "0",
                                "truncation": "1", "layers": "coarse", "scale": "0", "extent": "3", "steps": "12",
                                "x": "0", "y": "0"}

    def _endpoint(self, name: str, text: str) -> str:
        """An interpolation end: a seed (digits) or the id of an uploaded image (``img3``)."""
        if re.fullmatch(r"img\d{1,9}", text):
            if text not in self.uploads:
                raise BadParameter(f"{name}: no uploaded image {text!r} (uploads are kept until {self.max_uploads} newer ones arrive)")
            return text
        return str(_integer(0, SEED_MAX)(name, text))

    def _layers(self, name: str, text: str) -> str | list[int]:
        """coarse | middle | fine, or an inclusive range of synthesis layers ``A-B``."""
        if text in MIXING_LAYERS:
            return text
        match = re.fullmatch(r"(\d{1,3})-(\d{1,3})", text)
        limit = int(getattr(self.model, "num_ws", 64))
        if not match or not int(match[1]) <= int(match[2]) < limit:
            raise BadParameter(f"{name} must be coarse, middle, fine or a layer range A-B with A <= B < {limit}; got {text[:40]!r}")
        return list(range(int(match[1]), int(match[2]) + 1))

    def parse(self, query: str | Mapping[str, Any]) -> View:
        """Validate a query string (or a dict of values) into a :class:`View`; bad input -> :class:`BadParameter`."""
        if isinstance(query, str):
            if len(query) > MAX_QUERY_CHARS:
                raise BadParameter(f"query too long ({len(query)} characters, limit {MAX_QUERY_CHARS})")
            try:
                raw = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=32)
            except ValueError as exc:
                raise BadParameter(f"malformed query string: {exc}") from None
            repeated = [k for k, v in raw.items() if len(v) > 1]
            if repeated:
                raise BadParameter(f"parameter {repeated[0]!r} given more than once")
            given = {k: v[0] for k, v in raw.items()}
        else:
            given = {k: str(v) for k, v in query.items()}
        views = self.views()
        name = given.pop("view", "samples")
        if name not in views:
            raise BadParameter(f"view must be one of {', '.join(views)}; got {name[:40]!r}")
        schema = views[name]
        unknown = sorted(set(given) - set(schema))
        if unknown:
            raise BadParameter(f"unknown parameter {unknown[0][:40]!r} for view={name}; valid: {', '.join(schema)}")
        params: dict[str, Any] = {}
        for key, parse in schema.items():
            if key in given:
                params[key] = parse(key, given[key])
            elif key == "label" and name == "samples":
                params[key] = None  # every class in turn, as genlab sample draws them
            else:
                params[key] = parse(key, str(self._default(key)))
        return View(name, params)

    def _default(self, key: str) -> Any:
        if key == "attr":
            return self.attributes[0]  # the view exists only when there are attributes
        if key not in self.DEFAULTS:  # every parameter needs a default: a request may leave any of them out
            raise BadParameter(f"missing parameter {key!r}")
        return self.DEFAULTS[key]

    # ------------------------------------------------------------------ rendering
    def render(self, view: View | str | Mapping[str, Any]) -> np.ndarray:
        """The view's image as uint8 (H, W) or (H, W, 3): a grid of decoded images."""
        if not isinstance(view, View):
            view = self.parse(view)
        params = dict(view.params)
        if view.name == "attribute":  # may take a projection: computed on the background thread, not under the lock
            params["vector"] = self.attribute_vector(params["attr"], params.get("label"))
        with self._lock:
            images, nrow, padding = getattr(self, f"_render_{view.name}")(**params)
        return to_uint8(make_grid(images.float(), nrow=nrow, padding=padding))

    def _decoder(self, label: int | None) -> nn.Module:
        return _WithLabel(self.model, label) if self.num_classes is not None and label is not None else self.model

    def _code(self, endpoint: str) -> Tensor:
        return self.uploads[endpoint] if endpoint.startswith("img") else seed_codes(self.model, [int(endpoint)])[0]

    def _render_samples(self, seed: int, n: int, label: int | None = None, truncation: float | None = None):
        from ..api import sample

        options: dict[str, Any] = {} if label is None else {"label": label}
        if self.stylegan:
            options.update(truncation=truncation, noise="const")
        return sample(self.model, n, seed=seed, **options), None, 2

    def _render_interpolate(self, a: str, b: str, t: float, method: str, label: int | None = None):
        z0, z1 = self._code(a), self._code(b)
        middle = (slerp if method == "slerp" else lerp)(z0, z1, t)  # (D,)
        return decode(self._decoder(label), torch.stack([z0, middle, z1])), 3, 2  # start | frame at t | end

    def _render_attribute(self, attr: str, scale: float, seed: int, n: int, vector: Tensor, label: int | None = None):
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))  # (n, D)
        strips = apply_to_codes(self._decoder(label), z, vector, [0.0, scale])  # (n, 2, C, H, W)
        return strips.transpose(0, 1).flatten(0, 1), n, 2  # originals above, edited below

    def _render_map(self, extent: float, steps: int, label: int | None = None):
        # corners at cell centres, so pixel (u, v) of the padding-free map is code (-e + 2e u, e - 2e v)
        c = extent * (steps - 1) / steps
        corners = torch.tensor([[-c, c], [c, c], [-c, -c], [c, -c]])
        return decode(self._decoder(label), grid_codes(corners, steps)), steps, 0

    def _render_point(self, x: float, y: float, label: int | None = None):
        return decode(self._decoder(label), torch.tensor([[x, y]])), 1, 2

    def _render_mix(self, a: int, b: int, layers: str | list[int]):
        z = seed_codes(self.model, [a, b, a]).to(_device(self.model))
        z_styles = seed_codes(self.model, [a, b, b]).to(_device(self.model))
        with torch.no_grad():  # a, b, and a's coarse/middle/fine styles replaced by b's
            return self.model.mix(z, z_styles, layers, noise="const").cpu(), 3, 2

    # ------------------------------------------------------------------ uploads
    def upload(self, data: bytes) -> dict[str, Any]:
        """Decode an uploaded PNG/JPEG/BMP, find its latent code (encoder or projection) and keep
        it under a new id for interpolation. Returns ``{"id", "error"}`` (the reconstruction MSE)."""
        if not self.decodes:
            raise BadParameter(f"model {self.name!r} has no decode(z), so uploads cannot become interpolation ends")
        images = read_upload(data, self.image_shape, max_bytes=self.max_upload_bytes)
        z = self._in_background(  # (1, D); other views render meanwhile
            lambda stopped: latent_codes(self._stepwise(None, stopped), images, steps=self.project_steps))
        with self._lock:
            error = float((decode(self.model, z) - images).square().mean())
            self._upload_count += 1
            key = f"img{self._upload_count}"
            self.uploads[key] = z[0]
            while len(self.uploads) > self.max_uploads:
                self.uploads.popitem(last=False)
        return {"id": key, "error": error}

    def info(self) -> dict[str, Any]:
        """What the page needs to build its controls."""
        return {"model": self.name, "latent_dim": self.latent_dim, "image_shape": list(self.image_shape),
                "views": {name: list(schema) for name, schema in self.views().items()},
                "attributes": self.attributes, "num_classes": self.num_classes, "stylegan": self.stylegan,
                "mixing_layers": list(MIXING_LAYERS), "seed_max": SEED_MAX, "max_upload_bytes": self.max_upload_bytes}


def read_upload(data: bytes, image_shape: Sequence[int], *, max_bytes: int) -> Tensor:
    """An uploaded image file -> float (1, C, H, W) in [0, 1] matching ``image_shape`` (centre crop,
    resize). Refuses files over ``max_bytes``, formats other than PNG/JPEG/BMP and huge dimensions."""
    from PIL import Image, UnidentifiedImageError

    from ..data.imageio import crop_resize

    if not data:
        raise BadParameter("empty upload: send the image file as the request body")
    if len(data) > max_bytes:
        raise BadParameter(f"upload too large: {len(data)} bytes (limit {max_bytes})")
    c, h, w = image_shape
    if h != w:
        raise BadParameter(f"uploads need a model with square images, this one makes {h}x{w}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                raise BadParameter(f"unsupported image format {image.format}; send PNG, JPEG or BMP")
            if image.width * image.height > MAX_UPLOAD_PIXELS:
                raise BadParameter(f"image too large: {image.width}x{image.height} pixels (limit {MAX_UPLOAD_PIXELS} pixels)")
            array = crop_resize(image, h, c)  # (H, W, C) uint8
    except UnidentifiedImageError:  # its message names the in-memory file by its repr (<_io.BytesIO object at 0x...>)
        raise BadParameter(f"not a readable image: the upload ({len(data)} bytes) is not a PNG, JPEG or BMP file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the upload", str(exc).strip()).splitlines()
        raise BadParameter(f"not a readable image ({reason[0][:80] if reason else type(exc).__name__})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float().div(255.0)  # (1, C, H, W)


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: a thread id is a process id to setpriority)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5))
    except (AttributeError, OSError):  # no setpriority (Windows), or not allowed: the normal priority
        pass


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) array as PNG bytes (lossless: the browser shows exactly these pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def render(model: nn.Module | Explorer, params: str | Mapping[str, Any]) -> np.ndarray:
    """The explorer's image for ``params`` (a query string or dict, e.g. ``{"view": "interpolate",
    "a": 3, "b": 7, "t": 0.25, "method": "slerp"}``) as uint8 (H, W) or (H, W, 3)."""
    explorer = model if isinstance(model, Explorer) else Explorer(model)
    return explorer.render(params)


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))
