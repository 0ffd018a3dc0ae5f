"""DiffAugment (genlab.nn.augment): every op is differentiable, does what its docstring says within
the stated ranges, draws independently per image from the given generator, and p = 0 is the identity."""
from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.nn.augment import (
    ADAPT_INTERVAL, CUTOUT_FRACTION, TRANSLATION_FRACTION, DiffAugmentSchedule, augment, brightness, color, contrast,
    cutout, parse_policy, ramp_probability, saturation, translation,
)
from genlab.runtime import batch_shard

OPS = {"brightness": brightness, "saturation": saturation, "contrast": contrast, "color": color,
       "translation": translation, "cutout": cutout}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 16, c: int = 3, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, side, side, generator=_gen(seed)) * 2 - 1  # [-1, 1], as the GANs use them


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradient_flows_through_each_op(name):
    x = _images().requires_grad_(True)
    weights = torch.rand(x.shape, generator=_gen(5))
    (OPS[name](x, generator=_gen(1)) * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs().flatten(1).sum(1) > 0).all(), "some image got no gradient"


def test_gradient_of_translation_and_cutout_reaches_exactly_the_pixels_kept():
    x = _images(side=16).requires_grad_(True)
    out = translation(x, generator=_gen(2))
    out.sum().backward()
    # each input pixel is read at most once: its gradient is 1 if it stayed in view, else 0
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}
    x.grad = None
    out = cutout(x, generator=_gen(2))
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).to(x.dtype))


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_p_zero_is_the_identity_and_draws_nothing(policy):
    x = _images()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    assert augment(x, policy, 0.0) is x
    assert torch.equal(torch.get_rng_state(), state)
    assert augment(x, "", 1.0) is x and augment(x, "none", 1.0) is x


@pytest.mark.parametrize("name", sorted(OPS))
def test_with_p_half_spared_images_pass_bit_identical_and_the_rest_change(name):
    x = _images(n=64)
    out = OPS[name](x, p=0.5, generator=_gen(3))
    same = (out == x).flatten(1).all(1)
    changed = (out != x).flatten(1).float().mean(1) > 0.05  # an op that acts changes many pixels (a corner cutout: 1/16)
    assert torch.equal(same, ~changed), "an image was neither spared nor clearly changed"
    coins = 3 if name == "color" else 1  # color is three ops, each with its own coin
    expected = 64 * 0.5**coins
    assert 0.4 * expected < int(same.sum()) < 1.6 * expected, f"{int(same.sum())} of 64 images spared at p = 0.5"


def test_shape_and_range_are_kept():
    x = _images()
    for name in ("translation", "cutout"):  # values are input values or the zero fill
        out = OPS[name](x, generator=_gen(4))
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= min(x.min(), 0) and out.max() <= max(x.max(), 0)
    out = augment(x, "color,translation,cutout", generator=_gen(4))
    assert out.shape == x.shape and torch.isfinite(out).all()
    # colour's worst case from [-1, 1]: brightness +-0.5, then distances from means scaled by < 2 and < 1.5
    assert out.abs().max() <= 1.5 * 2 * 1.5 * 2


def test_brightness_adds_one_shift_per_image_in_range():
    x = _images(n=256)
    shift = (brightness(x, generator=_gen(6)) - x).flatten(1)  # (B, C*H*W)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)
    b = shift[:, 0]
    assert b.min() >= -0.5 and b.max() < 0.5 and b.max() - b.min() > 0.9  # spans the range
    assert b.unique().numel() == b.numel()  # independent draws per image


def test_saturation_scales_distance_from_the_channel_mean_in_range():
    x = _images(n=256)
    out = saturation(x, generator=_gen(7))
    mean = x.mean(1, keepdim=True)
    assert torch.allclose(out.mean(1, keepdim=True), mean, atol=1e-5)  # grey level kept
    factor = ((out - mean) / (x - mean)).flatten(1)
    s = factor.median(1).values
    assert torch.allclose(factor, s[:, None].expand_as(factor), atol=1e-3, rtol=1e-3)
    assert s.min() >= 0 and s.max() < 2 and s.max() - s.min() > 1.8
    assert s.unique().numel() == s.numel()


