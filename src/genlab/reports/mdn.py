"""The conditional density models' evaluator and end-of-training figures (MDN, Bishop 1994, and its
one-Gaussian / MSE baseline): test NLL, MSE, and on the robot arm the fraction of targets reached;
the density heat map on 1-D data, the modes over the true solutions on the arm."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..data.toy import arm_from_info
from ..models.mdn import ConditionalDensityModel, Regressor, arm_success
from ..registry import register_evaluator, register_reporter
from ..viz import plot_arm_modes, plot_conditional_density


@torch.no_grad()
def evaluate_conditional(model: ConditionalDensityModel, test_data: Any, *, batch_size: int = 4096,
                         tolerance: float = 0.05, **_: Any) -> dict[str, float]:
    """Test NLL (nats per example; not for MSE networks), MSE of ``predict``, and on robot-arm data
    the fraction of targets reached within ``tolerance``: overall, and on two-solution targets."""
    device = model.device
    x, y = test_data.tensors[0], test_data.tensors[1]
    nll, sq, preds = 0.0, 0.0, []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        nll -= float(model.log_prob(xb, yb).sum())
        pred = model.predict(xb)
        sq += float(((pred - yb) ** 2).sum())
        preds.append(pred.cpu())
    out: dict[str, float] = {"mse": sq / len(x)}
    if not (isinstance(model, Regressor) and model.config.likelihood == "mse"):
        out["nll"] = nll / len(x)
    arm = arm_from_info(test_data.info)
    if arm is not None:
        hit, two = arm_success(torch.cat(preds), x, arm, tolerance=tolerance)
        out["reach_rate"] = float(hit.float().mean())
        out["reach_rate_two_solutions"] = float(hit[two].float().mean()) if bool(two.any()) else math.nan
        out["reach_rate_one_solution"] = float(hit[~two].float().mean()) if bool((~two).any()) else math.nan
    return out


register_evaluator("mdn")(evaluate_conditional)
register_evaluator("regressor")(evaluate_conditional)


def report_conditional(model: ConditionalDensityModel, run_dir: Any, train_data: Any, test_data: Any) -> dict[str, float]:
    """Family figure at the end of ``genlab train``: densities on 1-D data, modes vs truth on the arm."""
    data = test_data if test_data is not None else train_data
    run_dir = Path(run_dir)
    if data.info.get("x_dim") == 1 and data.info.get("y_dim") == 1:
        plot_conditional_density({model.registry_name: model}, data, run_dir / "density.png")
    elif data.info.get("arm") is not None:
        plot_arm_modes(model, data, run_dir / "arm_modes.png")
    return evaluate_conditional(model, data)


register_reporter("mdn")(report_conditional)
register_reporter("regressor")(report_conditional)
