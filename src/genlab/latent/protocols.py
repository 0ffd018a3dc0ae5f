"""What a model can do, checked in one place.

A family declares its capabilities by the methods it has (``decode(z)``, ``encode(x)``,
``mapping``/``synthesis``/``truncate``/``mix`` for a style-based generator, ...). Every tool that
needs one asks here — :func:`has` to choose a path, :func:`require` to refuse a model in one line
that names the model and what it lacks — instead of probing attributes at the call site. The
``typing.Protocol`` classes state the same contracts for type checkers, and ``isinstance`` works on
them (they are runtime-checkable), though :func:`has` also checks that each member is callable.

Two facts about a model are read here too, each from one declared source: :func:`latent_dim`
(``model.latent_dim``, else ``model.config.latent_dim``) and :func:`image_shape` (the images the
model makes: ``model.config.image_shape``; only a model that declares none, such as a thin wrapper
around a decoder, has it measured, by decoding one code).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..batching import eval_mode, module_device
from ..errors import ConfigError

__all__ = [
    "CAPABILITIES", "Capability", "MissingCapability", "Classifies", "Decodes", "Encodes", "ExtractsFeatureMaps", "ExtractsFeatures",
    "Reconstructs", "Samples", "StyleBased", "Text", "capabilities", "has", "image_shape", "latent_dim", "model_name",
    "require", "takes_label",
]


class MissingCapability(ConfigError):
    """A model lacks what a tool needs; the one-line message names the model and the capability."""


@runtime_checkable
class Decodes(Protocol):
    """A decoder or generator: latent codes (N, D) -> samples, images (N, C, H, W) in [0, 1]."""

    def decode(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class Encodes(Protocol):
    """An encoder: images (N, C, H, W) -> latent codes (N, D)."""

    def encode(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Reconstructs(Protocol):
    """Images -> their reconstructions through the model's code (autoencoders)."""

    def reconstruct(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Samples(Protocol):
    """Unconditional sampling with an explicit ``torch.Generator``: ``sample(n, generator=g)``."""

    def sample(self, n: int, *, generator: Optional[torch.Generator] = None, **options: Any) -> Tensor: ...


@runtime_checkable
class StyleBased(Protocol):
    """A style-based generator (StyleGAN): z -> w by a mapping network, per-layer styles ws ->
    images, truncation towards the mean style, and style mixing between two codes."""

    def mapping(self, z: Tensor, *, truncation: float = 1.0) -> Tensor: ...

    def synthesis(self, ws: Tensor, *, noise: Any = "random", generator: Optional[torch.Generator] = None) -> Tensor: ...

    def truncate(self, w: Tensor, truncation: float = 1.0, truncation_cutoff: Optional[int] = None) -> Tensor: ...

    def mix(self, z_a: Tensor, z_b: Tensor, layers: Any, **options: Any) -> Tensor: ...


@runtime_checkable
class Classifies(Protocol):
    """A classifier: images -> predicted class indices (N,)."""

    def predict(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class ExtractsFeatures(Protocol):
    """A network whose penultimate features (N, F) can serve as a metric's embedding."""

    def features(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class ExtractsFeatureMaps(Protocol):
    """A network whose intermediate activations, fine to coarse, can serve as a feature-consistency loss."""

    def feature_maps(self, x: Tensor) -> list[Tensor]: ...


@runtime_checkable
class Text(Protocol):
    """A text model (sentence-vae): token ids (N, T) <-> strings in its own vocabulary."""

    def to_text(self, tokens: Tensor) -> list[str]: ...

    def from_text(self, sentences: Any) -> tuple[Tensor, Tensor]: ...


@dataclasses.dataclass(frozen=True)
class Capability:
    name: str
    protocol: type
    members: tuple[str, ...]  # methods the model must have (callable attributes)
    missing: str  # what the error says the model has no ... of


CAPABILITIES: dict[str, Capability] = {c.name: c for c in (
    Capability("decoder", Decodes, ("decode",), "decode(z) (a decoder or generator)"),
    Capability("encoder", Encodes, ("encode",), "encoder (encode(x))"),
    Capability("reconstruct", Reconstructs, ("reconstruct",), "reconstruct(x) (an encoder and decoder pair)"),
    Capability("sampler", Samples, ("sample",), "sampler (sample(n, generator=g))"),
    Capability("styles", StyleBased, ("mapping", "synthesis", "truncate", "mix"),
               "style-based generator (mapping, synthesis, truncate, mix: a stylegan)"),
    Capability("classifier", Classifies, ("predict",), "classifier head (predict(x): a genlab classifier run)"),
    Capability("features", ExtractsFeatures, ("features",), "features(x) (a genlab classifier run)"),
    Capability("feature-maps", ExtractsFeatureMaps, ("feature_maps",),
               "feature_maps(x) (intermediate activations: a genlab attributes run)"),
    Capability("text", Text, ("to_text", "from_text"), "text decoding (to_text, from_text: a sentence-vae run)"),
)}


def model_name(model: Any) -> str:
    """The registered family name (``vae``, ``stylegan``), else the class name."""
    return str(getattr(model, "registry_name", None) or type(model).__name__)


def _capability(name: str) -> Capability:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise ConfigError(f"unknown capability {name!r}; valid: {', '.join(CAPABILITIES)}") from None


def _has(model: Any, capability: Capability) -> bool:
    if not all(callable(getattr(model, member, None)) for member in capability.members):
        return False
    if capability.name == "sampler":
        from ..models.base import GenerativeModel

        if getattr(type(model), "sample", None) is GenerativeModel.sample:
            return False  # the base class's sample exists on every family and refuses
        try:  # sample(n, ...), not a conditional sample(x, n) (the MDN draws y given x)
            first = next(iter(inspect.signature(model.sample).parameters), None)
        except (TypeError, ValueError):
            return True
        return first == "n"
    return True


def has(model: Any, *names: str) -> bool:
    """Whether ``model`` has every named capability (see :data:`CAPABILITIES`)."""
    return all(_has(model, _capability(n)) for n in names)


def capabilities(model: Any) -> list[str]:
    """The names of every capability ``model`` has."""
    return [name for name, c in CAPABILITIES.items() if _has(model, c)]


def require(model: Any, *names: str, purpose: str | None = None) -> Any:
    """``model`` itself when it has every named capability, else :class:`MissingCapability`:
    ``model 'gan' has no encoder (encode(x)); plot-latent needs one``."""
    for n in names:
        capability = _capability(n)
        if not _has(model, capability):
            why = f"; {purpose} needs one" if purpose else ""
            raise MissingCapability(f"model {model_name(model)!r} has no {capability.missing}{why}")
    return model


def takes_label(model: Any) -> bool:
    """A class-conditional decoder (cGAN): ``decode(z, label)`` with ``config.num_classes`` classes."""
    if not has(model, "decoder"):
        return False
    try:
        parameters = inspect.signature(model.decode).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no named label
        return False
    return "label" in parameters and getattr(getattr(model, "config", None), "num_classes", None) is not None


def latent_dim(model: Any) -> int:
    """Size of the model's latent code: ``model.latent_dim``, else ``model.config.latent_dim``
    (a family that keeps it only in its config)."""
    dim = getattr(model, "latent_dim", None)
    if dim is None:
        dim = getattr(getattr(model, "config", None), "latent_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise MissingCapability(f"model {model_name(model)!r} has no latent space (it declares no latent_dim)")
    return dim


def image_shape(model: Any) -> tuple[int, int, int]:
    """(C, H, W) of the images the model makes (for a translator, of its domain-A inputs).

    Read from ``model.config.image_shape``. A model that declares none (a wrapper around a decoder,
    a stand-in in a test) has it measured here, the one place that does: one zero code decoded in
    eval mode. A model whose samples are not images (a GAN on 2-D points) is refused in one line.
    """
    declared = getattr(getattr(model, "config", None), "image_shape", None)
    if declared is not None:
        shape = tuple(int(s) for s in declared)
        if len(shape) != 3:
            raise MissingCapability(f"model {model_name(model)!r} declares image_shape {list(shape)}, not (C, H, W)")
        return shape  # type: ignore[return-value]
    if not has(model, "decoder"):
        raise MissingCapability(f"model {model_name(model)!r} declares no image_shape and has no decode(z) to measure it")
    probe = _decode_one_code(model)
    if probe.dim() != 4:
        raise MissingCapability(f"model {model_name(model)!r} makes samples of shape {tuple(probe.shape[1:])}, not images")
    return tuple(probe.shape[1:])  # type: ignore[return-value]


@torch.no_grad()
def _decode_one_code(model: Any) -> Tensor:
    """``model.decode`` of one zero code, in eval mode (the mode restored after)."""
    z = torch.zeros(1, latent_dim(model))
    if not isinstance(model, torch.nn.Module):
        return model.decode(z)
    with eval_mode(model):
        return model.decode(z.to(module_device(model))).cpu()
