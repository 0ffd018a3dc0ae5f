"""Differentiable augmentation for data-efficient GAN training (DiffAugment; Zhao et al., "Differentiable
Augmentation for Data-Efficient GAN Training", NeurIPS 2020).

A discriminator trained on few images memorises them; augmenting what it sees stops that. The
augmentations must be *differentiable* and applied to *both* real and generated images (and to the
generated ones in the generator's loss too), else D learns to tell augmented from clean images, or
G learns to produce augmented-looking ones. Every op here is a composition of differentiable tensor
operations, so G receives gradients through it. One call from any discriminator phase::

    real_score = D(augment(real, cfg.augment, cfg.augment_p))
    fake_score = D(augment(fake, cfg.augment, cfg.augment_p))

Ops (DiffAugment's, with its ranges; they assume images in [-1, 1], where 0 is mid-grey):

===============  ===========================================================================
``color``        brightness x + b, b ~ U[-0.5, 0.5); saturation: each pixel's distance from
                 its channel mean times s ~ U[0, 2); contrast: distance from the image mean
                 times c ~ U[0.5, 1.5) (one draw of each per image, in that order)
``translation``  shift by whole pixels, up to ``TRANSLATION_FRACTION`` (1/8) of the side in
                 each direction, filling with zeros
``cutout``       zero a square of side ``CUTOUT_FRACTION`` (1/2) of the image, its centre
                 uniform over the image (so it may be clipped by the border, as in DiffAugment)
===============  ===========================================================================

``p`` is the probability that an op acts on an image; each op and each image draws its own coin
(p = 1 is DiffAugment; p < 1 follows ADA, Karras et al. 2020). An image the coin spares passes
through bit-identically. :class:`DiffAugmentSchedule` sets ``p`` during training: fixed, a linear
ramp, or adaptive (ADA's overfitting heuristic: p rises while the discriminator calls more than a
target share of the augmented reals real, and falls while it calls fewer). Randomness comes from
``generator`` when given, else from the global RNG through :func:`genlab.runtime.batch_rand`, so a
training step draws what it draws under several processes too, and a resumed run (which restores
the RNG) repeats it exactly. All draws are one
tensor per op for the whole batch: no Python loop over images.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config, check
from ..errors import ConfigError
from ..runtime import batch_rand, batch_randint

TRANSLATION_FRACTION = 0.125  # largest shift, as a fraction of the image side
CUTOUT_FRACTION = 0.5  # cutout square's side, as a fraction of the image side
ADAPT_INTERVAL = 4  # an adaptive p moves once per this many discriminator steps (ADA's ada_interval)
OPS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); "" or "none" -> (). Unknown names raise a
    :class:`ConfigError` listing the valid ones."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none")
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ConfigError(f"unknown augmentation(s) {', '.join(map(repr, unknown))} in {policy!r}; valid: {', '.join(OPS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"augmentation policy {policy!r} names an op twice")
    return names


def augment(x: Tensor, policy: str = "color,translation,cutout", p: float = 1.0, *,
            generator: torch.Generator | None = None) -> Tensor:
    """Apply the ops of ``policy`` in order, each to each image of ``x`` (B, C, H, W) with probability
    ``p``. Differentiable in ``x``; ``p = 0`` (or an empty policy) returns ``x`` itself and draws nothing."""
    ops = parse_policy(policy)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"augmentation probability must be in [0, 1], got {p}")
    if x.dim() != 4:
        raise ConfigError(f"augment expects images (B, C, H, W), got shape {tuple(x.shape)}")
    if p == 0 or not ops:
        return x
    for name in ops:
        x = _OPS[name](x, p=p, generator=generator)
    return x


def ramp_probability(step: int | Tensor, *, target: float, ramp_steps: int) -> float:
    """A linear warm-up of the augmentation probability: 0 at step 0, ``target`` from ``ramp_steps`` on
    (``ramp_steps = 0``: ``target`` throughout)."""
    if ramp_steps <= 0:
        return float(target)
    return float(target) * min(1.0, float(step) / ramp_steps)


class DiffAugmentSchedule(nn.Module):
    """The augmentation of an image GAN's discriminator, with its probability over training.
    ``schedule(x)`` augments images (B, C, H, W) in [-1, 1] with the current probability; call
    :meth:`step` once per discriminator step with the scores D gave the augmented reals.

    - fixed: ``p`` throughout (nothing registered: the state dict is the model's alone);
    - ramp (``ramp_steps > 0``): p rises linearly from 0 to ``p`` over that many D steps;
    - adaptive (``target > 0``; Karras et al. 2020, "Training Generative Adversarial Networks with
      Limited Data", section 3): p starts at 0; every :data:`ADAPT_INTERVAL` D steps it moves by
      ``sign(r - target) * images / (speed_kimg * 1000)``, where r = E[sign(d_real - centre)] is how
      surely D calls the (augmented) reals real over those steps, and ``images`` how many it judged
      (``real_scores``' first dimension: a patch discriminator's map of one image counts once);
      so p can cross [0, 1] in ``speed_kimg`` thousand images. It stays in [0, ``p``]. ``centre`` is the
      score halfway between real and fake (0 for logits, 0.5 for least-squares' 1/0 targets).

    The ramp's step count, or the adaptive p and its running sums, are buffers saved with the weights,
    so a resumed run goes on exactly where it stopped. Under several processes the sums are all-reduced
    at each step, so every rank holds the p one process would (and DDP's buffer broadcast changes nothing).
    """

    def __init__(self, policy: str, p: float = 1.0, ramp_steps: int = 0, *, target: float = 0.0,
                 speed_kimg: float = 100.0, centre: float = 0.0) -> None:
        super().__init__()
        self.policy, self.ceiling, self.ramp_steps = policy, float(p), ramp_steps
        self.target, self.speed_kimg, self.centre = float(target), float(speed_kimg), float(centre)
        _check_schedule(policy, p, ramp_steps, target, speed_kimg)
        self.enabled = bool(parse_policy(policy))
        if ramp_steps:
            self.register_buffer("steps_trained", torch.zeros((), dtype=torch.long))
        if self.adaptive:
            # float32 (MPS has no float64); the sums are counts, exact in float32 far beyond one interval's
            self.register_buffer("p", torch.zeros(()))
            # since p last moved: sum of sign(d_real - centre), reals judged, D steps
            self.register_buffer("sign_sum", torch.zeros(()))
            self.register_buffer("judged", torch.zeros(()))
            self.register_buffer("pending_steps", torch.zeros((), dtype=torch.long))

    @property
    def adaptive(self) -> bool:
        return self.enabled and self.target > 0

    @property
    def probability(self) -> float:
        if self.adaptive:
            return float(self.p)
        if self.ramp_steps:
            return ramp_probability(int(self.steps_trained), target=self.ceiling, ramp_steps=self.ramp_steps)
        return self.ceiling

    def forward(self, x: Tensor) -> Tensor:
        return augment(x, self.policy, self.probability) if self.enabled else x

    def step(self, training: bool, real_scores: Tensor | None = None) -> dict[str, Tensor]:
        """Count one discriminator step (training mode with gradients on: not evaluation); an adaptive
        schedule needs ``real_scores``, D's scores of the augmented reals of this step. Returns the terms
        the D phase logs: ``{"augment_p": p}`` for an adaptive schedule (also in evaluation), else none."""
        if training and torch.is_grad_enabled():
            if self.ramp_steps:
                self.steps_trained += 1
            if self.adaptive:
                self._adapt(real_scores)
        return {"augment_p": torch.tensor(self.probability)} if self.adaptive else {}

    def _adapt(self, real_scores: Tensor | None) -> None:
        if real_scores is None:
            raise ConfigError("adaptive augmentation needs the discriminator's scores of the reals at each step")
        # one row per judged image: a patch discriminator's map of scores is one image, not many, so p
        # moves at the speed ADA sets in images (r, the mean sign, is the same either way)
        scores = real_scores.detach().float().reshape(len(real_scores), -1)
        sums = torch.stack([torch.sign(scores - self.centre).mean(1).sum(),
                            torch.tensor(float(len(scores)), device=scores.device)])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(sums)  # the global batch's sums, so every rank moves p alike
        self.sign_sum += sums[0]
        self.judged += sums[1]
        self.pending_steps += 1
        if int(self.pending_steps) >= ADAPT_INTERVAL:
            r = self.sign_sum / self.judged
            move = torch.sign(r - self.target) * self.judged / (self.speed_kimg * 1000.0)
            self.p.copy_((self.p + move).clamp(0.0, self.ceiling))
            self.sign_sum.zero_()
            self.judged.zero_()
            self.pending_steps.zero_()


@dataclasses.dataclass
class AugmentConfig(Config):
    """The augmentation fields every image GAN family's config inherits: DiffAugment's policy and its
    probability, fixed, ramped or adaptive (:class:`DiffAugmentSchedule`). A family's config declares
    its own fields after deriving from this; ``genlab train MODEL --help`` lists those first and these after them."""

    augment: str = ""  # DiffAugment policy for everything D sees, e.g. "color,translation,cutout" ("" or "none": off)
    augment_p: float = 1.0  # probability that each op acts on each image
    augment_ramp_steps: int = 0  # > 0: p rises linearly from 0 to augment_p over this many D steps
    augment_target: float = 0.0  # > 0: adaptive p (ADA; 0.6 there), rising while D calls more reals real than this
    augment_speed_kimg: float = 100.0  # adaptive p: thousands of images for p to cross [0, 1] (ADA: 500)

    def validate(self) -> None:
        _check_schedule(self.augment, self.augment_p, self.augment_ramp_steps, self.augment_target,
                        self.augment_speed_kimg)


def _check_schedule(policy: str, p: float, ramp_steps: int, target: float, speed_kimg: float) -> None:
    """One line per bad augmentation setting, named as the config field that holds it."""
    parse_policy(policy)  # an unknown op is a ConfigError naming the valid ones
    check(0 <= p <= 1, f"model.augment_p must be in [0, 1], got {p}")
    check(ramp_steps >= 0, f"model.augment_ramp_steps must be >= 0, got {ramp_steps}")
    check(0 <= target < 1, f"model.augment_target must be in [0, 1) (0: p fixed or ramped; ADA uses 0.6), got {target}")
    check(not (target and ramp_steps),
          "model.augment_target (adaptive p) and model.augment_ramp_steps both set p over training; choose one")
    check(speed_kimg > 0, f"model.augment_speed_kimg must be > 0, got {speed_kimg}")


def augment_schedule(config: AugmentConfig, loss: str = "non-saturating") -> DiffAugmentSchedule:
    """The DiffAugment schedule a config's augmentation fields describe, for a discriminator trained
    with ``loss`` (its real/fake midpoint is what an adaptive p compares the reals' scores with)."""
    check(not (config.augment_target and loss == "wgan-gp"),
          "model.augment_target needs a discriminator whose score has a real/fake midpoint; wgan-gp's has none")
    return DiffAugmentSchedule(config.augment, config.augment_p, config.augment_ramp_steps, target=config.augment_target,
                               speed_kimg=config.augment_speed_kimg, centre=0.5 if loss == "least-squares" else 0.0)


# ---------------------------------------------------------------------- the ops

def _coin(x: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """(B, 1, 1, 1) of 1.0 where the op acts on an image, 0.0 where it does not (all ones when p = 1,
    drawn anyway so the stream of draws does not depend on p)."""
    u = batch_rand((x.shape[0], 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return batch_rand((x.shape[0], 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype)  # (B, 1, 1, 1)


def brightness(x: Tensor, *, p: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """x + b per image, b ~ U[-0.5, 0.5)."""
    on = _coin(x, p, generator)
    return x + (_uniform(x, generator) - 0.5) * on


def saturation(x: Tensor, *, p: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Scale each pixel's distance from its mean over channels by s ~ U[0, 2) per image (s = 0: grey)."""
    on = _coin(x, p, generator)
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    # written as x + (s - 1)(x - mean) so a spared image (s - 1 = 0) comes back bit-identical
    return x + (_uniform(x, generator) * 2 - 1) * on * (x - mean)


def contrast(x: Tensor, *, p: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Scale each pixel's distance from the image's mean (over C, H, W) by c ~ U[0.5, 1.5) per image."""
    on = _coin(x, p, generator)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return x + (_uniform(x, generator) - 0.5) * on * (x - mean)


def color(x: Tensor, *, p: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Brightness, then saturation, then contrast (DiffAugment's ``color``)."""
    x = brightness(x, p=p, generator=generator)
    x = saturation(x, p=p, generator=generator)
    return contrast(x, p=p, generator=generator)


def translation(x: Tensor, *, p: float = 1.0, generator: torch.Generator | None = None,
                fraction: float = TRANSLATION_FRACTION) -> Tensor:
    """Shift each image by its own whole-pixel offset (dy, dx), each uniform in [-s, s] with
    s = round(fraction * side); pixels shifted in are zeros. Output pixel (i, j) is input pixel
    (i - dy, j - dx). One gather for the batch; gradients flow to the pixels that stay in view."""
    b, _, h, w = x.shape
    on = _coin(x, p, generator).view(b, 1).long()
    sy, sx = int(h * fraction + 0.5), int(w * fraction + 0.5)
    dy = batch_randint(-sy, sy + 1, (b, 1), generator=generator, device=x.device) * on  # (B, 1)
    dx = batch_randint(-sx, sx + 1, (b, 1), generator=generator, device=x.device) * on
    padded = F.pad(x, (sx, sx, sy, sy))  # zeros outside the image: (B, C, H + 2sy, W + 2sx)
    rows = torch.arange(h, device=x.device) + sy - dy  # (B, H) rows of `padded` to read
    cols = torch.arange(w, device=x.device) + sx - dx  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: Tensor, *, p: float = 1.0, generator: torch.Generator | None = None,
           fraction: float = CUTOUT_FRACTION) -> Tensor:
    """Zero a square of side round(fraction * side) per image, centred at a uniform pixel of the image
    (DiffAugment's ranges: the square may hang over the border and be clipped)."""
    b, _, h, w = x.shape
    on = _coin(x, p, generator).view(b, 1, 1).bool()
    size_y, size_x = int(h * fraction + 0.5), int(w * fraction + 0.5)
    # centre in [0, side] for even sizes, [0, side) for odd ones, as DiffAugment draws it
    cy = batch_randint(0, h + (1 - size_y % 2), (b, 1), generator=generator, device=x.device)  # (B, 1)
    cx = batch_randint(0, w + (1 - size_x % 2), (b, 1), generator=generator, device=x.device)
    top, left = cy - size_y // 2, cx - size_x // 2
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + size_y)  # (B, H)
    in_cols = (cols >= left) & (cols < left + size_x)  # (B, W)
    hole = in_rows[:, :, None] & in_cols[:, None, :] & on  # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}
