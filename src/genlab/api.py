"""The public functions the CLI calls: build a run from a model name and overrides, train it,
reload it, and draw/evaluate from it. Everything here is usable from Python as is.

A run folder holds ``run.json`` (the fully resolved model, data and train configs, and the history of
settings changed on resume), the Trainer's
``metrics.csv``, ``samples/``, ``curves.png``, ``checkpoints/``, ``run.lock`` (held by the one process
training it) and, at the end, ``model/`` (the shareable ``config.json`` + ``model.safetensors``) plus the
family's report figures.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import checkpoint as ckpt
from .config import apply_overrides, load_config_file, merge
from .data.base import ArrayDataset, DataConfig, data_config_from_spec, load_dataset
from .errors import CheckpointError, ConfigError, GenlabError, StorageError
from .latent.protocols import require
from .models import build_model
from .models.base import GenerativeModel
from . import reports  # noqa: F401  (registers every family's evaluator and reporter)
from .registry import EVALUATORS, MODELS, REPORTERS
from .precision import autocast, resolve_precision
from .runtime import LOCK_NAME, barrier, init_distributed, run_lock, seed_everything, select_device
from .training.trainer import RESUMABLE_FIELDS, FitResult, TrainConfig, Trainer, check_keep_best
from .viz import plot_history

log = logging.getLogger(__name__)
RUN_FILE = "run.json"


@dataclasses.dataclass
class RunSpec:
    """Everything needed to rebuild a run: model name and config, data and train configs."""

    model: str
    model_config: dict[str, Any]
    data: DataConfig
    train: TrainConfig
    # settings changed on resume: [{"step": 800, "train.lr": [old, new], ...}, ...]
    changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {"model": self.model, "model_config": self.model_config, "data": self.data.to_dict(), "train": self.train.to_dict()}
        return {**out, "changes": self.changes} if self.changes else out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        return cls(d["model"], d["model_config"], DataConfig.from_dict(d["data"]), TrainConfig.from_dict(d["train"]),
                   list(d.get("changes", [])))


def resolve(
    model: str,
    *,
    config_file: str | Path | None = None,
    data: str | None = None,
    overrides: Sequence[str] = (),
    base: RunSpec | None = None,
) -> tuple[RunSpec, set[str]]:
    """Layer family defaults < config file < ``--data`` < dotted overrides; validate each section.

    Returns the spec and the model fields the user set explicitly (data-derived fields such as
    ``image_shape`` fill in only the others)."""
    cls = MODELS.get(model)
    if base is not None:
        raw = {"model": dict(base.model_config), "data": base.data.to_dict(), "train": base.train.to_dict()}
        explicit = set(base.model_config)
    else:
        raw = merge({"model": {}, "data": {}, "train": {}}, getattr(cls, "defaults", {}))
        explicit = set()
    if config_file is not None:
        file = load_config_file(config_file)
        unknown = set(file) - {"model", "data", "train"}
        if unknown:
            raise ConfigError(f"config file {config_file} has unknown section(s) {sorted(unknown)}; valid: model, data, train")
        raw = merge(raw, file)
        explicit |= set(file.get("model", {}))
    if data is not None:
        spec = data_config_from_spec(data)
        raw["data"] = {**raw["data"], "name": spec.name, "path": spec.path}
    schema = {"model": cls.config_class, "data": DataConfig, "train": TrainConfig}
    raw = apply_overrides(raw, list(overrides), schema)
    explicit |= {o.removeprefix("--").split("=", 1)[0].split(".")[1] for o in overrides if o.removeprefix("--").startswith("model.")}
    cls.config_class.from_dict(raw["model"])  # fail on a bad model field before loading any data
    return RunSpec(model, raw["model"], DataConfig.from_dict(raw["data"]), TrainConfig.from_dict(raw["train"])), explicit


def build(spec: RunSpec, explicit: set[str] | None = None) -> tuple[GenerativeModel, ArrayDataset, ArrayDataset | None]:
    """Load the data and build the model, filling data-determined config fields (``image_shape``,
    ``num_classes``, ...) that the user did not set."""
    train_data, test_data = load_dataset(spec.data, "train"), _test_split(spec.data)
    cls = MODELS.get(spec.model)
    config = cls.adapt_config(spec.model_config, train_data.info, explicit if explicit is not None else set(spec.model_config))
    spec.model_config = cls.config_class.from_dict(config).to_dict()
    seed_everything(spec.train.seed)  # the initial weights are part of what a seed reproduces
    model = build_model(spec.model, spec.model_config)
    attach_frozen_inputs(model)
    return model, train_data, test_data


def attach_frozen_inputs(model: GenerativeModel, load: Callable[[str], Any] = ckpt.load) -> None:
    """Load each frozen network a loss of ``model`` reads (``model.frozen_inputs``: CycleGAN's semantic
    classifier, the feature-consistent VAE's judge) with ``load(folder)`` and hand it over; the model
    itself never opens a path."""
    for field, spec in model.frozen_inputs.items():
        folder = getattr(model.config, field, None)
        if folder is None or getattr(model.config, spec.weight) <= 0:  # not named, or its loss term is off
            continue
        network = load(folder)
        if spec.needs is not None:
            require(network, spec.needs, purpose=f"model.{field}")
        getattr(model, spec.setter)(network)


def _test_split(data: DataConfig) -> ArrayDataset | None:
    """The held-out split of ``data``; None for data that has none."""
    try:
        return load_dataset(data, "test")
    except ConfigError:
        return None


def train(
    model: str | None = None,
    *,
    config_file: str | Path | None = None,
    data: str | None = None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    resume: bool | str | Path = False,
    dry_run: bool = False,
    force: bool = False,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (a registered name) and return a summary dict (run folder, steps, metrics).

    ``resume=RUN`` (or ``resume=True`` with ``out``) continues a run from its last usable checkpoint
    with the configs saved in its ``run.json`` (from the initial weights when none is usable). Further
    ``overrides`` may change the schedule (``RESUMABLE_FIELDS``: lr, schedule, step budget, clipping,
    cadence, EMA decay), which takes effect at the resumed step and is appended to the history of changes
    in ``run.json`` (every entry kept: the step it took effect at and each field's old and new value); a
    change of the model, the data or the data order is refused. The whole request is validated before
    anything is written. ``out`` must be a new or empty folder or a genlab run, unless ``force``.

    One process trains in a run folder at a time (:func:`genlab.runtime.run_lock`): a second one is
    refused with :class:`~genlab.errors.RunInUseError`. A full disk, a read-only folder or an ``out``
    that is a file raise :class:`~genlab.errors.StorageError` naming the folder; a full disk leaves the
    last complete checkpoint intact, and the message says so."""
    changes: dict[str, Any] = {}
    if resume:
        if resume is True and out is None:
            raise ConfigError("--resume needs the run folder: --resume RUN or --out RUN --resume")
        run_dir = Path(out if resume is True else resume)  # type: ignore[arg-type]
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"cannot resume {run_dir}: it is a file, not a run folder")
        if not (run_dir / RUN_FILE).is_file():
            raise CheckpointError(f"cannot resume: {run_dir / RUN_FILE} not found")
        saved = read_run(run_dir)
        if model is not None and model != saved.model:
            raise ConfigError(f"run {run_dir} trains {saved.model!r}, not {model!r}")
        spec, explicit = resolve(saved.model, overrides=overrides, base=saved)
        changes = _changes_on_resume(saved, spec)
        spec.changes = list(saved.changes)  # the history accumulates: a resume adds to it, never replaces it
    else:
        if model is None:
            raise ConfigError("name a model to train; valid: " + ", ".join(sorted(MODELS)))
        spec, explicit = resolve(model, config_file=config_file, data=data, overrides=overrides)
        run_dir = Path(out) if out is not None else Path("runs") / f"{model}-{data_label(spec.data)}"
        _check_new_run_folder(run_dir, force)

    net, train_data, test_data = build(spec, explicit)
    if test_data is not None:  # a keep_best metric that does not exist fails here, dry run or not
        check_keep_best(net, test_data.batch(torch.arange(min(spec.train.batch_size, len(test_data)))), spec.train)
    if dry_run:  # one loss on the CPU, at the precision the run would use
        precision = resolve_precision(spec.train.precision, select_device(spec.train.device))
        batch = train_data.batch(torch.arange(min(spec.train.batch_size, len(train_data))))
        with torch.no_grad(), autocast(precision, torch.device("cpu")):
            losses = {p.name: float(net.loss(batch, p.name).total) for p in net.phases()}
        return {"run_dir": str(run_dir), "dry_run": True, "spec": spec.to_dict(), "parameters": net.num_parameters(),
                "precision": precision,
                "train_examples": len(train_data), "test_examples": len(test_data) if test_data is not None else 0,
                "first_batch_loss": losses}

    device = select_device(spec.train.device)
    info = init_distributed(device)  # joined here so the lock and the run record are settled among the ranks
    try:
        with run_lock(run_dir, info, device):
            return _train_locked(spec, changes, net, train_data, test_data, run_dir, resume=bool(resume),
                                 callbacks=callbacks)
    except GenlabError:
        raise
    except OSError as exc:
        error = _storage_error(exc, run_dir)
        if error is None:
            raise
        raise error from None


