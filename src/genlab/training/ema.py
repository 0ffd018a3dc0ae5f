"""Exponential moving average of weights (Polyak averaging; Karras et al. 2018 use it for GAN generators).

The shadow copy covers the floating-point parameters *and* buffers of the tracked sub-modules, so
batch-norm statistics are averaged too. :meth:`EMA.applied` swaps the averaged weights in for
sampling or evaluation and restores the live ones afterwards.

With ``rampup`` the average forgets its start: the half-life of the average, in steps, is at most
``rampup`` times the steps trained so far (stylegan2-ada's ``ema_rampup``, 0.05 there), so after ``t`` steps
the decay is ``min(decay, 0.5 ** (1 / (rampup * t)))``. Without it a short run's average keeps much of the
random initialisation (decay 0.999 after 1,000 steps: 37 % of it).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn


class EMA:
    def __init__(self, model: nn.Module, decay: float, modules: list[str] | None = None,
                 rampup: float | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        if rampup is not None and not rampup > 0:
            raise ValueError(f"EMA rampup must be > 0, got {rampup}")
        self.decay, self.rampup = decay, rampup
        prefixes = tuple(f"{m}." for m in modules) if modules else None
        state = model.state_dict(keep_vars=True)
        self.live: dict[str, Tensor] = {
            k: v for k, v in state.items() if v.is_floating_point() and (prefixes is None or k.startswith(prefixes))
        }
        self.shadow: dict[str, Tensor] = {k: v.detach().clone() for k, v in self.live.items()}
        self._live_list = list(self.live.values())
        self._shadow_list = list(self.shadow.values())

    def decay_at(self, step: int) -> float:
        """The decay of the update that ends step ``step`` (1-based: the number of steps trained with it)."""
        if self.rampup is None:
            return self.decay
        return min(self.decay, 0.5 ** (1.0 / max(self.rampup * step, 1e-8)))

    @torch.no_grad()
    def update(self, step: int | None = None) -> None:
        """Move the average towards the live weights; ``step`` (steps trained, this one included) sets the
        ramped decay, and is required with ``rampup``."""
        if self.rampup is not None and step is None:
            raise ValueError("an EMA with rampup needs the step count at each update")
        decay = self.decay if step is None else self.decay_at(step)
        # shadow <- shadow + (1 - decay) * (live - shadow), fused over all tensors
        torch._foreach_lerp_(self._shadow_list, [t.detach() for t in self._live_list], 1.0 - decay)

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.shadow.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}...")
        for k, v in self.shadow.items():
            v.copy_(state[k])

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        backup = [t.detach().clone() for t in self._live_list]
        for live, avg in zip(self._live_list, self._shadow_list):
            live.data.copy_(avg)
        try:
            yield
        finally:
            for live, saved in zip(self._live_list, backup):
                live.data.copy_(saved)
