"""Output heads: a network's raw output read as the parameters of a ``torch.distributions`` object.

A head owns no weights of its own (except the shared log-scale of ``scale="shared"``): the network's
last layer emits ``num_outputs`` values per example (an MLP) or ``out_channels`` channels (a conv
decoder), and the head turns them into a distribution whose ``log_prob(x)`` is one value per example.
Every likelihood here is computed in log space: Bernoulli and continuous Bernoulli through
BCE-with-logits, mixtures through ``MixtureSameFamily`` (a ``logsumexp`` over components), so a
mixture density network (Bishop, 1994, "Mixture Density Networks") never takes the log of a sum of
densities. The continuous Bernoulli is Loaiza-Ganem & Cunningham (2019), "The continuous Bernoulli:
fixing a pervasive error in variational autoencoders".

Layout: ``raw`` is either flat ``(B..., P * prod(event_shape))`` or channel-stacked
``(B..., P * C, H, W)`` for an event ``(C, H, W)``; either way it is read as ``(B..., P, *event_shape)``
with the P parameter chunks parameter-major (chunk 0 is the first parameter, e.g. ``loc``).
"""
from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    Distribution,
    Independent,
    Laplace,
    MixtureSameFamily,
    Normal,
)

from ..errors import ConfigError, DataError
from ..registry import Registry

__all__ = [
    "HEADS", "register_head", "make_head", "Head", "BernoulliHead", "CategoricalHead", "GaussianHead",
    "LaplaceHead", "ContinuousBernoulliHead", "MixtureHead", "StableContinuousBernoulli", "positive_scale",
]

HEADS: Registry[type["Head"]] = Registry("head")
register_head = HEADS.register

SCALE_MODES = ("fixed", "exp", "softplus", "shared")
_LEARNED_SCALE_MODES = ("exp", "softplus")


def positive_scale(raw: Tensor, mode: str, min_scale: float) -> Tensor:
    """Map raw network outputs to a scale that is at least ``min_scale``.

    ``"exp"``: raw is log σ, so σ = exp(max(raw, log min_scale)) — exactly exp(raw) above the floor
    (the floor is a clamp; its gradient is zero below it). ``"softplus"``: σ = softplus(raw) +
    min_scale, smooth everywhere and never below the floor.
    """
    if mode == "exp":
        return raw.clamp(min=math.log(min_scale)).exp()
    if mode == "softplus":
        return F.softplus(raw) + min_scale
    raise ConfigError(f"learned scale must be one of {', '.join(_LEARNED_SCALE_MODES)}; got {mode!r}")