def _train_locked(spec: RunSpec, changes: dict[str, Any], net: GenerativeModel, train_data: ArrayDataset,
                  test_data: ArrayDataset | None, run_dir: Path, *, resume: bool,
                  callbacks: list[Any] | None) -> dict[str, Any]:
    """:func:`train` from the point where this process holds the run folder."""
    if not resume and ckpt.latest_checkpoint(run_dir / "checkpoints") is not None:  # a run started meanwhile
        raise ConfigError(f"{run_dir} already holds a run; pass --resume {run_dir} to continue it or choose another --out")
    resume_from = ckpt.latest_checkpoint(run_dir / "checkpoints") if resume else None
    if resume and resume_from is None:
        log.info("no usable checkpoint in %s: training starts again from the initial weights (the seed reproduces them)", run_dir)
    if changes:
        spec.changes.append({"step": ckpt.checkpoint_step(resume_from) if resume_from is not None else 0, **changes})
    trainer = Trainer(net, train_data, spec.train, eval_data=test_data, out_dir=run_dir, callbacks=callbacks,
                      plot_curves=plot_history)
    if trainer.dist.is_main:
        # rank 0 alone writes the record (and, in fit, cleans what killed writes left): a rank writing a
        # temporary file while rank 0 cleans would lose it. The others wait for it below.
        # the intra-op threads the run uses (train.threads, or torch's default when that is unset)
        record = json.dumps({**spec.to_dict(), "threads_used": torch.get_num_threads(), "precision_used": trainer.precision,
                             "channels_last_used": trainer.channels_last},
                            indent=2, sort_keys=True)
        if not (run_dir / RUN_FILE).is_file() or (run_dir / RUN_FILE).read_text() != record:
            ckpt.atomic_write_text(run_dir / RUN_FILE, record)
    barrier(trainer.dist)
    result: FitResult = trainer.fit(resume=resume_from is not None)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "steps": result.step, **result.last_eval}
    if trainer.dist.is_main and spec.model in REPORTERS and spec.train.report:
        summary.update(_report(spec.model, run_dir, train_data, test_data, device=trainer.device))
    if trainer.dist.is_main:
        ckpt.atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2, sort_keys=True, default=float))
    return summary


