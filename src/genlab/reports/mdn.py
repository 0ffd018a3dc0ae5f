"""The conditional density models' evaluator and end-of-training figures (MDN, Bishop 1994, and its
one-Gaussian / MSE baseline): test NLL, MSE, and on the robot arm the fraction of targets reached;
the density heat map on 1-D data, the modes over the true solutions on the arm."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.toy import arm_from_info, forward_kinematics, inverse_kinematics
from ..errors import ConfigError
from ..models.mdn import ConditionalDensityModel, Regressor
from ..registry import register_evaluator, register_reporter
from ..viz import _pyplot, save_figure


def arm_success(predicted_angles: Tensor, targets: Tensor, arm: dict[str, tuple[float, float]], *, tolerance: float = 0.05) -> tuple[Tensor, Tensor]:
    """(hit (N,) bool: forward kinematics of the predicted angles lands within ``tolerance`` of the
    target, two_solutions (N,) bool: the target has two valid joint configurations)."""
    reached = forward_kinematics(predicted_angles, arm["lengths"])
    hit = (reached - targets).norm(dim=-1) <= tolerance
    _, valid = inverse_kinematics(targets, arm["lengths"], arm["theta1_range"], arm["theta2_range"])
    return hit, valid.sum(1) == 2


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


@torch.no_grad()
def plot_conditional_density(models: dict[str, Any], data: Any, path: str | Path, *, resolution: int = 200) -> Path:
    """One panel per model: p(y | x) on a grid as a heat map, the data on top, and the prediction.
    For 1-D inputs and targets (the inverted sinusoid)."""
    plt = _pyplot()
    from matplotlib.colors import PowerNorm

    x, y = data.tensors[0][:, 0], data.tensors[1][:, 0]
    pad_x, pad_y = 0.1 * float(x.max() - x.min()), 0.1 * float(y.max() - y.min())
    xs = torch.linspace(float(x.min()) - pad_x, float(x.max()) + pad_x, resolution)
    ys = torch.linspace(float(y.min()) - pad_y, float(y.max()) + pad_y, resolution)
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.2), squeeze=False)
    for ax, (label, model) in zip(axes[0], models.items()):
        device = model.device
        dist = model.distribution(xs[:, None].to(device))
        logp = dist.log_prob(ys[:, None, None].to(device)).cpu()  # (Ny, Nx)
        # gamma < 1 so that the spread-out density of the multi-valued middle shows beside the sharp ends
        density = logp.exp().clamp(max=float(torch.quantile(logp.exp().flatten(), 0.99)))
        ax.imshow(density.numpy(), origin="lower", extent=[float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])],
                  aspect="auto", cmap="magma", norm=PowerNorm(gamma=0.4))
        ax.scatter(x[:600].numpy(), y[:600].numpy(), s=2, c="white", alpha=0.35, linewidths=0)
        # predict(): an MDN's most probable mode, a single Gaussian's mean (the same number for it)
        what = "most probable mode" if getattr(model.config, "num_components", 1) > 1 else "mean"
        ax.plot(xs.numpy(), model.predict(xs[:, None].to(device)).cpu()[:, 0].numpy(), c="cyan", lw=1.2, label=f"prediction: {what}")
        nll = -float(model.log_prob(data.tensors[0].to(device), data.tensors[1].to(device)).mean())
        ax.set_ylim(float(ys[0]), float(ys[-1]))
        ax.set_title(f"{label}: p(t | x), test NLL {nll:.3f}")
        ax.set_xlabel("x")
        ax.set_ylabel("t")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


@torch.no_grad()
def plot_arm_modes(model: Any, data: Any, path: str | Path, *, baseline: Any | None = None, num_arms: int = 4) -> Path:
    """Left: joint-angle space, true solutions of each test target vs the model's two heaviest modes
    (and a baseline's prediction). Right: arms drawn for a few two-solution targets."""
    plt = _pyplot()
    arm = arm_from_info(data.info)
    if arm is None:
        raise ConfigError("plot_arm_modes needs robot-arm data")
    targets = data.tensors[0][:1500]
    solutions, valid = inverse_kinematics(targets, arm["lengths"], arm["theta1_range"], arm["theta2_range"])
    modes, weights = model.modes(targets.to(model.device))
    modes, weights = modes.cpu(), weights.cpu()
    fig, (ax, ax_arm) = plt.subplots(1, 2, figsize=(11, 4.6))
    true = solutions[valid]
    ax.scatter(true[:, 0], true[:, 1], s=10, c="lightgrey", label="true solutions")
    top = modes[:, : min(2, modes.shape[1])]
    w = weights[:, : top.shape[1]]
    heavy = w > 0.1
    ax.scatter(top[heavy][:, 0], top[heavy][:, 1], s=3, c="tab:blue", label=f"{model.registry_name} modes (weight > 0.1)")
    if baseline is not None:
        pred = baseline.predict(targets.to(baseline.device)).cpu()
        ax.scatter(pred[:, 0], pred[:, 1], s=3, c="tab:red", label=f"{baseline.registry_name} prediction")
    ax.set_xlabel("shoulder angle (rad)")
    ax.set_ylabel("elbow angle (rad)")
    ax.legend(fontsize=8, markerscale=3)
    ax.set_title("joint space")
    two = torch.nonzero(valid.sum(1) == 2).flatten()[:num_arms]
    colours = plt.get_cmap("tab10")
    l1 = arm["lengths"][0]

    def draw(angles: Tensor, colour: Any, style: str, width: float) -> None:
        elbow = l1 * torch.stack([angles[0].cos(), angles[0].sin()])
        end = forward_kinematics(angles, arm["lengths"])
        ax_arm.plot([0, float(elbow[0]), float(end[0])], [0, float(elbow[1]), float(end[1])], style, c=colour, lw=width)

    for j, i in enumerate(two.tolist()):
        colour = colours(j)
        for s in range(2):
            draw(solutions[i, s], colour, ":", 2.5)
        for k in range(top.shape[1]):
            if w[i, k] > 0.1:
                draw(top[i, k], colour, "-", 1.0)
        if baseline is not None:
            draw(baseline.predict(targets[i : i + 1].to(baseline.device)).cpu()[0], colour, "--", 1.0)
        ax_arm.plot(*targets[i].tolist(), "x", c=colour, ms=9)
    ax_arm.set_aspect("equal")
    ax_arm.set_title("dotted: true solutions, solid: MDN modes" + (", dashed: baseline" if baseline is not None else ""), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


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