class Head(nn.Module):
    """Base class: reshape raw outputs into P parameter chunks and build a distribution.

    Subclasses set ``params_per_dim`` (P, raw values per event element) and implement
    :meth:`base_distribution`, which receives the chunks, each shaped ``(B..., *event_shape)``.
    """

    params_per_dim: int = 1
    registry_name: ClassVar[str]

    def __init__(self, event_shape: Sequence[int] = ()) -> None:
        super().__init__()
        shape = tuple(int(s) for s in event_shape)
        if any(s < 1 for s in shape):
            raise ConfigError(f"{type(self).__name__}: event_shape must be positive sizes; got {tuple(event_shape)}")
        self.event_shape: tuple[int, ...] = shape

    # ------------------------------------------------------------------ sizes
    @property
    def event_numel(self) -> int:
        return math.prod(self.event_shape)

    @property
    def num_outputs(self) -> int:
        """Width of an MLP's final Linear: P * prod(event_shape)."""
        return self.params_per_dim * self.event_numel

    @property
    def out_channels(self) -> int:
        """Channels of a conv decoder's last layer for an event (C, H, W): P * C."""
        if not self.event_shape:
            raise ConfigError(f"{type(self).__name__} with a scalar event has no channel axis; use num_outputs")
        return self.params_per_dim * self.event_shape[0]

    # ------------------------------------------------------------------ reading raw outputs
    def split(self, raw: Tensor) -> Tensor:
        """``raw`` (B..., num_outputs) or (B..., P*C, *rest) -> (B..., P, *event_shape)."""
        p, event = self.params_per_dim, self.event_shape
        n = len(event)
        if n and raw.dim() >= n and tuple(raw.shape[raw.dim() - n :]) == (p * event[0], *event[1:]):
            return raw.reshape(*raw.shape[: raw.dim() - n], p, *event)  # channel-stacked, parameter-major
        if raw.dim() >= 1 and raw.shape[-1] == self.num_outputs:
            return raw.reshape(*raw.shape[:-1], p, *event)
        expected = f"(..., {self.num_outputs})"
        if n:
            expected += f" or (..., {', '.join(map(str, (p * event[0], *event[1:])))})"
        raise DataError(f"{type(self).__name__} expects raw outputs shaped {expected}; got {tuple(raw.shape)}")

    def chunks(self, raw: Tensor) -> tuple[Tensor, ...]:
        """The P parameter chunks of ``raw``, each (B..., *event_shape)."""
        return self.split(raw).unbind(-len(self.event_shape) - 1)

    def base_distribution(self, *params: Tensor) -> Distribution:
        raise NotImplementedError

    def forward(self, raw: Tensor) -> Distribution:
        base = self.base_distribution(*self.chunks(raw))
        return Independent(base, len(self.event_shape), validate_args=False)

    def mean_nll(self, raw: Tensor, x: Tensor) -> Tensor:
        """``-self(raw).log_prob(x).mean()``: the batch mean of the per-example negative log-likelihood,
        a training loss. Heads with a fused kernel for the sum override it (same value, one pass)."""
        return -self(raw).log_prob(x).mean()

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, params_per_dim={self.params_per_dim}"


# ---------------------------------------------------------------------------- discrete


@register_head("bernoulli")
class BernoulliHead(Head):
    """Independent Bernoulli per element from logits; log_prob is -BCE-with-logits (stable)."""

    params_per_dim = 1

    def base_distribution(self, logits: Tensor) -> Distribution:  # type: ignore[override]
        return Bernoulli(logits=logits, validate_args=False)

    def mean_nll(self, raw: Tensor, x: Tensor) -> Tensor:
        # one fused BCE-with-logits summed over everything, instead of a (B, *event) loss map, its sum over
        # the event and a mean: the same number and gradients, ~3 % less time in an MLP VAE's forward + backward
        (logits,) = self.chunks(raw)
        batch = logits.shape[: logits.dim() - len(self.event_shape)].numel()
        return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="sum") / batch


@register_head("categorical")
class CategoricalHead(Head):
    """A ``num_classes``-way Categorical per element (e.g. 256 pixel intensities, PixelCNN style).

    Chunk k of the raw output is the logit of class k; targets are integer class indices shaped
    (B..., *event_shape).
    """

    def __init__(self, event_shape: Sequence[int] = (), *, num_classes: int) -> None:
        super().__init__(event_shape)
        if int(num_classes) < 2:
            raise ConfigError(f"CategoricalHead: num_classes must be at least 2; got {num_classes}")
        self.num_classes = int(num_classes)
        self.params_per_dim = self.num_classes

    def forward(self, raw: Tensor) -> Distribution:
        n = len(self.event_shape)
        logits = self.split(raw).movedim(-n - 1, -1)  # (B..., *event, K)
        return Independent(Categorical(logits=logits, validate_args=False), n, validate_args=False)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, num_classes={self.num_classes}"


# ---------------------------------------------------------------------------- continuous


