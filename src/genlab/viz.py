"""Drawing primitives (matplotlib): training curves, latent scatter plots, points or images over
data. They take tensors and arrays and run no model: a family's figures, which need its model's
outputs, are in :mod:`genlab.reports` (``reports/<family>.py``). Image grids (PIL only) are in
:mod:`genlab.grids`, which the Trainer uses; this module re-exports them.

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


def scatter_panels(panels: Sequence[tuple[str, Tensor | np.ndarray]], path: str | Path, *, size: float = 5.0) -> Path:
    """Side by side, one scatter of many 2-D points (N, 2) per ``(title, points)``, equal axes."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), squeeze=False)
    for ax, (title, points) in zip(axes[0], panels):
        points = np.asarray(points)
        ax.scatter(points[:, 0], points[:, 1], s=0.2, c="k", alpha=0.2, linewidths=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
        ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return save_figure(fig, path)


def _images(t: Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> array for imshow."""
    a = t.detach().cpu().clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


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
