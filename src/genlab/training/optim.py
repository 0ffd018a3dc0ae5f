"""The optimizers and learning-rate schedules of a run, built from the model's phases and the train config."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import TrainingError
from ..models.base import GenerativeModel, Phase


def optimizer_settings(phases: list[Phase], config: Any) -> dict[str, tuple[float, tuple[float, float]]]:
    """Base lr and betas of each optimizer: its phases' own, else the train config's.

    A player whose optimizer also steps a lazy phase (regularisation every ``k`` > 1 steps) gets
    stylegan2-ada's correction (Karras et al. 2020, appendix B): lr * k/(k+1) and betas ** (k/(k+1)),
    so that k main steps plus the lazy one move the weights as k steps at the configured values would."""
    players: dict[str, list[Phase]] = {}
    for phase in phases:
        players.setdefault(phase.optimizer_name, []).append(phase)
    settings = {}
    for name, shared in players.items():
        main = shared[0]  # the player's main phase: the first that names the optimizer
        lr = main.lr if main.lr is not None else config.lr
        betas = main.betas if main.betas is not None else config.betas
        for other in shared[1:]:
            if (other.lr is not None and other.lr != lr) or (other.betas is not None and tuple(other.betas) != tuple(betas)):
                raise TrainingError(f"phases {main.name!r} and {other.name!r} share optimizer {name!r} "
                                    "but set different lr or betas")
        lazy = [p.every for p in shared[1:] if p.every > 1]
        if len(lazy) > 1:
            raise TrainingError(f"optimizer {name!r} is shared by {len(lazy)} lazy phases; at most one is supported")
        if lazy:
            ratio = lazy[0] / (lazy[0] + 1)
            lr, betas = lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)
        settings[name] = (lr, tuple(betas))
    return settings


def build_optimizers(model: GenerativeModel, phases: list[Phase], config: Any,
                     device: torch.device) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per optimizer name, over the parameters of the phases that step it."""
    optimizers = {}
    for name, (lr, betas) in optimizer_settings(phases, config).items():
        params: dict[int, torch.nn.Parameter] = {}
        for phase in phases:
            if phase.optimizer_name == name:
                found = model.phase_parameters(phase)
                if not found:
                    raise TrainingError(f"phase {phase.name!r} has no trainable parameters")
                params.update((id(p), p) for p in found)
        # fused kernels do the whole update in one pass per tensor (CPU since torch 2.4, and CUDA)
        fused = {"fused": True} if config.fused_optimizer and device.type in ("cpu", "cuda") else {}
        kind, decay = config.optimizer, config.weight_decay
        if kind in ("adam", "adamw"):
            cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
            optimizers[name] = cls(list(params.values()), lr=lr, betas=betas, weight_decay=decay, **fused)
        else:
            cls = torch.optim.SGD if kind == "sgd" else torch.optim.RMSprop
            optimizers[name] = cls(list(params.values()), lr=lr, momentum=config.momentum, weight_decay=decay)
    return optimizers


def make_scheduler(optimizer: torch.optim.Optimizer, config: Any, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """``train.lr_schedule`` after ``train.warmup_steps`` of linear warm-up, as a function of the training step."""
    cfg = config

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


def apply_settings(optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any],
                   settings: dict[str, tuple[float, tuple[float, float]]], config: Any) -> None:
    """The loaded optimizer and scheduler states carry the saved run's lr (LambdaLR keeps base_lrs), betas,
    momentum and weight decay: the current config wins, from the resumed step on."""
    for name, optimizer in optimizers.items():
        scheduler, (base, betas) = schedulers[name], settings[name]
        scheduler.base_lrs = [base] * len(optimizer.param_groups)
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
        for group in optimizer.param_groups:
            group.update(initial_lr=base, lr=base * factor, weight_decay=config.weight_decay)
            if "betas" in group:
                group["betas"] = betas
            if "momentum" in group:
                group["momentum"] = config.momentum
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() reports
