"""The picture of a per-pixel Gaussian head (the lecture's slide 10): per test digit its coarse
input, the target, the predicted mean and the predicted standard deviation; beside them one edge
pixel's and one background pixel's predicted Gaussian. The numbers come from
:mod:`genlab.lecture.pixels`; this function only draws them."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from torch import Tensor

from ..viz import _pyplot, save_figure


def plot_pixel_head(inputs: Tensor, targets: Tensor, mean: Tensor, sigma: Tensor, pixels: dict[str, tuple[int, int]],
                    path: str | Path) -> Path:
    """``inputs`` (N, 1, h, w), ``targets``/``mean``/``sigma`` (N, 1, H, W); ``pixels`` names (row, col)
    positions of the first image whose Gaussians are drawn on the right."""
    plt = _pyplot()
    n = len(targets)
    fig = plt.figure(figsize=(12, 1.9 * n + 0.6))
    grid = fig.add_gridspec(n, 6, width_ratios=[1, 1, 1, 1, 0.08, 3.2], left=0.04, right=0.98, bottom=0.1, top=0.93,
                            wspace=0.12, hspace=0.12)
    titles = ("input (7 x 7)", "target", "predicted mean", "predicted sigma")
    vmax = float(sigma.max())
    colours = {"edge": "tab:red", "background": "tab:cyan"}
    for i in range(n):
        for j, (images, title) in enumerate(zip((inputs, targets, mean, sigma), titles)):
            ax = fig.add_subplot(grid[i, j])
            if j < 3:
                ax.imshow(images[i, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                shown = ax.imshow(images[i, 0].numpy(), cmap="magma", vmin=0, vmax=vmax)
                if i == 0:
                    for name, (r, c) in pixels.items():
                        ax.plot(c, r, "s", mfc="none", mec=colours[name], ms=7, mew=1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"test digit {i + 1}", fontsize=9)
    fig.colorbar(shown, cax=fig.add_subplot(grid[:, 4]), label="predicted sigma")
    ax = fig.add_subplot(grid[:, 5])
    ax.set_position([0.69, 0.1, 0.25, 0.83])
    ax.yaxis.tick_right()  # ticks and label on the right: the colour bar's label holds the left edge
    ax.yaxis.set_label_position("right")
    peak = 0.0
    values = np.linspace(-0.3, 1.3, 800)
    for name, (r, c) in pixels.items():
        m, s, t = float(mean[0, 0, r, c]), float(sigma[0, 0, r, c]), float(targets[0, 0, r, c])
        density = np.exp(-0.5 * ((values - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        ax.plot(values, density, c=colours[name], label=f"{name} pixel ({r}, {c}) of digit 1: N({m:.2f}, {s:.3f}^2)")
        ax.axvline(t, c=colours[name], ls=":", lw=1)
        peak = max(peak, float(density.max()))
    ax.set_yscale("log")
    ax.set_ylim(1e-2, 3 * peak)
    ax.set_xlabel("pixel intensity (dotted: the true value)")
    ax.set_ylabel("predicted density (log scale)")
    ax.set_title("one pixel's predicted Gaussian", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return save_figure(fig, path)