class _LocScaleHead(Head):
    """Location-scale family with a fixed, per-element learned, or one shared learned scale."""

    family: ClassVar[type[Distribution]]

    def __init__(
        self,
        event_shape: Sequence[int] = (),
        *,
        scale: str = "fixed",
        fixed_scale: float = 1.0,
        min_scale: float = 1e-3,
    ) -> None:
        super().__init__(event_shape)
        if scale not in SCALE_MODES:
            raise ConfigError(f"{type(self).__name__}: scale must be one of {', '.join(SCALE_MODES)}; got {scale!r}")
        if not fixed_scale > 0 or not min_scale > 0:
            raise ConfigError(f"{type(self).__name__}: fixed_scale and min_scale must be positive")
        self.scale_mode = scale
        self.fixed_scale = float(fixed_scale)
        self.min_scale = float(min_scale)
        self.params_per_dim = 2 if scale in _LEARNED_SCALE_MODES else 1
        if scale == "shared":
            # One global log σ, learned with the network; starts at fixed_scale.
            self.log_scale = nn.Parameter(torch.tensor(math.log(self.fixed_scale)))

    def base_distribution(self, loc: Tensor, raw_scale: Tensor | None = None) -> Distribution:  # type: ignore[override]
        if self.scale_mode == "fixed":
            scale: Tensor | float = self.fixed_scale
        elif self.scale_mode == "shared":
            scale = self.log_scale.clamp(min=math.log(self.min_scale)).exp().to(loc.dtype).expand_as(loc)
        else:
            assert raw_scale is not None
            scale = positive_scale(raw_scale, self.scale_mode, self.min_scale)
        return self.family(loc, scale, validate_args=False)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, scale={self.scale_mode!r}, min_scale={self.min_scale}"


@register_head("gaussian")
class GaussianHead(_LocScaleHead):
    """Diagonal Gaussian. ``scale``: "fixed" (σ = fixed_scale, P=1), "exp" (raw is log σ, P=2),
    "softplus" (σ = softplus(raw) + min_scale, P=2) or "shared" (one learned log σ, P=1)."""

    family = Normal


@register_head("laplace")
class LaplaceHead(_LocScaleHead):
    """Factorised Laplace (an L1 reconstruction as a likelihood); same scale options as Gaussian."""

    family = Laplace


class StableContinuousBernoulli(ContinuousBernoulli):
    """torch's ContinuousBernoulli with its log normaliser computed from the logits η.

    log C(λ) = log(2 atanh(1 - 2λ) / (1 - 2λ)) = log|η| - log tanh(|η|/2), with η = logit(λ).
    torch computes it from λ, which in float32 saturates at λ = eps for |η| > ~16 (the normaliser
    freezes at log C ≈ 2.77 instead of growing as log|η|) and loses digits just outside its
    Taylor window (|λ - 0.5| ≈ 1e-3), where its gradient is off by tens of percent. In η the
    closed form is stable for |η| ≥ 0.1; below that a Taylor series in η is exact to float64 noise:
    log C = log 2 + η²/12 - 7η⁴/1440 + 31η⁶/90720 + O(η⁸).
    """

    _TAYLOR_BELOW = 0.1

    def _cont_bern_log_norm(self) -> Tensor:
        eta = self.logits
        magnitude = eta.abs()
        small = magnitude < self._TAYLOR_BELOW
        a = torch.where(small, torch.ones_like(magnitude), magnitude)  # keeps the unused branch finite
        # log tanh(a/2) = log(1 - e^-a) - log(1 + e^-a)
        closed = a.log() - torch.log(-torch.expm1(-a)) + torch.log1p(torch.exp(-a))
        eta2 = eta * eta
        taylor = math.log(2.0) + eta2 * (1.0 / 12.0 + eta2 * (-7.0 / 1440.0 + eta2 * (31.0 / 90720.0)))
        return torch.where(small, taylor, closed)


@register_head("continuous_bernoulli")
class ContinuousBernoulliHead(Head):
    """Continuous Bernoulli on [0, 1] from logits (the properly normalised likelihood for
    pixel intensities in [0, 1]); log_prob = -BCE-with-logits + log C(λ)."""

    params_per_dim = 1

    def base_distribution(self, logits: Tensor) -> Distribution:  # type: ignore[override]
        return StableContinuousBernoulli(logits=logits, validate_args=False)


# ---------------------------------------------------------------------------- mixtures