def _report(model: str, run_dir: Path, train_data: ArrayDataset, test_data: ArrayDataset | None, *,
            device: torch.device | str = "cpu") -> dict[str, Any]:
    """The family's end-of-run report on the exported model: its figures in ``run_dir``, its numbers, and
    ``report_seconds``, what it cost (logged: ``--train.report=false`` skips it, ``genlab report RUN`` runs it later)."""
    started = time.perf_counter()
    summary = dict(REPORTERS.get(model)(ckpt.load(run_dir / "model", device=device), run_dir, train_data, test_data) or {})
    summary["report_seconds"] = time.perf_counter() - started
    log.info("end-of-run report: %.1f s (--train.report=false skips it; `genlab report RUN` draws it later)",
             summary["report_seconds"])
    return summary


def report(run_dir: str | Path) -> dict[str, Any]:
    """Run the family's end-of-run report on a finished run (one trained with ``train.report=false``, or to
    redraw it) and merge its numbers into ``metrics.json``."""
    run_dir = Path(run_dir)
    spec = read_run(run_dir)
    if spec.model not in REPORTERS:
        raise ConfigError(f"{spec.model} has no end-of-run report")
    if not (run_dir / "model").exists():
        raise CheckpointError(f"{run_dir} has no exported model/ yet: finish the run first (genlab train --resume {run_dir})")
    ckpt.resolve_model_dir(run_dir)  # a damaged model/ is refused in one line
    summary = _report(spec.model, run_dir, load_dataset(spec.data, "train"), _test_split(spec.data))
    metrics = run_dir / "metrics.json"
    previous = json.loads(metrics.read_text()) if metrics.is_file() else {}
    ckpt.atomic_write_text(metrics, json.dumps({**previous, **summary}, indent=2, sort_keys=True, default=float))
    return summary


