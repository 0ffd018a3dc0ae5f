"""Pictures of the GAN-tricks ablation (the lecture's slide 45; measured in
:mod:`genlab.lecture.tricks`): per toy, the modes covered, the high-quality share and the reverse KL of
every trick, one dot per seed over a bar at the mean; and one seed's samples per trick over the data.
These functions only draw the numbers they are given."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..viz import _pyplot, save_figure

METRICS = (("modes", "modes covered"), ("high_quality", "high-quality share"), ("reverse_kl", "reverse KL (modes)"))


def plot_trick_scores(results: dict[str, dict[str, Any]], tricks: Sequence[str], path: str | Path, *,
                      subtitle: str = "") -> Path:
    """One row per toy (``results[toy][trick][metric]`` lists over seeds, ``results[toy]["num_modes"]``),
    one column per metric. A reverse KL of infinity (no high-quality sample at all) is drawn as a cross
    at the top of its panel."""
    plt = _pyplot()
    toys = list(results)
    fig, axes = plt.subplots(len(toys), len(METRICS), figsize=(4.6 * len(METRICS), 3.6 * len(toys) + 0.6), squeeze=False)
    xs = np.arange(len(tricks))
    rng = np.random.default_rng(0)  # horizontal jitter of the seed dots, the same on every call
    for row, toy in zip(axes, toys):
        k = results[toy]["num_modes"]
        for ax, (key, label) in zip(row, METRICS):
            values = [np.asarray(results[toy][t][key], dtype=float) for t in tricks]
            top = math.log(k) * 1.15 if key == "reverse_kl" else (k * 1.05 if key == "modes" else 1.05)
            finite = [v[np.isfinite(v)] for v in values]
            means = [v.mean() if len(v) == len(f) else np.nan for v, f in zip(values, finite)]
            ax.bar(xs, np.nan_to_num(means, nan=0.0), 0.6, color="tab:blue", alpha=0.35, label="mean over seeds")
            for x, v in zip(xs, values):
                jitter = rng.uniform(-0.15, 0.15, len(v))
                ok = np.isfinite(v)
                ax.scatter(x + jitter[ok], v[ok], s=14, c="k", zorder=3)
                ax.scatter(x + jitter[~ok], np.full((~ok).sum(), top * 0.97), s=22, c="tab:red", marker="x", zorder=3)
            if key == "modes":
                ax.axhline(k, c="grey", ls=":", lw=1)
            ax.set_ylim(0, top)
            ax.set_xticks(list(xs), list(tricks), rotation=40, ha="right", fontsize=8)
            ax.set_title(f"{toy}: {label}", fontsize=10)
        row[0].set_ylabel(f"of {k} modes")
    ax = axes[0][-1]
    ax.scatter([], [], c="k", s=14, label="one seed")
    ax.scatter([], [], c="tab:red", marker="x", label="∞: no high-quality sample")
    fig.suptitle("GAN tricks on toy mixtures: each '+' adds one trick to the non-saturating GAN"
                 + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0.05 / len(toys), 1, 1))
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", fontsize=8, ncol=3, frameon=False)
    return save_figure(fig, path)


def plot_trick_samples(points: dict[str, dict[str, Any]], data: dict[str, Any], scores: dict[str, dict[str, Any]],
                       tricks: Sequence[str], path: str | Path, *, seed: int = 0) -> Path:
    """One row per toy, one panel per trick: ``points[toy][trick]`` (N, 2) in red over ``data[toy]`` in
    grey, titled with that seed's modes covered and high-quality share."""
    plt = _pyplot()
    toys = list(points)
    fig, axes = plt.subplots(len(toys), len(tricks), figsize=(1.9 * len(tricks), 2.35 * len(toys)), squeeze=False)
    for row, toy in zip(axes, toys):
        real = np.asarray(data[toy])
        lo, hi = real.min(0) - 0.25 * real.std(0), real.max(0) + 0.25 * real.std(0)
        for ax, trick in zip(row, tricks):
            fake = np.asarray(points[toy][trick])
            ax.scatter(real[:, 0], real[:, 1], s=0.5, c="0.7", linewidths=0)
            ax.scatter(fake[:, 0], fake[:, 1], s=0.5, c="tab:red", alpha=0.5, linewidths=0)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            s = scores[toy][trick]
            ax.set_title(f"{trick}\n{s['modes'][0]:.0f}/{scores[toy]['num_modes']} modes, "
                         f"{100 * s['high_quality'][0]:.0f} % HQ", fontsize=7)
        row[0].set_ylabel(toy, fontsize=9)
    fig.suptitle(f"seed {seed}: generated (red) over data (grey)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
