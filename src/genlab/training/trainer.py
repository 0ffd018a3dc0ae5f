"""One Trainer for every family.

``fit()`` runs the model's phases on each batch: for every due phase, zero the gradients, compute
``model.loss(batch, phase)``, refuse a non-finite loss, back-propagate, clip, and step that phase's
optimizer. Around the loop: EMA, evaluation, preview grids, checkpoints, a progress bar and a CSV
log. All state that shapes the future (weights, optimizers, schedulers, EMA, RNG, step) goes into
the checkpoint and the data order is a function of (seed, step), so ``fit(resume=True)`` continues
a killed run to bit-identical weights (on CPU). Resuming with a changed schedule (lr, schedule, step
budget, clipping, cadence, EMA decay) applies the new values from the resumed step on.

A run diverges safely: a checkpoint is written only from finite weights and optimizer state, and it
counts as *known good* once training has gone on from it for ``checkpoint_probation`` steps with
finite losses. On a non-finite loss the checkpoints written since the last known-good one are suspect
(weights can blow up while the loss is still finite): they are renamed ``diverged-step-*`` and the
error names the checkpoint a resume continues from, or says that none is usable (a resume then starts
from the initial weights, which the seed reproduces). The known-good one is never rotated away.

The loop does no per-example Python work and syncs with the device only when it logs.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from torch import Tensor, nn

from .. import checkpoint as ckpt
from ..config import Config, check
from ..errors import ConfigError
from ..data.base import ArrayDataset, BatchLoader
from ..errors import CheckpointError, TrainingError
from ..grids import save_image_grid
from ..models.base import GenerativeModel, LossOutput, Phase
from ..runtime import (DistInfo, all_reduce_mean, barrier, batch_shard, gather_objects, init_distributed, rank0_decides,
                       rng_state, seed_everything, select_device, set_rng_state)
from .ema import EMA

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig(Config):
    """How to train (what to train lives in the model config)."""

    epochs: int = 10
    max_steps: int | None = None  # when set, overrides epochs
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # sgd / rmsprop only
    weight_decay: float = 0.0
    lr_schedule: Literal["constant", "cosine", "linear", "hold-linear"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # floor of cosine/linear decay, as a fraction of lr
    hold_fraction: float = 0.5  # hold-linear: constant for this fraction of the steps, then linear to the floor
    grad_clip: float | None = None  # max global L2 norm per phase
    ema_decay: float | None = None
    eval_every: int = 0  # steps; 0 = at the end of each epoch
    sample_every: int = 0  # steps; 0 = at the end of each epoch
    checkpoint_every: int = 0  # steps; 0 = at the end of each epoch
    # The per-epoch extras (the *_every fields at 0) take at most this fraction of the training time: when
    # epochs are so short that evaluating, previewing and checkpointing after each would cost more, they
    # skip epochs (never the first, never the last step). 0 = after every epoch, whatever it costs.
    epoch_extras_budget: float = 0.02
    keep_checkpoints: int = 2
    checkpoint_probation: int = 100  # finite-loss steps after a checkpoint before it counts as known good
    log_every: int = 25
    keep_best: str | None = None  # eval metric (e.g. "nll" or "eval/nll") whose best value is kept in best/
    keep_best_mode: Literal["min", "max"] = "min"
    eval_batches: int | None = None  # cap on evaluation batches (None = the whole eval set)
    # evaluations during training score the first eval_examples (rounded up to whole batches); the
    # last one scores the whole eval set. None = the whole set every time.
    eval_examples: int | None = 1024
    threads: int | None = None  # torch intra-op threads (torch.set_num_threads); None = torch's default
    preview_count: int = 64
    seed: int = 0
    device: str = "auto"
    fused_optimizer: bool = True  # single-kernel Adam/AdamW where torch supports it
    progress: bool = True
    tensorboard: bool = True  # used when the tensorboard package is installed

    def validate(self) -> None:
        check(self.epochs >= 1, f"train.epochs must be >= 1, got {self.epochs}")
        check(self.max_steps is None or self.max_steps >= 1, f"train.max_steps must be >= 1, got {self.max_steps}")
        check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        check(all(0 <= b < 1 for b in self.betas), f"train.betas must lie in [0, 1), got {self.betas}")
        check(self.grad_clip is None or self.grad_clip > 0, f"train.grad_clip must be > 0, got {self.grad_clip}")
        check(self.ema_decay is None or 0 < self.ema_decay < 1, f"train.ema_decay must be in (0, 1), got {self.ema_decay}")
        for name in ("eval_every", "sample_every", "checkpoint_every", "warmup_steps"):
            check(getattr(self, name) >= 0, f"train.{name} must be >= 0")
        check(0 <= self.epoch_extras_budget < 1, f"train.epoch_extras_budget must be in [0, 1), got {self.epoch_extras_budget}")
        check(0 <= self.hold_fraction < 1, f"train.hold_fraction must be in [0, 1), got {self.hold_fraction}")
        check(self.keep_checkpoints >= 1, "train.keep_checkpoints must be >= 1")
        check(self.checkpoint_probation >= 1, f"train.checkpoint_probation must be >= 1, got {self.checkpoint_probation}")
        check(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        check(0 <= self.momentum < 1, f"train.momentum must be in [0, 1), got {self.momentum}")
        check(0 <= self.min_lr_ratio <= 1, f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        check(self.eval_batches is None or self.eval_batches >= 1, f"train.eval_batches must be >= 1, got {self.eval_batches}")
        check(self.preview_count >= 1, f"train.preview_count must be >= 1, got {self.preview_count}")
        check(self.log_every >= 1, "train.log_every must be >= 1")
        check(self.eval_examples is None or self.eval_examples >= 1, f"train.eval_examples must be >= 1, got {self.eval_examples}")
        check(self.threads is None or self.threads >= 1, f"train.threads must be >= 1, got {self.threads}")


# Train-config fields a resume may change (``genlab train --resume RUN --train.lr=1e-4``): they shape the
# schedule and the bookkeeping. The others (seed, batch_size, optimizer, keep_best) would change the data
# order, the optimizer state's meaning or what "best" compares, and are refused, as are model and data fields.
RESUMABLE_FIELDS = frozenset({
    "epochs", "max_steps", "lr", "betas", "momentum", "weight_decay", "lr_schedule", "warmup_steps", "min_lr_ratio",
    "hold_fraction", "grad_clip", "ema_decay", "eval_every", "sample_every", "checkpoint_every", "epoch_extras_budget",
    "keep_checkpoints",
    "checkpoint_probation", "log_every", "eval_batches", "preview_count", "device", "fused_optimizer", "progress",
    "tensorboard",
})


def check_keep_best(model: GenerativeModel, batch: tuple[Tensor, ...], config: TrainConfig) -> None:
    """Fail before any training when ``train.keep_best`` names no metric of ``model.evaluate``."""
    if not config.keep_best:
        return
    was_training = model.training
    model.eval()
    devices = [batch[0].device] if batch[0].device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():  # the training RNG stays untouched
        metrics = model.evaluate(batch)
    model.train(was_training)
    if config.keep_best.removeprefix("eval/") not in metrics:
        raise ConfigError(f"train.keep_best={config.keep_best!r} is not among the evaluation metrics: "
                          + ", ".join(sorted(metrics)))


@dataclasses.dataclass
class FitResult:
    step: int
    history: list[dict[str, float]]  # one row per log/eval event
    last_eval: dict[str, float]


class _LossModule(nn.Module):
    """Routes ``forward`` to ``model.loss`` so DistributedDataParallel's hooks see the loss call."""

    def __init__(self, model: GenerativeModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: tuple[Tensor, ...], phase: str) -> LossOutput:
        return self.model.loss(batch, phase)