def _check_new_run_folder(run_dir: Path, force: bool) -> None:
    """Refuse an ``out`` that is (or lies under) a file, that holds a run, or that holds foreign files."""
    for folder in (run_dir, *run_dir.parents):
        if folder.exists() and not folder.is_dir():
            where = f"--out {run_dir}" if folder == run_dir else f"{folder} (above --out {run_dir})"
            raise ConfigError(f"{where} is a file, not a folder; choose another --out")
        if folder.is_dir():
            break
    if ckpt.latest_checkpoint(run_dir / "checkpoints") is not None:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume {run_dir} to continue it or choose another --out")
    if (not force and run_dir.is_dir() and not (run_dir / RUN_FILE).is_file()
            and any(p.name != LOCK_NAME for p in run_dir.iterdir())):
        raise ConfigError(f"{run_dir} is not empty and is not a genlab run: choose another --out, or pass --force to write into it")


def _storage_error(exc: OSError, run_dir: Path) -> StorageError | None:
    """One line for the file-system failures a user can fix (full disk, no permission, a file in the way);
    ``None`` for the others."""
    where = exc.filename or run_dir
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
        except OSError:
            latest = None
        safe = (f"the last complete checkpoint, {latest}, is intact: free space and continue with genlab train --resume {run_dir}"
                if latest is not None else "no checkpoint was complete yet: free space and start the run again")
        return StorageError(f"no space left on the disk of {run_dir} (writing {where}); free space there, e.g. old runs "
                            f"or checkpoints/{ckpt.DIVERGED_PREFIX}* folders; {safe}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"cannot write {where} ({exc.strerror or 'permission denied'}): the run folder {run_dir} must be "
                            "writable; choose another --out or change its permissions")
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return StorageError(f"cannot make the run folder {run_dir}: {where} is in the way (a file, not a folder); "
                            "choose another --out")
    return None


def _changes_on_resume(saved: RunSpec, spec: RunSpec) -> dict[str, Any]:
    """``{"train.lr": [old, new], ...}`` for the schedule fields a resume changes; a ConfigError naming
    the first field that may not change (model, data, data order)."""
    config_class = MODELS.get(saved.model).config_class
    sections = [
        ("model", config_class.from_dict(saved.model_config).to_dict(), config_class.from_dict(spec.model_config).to_dict()),
        ("data", saved.data.to_dict(), spec.data.to_dict()),
        ("train", saved.train.to_dict(), spec.train.to_dict()),
    ]
    changes: dict[str, Any] = {}
    for section, old, new in sections:
        for key in sorted(new):
            if old.get(key) == new[key]:
                continue
            if section != "train" or key not in RESUMABLE_FIELDS:
                what = {"model": "the model", "data": "the data"}.get(section, "the data order or the optimizer")
                raise ConfigError(f"cannot change {section}.{key} on resume ({old.get(key)!r} -> {new[key]!r} would change "
                                  f"{what}); start a new run with --out instead")
            changes[f"{section}.{key}"] = [old.get(key), new[key]]
    return changes


def data_label(data: DataConfig | str | None) -> str:
    """A file-name-safe name for data: the dataset's, or for a path the folder's (or file's) name;
    ``None`` (a run's own test split) is ``test``."""
    if data is None:
        return "test"
    if isinstance(data, str):
        data = data_config_from_spec(data)
    if data.path and data.name == "auto":
        return Path(data.path.rstrip("/")).stem or "data"
    return data.name


def read_run(run_dir: str | Path) -> RunSpec:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise CheckpointError(f"not a genlab run folder (no {RUN_FILE}): {run_dir}")
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise TypeError(f"expected a JSON object, found a {type(record).__name__}")
        return RunSpec.from_dict(record)
    except UnicodeDecodeError:
        raise CheckpointError(f"corrupt run file {path}: not text (binary bytes); restore it from a copy, or start a new run") from None
    except KeyError as exc:
        raise CheckpointError(f"corrupt run file {path}: the key {exc} is missing") from None
    except (json.JSONDecodeError, TypeError, AttributeError, ConfigError) as exc:
        raise CheckpointError(f"corrupt run file {path}: {exc}") from None


