"""Evaluation and end-of-training report for the VAE (Kingma & Welling, "Auto-Encoding Variational
Bayes", ICLR 2014; the IWAE bound of Burda et al., ICLR 2016): test ELBO, IWAE-NLL, reconstruction
error; the figures are the autoencoder's (:func:`genlab.reports.autoencoder.report_figures`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.base import ArrayDataset
from ..registry import register_evaluator, register_reporter
from .autoencoder import batches, report_figures

REPORT_IWAE_EXAMPLES = 2000  # end-of-training IWAE bound: k=100 on this many test images


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
    for batch in batches(data, batch_size, limit, model.device):
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


@register_reporter("vae")
def report_vae(model: Any, run_dir: Path, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any]:
    # IWAE on 2,000 test images (~1/5 of the time of all 10,000 at k=100); `genlab evaluate` gives all
    metrics = evaluate_vae(model, test_data, k=100, iwae_limit=REPORT_IWAE_EXAMPLES) if test_data is not None else {}
    return report_figures(model, Path(run_dir), test_data, {f"test/{k}": v for k, v in metrics.items()})
