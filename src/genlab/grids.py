"""Image grids as PNG files and 2-D points rasterised into an image: PIL only, no torchvision, no
matplotlib. Low enough for the Trainer's sample previews and a model's ``preview``; the plots that need
matplotlib are in :mod:`genlab.viz`."""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .checkpoint import atomic_write_bytes


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """(N, C, H, W) in [0, 1] -> one (C, H', W') image, ``nrow`` images per row."""
    if images.dim() != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    # each image gets a pad strip on its right and bottom; one reshape lays the cells out
    cells = torch.full((rows * nrow, c, h + padding, w + padding), pad_value, dtype=images.dtype)
    cells[:n, :, :h, :w] = images.detach().cpu()
    grid = cells.view(rows, nrow, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, rows * (h + padding), nrow * (w + padding))
    return torch.nn.functional.pad(grid, (padding, 0, padding, 0), value=pad_value)


def to_uint8(image: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8 array."""
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None, scale: int = 1,
                    caption: str | None = None) -> Path:
    """Save a grid of (N, C, H, W) images in [0, 1] as a PNG (written atomically); ``caption`` is
    written above it, wrapped to the grid's width (what the rows or cells show)."""
    from PIL import Image

    grid = make_grid(images.float(), nrow=nrow)
    image = Image.fromarray(to_uint8(grid))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    if caption:
        image = _captioned(image, caption)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _captioned(image: "Any", caption: str, size: int = 11) -> "Any":
    """``image`` below a white strip holding ``caption``, wrapped to at least 240 px."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    width = max(image.width, 240)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines: list[str] = []
    for word in caption.split():
        if lines and measure.textlength(f"{lines[-1]} {word}", font=font) <= width - 8:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    line_height = size + 3
    strip = 6 + line_height * len(lines)
    out = Image.new(image.mode, (width, image.height + strip), "white" if image.mode == "RGB" else 255)
    out.paste(image, (0, strip))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * line_height), line, fill="black" if image.mode == "RGB" else 0, font=font)
    return out


def scatter_image(real: Tensor, fake: Tensor, size: int = 192) -> Tensor:
    """2-D points as an RGB image (3, size, size): real in grey, generated in red, shared axes."""
    real, fake = real.detach().float().cpu(), fake.detach().float().cpu()
    both = torch.cat([real, fake])
    lo, hi = both.min(0).values, both.max(0).values
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * 1.1 + 1e-6
    image = torch.ones(3, size, size)
    for points, colour in ((real, (0.55, 0.55, 0.55)), (fake, (0.85, 0.1, 0.1))):
        pix = ((points - centre) / half * 0.5 + 0.5) * (size - 1)
        col, row = pix[:, 0].round().long().clamp(0, size - 1), (size - 1 - pix[:, 1].round().long()).clamp(0, size - 1)
        for c in range(3):
            image[c, row, col] = colour[c]
    return image
