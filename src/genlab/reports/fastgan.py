"""FastGAN's evaluator and end-of-training figure (Liu et al., ICLR 2021; DiffAugment, Zhao et al. 2020).

``genlab evaluate`` uses the GAN evaluator (FID, KID, precision/recall, density/coverage in the
features of ``--extractor``). The end of ``genlab train fastgan`` draws ``fastgan.png``: rows of
samples, held-out real images, the same reals as the discriminator sees them (augmented by the
run's DiffAugment policy at its current probability), and D's self-supervised reconstruction of
those augmented reals from its 8x8 features (drawn at R/2, upsampled to R for the figure). Beside
it, the numbers that say whether D learned what FastGAN asks of it: the reconstruction error, and
D's mean patch logit on held-out reals against samples (hinge D: > 0 means "real").
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data.base import ArrayDataset
from ..models.base import as_images
from ..models.fastgan import FastGAN
from ..nn.augment import augment, parse_policy
from ..registry import register_evaluator, register_reporter
from ..viz import image_rows
from .gan import evaluate_gan

log = logging.getLogger(__name__)


@register_evaluator("fastgan")
def evaluate_fastgan(model: FastGAN, test_data: ArrayDataset, **options: Any) -> dict[str, Any]:
    """The GAN evaluator: FID, KID, precision/recall, density/coverage of samples against test images."""
    return evaluate_gan(model, test_data, **options)


@torch.no_grad()
def discriminator_stats(model: FastGAN, real: torch.Tensor, *, seed: int = 0) -> dict[str, Any]:
    """On ``real`` images (N, C, R, R) in [0, 1]: the augmented reals D sees, D's whole-image
    reconstruction of them (N, C, R/2, R/2), both in [0, 1], N samples, and the scalar statistics."""
    model.eval()
    device = model.device
    g = torch.Generator(device).manual_seed(seed)
    x = as_images(real.to(device), model.config.image_shape, "FastGAN") * 2 - 1  # (N, C, R, R) in [-1, 1]
    seen = augment(x, model.config.augment, model.augment_probability, generator=g)
    _, f8 = model.discriminator.features(seen)
    rebuilt = model.discriminator.decoder_whole(f8)  # (N, C, R/2, R/2)
    samples = model.sample(len(real), generator=g)  # [0, 1]
    real_score = model.discriminator.head(f8).mean()
    fake_score = model.discriminator(samples * 2 - 1).mean()
    return {"seen": (seen + 1) / 2, "reconstruction": (rebuilt + 1) / 2, "samples": samples,
            "reconstruction_mse": float(F.mse_loss(rebuilt, F.avg_pool2d(seen, 2))),
            "real_score": float(real_score), "fake_score": float(fake_score)}


@register_reporter("fastgan")
def report_fastgan(model: FastGAN, run_dir: Any, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any]:
    """End of ``genlab train fastgan``: ``fastgan.png`` (samples, reals, what D sees, D's reconstruction)
    and D's statistics on up to 8 held-out reals (training reals when there is no test split)."""
    source = test_data if test_data is not None else train_data
    n = min(8, len(source))
    real = source.x[:n].float()
    stats = discriminator_stats(model, real)
    policy = ", ".join(parse_policy(model.config.augment)) or "none"
    side = stats["samples"].shape[-1]
    rebuilt = F.interpolate(stats["reconstruction"], size=(side, side), mode="nearest")
    path = Path(run_dir) / "fastgan.png"
    image_rows([("samples", stats["samples"]), ("real (held out)", real), (f"as D sees it (A: {policy})", stats["seen"]),
                (f"D's reconstruction ({side // 2} px)", rebuilt)], path,
               title=f"D reconstruction MSE {stats['reconstruction_mse']:.3f}; mean D logit: reals "
                     f"{stats['real_score']:+.2f}, samples {stats['fake_score']:+.2f}", cell=0.9)
    log.info("wrote %s", path)
    return {f"discriminator/{k}": stats[k] for k in ("reconstruction_mse", "real_score", "fake_score")}
