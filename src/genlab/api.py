"""The public functions the CLI calls: build a run from a model name and overrides, train it,
reload it, and draw/evaluate from it. Everything here is usable from Python as is.

A run folder holds ``run.json`` (the fully resolved model, data and train configs, and the history of
settings changed on resume), the Trainer's
``metrics.csv``, ``samples/``, ``curves.png``, ``checkpoints/`` and, at the end, ``model/`` (the
shareable ``config.json`` + ``model.safetensors``) plus the family's report figures.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import torch

from . import checkpoint as ckpt
from .config import apply_overrides, load_config_file, merge
from .data.base import ArrayDataset, DataConfig, data_config_from_spec, load_dataset
from .errors import CheckpointError, ConfigError
from .models import build_model
from .models.base import GenerativeModel
from . import reports  # noqa: F401  (registers every family's evaluator and reporter)
from .registry import EVALUATORS, MODELS, REPORTERS
from .runtime import seed_everything
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
    train_data = load_dataset(spec.data, "train")
    try:
        test_data: ArrayDataset | None = load_dataset(spec.data, "test")
    except ConfigError:
        test_data = None
    cls = MODELS.get(spec.model)
    config = cls.adapt_config(spec.model_config, train_data.info, explicit if explicit is not None else set(spec.model_config))
    spec.model_config = cls.config_class.from_dict(config).to_dict()
    seed_everything(spec.train.seed)  # the initial weights are part of what a seed reproduces
    model = build_model(spec.model, spec.model_config)
    # a frozen classifier that a loss uses (CycleGAN's semantic term) is loaded here, not by the model
    classifier = getattr(model.config, "semantic_classifier", None)
    if classifier is not None and getattr(model.config, "semantic_weight", 0) > 0:
        model.set_semantic_classifier(ckpt.load(classifier))
    return model, train_data, test_data


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
    cadence, EMA decay), which takes effect at the resumed step and is recorded in ``run.json``; a
    change of the model, the data or the data order is refused. The whole request is validated before
    anything is written. ``out`` must be a new or empty folder or a genlab run, unless ``force``."""
    changes: dict[str, Any] = {}
    if resume:
        if resume is True and out is None:
            raise ConfigError("--resume needs the run folder: --resume RUN or --out RUN --resume")
        run_dir = Path(out if resume is True else resume)  # type: ignore[arg-type]
        if not (run_dir / RUN_FILE).is_file():
            raise CheckpointError(f"cannot resume: {run_dir / RUN_FILE} not found")
        saved = read_run(run_dir)
        if model is not None and model != saved.model:
            raise ConfigError(f"run {run_dir} trains {saved.model!r}, not {model!r}")
        spec, explicit = resolve(saved.model, overrides=overrides, base=saved)
        changes = _changes_on_resume(saved, spec)
    else:
        if model is None:
            raise ConfigError("name a model to train; valid: " + ", ".join(sorted(MODELS)))
        spec, explicit = resolve(model, config_file=config_file, data=data, overrides=overrides)
        run_dir = Path(out) if out is not None else Path("runs") / f"{model}-{data_label(spec.data)}"
        if ckpt.latest_checkpoint(run_dir / "checkpoints") is not None:
            raise ConfigError(f"{run_dir} already holds a run; pass --resume {run_dir} to continue it or choose another --out")
        if not force and run_dir.is_dir() and not (run_dir / RUN_FILE).is_file() and any(run_dir.iterdir()):
            raise ConfigError(f"{run_dir} is not empty and is not a genlab run: choose another --out, or pass --force to write into it")

    net, train_data, test_data = build(spec, explicit)
    if test_data is not None:  # a keep_best metric that does not exist fails here, dry run or not
        check_keep_best(net, test_data.batch(torch.arange(min(spec.train.batch_size, len(test_data)))), spec.train)
    if dry_run:
        batch = train_data.batch(torch.arange(min(spec.train.batch_size, len(train_data))))
        with torch.no_grad():
            losses = {p.name: float(net.loss(batch, p.name).total) for p in net.phases()}
        return {"run_dir": str(run_dir), "dry_run": True, "spec": spec.to_dict(), "parameters": net.num_parameters(),
                "train_examples": len(train_data), "test_examples": len(test_data) if test_data is not None else 0,
                "first_batch_loss": losses}

    resume_from = ckpt.latest_checkpoint(run_dir / "checkpoints") if resume else None
    if resume and resume_from is None:
        log.info("no usable checkpoint in %s: training starts again from the initial weights (the seed reproduces them)", run_dir)
    if changes:
        spec.changes.append({"step": ckpt.checkpoint_step(resume_from) if resume_from is not None else 0, **changes})
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(net, train_data, spec.train, eval_data=test_data, out_dir=run_dir, callbacks=callbacks,
                      plot_curves=plot_history)
    # the intra-op threads the run uses (train.threads, or torch's default when that is unset)
    record = json.dumps({**spec.to_dict(), "threads_used": torch.get_num_threads()}, indent=2, sort_keys=True)
    if not (run_dir / RUN_FILE).is_file() or (run_dir / RUN_FILE).read_text() != record:
        ckpt.atomic_write_text(run_dir / RUN_FILE, record)
    result: FitResult = trainer.fit(resume=resume_from is not None)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "steps": result.step, **result.last_eval}
    if trainer.dist.is_main and spec.model in REPORTERS:
        model_for_report = ckpt.load(run_dir / "model", device=trainer.device)
        summary.update(REPORTERS.get(spec.model)(model_for_report, run_dir, train_data, test_data) or {})
    if trainer.dist.is_main:
        ckpt.atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2, sort_keys=True, default=float))
    return summary


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
        return RunSpec.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError) as exc:
        raise CheckpointError(f"corrupt run file {path}: {exc}") from None


