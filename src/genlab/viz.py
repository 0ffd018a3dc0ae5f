"""Pictures: image grids (PIL only, no torchvision), training curves, latent scatter plots.

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


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """(N, C, H, W) in [0, 1] -> one (C, H', W') image, ``nrow`` images per row."""
    if images.dim() != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    # each image gets a pad strip on its right and bottom; one reshape lays the cells out
    cells = torch.full((rows * nrow, c, h + padding, w + padding), pad_value, dtype=images.dtype)
    cells[:n, :, :h, :w] = images.detach().cpu()
    grid = cells.view(rows, nrow, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, rows * (h + padding), nrow * (w + padding))
    return torch.nn.functional.pad(grid, (padding, 0, padding, 0), value=pad_value)


def to_uint8(image: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8 array."""
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Save a grid of (N, C, H, W) images in [0, 1] as a PNG (written atomically)."""
    import io

    from PIL import Image

    from .checkpoint import atomic_write_bytes

    grid = make_grid(images.float(), nrow=nrow)
    image = Image.fromarray(to_uint8(grid))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


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
