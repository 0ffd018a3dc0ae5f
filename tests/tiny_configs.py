"""Tiny configs and example batches for the contract suite (tests/test_contract.py).

Every registered model must have an entry here: the contract test fails for a model without one.
A case is a config dict for ``build_model(name, config)`` and a function that makes a batch (a tuple
of tensors, as the family's ``loss`` expects) from a ``torch.Generator``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch


@dataclasses.dataclass
class TinyCase:
    config: dict[str, Any]
    batch: Callable[[torch.Generator], tuple[torch.Tensor, ...]]
    can_sample: bool = True  # model.sample(n) works without inputs


def mnist_like(g: torch.Generator, n: int = 8, shape=(1, 16, 16), classes: int = 10):
    x = torch.rand(n, *shape, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


TINY: dict[str, TinyCase] = {}
