"""Naive pairing's evaluator and end-of-training figure: how far the samples have collapsed toward the
data mean (:func:`collapse_stats`), and the samples drawn over the data."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..models.naive import NaiveGenerator, spread
from ..registry import register_evaluator, register_reporter
from ..viz import plot_samples_vs_data


@torch.no_grad()
def collapse_stats(samples: Tensor, data: Tensor) -> dict[str, float]:
    """How far samples have collapsed toward the data mean.

    ``spread_ratio``: spread(samples) / spread(data) (1 = as varied as the data, 0 = one point);
    ``mean_distance_ratio``: mean distance of samples to the data mean / mean distance of data points
    to it (small = samples sit at the data mean); ``mean_offset``: distance between the two means in
    units of the data spread; ``excess_mse``: the expected squared distance of a sample to a random
    data point (the naive MSE loss) above its minimum, the data's variance, in units of that variance
    (``mean_offset² + spread_ratio²``; 0 = every sample at the data mean, the loss's optimum).
    """
    s, d = samples.flatten(1).double(), data.flatten(1).double()
    centre = d.mean(0)
    data_spread = float(spread(d))
    spread_ratio, mean_offset = float(spread(s)) / data_spread, float((s.mean(0) - centre).norm()) / data_spread
    return {
        "spread_ratio": spread_ratio,
        "mean_distance_ratio": float((s - centre).norm(dim=1).mean() / (d - centre).norm(dim=1).mean()),
        "mean_offset": mean_offset,
        "excess_mse": mean_offset ** 2 + spread_ratio ** 2,
        "data_spread": data_spread,
        "sample_spread": float(spread(s)),
    }


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