def load_run(run_dir: str | Path, *, ema: bool = True, device: str = "cpu") -> tuple[GenerativeModel, RunSpec | None]:
    """The model of a run folder (or a bare model folder) and, for runs, its spec. A model folder
    inside a run (``RUN/model``, ``RUN/best``, a checkpoint) reads the spec of the run around it."""
    model = ckpt.load(run_dir, ema=ema, device=device)
    spec = None
    for folder in (Path(run_dir), *Path(run_dir).parents[:2]):
        if (folder / RUN_FILE).is_file():
            spec = read_run(folder)
            break
    return model, spec  # type: ignore[return-value]


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
    from .errors import DataError
    from .metrics.bias import bias_audit

    if not hasattr(classifier, "predict"):
        raise ConfigError(f"the audit needs a classifier run (genlab train classifier), got a {classifier.registry_name!r} model")
    num_classes = classifier.config.num_classes

    def labels_of(data: ArrayDataset) -> torch.Tensor:
        if data.y is None:
            raise DataError(f"dataset {data.info.get('name')!r} has no labels to audit against")
        if data.y.dim() == 1:
            return data.y
        names = data.info.get("attr_names") or []
        if attribute is None or attribute not in names:
            what = f"unknown attribute {attribute!r}" if attribute else "the labels have several columns"
            raise DataError(f"{what}; name one with --attr (valid: {', '.join(names)})")
        return data.y[:, names.index(attribute)]

    def predict(images: torch.Tensor) -> torch.Tensor:
        shape = tuple(classifier.config.image_shape)
        if tuple(images.shape[1:]) != shape:
            raise DataError(f"the classifier takes images of shape {shape}, the audited images are {tuple(images.shape[1:])}")
        classifier.eval()
        with torch.no_grad():
            return torch.cat([classifier.predict(chunk.to(classifier.device)).cpu() for chunk in images.split(batch_size)])

    data_labels = labels_of(train_data)  # bad labels fail before the sampling, not after it
    held = {}
    if test_data is not None:
        held = {"heldout_labels": labels_of(test_data), "heldout_predictions": predict(test_data.x)}
    if attribute is None:
        class_names = train_data.info.get("class_names")
    else:
        class_names = [f"not {attribute}", attribute] if num_classes == 2 else None
    images = sample(model, num_samples, seed=seed, latent_density=latent_density, fit_data=train_data.x)
    result = bias_audit(predict(images), data_labels, num_classes=num_classes, class_names=class_names, **held)
    result["protocol"].update(model=model.registry_name, sampler=latent_density or "prior", seed=seed,
                              attribute=attribute, dataset=train_data.info.get("name"))
    return result
