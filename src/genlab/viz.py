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


MARKERS_ONLY_BELOW = 12  # a curve with at most this many points is drawn as markers alone
FIGURE_DPI = 120  # every saved figure's resolution (save_figure's default)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = FIGURE_DPI, *, tight: bool = True) -> Path:
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
    width, height = 3.2 * cols, 2.6 * rows
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    # margins in inches, so that titles and the step labels fit at any number of rows
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.1 / width, bottom=0.5 / height, top=1 - 0.3 / height,
                        wspace=0.35, hspace=0.75)
    for ax, key in zip(axes.flat, keys):
        xs, ys = series[key]
        if len(xs) <= MARKERS_ONLY_BELOW:
            # a few evaluations: points, not a line that reads as a trend between two of them
            ax.plot(xs, ys, "o", ms=3.5)
        else:
            ax.plot(xs, ys, lw=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=7, labelpad=1)
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


def plot_samples_vs_data(samples: Tensor, data: Tensor, path: str | Path, *, title: str = "", mark_mean: bool = True) -> Path:
    """2-D points: one scatter with both (and the data mean marked, unless not ``mark_mean``).
    Images: a data grid beside a sample grid."""
    plt = _pyplot()
    if samples.dim() == 2 and samples.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(data[:, 0], data[:, 1], s=2, c="tab:blue", alpha=0.4, label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.6, label="samples")
        ax.set_aspect("equal")
        ax.legend(markerscale=4, fontsize=8)
        if mark_mean:
            centre = data.mean(0)
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


def image_panels(panels: Sequence[tuple[str, Tensor, int]], path: str | Path, *, title: str = "",
                 panel_width: float = 4.5, columns: int | None = None, native: bool = False) -> Path:
    """One titled grid per ``(title, images (N, C, H, W) in [0, 1], images per row)``.

    ``native``: widen the panels (never narrow them) until every grid gets at least one figure pixel per
    image pixel, so large samples are drawn at their own size instead of shrunk to ``panel_width``."""
    plt = _pyplot()
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    grids = [to_uint8(make_grid(images.float().clamp(0, 1), nrow=nrow)) for _, images, nrow in panels]
    if native:
        panel_width = max(panel_width, max(g.shape[1] for g in grids) / FIGURE_DPI)
    # each row as tall as its tallest grid at panel_width (wide grids get short rows), plus room for its titles'
    # lines; the figure's title gets its own band on top (tight_layout alone lets a suptitle overlap the panels)
    lines = [max(label.count("\n") + 1 for label, _, _ in panels[r * columns:(r + 1) * columns]) for r in range(rows)]
    heights = [panel_width * max(g.shape[0] / g.shape[1] for g in grids[r * columns:(r + 1) * columns]) + 0.2 + 0.2 * n
               for r, n in zip(range(rows), lines)]
    top = 0.1 + 0.2 * (title.count("\n") + 1) if title else 0.0
    fig, axes = plt.subplots(rows, columns, figsize=(panel_width * columns, sum(heights) + top),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, _, _), grid in zip(axes.flat, panels, grids):
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - top / (sum(heights) + top)))
    return save_figure(fig, path)


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, *, xlabel: str, ylabel: str,
           title: str = "", hlines: dict[str, float] | None = None, ax: Any = None) -> Path:
    """Line plot of named ``(x, y)`` series, with optional labelled horizontal reference lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (x, y) in series.items():
        ax.plot(list(x), list(y), marker=".", label=label)
    for label, value in (hlines or {}).items():
        ax.axhline(value, ls="--", c="grey", lw=1)
        ax.annotate(label, (ax.get_xlim()[0], value), xytext=(4, 3), textcoords="offset points", fontsize=8, color="grey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


@torch.no_grad()
def latent_map(codes: np.ndarray, labels: np.ndarray, decoded: Tensor, extent: tuple[float, float, float, float],
               path: str | Path, *, title: str = "") -> Path:
    """Left: 2-D codes coloured by class. Right: images decoded on a regular grid over ``extent``
    (x0, x1, y0, y1), ``decoded`` (n*n, C, H, W) row-major from the top-left (high y) corner."""
    plt = _pyplot()
    n = int(round(len(decoded) ** 0.5))
    fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(11, 5.2))
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("codes of test digits", fontsize=10)
    grid = to_uint8(make_grid(decoded, nrow=n, padding=0))
    ax_img.imshow(grid, cmap="gray", extent=extent, aspect="auto")
    ax_img.set_title("decoded on a grid over the same square", fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def grouped_bars(groups: Sequence[str], series: dict[str, Sequence[float]], path: str | Path, *, ylabel: str,
                 title: str = "") -> Path:
    """One bar per series side by side in each group (e.g. a class's share in the data and in the samples)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(groups) + 2), 3.8))
    width = 0.8 / max(1, len(series))
    xs = np.arange(len(groups))
    for k, (label, values) in enumerate(series.items()):
        ax.bar(xs + (k - (len(series) - 1) / 2) * width, list(values), width, label=label)
    ax.set_xticks(list(xs), list(groups), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def image_rows(rows: Sequence[tuple[str, Tensor]], path: str | Path, *, title: str = "", cell: float = 0.6) -> Path:
    """Labelled rows of images: each ``(label, images (k, C, H, W) in [0, 1])`` is one row with its
    label on the left (which row is the original, which the reconstruction)."""
    plt = _pyplot()
    k = max(r[1].shape[0] for r in rows)
    channels = max(r[1].shape[1] for r in rows)
    images = []
    for _, row in rows:  # pad short rows with white cells, grey rows to the widest channel count
        row = row.detach().float().cpu().clamp(0, 1)
        if row.shape[1] == 1 and channels > 1:
            row = row.expand(-1, channels, -1, -1)
        if row.shape[0] < k:
            row = torch.cat([row, torch.ones(k - row.shape[0], *row.shape[1:])])
        images.append(row)
    h = images[0].shape[2]
    padding = max(1, h // 14)
    grid = to_uint8(make_grid(torch.cat(images), nrow=k, padding=padding))
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(max(3.0, cell * k + 1.6), cell * len(rows) + (0.5 if title else 0.2)))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([padding + (h + padding) * i + h / 2 for i in range(len(rows))], [label for label, _ in rows], fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
