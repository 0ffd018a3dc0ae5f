"""Run a function (usually a network) over tensors in batches: the one place that does it.

Decoding 10,000 codes, encoding a training set or classifying generated samples in one call would
hold every activation at once; each tool instead maps its model over slices of ``batch_size``
rows, moves each slice to the model's device and the result back to the CPU, and concatenates.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from .errors import ConfigError


def map_batches(fn: Callable[..., Tensor], *tensors: Tensor, batch_size: int, device: torch.device | str | None = None,
                to_cpu: bool = True, grad: bool = False) -> Tensor:
    """``torch.cat([fn(*slices) for slices of batch_size rows])``.

    ``tensors`` share their first dimension and are sliced together (``fn`` gets one slice of
    each). Each slice moves to ``device`` (None: where it is); each output moves to the CPU unless
    ``to_cpu=False``. Runs under ``torch.no_grad()`` unless ``grad=True`` (an attack needs input
    gradients inside ``fn``). An empty input gives ``fn`` of an empty slice, so the result keeps its
    trailing shape.
    """
    if not tensors:
        raise ConfigError("map_batches needs at least one tensor")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ConfigError(f"map_batches: tensors differ in length: {[t.shape[0] for t in tensors]}")
    outputs = []
    with contextlib.nullcontext() if grad else torch.no_grad():
        for start in range(0, max(n, 1), batch_size):  # one (empty) call for an empty input
            parts = [t[start : start + batch_size] for t in tensors]
            out = fn(*(p.to(device) if device is not None else p for p in parts))
            outputs.append(out.cpu() if to_cpu else out)
    return torch.cat(outputs)


def module_device(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode inside the block, the previous mode after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
