"""One Trainer for every family.

``fit()`` runs the model's phases on each batch: for every due phase, zero the gradients, compute ``model.loss(batch,
phase)``, refuse a non-finite loss, back-propagate, clip, and step the optimizer the phase names (a lazy regularisation
phase steps its player's). Around the loop: EMA, evaluation, previews, checkpoints. What the run shows (``metrics.csv``,
TensorBoard, the progress bar, ``curves.png``, the budgets' clock) is a :class:`~.runlog.RunLog`; the checkpoint policy
(resume, known-good checkpoints, divergence, best weights) is a :class:`~.keeper.Keeper`; neither calls back into it.

All state that shapes the future (weights, optimizers, schedulers, EMA, RNG, step) goes into the
checkpoint and the data order is a function of (seed, step), so ``fit(resume=True)`` continues a killed
run to bit-identical weights (on CPU). Resuming with a changed schedule (lr, schedule, step budget,
clipping, cadence, EMA decay and ramp) applies the new values from the resumed step on. The loop does no
per-example Python work and syncs with the device only when it logs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from torch import Tensor, nn

from .. import checkpoint as ckpt
from ..config import Config, check
from ..data.base import ArrayDataset, BatchLoader
from ..grids import save_image_grid
from ..models.base import GenerativeModel, LossOutput, Phase
from ..precision import autocast, check_compile, resolve_channels_last, resolve_precision
from ..runtime import (DistInfo, all_reduce_mean, barrier, batch_shard, gather_objects, init_distributed, rank0_decides,
                       rng_state, seed_everything, select_device)
from .ema import EMA
from .keeper import Keeper, check_keep_best  # noqa: F401  (check_keep_best: public here too)
from .optim import apply_settings, build_optimizers, make_scheduler, optimizer_settings
from .runlog import RunLog

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
    ema_rampup: float | None = None  # the EMA half-life at most this fraction of the steps so far (stylegan2-ada: 0.05)
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
    # bf16: forward and loss under autocast, fp32 weights, gradients and optimizer state; auto: bf16 where the
    # hardware runs it natively (genlab.precision), else fp32. channels_last: conv weights in NHWC memory;
    # auto: where it was measured faster for the model's family (genlab.precision.resolve_channels_last)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    channels_last: Literal["auto"] | bool = "auto"
    # torch.compile the loss (forward and backward graphs); pays only over long runs: compiling costs a minute or more
    compile: bool = False
    report: bool = True  # the family's end-of-run report (figures, scores); its time is logged and in metrics.json
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
        check(self.ema_rampup is None or self.ema_rampup > 0, f"train.ema_rampup must be > 0, got {self.ema_rampup}")
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
    "hold_fraction", "grad_clip", "ema_decay", "ema_rampup", "eval_every", "sample_every", "checkpoint_every",
    "epoch_extras_budget", "keep_checkpoints", "checkpoint_probation", "log_every", "eval_batches", "preview_count",
    "device", "fused_optimizer", "progress", "tensorboard", "compile", "report",
})


@dataclasses.dataclass
class FitResult:
    step: int
    history: list[dict[str, float]]  # one row per log/eval event
    last_eval: dict[str, float]


class _LossModule(nn.Module):
    """Under DistributedDataParallel the loss call must be a module's ``forward`` (its hooks all-reduce the
    gradients): this one's forward is ``model.loss``."""

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
        self.config = cfg = config or TrainConfig()
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = select_device(cfg.device)
        self.dist: DistInfo = init_distributed(self.device)
        # every rank holds the same RNG state: per-example noise is drawn for the global batch and sliced
        # (runtime.batch_randn), so N processes draw the noise one process draws
        seed_everything(cfg.seed)
        self.channels_last = resolve_channels_last(cfg.channels_last, model)  # what train.channels_last=auto means here
        self.model = model.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.precision = resolve_precision(cfg.precision, self.device)  # what train.precision=auto means here
        if self.dist.is_main:
            log.info("precision %s (train.precision=%s on %s), channels-last %s (train.channels_last=%s)",
                     self.precision, cfg.precision, self.device, "on" if self.channels_last else "off", cfg.channels_last)
        self.train_data, self.eval_data = train_data, eval_data
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks or [])
        self.loader = BatchLoader(train_data, cfg.batch_size, shuffle=True, drop_last=True, seed=cfg.seed,
                                  rank=self.dist.rank, world_size=self.dist.world_size, device=self.device)
        self.steps_per_epoch = self.loader.steps_per_epoch
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.phases: list[Phase] = model.phases()
        self.optimizers = build_optimizers(model, self.phases, cfg, self.device)
        self.schedulers = {name: self._make_scheduler(opt) for name, opt in self.optimizers.items()}
        self.ema = EMA(model, cfg.ema_decay, model.ema_modules(), cfg.ema_rampup) if cfg.ema_decay else None
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.last_eval: dict[str, float] = {}
        self.runlog = RunLog(self.out_dir, is_main=self.dist.is_main, tensorboard=cfg.tensorboard, progress=cfg.progress,
                             extras_budget=cfg.epoch_extras_budget, plot_curves=plot_curves)
        self.keeper = Keeper(self.out_dir, is_main=self.dist.is_main, keep=cfg.keep_checkpoints,
                             probation=cfg.checkpoint_probation, keep_best=cfg.keep_best, keep_best_mode=cfg.keep_best_mode)
        # model.loss as the step calls it: as DDP's forward (its hooks all-reduce the gradients) and/or compiled
        self._wrapped: Callable[..., LossOutput] | None = None
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self._wrapped = DistributedDataParallel(
                _LossModule(self.model), device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # in a multi-phase step each phase leaves the other players' parameters unused
                find_unused_parameters=len(self.phases) > 1)
        self._compiled: Callable[..., LossOutput] | None = None
        if cfg.compile:  # eager's random draws (fallback_random), so a compiled run samples the noise an eager one does
            check_compile(self.device)
            self._compiled = torch.compile(self._wrapped or self.model.loss, options={"fallback_random": True})

    @property
    def best(self) -> dict[str, float] | None:
        """``{"step", "value"}`` of the best evaluation so far (``train.keep_best``)."""
        return self.keeper.best

    def _make_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        return make_scheduler(optimizer, self.config, self.total_steps)

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False) -> FitResult:
        cfg = self.config
        self.keeper.clean()
        if self.eval_data is not None:  # a keep_best metric that does not exist fails now, not at the first evaluation
            check_keep_best(self.model, tuple(t.to(self.device) for t in self.eval_data.batch(torch.arange(min(cfg.batch_size, len(self.eval_data))))), cfg)
        if resume:
            self._resume()
        else:
            self.runlog.start_fresh()
        self.model.train()
        sums: dict[str, Tensor] = {}
        count, window_start, window_step = 0, time.perf_counter(), self.step
        self.runlog.open_bar(self.total_steps, self.step, self.model.registry_name)
        batches = None
        try:
            while self.step < self.total_steps:
                epoch, index = divmod(self.step, self.steps_per_epoch)
                if batches is None or index == 0:
                    batches = self.loader.epoch(epoch, start=index)
                batch = next(batches)
                for phase in self.phases:
                    if self.step % phase.every == 0:
                        for key, value in self._run_phase(phase, batch).items():
                            sums[key] = sums[key] + value if key in sums else value.clone()
                self.step += 1
                if self.ema is not None:
                    self.ema.update(self.step)
                count += 1
                row = None
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    elapsed = time.perf_counter() - window_start
                    row = self._log_window(sums, count, (self.step - window_step) * cfg.batch_size / max(elapsed, 1e-9))
                    sums, count, window_start, window_step = {}, 0, time.perf_counter(), self.step
                self.runlog.advance(row)
                epoch_end = self.step % self.steps_per_epoch == 0 or self.step == self.total_steps
                # every rank follows rank 0's clock: evaluation and checkpoints are collective
                extras = epoch_end and rank0_decides(self.runlog.extras_allowed(last_step=self.step == self.total_steps),
                                                     self.dist, self.device)
                extras_start = self.runlog.clock()
                # keep_best judges every epoch: its evaluation is never skipped
                if self._due(cfg.eval_every, extras or (epoch_end and cfg.keep_best is not None)):
                    self.evaluate()
                if self._due(cfg.sample_every, extras):
                    self.write_preview()
                if self._due(cfg.checkpoint_every, extras):
                    self.save_checkpoint()
                if extras:
                    self.runlog.extras_ran(extras_start)
                if epoch_end:
                    self._emit("epoch", {"step": self.step, "epoch": -(-self.step // self.steps_per_epoch)})
        finally:
            self.runlog.close()
        if self.out_dir is not None and self.dist.is_main:
            self.export(self.out_dir / "model")
            self.runlog.draw_curves(self.history, force=True)
        self._emit("end", {"step": self.step})
        barrier(self.dist)
        return FitResult(self.step, self.history, self.last_eval)

    def _run_phase(self, phase: Phase, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        optimizer = self.optimizers[phase.optimizer_name]  # a lazy phase steps its player's optimizer
        self.model.zero_grad(set_to_none=True)
        with batch_shard(self.dist.rank, self.dist.world_size), autocast(self.precision, self.device):
            # the one call that defines training; under DDP or train.compile the same call runs wrapped. Lazy phases
            # (R1, path length) differentiate through gradients, which compiled graphs cannot: they run eagerly.
            call = self._compiled if self._compiled is not None and phase.every == 1 else self._wrapped
            out: LossOutput = self.model.loss(batch, phase.name) if call is None else call(batch, phase.name)
        total = out.total.float()  # a bf16 forward's loss is summed and logged in fp32
        if not bool(torch.isfinite(total)):
            raise self.keeper.divergence(f"non-finite loss ({total.item()}) in phase {phase.name!r}", self.step)
        total.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], self.config.grad_clip, foreach=True)
        # The schedule is a function of the training step, not of how often a phase runs. A lazy phase (R1)
        # finds its player's optimizer already set to the next step's lr by the main phase: back to this step's.
        scheduler = self.schedulers[phase.optimizer_name]
        if scheduler.last_epoch > self.step:
            scheduler.last_epoch = self.step - 1
            scheduler.step()
        optimizer.step()
        scheduler.last_epoch = self.step  # then the next step's lr: what the log reports, a checkpoint resumes with
        scheduler.step()
        prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
        return {f"{prefix}loss": total.detach(), **{f"{prefix}{k}": v.detach().float() for k, v in out.terms.items()}}

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
        self.runlog.write(row)
        self._emit("eval", row)
        log.info("step %d eval %s", self.step, json.dumps({k: round(v, 5) for k, v in self.last_eval.items()}))
        barrier(self.dist)
        return self.last_eval

    def _track_best(self, metrics: dict[str, float]) -> None:
        self.keeper.track_best(self.step, metrics, self.model, self.ema)

    def restore_best(self) -> None:
        """Load the weights of the best evaluation (``train.keep_best``) into the model."""
        self.keeper.restore_best(self.model, self.device)

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
        caption = self.model.preview_caption  # what the rows or cells show, where the family says
        save_image_grid(images, path, caption=caption)
        save_image_grid(images, self.out_dir / "samples.png", caption=caption)
        self.runlog.draw_curves(self.history)
        return path

    def ema_applied(self) -> Any:
        """Context manager: the EMA weights swapped in (a no-op without ``train.ema_decay``)."""
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
        if not self.keeper.finite(self.model, self.ema, self.optimizers):
            raise self.keeper.divergence("non-finite weights", self.step)
        state = self.state_dict()
        path = None
        if self.dist.is_main:
            path = self.keeper.save(self.step, self.model, state, self.ema.state_dict() if self.ema is not None else None)
            self._emit("checkpoint", {"step": self.step, "path": str(path)})
        barrier(self.dist)
        return path

    def _resume(self) -> None:
        state = self.keeper.resume(self.model, self.optimizers, self.schedulers, self.ema,
                                   rank=self.dist.rank, world_size=self.dist.world_size, device=self.device)
        apply_settings(self.optimizers, self.schedulers, optimizer_settings(self.phases, self.config), self.config)
        self.step = int(state["step"])
        saved = state.get("train_config", {})
        for key, value in self.config.to_dict().items():
            if key in saved and saved[key] != value:
                log.info("step %d: train.%s changed on resume: %r -> %r", self.step, key, saved[key], value)
        self.history = list(state.get("history", []))
        self.last_eval = dict(state.get("last_eval", {}))
        self.runlog.truncate(self.step)

    def export(self, directory: str | Path) -> Path:
        """Write the shareable model artifact (``config.json`` + ``model.safetensors``)."""
        return ckpt.save_model(self.model, directory, ema_state=self.ema.state_dict() if self.ema is not None else None)

    # ------------------------------------------------------------------ logging
    def _log_window(self, sums: dict[str, Tensor], count: int, samples_per_s: float) -> dict[str, float]:
        terms = all_reduce_mean({k: v / count for k, v in sums.items()}, self.dist)
        row = {"step": float(self.step), "epoch": self.step / self.steps_per_epoch}
        row.update({k: float(v) for k, v in terms.items()})
        row["lr"] = self.optimizers[self.phases[0].optimizer_name].param_groups[0]["lr"]
        row["samples_per_s"] = samples_per_s * self.dist.world_size
        self.history.append(row)
        self.runlog.write(row)
        self._emit("log", row)
        return row

    def _emit(self, event: str, info: dict[str, Any]) -> None:
        with self.runlog.off_clock():
            for callback in self.callbacks:
                callback(self, event, info)
