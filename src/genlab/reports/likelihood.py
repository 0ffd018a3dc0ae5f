"""Pictures of a VAE's objective against its likelihood (the lecture's slides 82 and 93): the bounds
and the exact log-likelihood during training, the gap while only q learns, the true posterior beside
q; and the decoders' samples, reconstructions and bits per dimension side by side. The numbers come
from :mod:`genlab.lecture.likelihood`; these functions only draw them."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..viz import _pyplot, make_grid, save_figure, to_uint8

_LABELS = {"elbo": "ELBO (= IWAE k=1)", "iwae_10": "IWAE k=10", "iwae_100": "IWAE k=100", "iwae_1000": "IWAE k=1000"}


def plot_bounds(joint: Sequence[dict[str, Any]], q_only: Sequence[dict[str, Any]], names: Sequence[str],
                patch: tuple[Tensor, Tensor], path: str | Path) -> Path:
    """Top left: log p(x) and the ELBO during training. Top right: log p(x) minus each bound during
    training. Bottom left: the same while only q trains under the fixed decoder. Bottom right: the
    true posterior p(z|x) of one digit (contours of ``patch``: grid offsets and the log joint around
    the final q's mean) and q(z|x) (2-sigma ellipses) before and after q's training."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.4))
    steps = [r["step"] for r in joint]
    ax = axes[0, 0]
    ax.plot(steps, [r["log_px"] for r in joint], "k-o", label="log p(x) (quadrature)")
    ax.plot(steps, [r["elbo"] for r in joint], "-o", c="tab:orange", label=_LABELS["elbo"])
    ax.set_xlabel("training step (encoder and decoder)")
    ax.set_ylabel("nats per test digit")
    ax.set_title("the bound is maximised, the likelihood follows", fontsize=10)
    ax.legend(fontsize=8)
    for ax, rows, xlabel, title in ((axes[0, 1], joint, "training step (encoder and decoder)", "gap to log p(x) during training"),
                                    (axes[1, 0], q_only, "step of training q only (decoder fixed)", "the gap while only q improves")):
        for name in names:
            ax.plot([r["step"] for r in rows], [max(r["log_px"] - r[name], 1e-3) for r in rows], "-o", label=_LABELS.get(name, name))
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("log p(x) - bound (nats, log scale)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    offsets, log_joint = patch
    (c0, c1), _ = q_only[-1]["q0"]
    posterior = (log_joint - torch.logsumexp(log_joint.flatten(), 0)).exp().numpy()  # [z0, z1]
    half = float(offsets[-1])
    # levels at fractions of the peak: the default levels include one at about zero, which traces noise
    ax.contour(c0 + offsets.numpy(), c1 + offsets.numpy(), posterior.T, levels=posterior.max() * np.array([0.05, 0.25, 0.5, 0.75]),
               cmap="Blues", vmin=-0.3 * posterior.max())
    theta = np.linspace(0, 2 * math.pi, 100)
    for row, colour, label in ((q_only[0], "tab:red", "q before (fresh encoder)"), (q_only[-1], "tab:green", "q after")):
        (m0, m1), (s0, s1) = row["q0"]
        ax.plot(m0 + 2 * s0 * np.cos(theta), m1 + 2 * s1 * np.sin(theta), c=colour, label=label)
    ax.plot([], [], c="tab:blue", label="true p(z | x)")
    ax.set_xlim(c0 - half, c0 + half)
    ax.set_ylim(c1 - half, c1 + half)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("one test digit: posterior and q (2-sigma ellipses)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_decoders(rows: Sequence[tuple[str, Tensor, Tensor, str]], originals: Tensor, path: str | Path, *,
                  title: str = "") -> Path:
    """One row per decoder: its name and score, its reconstructions of ``originals`` and its samples
    (each (N, C, H, W) in [0, 1]); the originals on top."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows) + 1, 2, figsize=(11, 1.55 * (len(rows) + 1) + 0.5), squeeze=False)
    n = len(originals)
    panels = [("data", originals, None, "")] + [(name, recon, samples, score) for name, recon, samples, score in rows]
    for i, (name, recon, samples, score) in enumerate(panels):
        for j, images in enumerate((recon, samples)):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if images is None:
                continue
            ax.imshow(to_uint8(make_grid(images.float().clamp(0, 1), nrow=n)), cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_ylabel(name if not score else f"{name}\n{score}", rotation=0, ha="right", va="center", fontsize=8)
    axes[0, 0].set_title("test digits / their reconstructions (decoder mean)", fontsize=9)
    axes[1, 1].set_title("samples: decoder mean of z ~ N(0, I)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