def load_run(run_dir: str | Path, *, ema: bool = True, device: str = "cpu") -> tuple[GenerativeModel, RunSpec | None]:
    """The model of a run folder (or a bare model folder) and, for runs, its spec. A model folder
    inside a run (``RUN/model``, ``RUN/best``, a checkpoint) reads the spec of the run around it.

    A run folder gives its exported ``model/``. A run that has not exported one yet (still training, or
    stopped) gives its latest checkpoint, and a log line says which. A ``model/`` folder that is there
    but incomplete (no ``config.json`` or weights) is refused: it is damaged, and quietly reading an
    older checkpoint instead would report on other weights than the user asked about."""
    _check_model_folder(Path(run_dir))
    model = ckpt.load(run_dir, ema=ema, device=device)
    spec = None
    for folder in (Path(run_dir), *Path(run_dir).parents[:2]):
        if (folder / RUN_FILE).is_file():
            spec = read_run(folder)
            break
    return model, spec  # type: ignore[return-value]


def _check_model_folder(run_dir: Path) -> None:
    """For a run folder without an exported ``model/``: say that its latest checkpoint stands in (a damaged
    ``model/`` is refused by :func:`checkpoint.resolve_model_dir`)."""
    if (run_dir / ckpt.CONFIG_NAME).is_file() or (run_dir / "model").exists() or not (run_dir / RUN_FILE).is_file():
        return
    latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
    if latest is not None:
        log.info("%s has no exported model/ (the run has not finished): using its latest checkpoint, %s", run_dir, latest)


def run_data(spec: RunSpec | None, data: str | None, split: str = "test") -> ArrayDataset:
    """The dataset a run was trained on (``split``), or the one ``data`` names instead."""
    if data is not None:
        config = data_config_from_spec(data, spec.data if spec is not None else None)
    elif spec is not None:
        config = spec.data
    else:
        raise ConfigError("this model folder has no run.json: pass --data to name the data")
    return load_dataset(config, split)  # type: ignore[arg-type]


def sample(model: GenerativeModel, n: int, *, seed: int = 0, batch_size: int = 256, latent_density: str | None = None,
           fit_data: torch.Tensor | None = None, **options: Any) -> torch.Tensor:
    """``n`` samples in [0, 1] drawn with an explicit generator (reproducible for a seed). With
    ``latent_density`` (``gaussian`` / ``gmm:K``) the codes come from that density fitted to the
    encoded ``fit_data`` (an autoencoder's training images) instead of the model's prior."""
    if latent_density:
        from .latent import fit_latent_density, sample_images

        if fit_data is None:
            raise ConfigError("sampling from a fitted latent density needs fit_data (the training images to encode)")
        density = fit_latent_density(model, fit_data, latent_density)
        return sample_images(model, density, n, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator(model.device).manual_seed(seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            chunks.append(model.sample(min(batch_size, n - start), generator=g, **options).cpu())
    return torch.cat(chunks)


def evaluate(model: GenerativeModel, test_data: ArrayDataset, *, progress: bool = False, **options: Any) -> dict[str, Any]:
    """The family's registered evaluator on ``test_data``; ``progress`` shows a bar over its batches."""
    import contextlib

    from .data.base import batch_progress

    name = model.registry_name
    if name not in EVALUATORS:
        raise ConfigError(f"no evaluator registered for model {name!r}; models with one: {', '.join(sorted(EVALUATORS))}")
    model.eval()
    with torch.no_grad(), batch_progress(f"evaluate {name}") if progress else contextlib.nullcontext():
        return EVALUATORS.get(name)(model, test_data, **options)


def audit(
    model: GenerativeModel,
    classifier: GenerativeModel,
    train_data: ArrayDataset,
    test_data: ArrayDataset | None = None,
    *,
    attribute: str | None = None,
    num_samples: int = 5000,
    seed: int = 0,
    latent_density: str | None = None,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Bias audit of ``model`` (:func:`genlab.metrics.bias.bias_audit`): ``classifier`` labels
    ``num_samples`` generated samples and the held-out ``test_data``; the class rates are compared
    with ``train_data``'s labels. ``attribute`` picks one column of multi-attribute labels (CelebA);
    ``latent_density`` (``gaussian`` / ``gmm:K``) samples an autoencoder from a density fitted to its
    training codes instead of the prior."""
    from .metrics.bias import classifier_audit

    result = classifier_audit(
        classifier, lambda: sample(model, num_samples, seed=seed, latent_density=latent_density, fit_data=train_data.x),
        train_data, test_data, attribute=attribute, batch_size=batch_size)
    result["protocol"].update(model=model.registry_name, sampler=latent_density or "prior", seed=seed)
    return result
