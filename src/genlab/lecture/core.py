"""The lecture's registry: each figure is an id, the slides it redoes, its claim in one sentence, a
function that makes it and a check that fails when the claim does not hold.

A figure's ``make(ctx)`` returns ``{"paths": [PNG, ...], **numbers}``; its ``check(numbers,
budget)`` returns ``[(condition, passed), ...]``, each condition a sentence with the measured values
in it, so the page can say exactly what was tested. Trained models that several figures share are
declared once with :func:`shared_run` and made by :meth:`Context.shared`: trained on first use,
saved under the runs folder (config.json + safetensors, resumable checkpoints), and loaded from
there by every later figure and every later call. Training a shared run holds a file lock on it, so
several processes over one runs folder (``genlab lecture --jobs N``, or two commands) train each run once:
the first trains it, the others wait and load what it saved. A recipe whose loss reads another shared
run's frozen network (a feature-consistent VAE's feature network) names that run's model folder with
:meth:`Context.model_folder`; training it trains the other run first.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import torch

from ..checkpoint import latest_checkpoint, load
from ..errors import ConfigError, DataError, GenlabError
from ..registry import MODELS, Registry

log = logging.getLogger(__name__)

Budget = Literal["smoke", "full"]
BUDGETS: tuple[str, ...] = ("smoke", "full")
Conditions = list[tuple[str, bool]]


CELEBA_PHOTOS = "it shows real CelebA photographs (or their reconstructions), which CelebA's terms forbid redistributing"


class DataAbsent(GenlabError):
    """The real data a figure needs is not on this machine: the figure is skipped, not failed."""


@dataclasses.dataclass(frozen=True)
class Figure:
    id: str
    slides: str  # "11-13"
    claim: str  # one sentence
    part: str  # the lecture module that holds it (heads, gans, ...)
    make: Callable[["Context"], dict[str, Any]]
    check: Callable[[dict[str, Any], str], Conditions]
    smoke_note: str = ""  # how the smoke budget's check is weaker than the full one
    run: str = ""  # what a run given by ``genlab figure ID --run RUN`` must hold ("" = the figure takes none)
    # why this figure's PNGs may not be published ("" = they may): real images under terms that forbid
    # redistribution (CelebA's). ``public`` names the PNGs of such a figure that show generated images only.
    restricted: str = ""
    public: tuple[str, ...] = ()

    @property
    def first_slide(self) -> int:
        return int(self.slides.split("-")[0].split(",")[0])


FIGURES: Registry[Figure] = Registry("lecture figure")


def lecture_figure(id: str, *, slides: str, claim: str, check: Callable[[dict[str, Any], str], Conditions],
                   smoke_note: str = "", run: str = "", restricted: str = "",
                   public: tuple[str, ...] = ()) -> Callable[[Callable[["Context"], dict[str, Any]]], Callable[["Context"], dict[str, Any]]]:
    """Register ``make(ctx) -> {"paths": [...], **numbers}`` as figure ``id``. ``run`` says which
    trained run the figure accepts in place of its own (``ctx.run``), e.g. "an MDN run". ``restricted`` says
    why its PNGs stay out of a published gallery, ``public`` which of them may go in all the same."""

    def decorator(make: Callable[["Context"], dict[str, Any]]) -> Callable[["Context"], dict[str, Any]]:
        part = make.__module__.rsplit(".", 1)[-1]
        FIGURES.register(id)(Figure(id, slides, claim, part, make, check, smoke_note, run, restricted, public))
        return make

    return decorator


# A shared run: fn(ctx) -> (model name, model config, training data, TrainConfig overrides).
RunRecipe = Callable[["Context"], tuple[str, dict[str, Any], Any, dict[str, Any]]]
SHARED_RUNS: Registry[RunRecipe] = Registry("shared lecture run")
shared_run = SHARED_RUNS.register


def default_data_root() -> Path | None:
    """Where the real datasets are: ``$GENLAB_DATA``, else ``../shared/data`` from here, if present."""
    for candidate in (os.environ.get("GENLAB_DATA"), "../shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@dataclasses.dataclass
class Context:
    """What a figure's ``make`` gets: the seed, the budget, its own output folder, the shared runs
    folder, where real data lives and, for a figure that accepts one (``Figure.run``), a trained run
    folder to use instead of the shared run it would train."""

    seed: int = 0
    budget: Budget = "smoke"
    out: Path = Path("lecture")
    runs: Path = Path("lecture/runs")
    data_root: Path | None = None
    run: Path | None = None  # genlab figure ID --run RUN
    _models: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)  # loaded this process
    _recipes: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict, repr=False)
    _data: dict[tuple[Any, ...], Any] = dataclasses.field(default_factory=dict, repr=False)  # datasets loaded once
    _folders: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # model_folder's path -> run
    trained: list[str] = dataclasses.field(default_factory=list, repr=False)  # shared runs this process trained

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ConfigError(f"unknown budget {self.budget!r}; valid: {', '.join(BUDGETS)}")
        self.out, self.runs = Path(self.out), Path(self.runs)
        self.run = Path(self.run) if self.run is not None else None

    def given_run(self, family: str | tuple[str, ...]) -> Any:
        """The model of ``ctx.run`` in eval mode, or None when no run was given; one clear error when
        it holds another family's model."""
        if self.run is None:
            return None
        families = (family,) if isinstance(family, str) else family
        if str(self.run) not in self._models:
            model = load(self.run)
            if model.registry_name not in families:
                raise ConfigError(f"{self.run} holds a {model.registry_name!r} model; this figure takes a "
                                  f"{' or '.join(families)} run")
            self._models[str(self.run)] = model.eval()
        return self._models[str(self.run)]

    def pick(self, smoke: Any, full: Any) -> Any:
        """The smoke or the full value of a knob."""
        return smoke if self.budget == "smoke" else full

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def data_path(self, name: str) -> Path | None:
        """``data_root/name`` when it exists."""
        if self.data_root is None:
            return None
        path = Path(self.data_root) / name
        return path if path.exists() else None

    def dataset(self, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        """``load()`` once per ``key`` for the whole lecture (the figures share one copy of MNIST)."""
        if key not in self._data:
            self._data[key] = load()
        return self._data[key]

    def recipe(self, name: str) -> tuple[str, dict[str, Any], Any, dict[str, Any]]:
        """Shared run ``name``'s (model name, model config, training data, training knobs), made once."""
        if name not in self._recipes:
            self._recipes[name] = SHARED_RUNS.get(name)(self)
        return self._recipes[name]  # type: ignore[return-value]

    def run_dir(self, name: str) -> Path:
        """The folder of shared run ``name``: named by budget, seed and a fingerprint of the recipe, so a
        changed recipe trains afresh instead of reusing a stale model."""
        model_name, config, data, train = self.recipe(name)
        # a frozen network is named by its run's folder name (fingerprint included), not by where the runs
        # folder is: moving the runs keeps the fingerprint, a changed recipe of that run changes it
        frozen = MODELS.get(model_name).frozen_inputs
        config = {k: Path(v).parent.name if k in frozen and v in self._folders else v for k, v in config.items()}
        key = {"model": model_name, "config": config, "train": {k: v for k, v in train.items() if k != "callbacks"},
               "data": [data.info.get("name"), len(data), list(data.x.shape[1:])]}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return self.runs / f"{name}-{self.budget}-seed{self.seed}-{digest}"

    def model_folder(self, name: str) -> str:
        """Where shared run ``name`` saves its model: for a recipe whose config names it as a frozen
        network (a model's ``frozen_inputs``); training that recipe's run trains (or loads) ``name`` first."""
        folder = str(self.run_dir(name) / "model")
        self._folders[folder] = name
        return folder

    def shared(self, name: str) -> Any:
        """The trained model of shared run ``name`` (in eval mode): loaded when its folder holds a
        finished model, resumed from its last checkpoint when it holds one, trained otherwise."""
        if name in self._models:
            return self._models[name]
        folder = self.run_dir(name)
        with run_lock(folder):  # another process may be training it: wait, then load what it saved
            if (folder / "model" / "config.json").is_file():
                model = load(folder / "model")
            else:
                model = self._train(name, folder, resume=latest_checkpoint(folder / "checkpoints") is not None)
                self.trained.append(name)
        model.eval()
        self._models[name] = model
        return model

    def _train(self, name: str, folder: Path, *, resume: bool) -> Any:
        from ..api import attach_frozen_inputs
        from ..models import build_model
        from ..training import TrainConfig, Trainer
        from ..viz import plot_history

        model_name, config, data, train = self.recipe(name)
        torch.manual_seed(self.seed)
        model = build_model(model_name, config)
        # the frozen networks its loss reads: another shared run's model is trained (or loaded) first
        attach_frozen_inputs(model, lambda folder: self.shared(self._folders[folder]) if folder in self._folders else load(folder))
        steps = train.get("max_steps") or 10**9
        options = dict(batch_size=128, lr=1e-3, seed=self.seed, progress=False, tensorboard=False, device="cpu",
                       fused_optimizer=False, eval_every=10**9, sample_every=10**9, log_every=100,
                       # the full budget checkpoints four times so that a killed run resumes
                       checkpoint_every=max(1, steps // 4) if self.budget == "full" else 10**9, keep_checkpoints=1)
        options.update(train)
        callbacks = options.pop("callbacks", [])
        log.info("training shared run %s (%s)", name, model_name)
        Trainer(model, data, TrainConfig(**options), out_dir=folder, callbacks=callbacks,
                plot_curves=plot_history).fit(resume=resume)
        # the exported artifact (EMA weights where the recipe keeps an EMA), exactly what a later call
        # loads: the first call and every call after it judge the same model
        return load(folder / "model")


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on a shared run's folder, across processes (``flock`` on a file beside it; the lock
    goes with the process, so a killed holder frees it). Where ``fcntl`` is missing (Windows) it is a no-op,
    and one process per runs folder must be used there."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_dataset_or_absent(spec: Any, split: str = "train") -> Any:
    """:func:`genlab.data.load_dataset`, with missing files reported as :class:`DataAbsent`."""
    from ..data import load_dataset

    try:
        return load_dataset(spec, split)
    except DataError as exc:
        raise DataAbsent(str(exc)) from None
