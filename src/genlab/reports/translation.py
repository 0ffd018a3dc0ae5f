"""``genlab translate``: a trained translation model (pix2pix or CycleGAN) run on image files, one
PNG per input. The rows are the families' own (:func:`genlab.reports.pix2pix.translation_rows`:
input | n stochastic outputs | deterministic output; :func:`genlab.reports.cyclegan.cycle_strip`:
input | translation | reconstruction); reading the files is shared."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import torch

from ..data.imageio import images_to_tensor, open_image
from ..errors import ConfigError
from ..models.cyclegan import CycleGAN, Direction
from ..models.pix2pix import Pix2Pix
from ..nn.pixels import as_rgb
from ..viz import save_image_grid
from .cyclegan import cycle_strip
from .pix2pix import translation_rows


def translate_files(model: Any, images: Sequence[str | Path], *, out_dir: str | Path, direction: Direction = "a2b",
                    n: int = 4, seed: int = 0, stochastic: bool = True,
                    half: Literal["left", "right"] | None = None) -> list[Path]:
    """Translate image files with a loaded pix2pix or CycleGAN model; returns the PNGs written.

    pix2pix (``a2b`` only): ``input | n outputs (dropout on, seed + i) | deterministic output``, or
    ``input | output`` when not ``stochastic``. CycleGAN (``a2b`` or ``b2a``): ``input | translation
    | reconstruction``. ``half`` takes that half of an aligned A|B image as the input."""
    if isinstance(model, CycleGAN):
        channels, size, _ = model.input_shape(direction)
    elif isinstance(model, Pix2Pix):
        if direction != "a2b":
            raise ConfigError("pix2pix translates one way only (input -> output): direction a2b")
        channels, size, _ = model.config.input_shape or model.config.image_shape
    else:
        raise ConfigError(f"translate_files runs pix2pix and cyclegan models, not {getattr(model, 'registry_name', type(model).__name__)!r}")
    out_dir = Path(out_dir)
    written: list[Path] = []
    for i, file in enumerate(images):
        file = Path(file)
        image = open_image(file)
        if half is not None:
            w, h = image.size
            image = image.crop((0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))
        a = images_to_tensor([image], channels, size)  # (1, C_in, S, S)
        if isinstance(model, CycleGAN):
            row = cycle_strip(model, a, direction)
        elif stochastic:
            row = translation_rows(model, a, n=n, seed=seed + i)
        else:
            with torch.no_grad():
                row = torch.cat([as_rgb(a, model.config.image_shape[0]), model(a.to(model.device)).cpu()])
        path = out_dir / f"{file.stem}-{direction}.png"
        if path in written:  # two inputs with one name (from different folders)
            path = out_dir / f"{file.stem}-{i}-{direction}.png"
        save_image_grid(row, path, nrow=row.shape[0], scale=2)
        written.append(path)
    return written
