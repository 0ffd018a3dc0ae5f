"""Adversarial examples: FGSM (Goodfellow et al. 2015, "Explaining and Harnessing Adversarial
Examples") and PGD (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial
Attacks"), in the L-infinity and L2 norms, targeted or untargeted, with a random start.

Any classifier works: ``model(x) -> logits (B, num_classes)`` on inputs in the box ``[0, 1]``.
Every returned example lies inside the epsilon-ball around its input *and* inside the box (the two
projections commute here: clamping to the box only moves a coordinate toward the clean input, so it
never leaves the ball). The attacks never touch parameter gradients (``torch.autograd.grad`` on the
input only) and leave the model's train/eval mode as they found it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .batching import eval_mode, map_batches
from .errors import ConfigError, DataError

log = logging.getLogger(__name__)

Norm = Literal["linf", "l2"]
Method = Literal["fgsm", "pgd"]
METHODS = ("fgsm", "pgd")
_TINY = 1e-12


def _check(x: Tensor, y: Tensor, eps: float, norm: str, clip: tuple[float, float]) -> None:
    if norm not in ("linf", "l2"):
        raise ConfigError(f"attack norm must be 'linf' or 'l2', got {norm!r}")
    if eps < 0:
        raise ConfigError(f"attack eps must be >= 0, got {eps}")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"attack needs one label per input: {x.shape[0]} inputs, {y.shape[0]} labels")
    lo, hi = clip
    if float(x.min()) < lo - 1e-6 or float(x.max()) > hi + 1e-6:
        raise DataError(f"attack inputs must lie in [{lo}, {hi}], got range [{float(x.min()):.3g}, {float(x.max()):.3g}]")


def _flat_norm(t: Tensor) -> Tensor:
    """Per-example L2 norm, shaped to broadcast against t: (B, 1, 1, ...)."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def _input_gradient(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, targeted: bool) -> tuple[Tensor, Tensor]:
    """Gradient of the attacker's objective w.r.t. x, and the per-example loss (B,).
    Untargeted: ascend CE(y). Targeted (y = target classes): descend CE(y), i.e. ascend -CE."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x), y, reduction="none")  # (B,)
        objective = -loss if targeted else loss
        (grad,) = torch.autograd.grad(objective.sum(), x)
    return grad, objective.detach()


def _ascent_direction(grad: Tensor, norm: str) -> Tensor:
    if norm == "linf":
        return grad.sign()
    return grad / _flat_norm(grad).clamp_min(_TINY)


def project(x_adv: Tensor, x: Tensor, eps: float, norm: str, clip: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Nearest point of the eps-ball around x (per example), then clamp to the box ``clip``."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _flat_norm(delta).clamp_min(_TINY)).clamp(max=1.0)
    return (x + delta).clamp(*clip)


def fgsm(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: Norm = "linf",
    targeted: bool = False,
    clip: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """One step of size eps along the sign (L-inf) or direction (L2) of the loss gradient.
    ``y`` are the true labels, or the target labels when ``targeted``."""
    _check(x, y, eps, norm, clip)
    grad, _ = _input_gradient(model, x, y, targeted)
    return project(x + eps * _ascent_direction(grad, norm), x, eps, norm, clip).detach()


def _random_start(x: Tensor, eps: float, norm: str, generator: torch.Generator | None) -> Tensor:
    if norm == "linf":
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        return eps * noise
    # uniform in the L2 ball: Gaussian direction, radius eps * U^(1/d)
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    direction = direction / _flat_norm(direction).clamp_min(_TINY)
    d = x[0].numel()
    u = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
    radius = eps * u.pow(1.0 / d)
    return direction * radius.view(-1, *([1] * (x.dim() - 1)))


def pgd(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    steps: int = 40,
    step_size: float | None = None,
    norm: Norm = "linf",
    targeted: bool = False,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Projected gradient ascent on the loss inside the eps-ball: ``steps`` steps of ``step_size``
    (default ``2.5 * eps / steps``, Madry et al.'s rule), each followed by the projection, from a
    uniform random point of the ball when ``random_start``. Returns, per example, the iterate with the
    highest attacker objective seen (so more steps never make the attack weaker)."""
    _check(x, y, eps, norm, clip)
    if steps < 1:
        raise ConfigError(f"pgd needs steps >= 1, got {steps}")
    alpha = 2.5 * eps / steps if step_size is None else step_size
    x = x.detach()
    x_adv = project(x + _random_start(x, eps, norm, generator), x, eps, norm, clip) if random_start else x.clone()
    best, best_objective = x_adv.clone(), torch.full((x.shape[0],), -float("inf"), device=x.device)
    shape = (-1, *([1] * (x.dim() - 1)))
    for _ in range(steps):
        grad, objective = _input_gradient(model, x_adv, y, targeted)
        better = objective > best_objective
        best = torch.where(better.view(shape), x_adv, best)
        best_objective = torch.where(better, objective, best_objective)
        x_adv = project(x_adv + alpha * _ascent_direction(grad, norm), x, eps, norm, clip).detach()
    with torch.no_grad():
        loss = F.cross_entropy(model(x_adv), y, reduction="none")
        objective = -loss if targeted else loss
    better = objective > best_objective
    return torch.where(better.view(shape), x_adv, best).detach()