class Trainer:
    """Train ``model`` on ``train_data``; write everything under ``out_dir`` (if given).

    ``callbacks`` are called as ``fn(trainer, event, info)`` with event in
    {"log", "eval", "checkpoint", "epoch", "end"}: the few named hooks a user needs, no more. ``plot_curves``
    (``genlab.viz.plot_history`` in ``genlab train``) draws ``curves.png`` on a time budget.
    """

    def __init__(
        self,
        model: GenerativeModel,
        train_data: ArrayDataset,
        config: TrainConfig | None = None,
        *,
        eval_data: ArrayDataset | None = None,
        out_dir: str | Path | None = None,
        callbacks: list[Callable[["Trainer", str, dict[str, Any]], None]] | None = None,
        plot_curves: Callable[[list[dict[str, float]], Path], Any] | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        cfg = self.config
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = select_device(cfg.device)
        self.dist: DistInfo = init_distributed(self.device)
        # every rank holds the same RNG state: per-example noise is drawn for the global batch and sliced
        # (runtime.batch_randn), so N processes draw the noise one process draws
        seed_everything(cfg.seed)
        self.model = model.to(self.device)
        self.train_data, self.eval_data = train_data, eval_data
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks or [])
        self.plot_curves = plot_curves  # draws curves.png; plotting sits above training, so it is handed in
        self.loader = BatchLoader(
            train_data, cfg.batch_size, shuffle=True, drop_last=True, seed=cfg.seed,
            rank=self.dist.rank, world_size=self.dist.world_size, device=self.device,
        )
        self.steps_per_epoch = self.loader.steps_per_epoch
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.phases: list[Phase] = model.phases()
        self.optimizers = {p.name: self._make_optimizer(p) for p in self.phases}
        self.schedulers = {name: self._make_scheduler(opt) for name, opt in self.optimizers.items()}
        self.ema = EMA(model, cfg.ema_decay, model.ema_modules()) if cfg.ema_decay else None
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.last_eval: dict[str, float] = {}
        self._loss_module: nn.Module = _LossModule(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self._loss_module = DistributedDataParallel(
                self._loss_module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # in a multi-phase step each phase leaves the other players' parameters unused
                find_unused_parameters=len(self.phases) > 1,
            )
        self._csv_fields: list[str] | None = None
        self._curves_drawn = -1  # len(history) when curves.png was last drawn
        self._tb: Any = None
        self.best: dict[str, float] | None = None  # {"step", "value"} of the best evaluation so far
        self._best_state: dict[str, Tensor] | None = None  # in-memory copy when there is no out_dir
        # the budgets of curves.png and of the epoch-end extras are shares of the training's own time: they
        # read _clock(), which leaves out the seconds spent in callbacks (one that pauses the run, say)
        self._callbacks_cost = 0.0
        self._curves_cost, self._curves_at = 0.0, -math.inf  # seconds the last curves.png took, and when (_clock)
        self._extras_cost, self._extras_at = 0.0, -math.inf  # the same for the last epoch-end extras
        self._extras_skipped = 0  # epoch ends whose extras the budget skipped since they last ran
        self._extras_told = False  # the user was told once that extras skip epochs

    # ------------------------------------------------------------------ construction helpers
    def _make_optimizer(self, phase: Phase) -> torch.optim.Optimizer:
        cfg = self.config
        params = self.model.phase_parameters(phase)
        if not params:
            raise TrainingError(f"phase {phase.name!r} has no trainable parameters")
        lr = phase.lr if phase.lr is not None else cfg.lr
        betas = phase.betas if phase.betas is not None else cfg.betas
        # fused kernels do the whole update in one pass per tensor (CPU since torch 2.4, and CUDA)
        fused = {"fused": True} if cfg.fused_optimizer and self.device.type in ("cpu", "cuda") else {}
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, **fused)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, **fused)
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def _make_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        cfg, total = self.config, self.total_steps

        def factor(step: int) -> float:
            if cfg.warmup_steps and step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            if cfg.lr_schedule == "constant":
                return 1.0
            progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
            if cfg.lr_schedule == "hold-linear":
                # CycleGAN's recipe (100 epochs at lr, then 100 decaying linearly to zero): hold, then decay.
                progress = max(0.0, progress - cfg.hold_fraction) / (1 - cfg.hold_fraction)
            decay = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.lr_schedule == "cosine" else 1 - progress
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * decay

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False) -> FitResult:
        cfg = self.config
        if self.out_dir is not None and self.dist.is_main:
            for path in ckpt.remove_orphans(self.out_dir):
                log.info("removed %s, left by an interrupted write", path)
        if self.eval_data is not None:  # a keep_best metric that does not exist fails now, not at the first evaluation
            check_keep_best(self.model, tuple(t.to(self.device) for t in self.eval_data.batch(torch.arange(min(cfg.batch_size, len(self.eval_data))))), cfg)
        if resume:
            self._resume()
        elif self.out_dir is not None and self.dist.is_main:
            (self.out_dir / "metrics.csv").unlink(missing_ok=True)
        self.model.train()
        sums: dict[str, Tensor] = {}
        count = 0
        window_start, window_step = time.perf_counter(), self.step
        bar = self._progress_bar()
        batches = None
        try:
            while self.step < self.total_steps:
                epoch, index = divmod(self.step, self.steps_per_epoch)
                if batches is None or index == 0:
                    batches = self.loader.epoch(epoch, start=index)
                batch = next(batches)
                for phase in self.phases:
                    if self.step % phase.every == 0:
                        terms = self._run_phase(phase, batch)
                        for key, value in terms.items():
                            sums[key] = sums[key] + value if key in sums else value.clone()
                if self.ema is not None:
                    self.ema.update()
                self.step += 1
                count += 1
                if bar is not None:
                    bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    elapsed = time.perf_counter() - window_start
                    row = self._log_window(sums, count, (self.step - window_step) * cfg.batch_size / max(elapsed, 1e-9))
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("step", "epoch", "samples_per_s", "lr")})
                    sums, count = {}, 0
                    window_start, window_step = time.perf_counter(), self.step
                epoch_end = self.step % self.steps_per_epoch == 0 or self.step == self.total_steps
                # every rank follows rank 0's clock: evaluation and checkpoints are collective
                end_of_epoch = epoch_end and rank0_decides(self._epoch_extras_allowed(), self.dist, self.device)
                extras_start = self._clock()
                # keep_best judges every epoch: its evaluation is never skipped
                if self._due(cfg.eval_every, end_of_epoch or (epoch_end and cfg.keep_best is not None)):
                    self.evaluate()
                if self._due(cfg.sample_every, end_of_epoch):
                    self.write_preview()
                if self._due(cfg.checkpoint_every, end_of_epoch):
                    self.save_checkpoint()
                if end_of_epoch:
                    self._extras_at = self._clock()
                    self._extras_cost = self._extras_at - extras_start
                if epoch_end:
                    self._emit("epoch", {"step": self.step, "epoch": -(-self.step // self.steps_per_epoch)})
        finally:
            if bar is not None:
                bar.close()
            if self._tb:
                self._tb.flush()
        if self.out_dir is not None and self.dist.is_main:
            self.export(self.out_dir / "model")
            self._plot_curves(force=True)
        self._emit("end", {"step": self.step})
        barrier(self.dist)
        return FitResult(self.step, self.history, self.last_eval)

    def _run_phase(self, phase: Phase, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        optimizer = self.optimizers[phase.name]
        self.model.zero_grad(set_to_none=True)
        with batch_shard(self.dist.rank, self.dist.world_size):
            out: LossOutput = self._loss_module(batch, phase.name)
        total = out.total
        if not bool(torch.isfinite(total)):
            raise self._divergence(f"non-finite loss ({total.item()}) in phase {phase.name!r}")
        total.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], self.config.grad_clip, foreach=True)
        optimizer.step()
        # The schedule is a function of the training step, not of how often this phase ran: a phase that
        # runs every k steps (lazy R1, path length) follows the same curve as the others.
        scheduler = self.schedulers[phase.name]
        scheduler.last_epoch = self.step
        scheduler.step()
        prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
        terms = {f"{prefix}loss": total.detach()}
        terms.update({f"{prefix}{k}": v.detach() for k, v in out.terms.items()})
        return terms

    def _divergence(self, what: str) -> TrainingError:
        """The error for a run that went non-finite at this step. Checkpoints that training did not go on
        from for ``checkpoint_probation`` finite steps are set aside; the message names what is left."""
        usable: Path | None = None
        root = self.out_dir / "checkpoints" if self.out_dir is not None else None
        limit = self.step - self.config.checkpoint_probation
        if root is not None and self.dist.is_main:
            usable = ckpt.set_aside_suspects(root, limit)
        elif root is not None:
            left = [p for p in ckpt.list_checkpoints(root) if ckpt.checkpoint_step(p) <= limit]
            usable = left[-1] if left else None
        message = f"{what} at step {self.step}; stopped before the update."
        if root is None:
            message += " No checkpoint was kept (no output folder)."
        elif usable is not None:
            message += (f" The last usable checkpoint is {usable} (later ones are suspect, renamed {ckpt.DIVERGED_PREFIX}step-*);"
                        f" continue from it with a lower lr: genlab train --resume {self.out_dir} --train.lr=LOWER.")
        else:
            message += (f" There is no usable checkpoint (none was followed by {self.config.checkpoint_probation} finite steps);"
                        f" genlab train --resume {self.out_dir} --train.lr=LOWER restarts from the initial weights, which the seed reproduces.")
        return TrainingError(message + " Try a lower train.lr or train.grad_clip.")

    def _finite_state(self) -> bool:
        """Weights, buffers, EMA and optimizer state all finite: the condition for writing a checkpoint."""
        tensors = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        if self.ema is not None:
            tensors += list(self.ema.shadow.values())
        for opt in self.optimizers.values():
            tensors += [v for state in opt.state.values() for v in state.values()
                        if isinstance(v, Tensor) and v.is_floating_point()]
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def _epoch_extras_allowed(self) -> bool:
        """Whether this epoch's end gets its extras under ``epoch_extras_budget``: always at the last step,
        after the first epoch and with no budget; otherwise once the training time since they last ran (the
        time outside callbacks) is at least their last cost divided by the budget. The decision touches no
        training state, so a run's weights do not depend on it; only which epochs log an evaluation and
        leave a checkpoint do."""
        budget = self.config.epoch_extras_budget
        if not budget or self.step == self.total_steps or self._extras_at == -math.inf:
            return True
        trained = self._clock() - self._extras_at
        if trained >= self._extras_cost / budget:
            self._extras_skipped = 0
            return True
        self._extras_skipped += 1
        if self._extras_skipped == 1 and not self._extras_told:
            self._extras_told = True
            log.info("epochs of %.2g s: evaluation, preview and checkpoint (%.2g s) now skip epochs to stay under "
                     "%g %% of the time (train.epoch_extras_budget=0 runs them after every epoch)",
                     trained, self._extras_cost, 100 * budget)
        return False

    def _due(self, every: int, end_of_epoch: bool) -> bool:
        # the last step always evaluates, previews and checkpoints
        return (self.step % every == 0 or self.step == self.total_steps) if every > 0 else end_of_epoch

    # ------------------------------------------------------------------ evaluation and previews
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean of ``model.evaluate`` over the eval set (rank 0), with a fixed noise seed so numbers
        are comparable across steps and the training RNG is untouched."""
        if self.eval_data is None or not self.dist.is_main:
            barrier(self.dist)
            return {}
        cfg = self.config
        loader = BatchLoader(self.eval_data, min(cfg.batch_size, len(self.eval_data)), shuffle=False,
                             drop_last=False, seed=cfg.seed, device=self.device)
        sums: dict[str, float] = {}
        seen = 0
        # during training only a fixed head of the eval set (the same examples every time); the
        # last evaluation scores all of it
        limit = cfg.eval_batches
        head = None if cfg.eval_examples is None else -(-cfg.eval_examples // loader.batch_size)
        if head is not None and self.step < self.total_steps:
            limit = head if limit is None else min(limit, head)
        head_sums: dict[str, float] = {}
        was_training = self.model.training
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.ema_applied():
            torch.manual_seed(cfg.seed + 1)
            for i, batch in enumerate(loader):
                if limit is not None and i >= limit:
                    break
                if i == head:
                    head_sums = {**sums, "_seen": float(seen)}
                n = batch[0].shape[0]
                for key, value in self.model.evaluate(batch).items():
                    sums[key] = sums.get(key, 0.0) + float(value) * n
                seen += n
        self.model.train(was_training)
        self.last_eval = {f"eval/{k}": v / max(seen, 1) for k, v in sums.items()}
        if cfg.keep_best:
            # the best is chosen on the examples every evaluation scored, so values compare
            seen_head = head_sums.pop("_seen", float(seen))
            self._track_best({f"eval/{k}": v / max(seen_head, 1) for k, v in (head_sums or sums).items()})
        row = {"step": float(self.step), **self.last_eval}
        self.history.append(row)
        self._write_row(row)
        self._emit("eval", row)
        log.info("step %d eval %s", self.step, json.dumps({k: round(v, 5) for k, v in self.last_eval.items()}))
        barrier(self.dist)
        return self.last_eval

    def _track_best(self, metrics: dict[str, float]) -> None:
        """Keep the weights of the best evaluation so far: ``out_dir/best/`` (a loadable model folder)
        or, without an output folder, a copy in memory; :meth:`restore_best` loads them back."""
        cfg = self.config
        name = cfg.keep_best if cfg.keep_best.startswith("eval/") else f"eval/{cfg.keep_best}"
        if name not in metrics:
            raise TrainingError(
                f"train.keep_best={cfg.keep_best!r} is not among the evaluation metrics: "
                + ", ".join(sorted(k.removeprefix("eval/") for k in metrics))
            )
        value = metrics[name]
        if self.best is not None:
            better = value < self.best["value"] if cfg.keep_best_mode == "min" else value > self.best["value"]
            if not better:
                return
        self.best = {"step": float(self.step), "value": value}
        if self.out_dir is not None:
            self.export(self.out_dir / "best")
        else:
            with self.ema_applied():
                self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        log.info("step %d: best %s so far (%.6g)", self.step, name, value)

    def restore_best(self) -> None:
        """Load the weights of the best evaluation (``train.keep_best``) into the model."""
        if self.best is None:
            raise TrainingError("no best weights: set train.keep_best and give the Trainer eval_data")
        if self.out_dir is not None:
            best = self.out_dir / "best"
            ema = best / ckpt.EMA_NAME
            self.model.load_state_dict(ckpt.load_tensors(best / ckpt.WEIGHTS_NAME, device=self.device))
            if ema.exists():  # what was evaluated: the averaged weights
                self.model.load_state_dict(ckpt.load_tensors(ema, device=self.device), strict=False)
        else:
            assert self._best_state is not None
            self.model.load_state_dict(self._best_state)

    @torch.no_grad()
    def write_preview(self) -> Path | None:
        if self.out_dir is None or not self.dist.is_main:
            return None
        source = self.eval_data if self.eval_data is not None else self.train_data
        g = torch.Generator().manual_seed(self.config.seed + 2)
        index = torch.arange(min(self.config.preview_count, len(source)))
        batch = tuple(t.to(self.device) for t in source.batch(index, g))
        was_training = self.model.training
        self.model.eval()
        with self.ema_applied():
            images = self.model.preview(batch, generator=torch.Generator(self.device).manual_seed(self.config.seed + 3))
        self.model.train(was_training)
        if images is None:
            return None
        path = self.out_dir / "samples" / f"step-{self.step:08d}.png"
        caption = getattr(self.model, "preview_caption", None)  # what the rows or cells show, when the family says
        save_image_grid(images, path, caption=caption)
        save_image_grid(images, self.out_dir / "samples.png", caption=caption)
        self._plot_curves()
        return path

    def ema_applied(self) -> Any:
        """Context manager: the EMA weights swapped in (a no-op without ``train.ema_decay``)."""
        import contextlib

        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything that shapes the rest of the run. Under several processes every rank must call it
        (it gathers each rank's RNG state)."""
        rng, extras = rng_state(), self.model.training_extras()
        return {
            "step": self.step,
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "rng": rng,
            "rng_per_rank": gather_objects(rng, self.dist),
            "train_config": self.config.to_dict(),
            "history": self.history,
            "last_eval": self.last_eval,
            "best": self.best,
            "model_extras": extras,
            # each rank's own (e.g. CycleGAN's image pools, filled with that rank's fakes)
            "model_extras_per_rank": gather_objects(extras, self.dist),
        }

    def save_checkpoint(self) -> Path | None:
        if self.out_dir is None:
            return None
        if not self._finite_state():
            raise self._divergence("non-finite weights")
        state = self.state_dict()
        path = None
        if self.dist.is_main:
            root = self.out_dir / "checkpoints"
            good = [p for p in ckpt.list_checkpoints(root)
                    if ckpt.checkpoint_step(p) <= self.step - self.config.checkpoint_probation]
            path = ckpt.write_checkpoint(
                root, self.step, self.model, state,
                ema_state=self.ema.state_dict() if self.ema is not None else None,
                keep=self.config.keep_checkpoints, good=good[-1].name if good else None,
            )
            self._emit("checkpoint", {"step": self.step, "path": str(path)})
        barrier(self.dist)
        return path

    def _resume(self) -> None:
        if self.out_dir is None:
            raise CheckpointError("cannot resume without an output folder")
        latest = ckpt.latest_checkpoint(self.out_dir / "checkpoints")
        if latest is None:
            raise CheckpointError(f"nothing to resume: no checkpoint in {self.out_dir / 'checkpoints'}")
        weights = ckpt.load_tensors(latest / ckpt.WEIGHTS_NAME, device=self.device)
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"the weights in {latest} do not fit this model: {str(exc).splitlines()[0]}") from None
        state = ckpt.load_training_state(latest / ckpt.STATE_NAME)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        self._apply_schedule()
        if self.ema is not None:
            if (latest / ckpt.EMA_NAME).is_file():
                self.ema.load_state_dict(ckpt.load_tensors(latest / ckpt.EMA_NAME, device=self.device))
            else:  # an EMA switched on at this resume starts from the resumed weights
                self.ema = EMA(self.model, self.config.ema_decay, self.model.ema_modules())  # type: ignore[arg-type]
        same_ranks = len(state.get("rng_per_rank") or []) == self.dist.world_size
        extras_per_rank = state.get("model_extras_per_rank")
        if same_ranks and extras_per_rank is not None and len(extras_per_rank) == self.dist.world_size:
            self.model.load_training_extras(extras_per_rank[self.dist.rank])
        else:  # an older checkpoint, or another number of processes: rank 0's
            self.model.load_training_extras(state.get("model_extras", {}))
        if same_ranks:
            set_rng_state(state["rng_per_rank"][self.dist.rank])
        else:  # another number of processes: all ranks share rank 0's state, as in a fresh start
            set_rng_state(state["rng"])
        self.step = int(state["step"])
        saved = state.get("train_config", {})
        for key, value in self.config.to_dict().items():
            if key in saved and saved[key] != value:
                log.info("step %d: train.%s changed on resume: %r -> %r", self.step, key, saved[key], value)
        self.history = list(state.get("history", []))
        self.last_eval = dict(state.get("last_eval", {}))
        self.best = state.get("best")
        self._truncate_csv(self.step)
        log.info("resumed from %s at step %d", latest, self.step)

    def _apply_schedule(self) -> None:
        """The loaded optimizer and scheduler states carry the saved run's lr (LambdaLR keeps base_lrs),
        betas, momentum and weight decay: the current config wins, from the resumed step on."""
        cfg = self.config
        for phase in self.phases:
            optimizer, scheduler = self.optimizers[phase.name], self.schedulers[phase.name]
            base = phase.lr if phase.lr is not None else cfg.lr
            betas = phase.betas if phase.betas is not None else cfg.betas
            scheduler.base_lrs = [base] * len(optimizer.param_groups)
            factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
            for group in optimizer.param_groups:
                group.update(initial_lr=base, lr=base * factor, weight_decay=cfg.weight_decay)
                if "betas" in group:
                    group["betas"] = betas
                if "momentum" in group:
                    group["momentum"] = cfg.momentum
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() reports

    def export(self, directory: str | Path) -> Path:
        """Write the shareable model artifact (``config.json`` + ``model.safetensors``)."""
        return ckpt.save_model(self.model, directory, ema_state=self.ema.state_dict() if self.ema is not None else None)

    # ------------------------------------------------------------------ logging
    def _log_window(self, sums: dict[str, Tensor], count: int, samples_per_s: float) -> dict[str, float]:
        terms = all_reduce_mean({k: v / count for k, v in sums.items()}, self.dist)
        row = {"step": float(self.step), "epoch": self.step / self.steps_per_epoch}
        row.update({k: float(v) for k, v in terms.items()})
        row["lr"] = self.optimizers[self.phases[0].name].param_groups[0]["lr"]
        row["samples_per_s"] = samples_per_s * self.dist.world_size
        self.history.append(row)
        self._write_row(row)
        self._emit("log", row)
        return row

    def _write_row(self, row: dict[str, float]) -> None:
        if self.out_dir is None or not self.dist.is_main:
            return
        path = self.out_dir / "metrics.csv"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # long format (step, name, value): rows of different kinds (train/eval) share one file
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            if new:
                writer.writerow(["step", "name", "value"])
            step = int(row["step"])
            for key, value in row.items():
                if key != "step":
                    writer.writerow([step, key, f"{value:.6g}"])
        tb = self._tensorboard()
        if tb is not None:
            for key, value in row.items():
                if key != "step":
                    tb.add_scalar(key, value, int(row["step"]))

    def _truncate_csv(self, step: int) -> None:
        """Drop rows a killed run logged after its last checkpoint, so the log has no duplicates."""
        if self.out_dir is None or not self.dist.is_main:
            return
        path = self.out_dir / "metrics.csv"
        if not path.exists():
            return
        with path.open() as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        ckpt.atomic_write_text(path, "".join(",".join(r) + "\n" for r in kept))

    def _tensorboard(self) -> Any:
        if self._tb is None and self.config.tensorboard and self.out_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self._tb = False
            else:
                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
        return self._tb or None

    def _progress_bar(self) -> Any:
        if not (self.config.progress and self.dist.is_main):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.total_steps, initial=self.step, desc=self.model.registry_name, unit="step", dynamic_ncols=True,
                    mininterval=0.5)  # redrawn twice a second, not ten times: ~1 % of a CPU epoch less

    def _plot_curves(self, force: bool = False) -> None:
        """Redraw ``curves.png`` when the history has grown: at the end, and during training only once
        50x its last drawing time has passed since then (on ``_clock``: callbacks excluded), so a run spends
        at most ~2 % of its training time on it."""
        if self.plot_curves is None or self.out_dir is None or not self.history or self._curves_drawn == len(self.history):
            return
        now = self._clock()
        if not force and now - self._curves_at < 50 * self._curves_cost:
            return
        self.plot_curves(self.history, self.out_dir / "curves.png")
        self._curves_drawn = len(self.history)
        self._curves_at = self._clock()
        self._curves_cost = self._curves_at - now

    def _clock(self) -> float:
        """Seconds on ``time.perf_counter`` less those spent in callbacks: the clock the budgets read."""
        return time.perf_counter() - self._callbacks_cost

    def _emit(self, event: str, info: dict[str, Any]) -> None:
        if not self.callbacks:
            return
        start = time.perf_counter()
        for callback in self.callbacks:
            callback(self, event, info)
        self._callbacks_cost += time.perf_counter() - start
