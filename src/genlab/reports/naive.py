"""Naive pairing's evaluator and end-of-training figure: how far the samples have collapsed toward the
data mean (:func:`genlab.models.naive.collapse_stats`), and the samples drawn over the data."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..viz import plot_samples_vs_data
from ..models.naive import NaiveGenerator, collapse_stats
from ..registry import register_evaluator, register_reporter


@register_evaluator("naive")
def evaluate_naive(model: NaiveGenerator, test_data: Any, *, num_samples: int | None = None, seed: int = 0, **_: Any) -> dict[str, float]:
    """:func:`collapse_stats` of ``num_samples`` (default: as many as test points) samples vs the test data."""
    n = num_samples or len(test_data)
    samples = model.sample(n, generator=torch.Generator(model.device).manual_seed(seed)).cpu()
    return collapse_stats(samples, test_data.x)


@register_reporter("naive")
def report_naive(model: NaiveGenerator, run_dir: Any, train_data: Any, test_data: Any) -> dict[str, float]:
    """``samples_vs_data.png`` (4,000 samples over as many data points) and the collapse statistics."""
    data = test_data if test_data is not None else train_data
    stats = evaluate_naive(model, data)
    samples = model.sample(min(len(data), 4000), generator=torch.Generator(model.device).manual_seed(0)).cpu()
    plot_samples_vs_data(samples, data.x[:4000], Path(run_dir) / "samples_vs_data.png",
                         title=f"naive {model.config.loss}: spread ratio {stats['spread_ratio']:.3f}")
    return stats
