"""Evaluation and end-of-training reports for the autoencoder and the VAE.

``genlab evaluate RUN`` calls the evaluator; ``genlab train`` calls the reporter when training ends,
which writes ``reconstructions.png``, ``latent.png`` (the lecture's 2-D latent map of MNIST, PCA
when the latent is wider than two) and returns the numbers that go into ``metrics.json``.
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
REPORT_IWAE_EXAMPLES = 2000  # end-of-training IWAE bound: k=100 on this many test images


def _batches(data: ArrayDataset, batch_size: int, limit: int | None, device: torch.device):
    n = len(data) if limit is None else min(limit, len(data))
    loader = BatchLoader(data.head(n), min(batch_size, n), shuffle=False, drop_last=False, device=device)
    return loader.epoch(0)


@torch.no_grad()
def encode_dataset(model: Any, data: ArrayDataset, *, limit: int | None = None, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes (N, latent_dim) of the first ``limit`` examples, and their labels when the data has them."""
    codes, labels = [], []
    for batch in _batches(data, batch_size, limit, model.device):
        codes.append(model.encode(batch[0]).cpu())
        if len(batch) > 1 and batch[1].dim() == 1:
            labels.append(batch[1].cpu())
    return torch.cat(codes).numpy(), (torch.cat(labels).numpy() if labels else None)


@torch.no_grad()
def reconstruction_figure(model: Any, data: ArrayDataset, path: str | Path, n: int = 32) -> Path:
    """Originals (odd rows) above their reconstructions (even rows)."""
    from ..viz import save_image_grid

    x = data.batch(torch.arange(min(n, len(data))), torch.Generator().manual_seed(0))[0].to(model.device)
    recon = model.reconstruct(x)
    per_row = 8
    rows = [t for i in range(0, x.shape[0], per_row) for t in (x[i : i + per_row], recon[i : i + per_row])]
    return save_image_grid(torch.cat(rows), path, nrow=per_row, scale=2)


def latent_figure(model: Any, data: ArrayDataset, path: str | Path, *, limit: int = 5000) -> Path:
    from ..viz import scatter_latent

    codes, labels = encode_dataset(model, data, limit=limit)
    return scatter_latent(codes, labels, path, title=f"{model.registry_name} latent codes ({len(codes)} test images)")


@register_evaluator("vae")
@torch.no_grad()
def evaluate_vae(model: Any, data: ArrayDataset, *, k: int = 1000, limit: int | None = None, batch_size: int = 100,
                 seed: int = 0, iwae_limit: int | None = None, **_: Any) -> dict[str, Any]:
    """Test ELBO, IWAE-NLL with ``k`` importance samples, reconstruction error, all in nats/example.

    The IWAE bound costs k decoder passes per example; ``iwae_limit`` computes it on the first
    ``iwae_limit`` examples only (rounded up to whole batches; ``iwae_examples`` says how many)."""
    torch.manual_seed(seed)
    sums = {"elbo": 0.0, "iwae_nll": 0.0, "recon_nll": 0.0, "kl": 0.0, "recon_mse": 0.0}
    n = iwae_n = 0
    for batch in _batches(data, batch_size, limit, model.device):
        x = batch[0]
        recon, kl = model._terms(x)
        sums["elbo"] += float(-(recon + kl).sum())
        sums["recon_nll"] += float(recon.sum())
        sums["kl"] += float(kl.sum())
        if k > 0 and (iwae_limit is None or iwae_n < iwae_limit):
            sums["iwae_nll"] += float(model.iwae_nll(x, k).sum())
            iwae_n += x.shape[0]
        sums["recon_mse"] += float((model.reconstruct(x) - x).square().flatten(1).mean(1).sum())
        n += x.shape[0]
    out: dict[str, Any] = {key: value / n for key, value in sums.items()}
    out["iwae_nll"] = sums["iwae_nll"] / iwae_n if iwae_n else float("nan")
    out.update({"examples": n, "iwae_k": k, "iwae_examples": iwae_n, "seed": seed})
    return out


@register_evaluator("autoencoder")
@torch.no_grad()
def evaluate_autoencoder(model: Any, data: ArrayDataset, *, limit: int | None = None, batch_size: int = 500, **_: Any) -> dict[str, Any]:
    sums = {"recon_loss": 0.0, "recon_mse": 0.0, "recon_l1": 0.0}
    n = 0
    for batch in _batches(data, batch_size, limit, model.device):
        x = batch[0]
        r = model.reconstruct(x)
        sums["recon_loss"] += float(model.reconstruction_error(x).sum())
        sums["recon_mse"] += float((r - x).square().flatten(1).mean(1).sum())
        sums["recon_l1"] += float((r - x).abs().flatten(1).mean(1).sum())
        n += x.shape[0]
    return {**{k: v / n for k, v in sums.items()}, "examples": n}


def _report(model: Any, run_dir: Path, test_data: ArrayDataset | None, metrics: dict[str, Any]) -> dict[str, Any]:
    if test_data is None:
        return {}
    reconstruction_figure(model, test_data, run_dir / "reconstructions.png")
    latent_figure(model, test_data, run_dir / "latent.png")
    from ..viz import save_image_grid

    save_image_grid(model.sample(64, generator=torch.Generator(model.device).manual_seed(0)), run_dir / "samples.png", scale=2)
    return metrics


@register_reporter("vae")
def report_vae(model: Any, run_dir: Path, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any]:
    # IWAE on 2,000 test images (~1/5 of the time of all 10,000 at k=100); `genlab evaluate` gives all
    metrics = evaluate_vae(model, test_data, k=100, iwae_limit=REPORT_IWAE_EXAMPLES) if test_data is not None else {}
    return _report(model, Path(run_dir), test_data, {f"test/{k}": v for k, v in metrics.items()})


@register_reporter("autoencoder")
def report_autoencoder(model: Any, run_dir: Path, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any]:
    metrics = evaluate_autoencoder(model, test_data) if test_data is not None else {}
    return _report(model, Path(run_dir), test_data, {f"test/{k}": v for k, v in metrics.items()})
