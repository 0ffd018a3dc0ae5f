"""Evaluation and end-of-training report for the autoencoder, and the pictures it shares with the
VAE (:mod:`genlab.reports.vae`): both encode and decode, so both get the same figures.

``genlab evaluate RUN`` calls the evaluator; ``genlab train`` calls the reporter when training ends,
which writes ``reconstructions.png`` (rows labelled original / reconstruction), ``latent.png`` (the
lecture's 2-D latent map of MNIST, PCA when the latent is wider than two), ``samples.png`` and
returns the numbers that go into ``metrics.json``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.base import ArrayDataset, BatchLoader
from ..registry import register_evaluator, register_reporter

log = logging.getLogger(__name__)


def batches(data: ArrayDataset, batch_size: int, limit: int | None, device: torch.device):
    n = len(data) if limit is None else min(limit, len(data))
    loader = BatchLoader(data.head(n), min(batch_size, n), shuffle=False, drop_last=False, device=device)
    return loader.epoch(0)


@torch.no_grad()
def encode_dataset(model: Any, data: ArrayDataset, *, limit: int | None = None, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes (N, latent_dim) of the first ``limit`` examples, and their labels when the data has them."""
    codes, labels = [], []
    for batch in batches(data, batch_size, limit, model.device):
        codes.append(model.encode(batch[0]).cpu())
        if len(batch) > 1 and batch[1].dim() == 1:
            labels.append(batch[1].cpu())
    return torch.cat(codes).numpy(), (torch.cat(labels).numpy() if labels else None)


@torch.no_grad()
def reconstruction_figure(model: Any, data: ArrayDataset, path: str | Path, n: int = 32) -> Path:
    """Rows of 8 originals, each above its reconstructions, labelled."""
    from ..viz import image_rows

    x = data.batch(torch.arange(min(n, len(data))), torch.Generator().manual_seed(0))[0].to(model.device)
    recon = model.reconstruct(x)
    per_row = 8
    rows = [row for i in range(0, x.shape[0], per_row)
            for row in (("original", x[i : i + per_row]), ("reconstruction", recon[i : i + per_row]))]
    return image_rows(rows, path, title=f"{model.registry_name}: test images and their reconstructions")


def latent_figure(model: Any, data: ArrayDataset, path: str | Path, *, limit: int = 5000) -> Path:
    from ..viz import scatter_latent

    codes, labels = encode_dataset(model, data, limit=limit)
    return scatter_latent(codes, labels, path, title=f"{model.registry_name} latent codes ({len(codes)} test images)")


def knn_accuracy(train_codes: Tensor, train_labels: Tensor, codes: Tensor, labels: Tensor, k: int = 5) -> float:
    """k-nearest-neighbour classification accuracy of ``codes`` against labelled ``train_codes``."""
    nearest = torch.cdist(codes, train_codes).topk(k, largest=False).indices  # (N, k)
    votes = torch.nn.functional.one_hot(train_labels[nearest], int(train_labels.max()) + 1).sum(1)
    return float((votes.argmax(1) == labels).float().mean())


@torch.no_grad()
def latent_map_figure(model: Any, train: ArrayDataset, test: ArrayDataset, path: str | Path, *,
                      square: float | None = None, title: str = "", grid: int = 15) -> dict[str, Any]:
    """A 2-D latent space: codes of 3,000 test images coloured by class beside decodings on a
    ``grid`` x ``grid`` grid over ``[-square, square]^2`` (default: the codes' 1-99 % range); returns
    the path, the 5-NN accuracy of test codes against 5,000 training codes, and the codes' moments."""
    from ..latent import decode, encode_all
    from ..viz import latent_map

    codes = encode_all(model, test.x[:3000])
    train_codes = encode_all(model, train.x[:5000])
    labels = test.y[:3000]
    if square is None:
        lo, hi = np.percentile(codes.numpy(), [1, 99], axis=0)
        extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    else:
        extent = (-square, square, -square, square)
    xs, ys = torch.linspace(extent[0], extent[1], grid), torch.linspace(extent[3], extent[2], grid)
    points = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)  # row-major from the top
    drawn = latent_map(codes.numpy(), labels.numpy(), decode(model, points), extent, path, title=title)
    return {"path": str(drawn), "knn_accuracy": knn_accuracy(train_codes, train.y[:5000], codes, labels),
            "code_mean": [round(float(v), 3) for v in codes.mean(0)], "code_std": [round(float(v), 3) for v in codes.std(0)]}


@register_evaluator("autoencoder")
@torch.no_grad()
def evaluate_autoencoder(model: Any, data: ArrayDataset, *, limit: int | None = None, batch_size: int = 500, **_: Any) -> dict[str, Any]:
    sums = {"recon_loss": 0.0, "recon_mse": 0.0, "recon_l1": 0.0}
    n = 0
    for batch in batches(data, batch_size, limit, model.device):
        x = batch[0]
        r = model.reconstruct(x)
        sums["recon_loss"] += float(model.reconstruction_error(x).sum())
        sums["recon_mse"] += float((r - x).square().flatten(1).mean(1).sum())
        sums["recon_l1"] += float((r - x).abs().flatten(1).mean(1).sum())
        n += x.shape[0]
    return {**{k: v / n for k, v in sums.items()}, "examples": n}


def report_figures(model: Any, run_dir: Path, test_data: ArrayDataset | None, metrics: dict[str, Any]) -> dict[str, Any]:
    if test_data is None:
        return {}
    reconstruction_figure(model, test_data, run_dir / "reconstructions.png")
    latent_figure(model, test_data, run_dir / "latent.png")
    from ..viz import save_image_grid

    save_image_grid(model.sample(64, generator=torch.Generator(model.device).manual_seed(0)), run_dir / "samples.png", scale=2)
    return metrics


@register_reporter("autoencoder")
def report_autoencoder(model: Any, run_dir: Path, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any]:
    metrics = evaluate_autoencoder(model, test_data) if test_data is not None else {}
    return report_figures(model, Path(run_dir), test_data, {f"test/{k}": v for k, v in metrics.items()})
