"""Pictures (matplotlib): training curves, latent scatter plots, and the
families' figures that reporters and the lecture share (conditional densities, robot-arm modes,
samples over data, adversarial examples). Image grids (PIL only) are in :mod:`genlab.grids`, which
the Trainer uses; this module re-exports them.

matplotlib is imported inside the functions that plot, with the non-interactive Agg backend, so
importing genlab never opens a display.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .grids import make_grid, save_image_grid, to_uint8  # noqa: F401  (re-exported)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 120, *, tight: bool = True) -> Path:
    """Save and close ``fig``; ``tight=False`` keeps the figure's own margins (one draw instead of
    two: a tight bounding box draws the figure once to measure it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    _pyplot().close(fig)
    return path


def plot_history(history: Sequence[dict[str, float]], path: str | Path) -> Path:
    """One panel per logged quantity (losses and eval metrics), step on the x axis.

    Drawn during training, so it is kept cheap: fixed margins instead of ``tight_layout`` and a
    tight bounding box (each of which draws the whole figure once more to measure its text)."""
    plt = _pyplot()
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in history:
        for key, value in row.items():
            if key in ("step", "epoch", "lr", "samples_per_s"):
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(row["step"])
            ys.append(value)
    keys = sorted(series)
    cols = min(4, max(1, len(keys)))
    rows = max(1, math.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    fig.subplots_adjust(left=0.35 / cols, right=0.98, bottom=0.3 / rows, top=1 - 0.3 / rows, wspace=0.35, hspace=0.5)
    for ax, key in zip(axes.flat, keys):
        xs, ys = series[key]
        ax.plot(xs, ys, lw=1)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return save_figure(fig, path, tight=False)


def scatter_latent(codes: np.ndarray, labels: np.ndarray | None, path: str | Path, title: str = "") -> Path:
    """2-D scatter of latent codes coloured by label (PCA to 2-D first when wider)."""
    plt = _pyplot()
    codes = np.asarray(codes, dtype=np.float64)
    axis_names = ("z[0]", "z[1]")
    if codes.shape[1] > 2:
        centred = codes - codes.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        codes = centred @ vt[:2].T
        axis_names = ("PC 1", "PC 2")
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, s=3, cmap="tab10", alpha=0.7)
    if labels is not None:
        fig.colorbar(points, ax=ax, ticks=np.unique(labels)[:20])
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title)
    return save_figure(fig, path)


def _images(t: Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> array for imshow."""
    a = t.detach().cpu().clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


# ----------------------------------------------------------------------------- the families' figures

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
        ax.plot(xs.numpy(), model.predict(xs[:, None].to(device)).cpu()[:, 0].numpy(), c="cyan", lw=1.2, label="prediction")
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
    from .data.toy import arm_from_info, forward_kinematics, inverse_kinematics

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


def plot_samples_vs_data(samples: Tensor, data: Tensor, path: str | Path, *, title: str = "") -> Path:
    """2-D points: one scatter with both. Images: a data grid beside a sample grid."""
    plt = _pyplot()
    if samples.dim() == 2 and samples.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(data[:, 0], data[:, 1], s=2, c="tab:blue", alpha=0.4, label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.6, label="samples")
        centre = data.mean(0)
        ax.set_aspect("equal")
        ax.legend(markerscale=4, fontsize=8)
        ax.plot(float(centre[0]), float(centre[1]), "k+", ms=14)
        ax.annotate("data mean", (float(centre[0]), float(centre[1])), xytext=(8, 8), textcoords="offset points", fontsize=8)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 5))
        for ax, images, label in zip(axes, (data[:64], samples[:64]), ("data", "samples")):
            ax.imshow(_images(make_grid(images, nrow=8)), cmap="gray", vmin=0, vmax=1)
            ax.set_title(label)
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


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