def test_contrast_scales_distance_from_the_image_mean_in_range():
    x = _images(n=256)
    out = contrast(x, generator=_gen(8))
    mean = x.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(out.mean((1, 2, 3), keepdim=True), mean, atol=1e-5)
    factor = ((out - mean) / (x - mean)).flatten(1)
    c = factor.median(1).values
    assert torch.allclose(factor, c[:, None].expand_as(factor), atol=1e-3, rtol=1e-3)
    assert c.min() >= 0.5 and c.max() < 1.5 and c.max() - c.min() > 0.9
    assert c.unique().numel() == c.numel()


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` (C, H, W) moved down dy and right dx pixels, zeros shifted in (a slow reference)."""
    _, h, w = image.shape
    out = torch.zeros_like(image)
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_translation_shifts_content_by_whole_pixels_with_zero_fill():
    side = 16
    s = int(side * TRANSLATION_FRACTION + 0.5)  # 2
    x = torch.arange(1, 64 * 2 * side * side + 1, dtype=torch.float32).view(64, 2, side, side)  # no zeros, all distinct
    out = translation(x, generator=_gen(9))
    shifts = []
    for image, moved in zip(x, out):  # test-side reference, one image at a time
        matches = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1) if torch.equal(_shifted(image, dy, dx), moved)]
        assert len(matches) == 1, "output is not a whole-pixel shift within the stated range"
        shifts.append(matches[0])
    assert {dy for dy, _ in shifts} == set(range(-s, s + 1)) and {dx for _, dx in shifts} == set(range(-s, s + 1))
    assert len(set(shifts)) > 10  # images get their own offsets


def test_cutout_zeroes_one_square_of_the_stated_size():
    side = 16
    size = int(side * CUTOUT_FRACTION + 0.5)  # 8
    x = torch.ones(256, 1, side, side)
    hole = cutout(x, generator=_gen(10))[:, 0] == 0  # (B, H, W)
    rows, cols = hole.any(2), hole.any(1)  # (B, H), (B, W)
    # the zeros form one axis-aligned rectangle: exactly the product of the rows and columns they touch
    assert torch.equal(hole, rows[:, :, None] & cols[:, None, :])
    for span in (rows, cols):
        idx = torch.arange(side).expand_as(span)
        first = torch.where(span, idx, side).min(1).values
        last = torch.where(span, idx, -1).max(1).values
        length = span.sum(1)
        assert torch.equal(last - first + 1, length)  # contiguous
        assert length.max() == size and length.min() >= size // 2  # clipped by the border at most by half
        inside = (first > 0) & (last < side - 1)
        assert inside.any() and (length[inside] == size).all()  # a square not at the border has the full size
    assert (hole.flatten(1).float().argmax(1)).unique().numel() > 20  # positions drawn per image


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_same_seed_same_output_and_other_seed_other_output(policy):
    x = _images()
    a = augment(x, policy, 0.7, generator=_gen(11))
    b = augment(x, policy, 0.7, generator=_gen(11))
    c = augment(x, policy, 0.7, generator=_gen(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(13)
    d = augment(x, policy)
    torch.manual_seed(13)
    assert torch.equal(d, augment(x, policy))  # global RNG when no generator is given


def test_a_shard_of_the_global_batch_gets_the_global_batchs_draws():
    """Under several processes each rank augments its rows exactly as one process augments the whole batch."""
    x = _images(n=8)
    torch.manual_seed(14)
    whole = augment(x, "color,translation,cutout")
    torch.manual_seed(14)
    with batch_shard(1, 2):
        second = augment(x[4:], "color,translation,cutout")
    assert torch.equal(second, whole[4:])


def test_bad_policy_and_probability_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown augmentation.*'colour'.*valid: color, translation, cutout"):
        augment(_images(), "colour,translation")
    with pytest.raises(ConfigError, match="twice"):
        parse_policy("cutout,cutout")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        augment(_images(), "color", 1.5)
    with pytest.raises(ConfigError, match="B, C, H, W"):
        augment(torch.zeros(4, 16), "color")
    assert parse_policy(" color , cutout ") == ("color", "cutout")


def test_ramp_probability_is_linear_then_flat():
    assert ramp_probability(0, target=0.8, ramp_steps=100) == 0.0
    assert ramp_probability(50, target=0.8, ramp_steps=100) == pytest.approx(0.4)
    assert ramp_probability(500, target=0.8, ramp_steps=100) == pytest.approx(0.8)
    assert ramp_probability(0, target=0.8, ramp_steps=0) == 0.8


# ---------------------------------------------------------------------- the adaptive probability (ADA's heuristic)

def _train_steps(schedule: DiffAugmentSchedule, scores: list[list[float]]) -> list[float]:
    """One D step per list of real scores; the probability after each."""
    out = []
    for row in scores:
        with torch.enable_grad():
            schedule.step(True, torch.tensor(row))
        out.append(schedule.probability)
    return out


def test_adaptive_p_moves_once_per_interval_by_images_over_speed_towards_the_target():
    # 8 reals a step, ADAPT_INTERVAL steps a move: 32 images / (0.16 * 1000) = 0.2 per move
    schedule = DiffAugmentSchedule("color", 0.9, target=0.6, speed_kimg=0.16)
    assert schedule.adaptive and schedule.probability == 0.0
    sure = [[3.0] * 8] * ADAPT_INTERVAL  # r = 1 > 0.6: D is sure the reals are real -> more augmentation
    ps = _train_steps(schedule, sure)
    assert ps[:-1] == [0.0] * (ADAPT_INTERVAL - 1) and ps[-1] == pytest.approx(0.2)
    assert _train_steps(schedule, sure * 5)[-1] == pytest.approx(0.9)  # capped at augment_p
    unsure = [[3.0] * 4 + [-1.0] * 4] * ADAPT_INTERVAL  # r = 0 < 0.6 -> less
    assert _train_steps(schedule, unsure)[-1] == pytest.approx(0.7)
    # the sign of each score, not its size: 7 of 8 barely above the midpoint, one far below -> r = 0.75
    mostly = [[0.01] * 7 + [-100.0]] * ADAPT_INTERVAL
    assert _train_steps(schedule, mostly)[-1] == pytest.approx(0.9)
    assert _train_steps(schedule, unsure * 10)[-1] == 0.0  # floored at 0


def test_adaptive_p_counts_a_patch_discriminators_score_map_as_one_image():
    # 8 images a step, each a 5x5 map of patch scores (FastGAN's D, a PatchGAN): 32 images a move, not 800
    schedule = DiffAugmentSchedule("color", 1.0, target=0.6, speed_kimg=0.16)
    for _ in range(ADAPT_INTERVAL):
        with torch.enable_grad():
            schedule.step(True, torch.full((8, 1, 5, 5), 3.0))
    assert schedule.probability == pytest.approx(0.2)
    # r is the mean sign over every patch: 16 of 25 patches real on each image -> r = 0.28 < 0.6 -> down
    maps = torch.full((8, 25), -1.0)
    maps[:, :16] = 1.0
    for _ in range(ADAPT_INTERVAL):
        with torch.enable_grad():
            schedule.step(True, maps)
    assert schedule.probability == pytest.approx(0.0)


def test_adaptive_p_uses_the_losss_midpoint_and_counts_only_training_steps():
    least_squares = DiffAugmentSchedule("color", 1.0, target=0.6, speed_kimg=0.16, centre=0.5)
    # scores 0.4 are below least squares' midpoint (real 1, fake 0), though positive as logits
    assert _train_steps(least_squares, [[0.4] * 8] * ADAPT_INTERVAL + [[0.7] * 8] * ADAPT_INTERVAL) == \
        pytest.approx([0.0] * (2 * ADAPT_INTERVAL - 1) + [0.2])
    schedule = DiffAugmentSchedule("color", 1.0, target=0.6, speed_kimg=0.16)
    for _ in range(2 * ADAPT_INTERVAL):
        schedule.step(False, torch.ones(8))  # evaluation mode
        with torch.no_grad():
            schedule.step(True, torch.ones(8))  # no gradients: not a training step
    assert schedule.probability == 0.0 and int(schedule.pending_steps) == 0
    with pytest.raises(ConfigError, match="needs the discriminator's scores"):
        with torch.enable_grad():
            schedule.step(True)


def test_adaptive_state_is_saved_and_restored_mid_interval():
    scores = [[1.0, 2.0, -1.0, 0.5]] * (ADAPT_INTERVAL + 2)
    whole = DiffAugmentSchedule("translation", 1.0, target=0.6, speed_kimg=0.01)
    ps = _train_steps(whole, scores + scores)
    half = DiffAugmentSchedule("translation", 1.0, target=0.6, speed_kimg=0.01)
    _train_steps(half, scores)
    resumed = DiffAugmentSchedule("translation", 1.0, target=0.6, speed_kimg=0.01)
    resumed.load_state_dict(half.state_dict())  # p, the running sums and the steps since p last moved
    assert _train_steps(resumed, scores) == ps[len(scores):]
    assert set(whole.state_dict()) == {"p", "sign_sum", "judged", "pending_steps"}
    assert not DiffAugmentSchedule("color", 0.5).state_dict()  # fixed p: nothing saved


def test_adaptive_schedule_rejects_bad_settings_in_one_line():
    with pytest.raises(ConfigError, match="choose one"):
        DiffAugmentSchedule("color", 1.0, 10, target=0.6)
    with pytest.raises(ConfigError, match=r"target must be in \[0, 1\)"):
        DiffAugmentSchedule("color", 1.0, target=1.2)
    with pytest.raises(ConfigError, match="speed_kimg must be > 0"):
        DiffAugmentSchedule("color", 1.0, target=0.6, speed_kimg=0)
    with pytest.raises(ConfigError, match=r"augment_p must be in \[0, 1\]"):
        DiffAugmentSchedule("color", 1.5)


@pytest.mark.parametrize("family", ["gan", "cgan", "stylegan", "cyclegan", "fastgan"])
def test_every_gan_familys_config_checks_the_shared_augmentation_fields(family):
    """The five fields live once, in AugmentConfig; each family's config inherits them with their checks."""
    import genlab.models  # noqa: F401  (fills the registry)
    from genlab.nn.augment import AugmentConfig
    from genlab.registry import MODELS

    config_class = MODELS.get(family).config_class
    assert issubclass(config_class, AugmentConfig)
    for bad, message in [({"augment": "colour"}, "unknown augmentation"), ({"augment_p": 1.5}, r"augment_p must be in"),
                         ({"augment_ramp_steps": -1}, "augment_ramp_steps must be >= 0"),
                         ({"augment_target": 1.0}, r"augment_target must be in \[0, 1\)"),
                         ({"augment_target": 0.6, "augment_ramp_steps": 5}, "choose one"),
                         ({"augment_speed_kimg": 0.0}, "augment_speed_kimg must be > 0")]:
        with pytest.raises(ConfigError, match=message):
            config_class(**bad)


def _two_rank_adaptive(rank: int, port: int, scores: torch.Tensor, results) -> None:
    """One rank of a gloo group of two: judge this rank's half of each step's reals."""
    import os

    import torch.distributed as dist

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        schedule = DiffAugmentSchedule("color", 1.0, target=0.6, speed_kimg=0.04)
        half = scores.shape[1] // 2
        ps = _train_steps(schedule, [row[rank * half:(rank + 1) * half].tolist() for row in scores])
        results[rank] = (ps, {k: v.clone() for k, v in schedule.state_dict().items()})
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_adaptive_p_under_two_processes_is_the_one_process_p_on_every_rank():
    """Each rank sees half the reals; the sums are all-reduced, so both ranks move p as one process
    judging the whole batch does (a rank left to its own half would move it by half as much, and the
    ranks' p would part where their halves disagree)."""
    import socket

    import torch.multiprocessing as mp

    g = _gen(3)
    # 3 * ADAPT_INTERVAL steps of 8 reals: sure, then split (rank 0's half sure, rank 1's not), then sure
    sure = torch.rand(ADAPT_INTERVAL, 8, generator=g) + 0.1
    split = torch.cat([sure[:, :4], -sure[:, 4:]], dim=1)
    scores = torch.cat([sure, split, sure])
    single = _train_steps(DiffAugmentSchedule("color", 1.0, target=0.6, speed_kimg=0.04), scores.tolist())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_two_rank_adaptive, args=(port, scores, results), nprocs=2)
        (p0, state0), (p1, state1) = results[0], results[1]
    assert single[-1] > 0 and p0 == single and p1 == single
    assert all(torch.equal(state0[k], state1[k]) for k in state0)