ATTACKS: dict[str, Callable[..., Tensor]] = {"fgsm": fgsm, "pgd": pgd}


def attack(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, *, method: Method = "pgd", **options: Any) -> Tensor:
    """``fgsm`` or ``pgd`` by name (options are those of the function)."""
    if method not in ATTACKS:
        raise ConfigError(f"unknown attack {method!r}; valid: {', '.join(ATTACKS)}")
    if method == "fgsm":
        options = {k: v for k, v in options.items() if k not in ("steps", "step_size", "random_start", "generator")}
    return ATTACKS[method](model, x, y, **options)


def robust_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    method: Method | None = "pgd",
    eps: float = 0.0,
    batch_size: int = 500,
    seed: int = 0,
    **options: Any,
) -> float:
    """Accuracy of ``model`` on adversarial versions of (x, y); ``method=None`` or ``eps=0`` is the
    clean accuracy. Untargeted. The model runs in eval mode."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)

    def hits(xb: Tensor, yb: Tensor) -> Tensor:  # (B,) bool: classified right after the attack
        if method is not None and eps > 0:
            extra = {"generator": generator} if method == "pgd" else {}
            xb = attack(model, xb, yb, method=method, eps=eps, **extra, **options)
        with torch.no_grad():
            return model(xb).argmax(1) == yb

    with eval_mode(model):  # the attack needs input gradients: grad=True
        correct = int(map_batches(hits, x, y, batch_size=batch_size, device=device, grad=True).sum())
    return correct / max(1, x.shape[0])


def attack_table(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    methods: Sequence[str] = METHODS,
    eps: Sequence[float] = (0.1, 0.2, 0.3),
    norm: Norm = "linf",
    steps: int = 40,
    batch_size: int = 500,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows ``{"method", "eps", "norm", "accuracy"}``: the clean accuracy first, then every
    (method, eps) pair."""
    rows = [{"method": "clean", "eps": 0.0, "norm": norm, "accuracy": robust_accuracy(model, x, y, method=None, batch_size=batch_size)}]
    for method in methods:
        for e in eps:
            extra = {"steps": steps} if method == "pgd" else {}
            acc = robust_accuracy(model, x, y, method=method, eps=e, norm=norm, batch_size=batch_size, seed=seed, **extra)  # type: ignore[arg-type]
            rows.append({"method": method, "eps": float(e), "norm": norm, "accuracy": acc})
            log.info("%s eps=%g (%s): accuracy %.4f", method, e, norm, acc)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text accuracy table, one row per attack."""
    lines = [f"{'attack':<8} {'norm':<5} {'eps':>6} {'accuracy':>9}"]
    for r in rows:
        lines.append(f"{r['method']:<8} {r['norm']:<5} {r['eps']:>6.3g} {100 * r['accuracy']:>8.2f}%")
    return "\n".join(lines)
