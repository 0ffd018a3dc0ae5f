"""The GAN and conditional GAN's evaluator and end-of-training figure (Goodfellow et al. 2014; mode
statistics by the PacGAN protocol, Lin et al. 2018; FID, Heusel et al. 2017; KID, Binkowski et al. 2018;
precision/recall, Kynkaanniemi et al. 2019): on ring/grid data the modes covered and the share of
high-quality samples, plus ``modes.png``; on images the feature-space distances to the test set."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..data.base import ArrayDataset
from ..errors import DataError
from ..latent.protocols import MissingCapability, image_shape
from ..metrics import compare_features, count_modes, get_extractor
from ..models.gan import CGAN, GAN
from ..registry import register_evaluator, register_reporter
from ..viz import plot_samples_vs_data


def _evaluate_modes(model: GAN, test_data: ArrayDataset, num_samples: int, seed: int) -> dict[str, Any]:
    info = test_data.info
    sigma = float(info.get("options", {}).get("sigma"))
    samples = model.sample(num_samples, generator=torch.Generator(model.device).manual_seed(seed))
    stats = count_modes(samples, info["centres"], sigma)
    stats["protocol"] = {  # type: ignore[assignment]
        "num_samples": num_samples, "reference": f"{info.get('name', '?')}: {len(info['centres'])} mode centres, sigma {sigma}",
        "high_quality": "within 3 sigma of the nearest centre", "extractor": "none (raw 2-D points)", "seed": seed,
    }
    return stats


def _evaluate_images(model: GAN, test_data: ArrayDataset, num_samples: int | None, seed: int,
                     extractor: str, extractor_path: str | None, batch_size: int, **options: Any) -> dict[str, Any]:
    n = min(num_samples or len(test_data), len(test_data))
    reference = test_data.x[:n]
    labels = test_data.y[:n] if isinstance(model, CGAN) and test_data.y is not None else None
    extract = get_extractor(extractor, path=extractor_path, device=str(model.device))
    g = torch.Generator(model.device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        label = None if labels is None else labels[start : start + count]
        chunks.append(model.sample(count, generator=g, label=label).cpu())
    generated = torch.cat(chunks)
    protocol = {"reference": f"test split of {test_data.info.get('name', '?')} (first {n})",
                "extractor": extract.description, "seed": seed,
                "labels": "test labels" if labels is not None else "unconditional"}
    return compare_features(extract(generated).numpy(), extract(reference).numpy(), protocol=protocol, **options)


@register_evaluator("gan")
@register_evaluator("cgan")
def evaluate_gan(model: GAN, test_data: ArrayDataset, *, num_samples: int | None = None, seed: int = 0,
                 extractor: str = "classifier", extractor_path: str | None = None, batch_size: int = 500,
                 limit: int | None = None, k: Any = None, **options: Any) -> dict[str, Any]:
    """Mode statistics (PacGAN protocol, 2,500 samples) on ring/grid data; on images, FID, KID,
    precision/recall and density/coverage of ``num_samples`` (default: ``limit``, else the test-set
    size) generated images against as many test images, in ``extractor`` features. The classifier
    extractor reads ``extractor_path``, else ``$GENLAB_FEATURE_CLASSIFIER`` (a classifier run folder).
    ``k`` (the VAE's importance-sample count that ``genlab evaluate`` passes) does not apply."""
    model.eval()
    if "centres" in test_data.info:
        return _evaluate_modes(model, test_data, num_samples or 2500, seed)
    extractor_path = extractor_path or os.environ.get("GENLAB_FEATURE_CLASSIFIER")
    num_samples = num_samples or limit
    try:
        image_shape(model)  # a GAN of points (no image shape, 2-D samples) is refused here
    except MissingCapability:
        raise DataError("GAN evaluation needs image data or a toy mixture with mode centres (ring8, grid25)") from None
    return _evaluate_images(model, test_data, num_samples, seed, extractor, extractor_path, batch_size, **options)


@register_reporter("gan")
@register_reporter("cgan")
def report_gan(model: GAN, run_dir: Any, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any] | None:
    """End of `genlab train` on ring/grid data: mode statistics (PacGAN protocol) into the summary and
    a scatter of 2,500 samples over the test points as ``modes.png`` (legend: data, samples)."""
    if test_data is None or "centres" not in test_data.info:
        return None
    stats = _evaluate_modes(model, test_data, 2500, seed=0)
    samples = model.sample(2500, generator=torch.Generator(model.device).manual_seed(0))
    plot_samples_vs_data(samples.cpu(), test_data.x[:2500], Path(run_dir) / "modes.png", mark_mean=False,
                         title=f"{stats['modes']:.0f} of {len(test_data.info['centres'])} modes covered, "
                               f"{stats['high_quality']:.0%} of samples within 3 sigma of one")
    return {k: v for k, v in stats.items() if isinstance(v, float)}
