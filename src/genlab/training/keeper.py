"""The checkpoint policy of a training run: what is written, what a resume continues from, what a
divergence sets aside, and the best weights.

A checkpoint is written only from finite weights and optimizer state, and it counts as *known good*
once training has gone on from it for ``checkpoint_probation`` steps with finite losses. Rotation keeps
the newest ``keep_checkpoints`` and every checkpoint still on probation until a newer one has served its
probation, so a known-good checkpoint exists whatever the cadence once that many steps have passed. On a
non-finite loss the checkpoints written since the last known-good one are suspect (weights can blow up
while the loss is still finite): they are renamed ``diverged-step-*`` and the error names the checkpoint
a resume continues from, or says that none is usable (a resume then starts from the initial weights,
which the seed reproduces).

:class:`Keeper` is handed values (the step, the model, the optimizers, a training state), never the Trainer.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import checkpoint as ckpt
from ..errors import CheckpointError, ConfigError, TrainingError
from ..models.base import GenerativeModel
from ..runtime import set_rng_state
from .ema import EMA

log = logging.getLogger(__name__)


def check_keep_best(model: GenerativeModel, batch: tuple[Tensor, ...], config: Any) -> None:
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


class Keeper:
    """Checkpoints under ``out_dir/checkpoints`` (none without ``out_dir``); best weights in ``out_dir/best``
    or, without an output folder, in memory. Only the main process (``is_main``) writes."""

    def __init__(self, out_dir: Path | None, *, is_main: bool, keep: int, probation: int,
                 keep_best: str | None = None, keep_best_mode: str = "min") -> None:
        self.out_dir, self.is_main, self.keep, self.probation = out_dir, is_main, keep, probation
        self.root = out_dir / "checkpoints" if out_dir is not None else None
        self.keep_best = keep_best
        self.best_metric = None if keep_best is None else keep_best if keep_best.startswith("eval/") else f"eval/{keep_best}"
        self.best_mode = keep_best_mode
        self.best: dict[str, float] | None = None  # {"step", "value"} of the best evaluation so far
        self._best_state: dict[str, Tensor] | None = None  # in-memory copy when there is no out_dir

    def clean(self) -> None:
        """Remove what a killed write left behind (at start-up, before anything reads the run folder)."""
        if self.out_dir is not None and self.is_main:
            for path in ckpt.remove_orphans(self.out_dir):
                log.info("removed %s, left by an interrupted write", path)

    # ------------------------------------------------------------------ writing
    @staticmethod
    def finite(model: nn.Module, ema: EMA | None, optimizers: dict[str, torch.optim.Optimizer]) -> bool:
        """Weights, buffers, EMA and optimizer state all finite: the condition for writing a checkpoint."""
        tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        if ema is not None:
            tensors += list(ema.shadow.values())
        for opt in optimizers.values():
            tensors += [v for state in opt.state.values() for v in state.values()
                        if isinstance(v, Tensor) and v.is_floating_point()]
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def save(self, step: int, model: nn.Module, state: dict[str, Any], ema_state: dict[str, Tensor] | None) -> Path:
        """Write the checkpoint of ``step``; the newest checkpoint ``probation`` steps old becomes known good."""
        assert self.root is not None
        good = [p for p in ckpt.list_checkpoints(self.root) if ckpt.checkpoint_step(p) <= step - self.probation]
        return ckpt.write_checkpoint(self.root, step, model, state, ema_state=ema_state, keep=self.keep,
                                     good=good[-1].name if good else None)

    def divergence(self, what: str, step: int) -> TrainingError:
        """The error for a run that went non-finite at ``step``. Checkpoints that training did not go on from
        for ``probation`` finite steps are set aside; the message names what is left."""
        usable: Path | None = None
        limit = step - self.probation
        if self.root is not None and self.is_main:
            usable = ckpt.set_aside_suspects(self.root, limit)
        elif self.root is not None:
            left = [p for p in ckpt.list_checkpoints(self.root) if ckpt.checkpoint_step(p) <= limit]
            usable = left[-1] if left else None
        message = f"{what} at step {step}; stopped before the update."
        if self.root is None:
            message += " No checkpoint was kept (no output folder)."
        elif usable is not None:
            message += (f" The last usable checkpoint is {usable} (later ones are suspect, renamed {ckpt.DIVERGED_PREFIX}step-*);"
                        f" continue from it with a lower lr: genlab train --resume {self.out_dir} --train.lr=LOWER.")
        else:
            message += (f" There is no usable checkpoint (none was followed by {self.probation} finite steps);"
                        f" genlab train --resume {self.out_dir} --train.lr=LOWER restarts from the initial weights, which the seed reproduces.")
        return TrainingError(message + " Try a lower train.lr or train.grad_clip.")

    # ------------------------------------------------------------------ resuming
    def resume(self, model: GenerativeModel, optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any],
               ema: EMA | None, *, rank: int, world_size: int, device: torch.device) -> dict[str, Any]:
        """Load the latest checkpoint into ``model``, the optimizers, schedulers, EMA, the model's training
        extras and the RNG; return its training state (step, history, ...)."""
        if self.root is None:
            raise CheckpointError("cannot resume without an output folder")
        latest = ckpt.latest_checkpoint(self.root)
        if latest is None:
            raise CheckpointError(f"nothing to resume: no checkpoint in {self.root}")
        weights = ckpt.load_tensors(latest / ckpt.WEIGHTS_NAME, device=device)
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"the weights in {latest} do not fit this model: {str(exc).splitlines()[0]}") from None
        state = ckpt.load_training_state(latest / ckpt.STATE_NAME)
        missing = sorted(set(optimizers) - set(state["optimizers"]))
        if missing:
            raise CheckpointError(f"{latest} holds no state for optimizer(s) {', '.join(missing)} "
                                  f"(it has {', '.join(sorted(state['optimizers']))}): it was written by another version")
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        if ema is not None:
            if (latest / ckpt.EMA_NAME).is_file():
                ema.load_state_dict(ckpt.load_tensors(latest / ckpt.EMA_NAME, device=device))
            else:  # an EMA switched on at this resume starts from the resumed weights
                ema.load_state_dict(ema.live)
        same_ranks = len(state.get("rng_per_rank") or []) == world_size
        extras_per_rank = state.get("model_extras_per_rank")
        if same_ranks and extras_per_rank is not None and len(extras_per_rank) == world_size:
            model.load_training_extras(extras_per_rank[rank])
        else:  # an older checkpoint, or another number of processes: rank 0's
            model.load_training_extras(state.get("model_extras", {}))
        # another number of processes: all ranks share rank 0's state, as in a fresh start
        set_rng_state(state["rng_per_rank"][rank] if same_ranks else state["rng"])
        self.best = state.get("best")
        log.info("resumed from %s at step %d", latest, int(state["step"]))
        return state

    # ------------------------------------------------------------------ best weights
    def track_best(self, step: int, metrics: dict[str, float], model: GenerativeModel, ema: EMA | None) -> None:
        """Keep the weights (the EMA's when kept) of the best evaluation so far."""
        name = self.best_metric
        if name is None:
            return
        if name not in metrics:
            raise TrainingError(f"train.keep_best={self.keep_best!r} is not among the evaluation metrics: "
                                + ", ".join(sorted(k.removeprefix("eval/") for k in metrics)))
        value = metrics[name]
        if self.best is not None and not (value < self.best["value"] if self.best_mode == "min" else value > self.best["value"]):
            return
        self.best = {"step": float(step), "value": value}
        if self.out_dir is not None:
            ckpt.save_model(model, self.out_dir / "best", ema_state=ema.state_dict() if ema is not None else None)
        else:
            with ema.applied() if ema is not None else torch.no_grad():
                self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        log.info("step %d: best %s so far (%.6g)", step, name, value)

    def restore_best(self, model: nn.Module, device: torch.device) -> None:
        """Load the weights of the best evaluation into ``model``."""
        if self.best is None:
            raise TrainingError("no best weights: set train.keep_best and give the Trainer eval_data")
        if self.out_dir is not None:
            best = self.out_dir / "best"
            model.load_state_dict(ckpt.load_tensors(best / ckpt.WEIGHTS_NAME, device=device))
            if (best / ckpt.EMA_NAME).exists():  # what was evaluated: the averaged weights
                model.load_state_dict(ckpt.load_tensors(best / ckpt.EMA_NAME, device=device), strict=False)
        else:
            assert self._best_state is not None
            model.load_state_dict(self._best_state)
