"""The classifier's evaluator: test accuracy, cross-entropy and error rate, and with an attack
(FGSM, Goodfellow et al. 2015; PGD, Madry et al. 2018) the accuracy under it (``genlab evaluate``);
the adversarial-example figure and ``genlab attack``'s report (:func:`attack_report`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks import ATTACKS, METHODS, Norm, attack, attack_table, eval_mode, robust_accuracy
from ..errors import ConfigError
from ..models.classifier import Classifier
from ..registry import register_evaluator
from ..viz import _images, _pyplot, save_figure


@register_evaluator("classifier")
def evaluate_classifier(model: Classifier, test_data: Any, *, batch_size: int = 500, attack: str | None = None,
                        eps: float = 0.0, norm: str = "linf", steps: int = 40, **_: Any) -> dict[str, float]:
    """Test accuracy and mean cross-entropy; with ``attack`` ("fgsm"/"pgd") and ``eps``, also the
    accuracy under that attack."""
    device = model.device
    x, y = test_data.x, test_data.y
    nll = 0.0
    correct = 0
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
            logits = model(xb)
            nll += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    out = {"accuracy": correct / len(x), "nll": nll / len(x), "error_rate": 1 - correct / len(x)}
    if attack is not None and eps > 0:
        extra = {"steps": steps} if attack == "pgd" else {}
        out[f"{attack}_accuracy"] = robust_accuracy(model, x, y, method=attack, eps=eps, norm=norm, batch_size=batch_size, **extra)  # type: ignore[arg-type]
    return out


@torch.no_grad()
def plot_adversarial(model: Any, x: Tensor, x_adv: Tensor, y: Tensor, path: str | Path, *, title: str = "") -> Path:
    """Rows: original, perturbation (amplified to fill [0, 1]), adversarial; predicted labels on top."""
    plt = _pyplot()
    device = model.device
    pred_clean = model(x.to(device)).argmax(1).cpu()
    pred_adv = model(x_adv.to(device)).argmax(1).cpu()
    delta = x_adv - x
    scale = float(delta.abs().max()) or 1.0
    amplified = 0.5 + 0.5 * delta / scale
    n = x.shape[0]
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.6), squeeze=False)
    for i in range(n):
        for row, (images, label) in enumerate(((x, f"{int(pred_clean[i])}"), (amplified, ""), (x_adv, f"{int(pred_adv[i])}"))):
            ax = axes[row, i]
            ax.imshow(_images(images[i]), cmap="gray" if images.shape[1] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if label:
                wrong = row == 2 and int(pred_adv[i]) != int(y[i])
                ax.set_title(f"pred {label}", fontsize=8, color="red" if wrong else "black")
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel(f"delta x{0.5 / scale:.1f}", fontsize=8)
    axes[2, 0].set_ylabel("adversarial", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def attack_report(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    methods: Sequence[str] = METHODS,
    eps: Sequence[float] = (0.1, 0.2, 0.3),
    norm: Norm = "linf",
    steps: int = 40,
    seed: int = 0,
    figure: str | Path | None = None,
    figure_count: int = 10,
) -> list[dict[str, Any]]:
    """:func:`attack_table` plus, when ``figure`` is a path, the original / perturbation /
    adversarial figure of the strongest listed method at the largest eps (``genlab attack``)."""
    for method in methods:
        if method not in ATTACKS:
            raise ConfigError(f"unknown attack {method!r}; valid: {', '.join(ATTACKS)}")
    if not eps:
        raise ConfigError("give at least one eps")
    rows = attack_table(model, x, y, methods=methods, eps=eps, norm=norm, steps=steps, seed=seed)
    if figure is not None:
        method = "pgd" if "pgd" in methods else methods[0]
        device = next(model.parameters()).device
        xs, ys = x[:figure_count].to(device), y[:figure_count].to(device)
        extra = {"steps": steps, "generator": torch.Generator(device=device).manual_seed(seed)} if method == "pgd" else {}
        with eval_mode(model):
            x_adv = attack(model, xs, ys, method=method, eps=max(eps), norm=norm, **extra)  # type: ignore[arg-type]
            plot_adversarial(model, xs.cpu(), x_adv.cpu(), ys.cpu(), figure, title=f"{method.upper()}, {norm} eps = {max(eps)}")
    return rows
