"""pix2pix's evaluator, end-of-training figure and file translation (Isola et al., "Image-to-Image
Translation with Conditional Adversarial Networks", CVPR 2017): test L1, colour saturation, optional
FID/KID in classifier features; ``translations.png`` and the rows that the lecture and
``genlab translate`` (:mod:`genlab.reports.translation`) draw."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..metrics import compare_features, get_extractor
from ..models.pix2pix import Pix2Pix
from ..nn.pixels import as_rgb
from ..registry import register_evaluator, register_reporter
from ..viz import save_image_grid

log = logging.getLogger(__name__)


def mean_saturation(images: Tensor, *, min_value: float = 0.2) -> float:
    """Mean HSV saturation (max - min) / max over the pixels whose value (max channel) exceeds
    ``min_value``: the ink of a digit, not the black background. 0 for grey images."""
    if images.shape[1] != 3:
        return 0.0
    high, low = images.amax(1), images.amin(1)  # (N, H, W)
    lit = high > min_value
    if not bool(lit.any()):
        return 0.0
    return float(((high - low)[lit] / high[lit]).mean())


@torch.no_grad()
def translate_dataset(model: Pix2Pix, data: Any, *, batch_size: int = 100) -> tuple[Tensor, Tensor, Tensor]:
    """(inputs, outputs, targets) for every pair of ``data``, deterministic outputs, on the CPU."""
    was_training = model.training
    model.eval()
    outputs = []
    a, b = data.tensors[0], data.tensors[1]
    for start in range(0, len(a), batch_size):
        outputs.append(model(a[start : start + batch_size].to(model.device)).cpu())
    model.train(was_training)
    return a, torch.cat(outputs), b


@torch.no_grad()
def translation_rows(model: Pix2Pix, a: Tensor, b: Tensor | None = None, *, n: int = 4, seed: int = 0) -> Tensor:
    """Rows of [input, n stochastic outputs, deterministic output(, target)] as one (rows·k, C, S, S) batch."""
    was_training = model.training
    model.eval()
    a = a.to(model.device)
    g = torch.Generator(model.device).manual_seed(seed)
    samples = model.translate(a, n, stochastic=True, generator=g)  # (B, n, C, S, S)
    plain = model(a)[:, None]
    model.train(was_training)
    c = samples.shape[2]
    parts = [as_rgb(a, c)[:, None], samples, plain]
    if b is not None:
        parts.append(as_rgb(b.to(model.device), c)[:, None])
    rows = torch.cat(parts, dim=1)  # (B, k, C, S, S)
    return rows.flatten(0, 1).cpu()


@register_evaluator("pix2pix")
def evaluate_pix2pix(model: Pix2Pix, test_data: Any, *, batch_size: int = 100, extractor: str | None = None,
                     extractor_path: str | None = None, limit: int | None = None, **_: Any) -> dict[str, Any]:
    """Test L1 (mean absolute error, pixels in [0, 1]) of the deterministic outputs, the mean
    saturation of colour outputs and targets, and — when ``extractor`` names a feature extractor
    (``classifier`` with ``extractor_path=RUN``, ``pixels``, ...) — the Fréchet distance and KID
    of the outputs against the test targets on its features, with their protocol."""
    if limit is not None:
        test_data = test_data.head(limit)
    _, outputs, targets = translate_dataset(model, test_data, batch_size=batch_size)
    result: dict[str, Any] = {"l1": float((outputs - targets).abs().mean()), "n": len(outputs)}
    if outputs.shape[1] == 3:
        result["saturation"] = mean_saturation(outputs)
        result["target_saturation"] = mean_saturation(targets)
    if extractor is not None:
        features = get_extractor(extractor, **({"path": extractor_path} if extractor_path else {}))
        result.update(compare_features(
            features(outputs), features(targets), metrics=("fid", "kid"), kid_subset_size=min(1000, len(outputs) // 2),
            protocol={"reference": "targets of the evaluation data", "extractor": features.description},
        ))
    return result


@register_reporter("pix2pix")
def report_pix2pix(model: Pix2Pix, run_dir: str | Path, train_data: Any, test_data: Any) -> dict[str, float]:
    """``translations.png``: rows of input | 4 stochastic outputs | deterministic output | target;
    returns the test L1 (and saturations) for the run summary."""
    data = test_data if test_data is not None else train_data
    path = Path(run_dir) / "translations.png"
    save_image_grid(translation_rows(model, data.tensors[0][:8], data.tensors[1][:8], n=4), path, nrow=7, scale=2)
    log.info("wrote %s", path)
    metrics = evaluate_pix2pix(model, data)
    return {f"test/{k}": float(v) for k, v in metrics.items() if k != "n"}
