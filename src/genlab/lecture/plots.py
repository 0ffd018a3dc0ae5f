"""Plotting helpers the lecture's figures share (titled image panels, curves, 2-D code maps).
matplotlib is imported inside the functions, through :func:`genlab.viz._pyplot` (Agg backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..viz import _pyplot, make_grid, save_figure, to_uint8


def image_panels(panels: Sequence[tuple[str, Tensor, int]], path: str | Path, *, title: str = "",
                 panel_width: float = 4.5, columns: int | None = None) -> Path:
    """One titled grid per ``(title, images (N, C, H, W) in [0, 1], images per row)``."""
    plt = _pyplot()
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_width * columns, panel_width * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, images, nrow) in zip(axes.flat, panels):
        grid = to_uint8(make_grid(images.float().clamp(0, 1), nrow=nrow))
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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
