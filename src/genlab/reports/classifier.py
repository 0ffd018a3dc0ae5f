"""The classifier's evaluator: test accuracy, cross-entropy and error rate, and with an attack
(FGSM, Goodfellow et al. 2015; PGD, Madry et al. 2018) the accuracy under it (``genlab evaluate``)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..attacks import eval_mode, robust_accuracy
from ..models.classifier import Classifier
from ..registry import register_evaluator


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
