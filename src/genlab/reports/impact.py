"""Pictures of the social-impact arithmetic (the lecture's slides 114-125): conditional probabilities
side by side, expected cost against a decision threshold, the largest chance correlation against the
data's width and height, and the A-B gap before and after conditioning on a third variable. The
numbers come from :mod:`genlab.lecture.impact`; these functions only draw them."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..viz import _pyplot, save_figure


def _bar_labels(ax: Any, bars: Any, fmt: str) -> None:
    for bar in bars:
        ax.annotate(format(bar.get_height(), fmt), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)


def plot_prosecutor(n: dict[str, Any], path: str | Path) -> Path:
    """Left: P(use | group), P(no use | group) and P(use | rest). Right: P(tall | pro) and P(pro | tall),
    on a log axis so that both show."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["P(use | group)", "P(use | rest)", "P(no use | group)", "P(group | use)"]
    values = [n["p_use_given_group"], n["p_use_given_other"], n["p_innocent_given_group"], n["p_group_given_use"]]
    bars = left.bar(names, values, color=["tab:red", "tab:blue", "tab:grey", "tab:purple"])
    _bar_labels(left, bars, ".3f")
    left.set_ylim(0, 1.08)
    left.set_ylabel("probability (simulated frequency)")
    left.set_title(f"profiling a group ({n['population']:,} simulated people)", fontsize=10)
    left.tick_params(axis="x", labelsize=8)
    names = ["P(tall | pro)", "P(pro | tall)", "P(pro | tall)\nby Bayes' rule"]
    values = [n["p_tall_given_pro"], n["p_pro_given_tall"], n["p_pro_given_tall_bayes"]]
    bars = right.bar(names, values, color=["tab:green", "tab:orange", "tab:olive"])
    _bar_labels(right, bars, ".2g")
    right.set_yscale("log")
    right.set_ylim(min(values) / 3, 3)
    right.set_ylabel("probability (log scale)")
    right.set_title(f"basketball players ({n['pros']} pros among them)", fontsize=10)
    fig.suptitle("P(A | B) is not P(B | A)", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_decision_costs(n: dict[str, Any], systems: Sequence[str], path: str | Path) -> Path:
    """Expected cost per email against the threshold for each system (its cost-derived threshold
    dashed, 0.5 dotted), and the accuracy against the same thresholds."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    t = np.asarray(n["thresholds"])
    for system, colour in zip(systems, ("tab:red", "tab:green")):
        left.plot(t, n[f"{system}/cost"], c=colour, label=f"{system}: cheapest at t = {n[f'{system}/best_threshold']:.2f}")
        left.axvline(n[f"{system}/bayes_threshold"], c=colour, ls="--", lw=1)
    left.axvline(0.5, c="black", ls=":", lw=1, label="t = 0.5")
    left.set_xlabel("act when P(spam | x) > t")
    left.set_ylabel("expected cost per email")
    left.set_title("cost of acting on the same calibrated score", fontsize=10)
    left.legend(fontsize=8)
    right.plot(t, n["accuracy"], c="tab:blue")
    right.axvline(0.5, c="black", ls=":", lw=1, label="t = 0.5 (most accurate)")
    right.axvline(n[f"{systems[0]}/best_threshold"], c="tab:red", ls="--", lw=1, label=f"cheapest for '{systems[0]}'")
    right.set_xlabel("act when P(spam | x) > t")
    right.set_ylabel("accuracy")
    right.set_title("accuracy of the same decisions", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_spurious(n: dict[str, Any], path: str | Path) -> Path:
    """The largest |r| between a random label and random features: against the number of features
    (instances fixed) and against the number of instances (features fixed), with sqrt(2 ln(2d) / n)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    widths, heights = np.asarray(n["widths"]), np.asarray(n["heights"])
    m, d = n["fixed_instances"], n["fixed_features"]
    left.errorbar(widths, n["max_r_by_width"], yerr=n["se_by_width"], marker="o", label="simulated (mean of repeats)")
    left.plot(widths, np.minimum(1, np.sqrt(2 * np.log(2 * widths) / m)), "k--", lw=1, label="sqrt(2 ln(2d) / n)")
    left.set_xscale("log")
    left.set_xlabel("number of features d (log)")
    left.set_ylabel("largest |correlation| with the label")
    left.set_title(f"wide data: n = {m} instances", fontsize=10)
    left.set_ylim(0, 1.05)
    left.legend(fontsize=8)
    right.errorbar(heights, n["max_r_by_height"], yerr=n["se_by_height"], marker="o", label="simulated (mean of repeats)")
    right.plot(heights, np.minimum(1, np.sqrt(2 * math.log(2 * d) / heights)), "k--", lw=1, label="sqrt(2 ln(2d) / n)")
    right.set_xscale("log")
    right.set_xlabel("number of instances n (log)")
    right.set_ylabel("largest |correlation| with the label")
    right.set_title(f"tall data: d = {d} features", fontsize=10)
    right.set_ylim(0, 1.05)
    right.legend(fontsize=8)
    fig.suptitle(f"the best of {d} features over {m} instances: r = {n['best_feature_train_r']:+.2f} in training, "
                 f"{n['best_feature_held_out_r']:+.3f} on {n['held_out']:,} new instances", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_causal_graphs(n: dict[str, Any], path: str | Path) -> Path:
    """Per world, P(B | A) - P(B | not A) before and after conditioning on C, with 2-standard-error bars;
    the graph of each world is written under its bars."""
    plt = _pyplot()
    worlds = {"confounder": "C → A, C → B", "through C": "A → C → B", "direct": "A → B ← C"}
    fig, ax = plt.subplots(figsize=(8, 4.4))
    x = np.arange(len(worlds))
    for offset, key, label, colour in ((-0.18, "gap", "marginal", "tab:red"), (0.18, "gap_given_c", "within each value of C", "tab:blue")):
        values = [n[f"{w}/{key}"] for w in worlds]
        errors = [2 * n[f"{w}/{key}_se"] for w in worlds]
        ax.bar(x + offset, values, 0.36, yerr=errors, capsize=3, color=colour, label=label)
    ax.axhline(0, c="black", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{w}\n{g}" for w, g in worlds.items()])
    ax.set_ylabel("P(B | A) - P(B | not A), ± 2 s.e.")
    ax.set_title(f"A = group, B = drug use, C = poverty ({n['people']:,} simulated people per world)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