@register_head("mixture")
class MixtureHead(Head):
    """K-component mixture of diagonal Gaussians or Laplaces over a vector target (an MDN's head).

    ``raw`` (..., K + 2*K*D) is laid out ``[K mixing logits | K*D locs | K*D raw scales]``, with
    locs and scales component-major ((..., K, D) after reshaping). log_prob is a ``logsumexp`` over
    components (``MixtureSameFamily``), finite at extreme logits and tiny scales.
    """

    def __init__(
        self,
        event_shape: Sequence[int] = (1,),
        *,
        num_components: int = 5,
        component: str = "gaussian",
        scale: str = "softplus",
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__(event_shape)
        if len(self.event_shape) > 1:
            raise ConfigError(f"MixtureHead models vectors: event_shape must be (D,) or (); got {self.event_shape}")
        if int(num_components) < 1:
            raise ConfigError(f"MixtureHead: num_components must be at least 1; got {num_components}")
        families = {"gaussian": Normal, "laplace": Laplace}
        if component not in families:
            raise ConfigError(f"MixtureHead: component must be one of {', '.join(families)}; got {component!r}")
        if scale not in _LEARNED_SCALE_MODES:
            raise ConfigError(f"MixtureHead: scale must be one of {', '.join(_LEARNED_SCALE_MODES)}; got {scale!r}")
        if not min_scale > 0:
            raise ConfigError("MixtureHead: min_scale must be positive")
        self.num_components = int(num_components)
        self.component = component
        self.family = families[component]
        self.scale_mode = scale
        self.min_scale = float(min_scale)
        # Per event element: K locs and K scales; the K mixing logits come on top (see num_outputs).
        self.params_per_dim = 2 * self.num_components

    @property
    def num_outputs(self) -> int:
        return self.num_components * (1 + 2 * self.event_numel)

    @property
    def out_channels(self) -> int:
        """A mixture head reads flat outputs only, so its channel count is its output width."""
        return self.num_outputs

    def _split(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if raw.dim() < 1 or raw.shape[-1] != self.num_outputs:
            raise DataError(f"MixtureHead expects raw outputs shaped (..., {self.num_outputs}); got {tuple(raw.shape)}")
        k, d = self.num_components, self.event_numel
        batch = raw.shape[:-1]
        logits = raw[..., :k]  # (..., K)
        component_shape = (*batch, k, *self.event_shape)
        loc = raw[..., k : k + k * d].reshape(component_shape)  # (..., K, D)
        raw_scale = raw[..., k + k * d :].reshape(component_shape)  # (..., K, D)
        return logits, loc, positive_scale(raw_scale, self.scale_mode, self.min_scale)

    def components(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(log_weights (..., K), loc (..., K, D), scale (..., K, D)); log_weights are normalised."""
        logits, loc, scale = self._split(raw)
        return torch.log_softmax(logits, dim=-1), loc, scale

    def forward(self, raw: Tensor) -> Distribution:
        logits, loc, scale = self._split(raw)
        mixing = Categorical(logits=logits, validate_args=False)
        comps = Independent(self.family(loc, scale, validate_args=False), len(self.event_shape), validate_args=False)
        return MixtureSameFamily(mixing, comps, validate_args=False)

    def extra_repr(self) -> str:
        return (
            f"event_shape={self.event_shape}, num_components={self.num_components}, "
            f"component={self.component!r}, scale={self.scale_mode!r}, min_scale={self.min_scale}"
        )


# ---------------------------------------------------------------------------- factory


def make_head(name: str, event_shape: Sequence[int] = (), **options: Any) -> Head:
    """Build a registered head by name: ``make_head("gaussian", (2,), scale="softplus")``.

    An unknown name or option raises :class:`~genlab.errors.ConfigError` listing the valid ones.
    """
    cls = HEADS.get(name)
    signature = inspect.signature(cls.__init__)
    try:
        signature.bind(None, event_shape, **options)
    except TypeError as exc:
        valid = ", ".join(p for p in signature.parameters if p not in ("self", "event_shape"))
        raise ConfigError(f"head {name!r}: {exc}; valid options: {valid or '(none)'}") from None
    return cls(event_shape, **options)
