"""pix2pix's evaluator, end-of-training figure and file translation (Isola et al., "Image-to-Image
Translation with Conditional Adversarial Networks", CVPR 2017): test L1, colour saturation, optional
FID/KID in classifier features; ``translations.png``; ``genlab translate`` on image files."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Sequence

import torch

from ..checkpoint import load
from ..data.imageio import images_to_tensor
from ..errors import ConfigError, DataError
from ..metrics import compare_features, get_extractor
from ..models.pix2pix import Pix2Pix, _as_rgb, mean_saturation, translate_dataset, translation_rows
from ..registry import register_evaluator, register_reporter
from ..viz import save_image_grid

log = logging.getLogger(__name__)


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


def translate_files(model_path: str | Path, images: Sequence[str | Path], *, out_dir: str | Path, n: int = 4,
                    seed: int = 0, stochastic: bool = True, half: Literal["left", "right"] | None = None,
                    device: str = "cpu") -> list[Path]:
    """Translate image files with a saved pix2pix model: one PNG per input, ``input | n outputs |
    deterministic output``. ``half`` takes that half of an aligned A|B image as the input."""
    from PIL import Image

    model = load(model_path, device=device)
    if not isinstance(model, Pix2Pix):
        raise ConfigError(f"{model_path} holds a {type(model).registry_name!r} model, not pix2pix")
    channels, size, _ = model.config.input_shape or model.config.image_shape
    out_dir = Path(out_dir)
    written = []
    for i, file in enumerate(images):
        file = Path(file)
        try:
            image = Image.open(file)
            image.load()
        except (OSError, ValueError) as exc:
            raise DataError(f"{file}: unreadable image ({exc})") from None
        if half is not None:
            w, h = image.size
            image = image.crop((0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))
        a = images_to_tensor([image], channels, size)  # (1, C_in, S, S)
        rows = translation_rows(model, a, n=n, seed=seed + i) if stochastic else torch.cat(
            [_as_rgb(a, model.config.image_shape[0]), model(a.to(model.device)).cpu()])
        path = out_dir / f"{file.stem}-translated.png"
        if path in written:  # two inputs with one name (from different folders)
            path = out_dir / f"{file.stem}-{i}-translated.png"
        save_image_grid(rows, path, nrow=rows.shape[0], scale=2)
        written.append(path)
    return written
