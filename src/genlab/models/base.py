"""The model contract every genlab family follows.

A family is one ``nn.Module`` subclass of :class:`GenerativeModel` with a dataclass config beside it.
It owns its objective: ``loss(batch, phase) -> LossOutput(total, terms)``. Multi-player models (GANs)
list several :class:`Phase` objects — which sub-modules a phase updates, how often, with which
learning rate — and the one :class:`~genlab.training.Trainer` runs them in order on every batch
(the phase design of stylegan2-ada's ``Gmain``/``Dmain``/``Dreg``). ``forward`` is inference.

A batch is a tuple of tensors whose meaning the family documents: ``(x,)`` or ``(x, y)`` for
images and labels, ``(a, b)`` for paired translation, ``(inputs, targets)`` for regression.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Iterator, Sequence

import torch
from torch import Tensor, nn

from ..checkpoint import save_model
from ..config import Config
from ..errors import DataError, GenlabError
from ..registry import build_model  # noqa: F401  (re-exported: genlab.models.base.build_model)

Batch = Sequence[Tensor]


@dataclasses.dataclass
class LossOutput:
    """``total`` is what gets back-propagated; ``terms`` are named scalars the Trainer logs
    (``recon``, ``kl``, ``adv``, ``l1``, ...). Terms may carry graph; the Trainer detaches them."""

    total: Tensor
    terms: dict[str, Tensor] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One player's update: the parameters of ``modules`` (attribute names on the model; ``None``
    means every parameter), stepped on steps where ``step % every == 0`` by the optimizer named
    ``optimizer`` (default: the phase's own name). Phases that name one optimizer share it, as a
    player's main and lazy regularisation phases do. ``lr`` and ``betas`` override the train config."""

    name: str
    modules: tuple[str, ...] | None = None
    every: int = 1
    lr: float | None = None
    betas: tuple[float, float] | None = None
    optimizer: str | None = None

    @property
    def optimizer_name(self) -> str:
        return self.optimizer or self.name


class GenerativeModel(nn.Module):
    """Base class of every registered model. Subclasses set ``config_class`` and implement ``loss``."""

    config_class: ClassVar[type[Config]]
    registry_name: ClassVar[str]
    # Section -> field defaults the CLI applies before config files and overrides, e.g.
    # {"train": {"epochs": 30}, "data": {"binarize": "dynamic"}}: what this family trains well with.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    preview_caption: ClassVar[str | None] = None  # what preview()'s grid shows, written above samples.png
    # train.channels_last=auto keeps conv weights NHWC where measured faster (benchmarks/precision_throughput.py)
    channels_last_faster: ClassVar[bool] = False
    frozen_inputs: ClassVar[dict[str, Any]] = {}  # config field -> nn.frozen.FrozenInput: a network a loss reads

    def __init__(self, config: Config) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise GenlabError(f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # ------------------------------------------------------------------ training contract
    def phases(self) -> list[Phase]:
        """The updates one training step makes. Single-objective models have one phase."""
        return [Phase("main")]

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        raise NotImplementedError

    def phase_parameters(self, phase: Phase) -> list[nn.Parameter]:
        if phase.modules is None:
            return [p for p in self.parameters() if p.requires_grad]
        params: list[nn.Parameter] = []
        for name in phase.modules:
            module = getattr(self, name, None)
            if not isinstance(module, nn.Module):
                raise GenlabError(f"phase {phase.name!r} names {name!r}, which is not a sub-module of {type(self).__name__}")
            params.extend(p for p in module.parameters() if p.requires_grad)
        return params

    def training_extras(self) -> dict[str, Any]:
        """State that shapes the rest of training but is not part of the shareable model (e.g.
        CycleGAN's pools of past generated images). The Trainer saves it in the training state of
        every checkpoint and hands it back to :meth:`load_training_extras` on resume."""
        return {}

    def load_training_extras(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`training_extras` returned (tensors arrive on the CPU)."""
        if state:
            raise GenlabError(f"{type(self).__name__} keeps no training extras, but the checkpoint holds {sorted(state)}")

    def ema_modules(self) -> list[str] | None:
        """Sub-modules whose weights an EMA tracks (``None`` = the whole model). GANs return
        ``["generator"]``: only the sampler benefits from averaging."""
        return None

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        """Per-batch evaluation metrics (batch means). Default: every phase's loss terms."""
        out: dict[str, Tensor] = {}
        for phase in self.phases():
            result = self.loss(batch, phase.name)
            prefix = "" if len(self.phases()) == 1 else f"{phase.name}/"
            out[f"{prefix}loss"] = result.total.detach()
            out.update({f"{prefix}{k}": v.detach() for k, v in result.terms.items()})
        return out

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor | None:
        """Images in [0, 1], shape (N, C, H, W), that show training progress (a sample grid, or
        input/output/target rows). ``None`` when the family has nothing to draw."""
        return None

    # ------------------------------------------------------------------ generation contract
    def sample(self, n: int, *, generator: torch.Generator | None = None, **kwargs: Any) -> Tensor:
        raise GenlabError(f"model {self.registry_name!r} cannot sample unconditionally")

    # ------------------------------------------------------------------ data adaptation
    @classmethod
    def adapt_config(cls, config: dict[str, Any], data_info: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        """Fill config fields that the data determines (``image_shape``, ``num_classes``, ...)
        unless the user set them. Any config field whose name is a key of ``data_info`` is filled."""
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        out = dict(config)
        for key, value in data_info.items():
            if key in names and key not in explicit and value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str, **kwargs: Any) -> None:
        save_model(self, directory, **kwargs)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def named_submodules(self) -> Iterator[tuple[str, nn.Module]]:
        return self.named_children()


def as_images(x: Tensor, image_shape: Sequence[int], owner: str) -> Tensor:
    """A batch of images (B, C, H, W) for a model of ``image_shape``: as is, or a flat (B, C*H*W)
    batch viewed (no copy) as images. Any other shape is a :class:`DataError` naming both."""
    shape = tuple(image_shape)
    if tuple(x.shape[1:]) == shape:
        return x
    if x.dim() == 2 and x.shape[1] == math.prod(shape):
        return x.view(x.shape[0], *shape)  # (B, C*H*W) -> (B, C, H, W)
    dims = ", ".join(map(str, shape))
    raise DataError(f"{owner} expects images shaped (B, {dims}) or flat (B, {math.prod(shape)}), got {tuple(x.shape)}")
