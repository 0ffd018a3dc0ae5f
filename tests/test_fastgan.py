"""FastGAN (genlab.models.fastgan): D's self-supervised reconstruction trains D only, each phase updates
only its player, skip-layer excitation gates channels, DiffAugment reaches everything D sees, and the
64 and 128 px shapes hold. The model contract (tests/test_contract.py) covers the rest."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.data import ArrayDataset
from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.models.fastgan import FastGANConfig, SkipExcitation, quadrant
from genlab.training import TrainConfig, Trainer


def _model(side: int = 64, channels: int = 3, **kw):
    torch.manual_seed(0)
    config = {"image_shape": [channels, side, side], "latent_dim": 8, "generator_channels": 1, "discriminator_channels": 1}
    return build_model("fastgan", {**config, **kw})


def _batch(side: int = 64, channels: int = 3, n: int = 4):
    return (torch.rand(n, channels, side, side, generator=torch.Generator().manual_seed(1)),)


def _train_config(**kw) -> TrainConfig:
    base = dict(batch_size=4, max_steps=1, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                eval_every=10**6, sample_every=10**6, checkpoint_every=10**6, log_every=1)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("side", [64, 128])
def test_shapes_at_64_and_128_px(side):
    model = _model(side, channels=1).eval()
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, side, side) and samples.min() >= 0 and samples.max() <= 1
    assert model.preview(_batch(side, 1)).shape == (64, 1, side, side)
    x = _batch(side, 1)[0] * 2 - 1
    f16, f8 = model.discriminator.features(x)
    assert f16.shape[2:] == (16, 16) and f8.shape[2:] == (8, 8)
    assert model.discriminator(x).shape == (4, 25)  # 5x5 patch logits from the 8x8 features
    assert model.discriminator.decoder_whole(f8).shape == (4, 1, side // 2, side // 2)
    assert model.discriminator.decoder_part(quadrant(f16, torch.zeros(4, dtype=torch.long))).shape == (4, 1, side // 2, side // 2)
    # SLE: the 4x4 map gates the 64x64 one; at 128 px also the 8x8 map the 128x128 one
    assert sorted(model.generator.excitations) == (["128", "64"] if side == 128 else ["64"])


def test_reconstruction_term_is_present_and_trains_the_discriminator_only():
    model = _model().train()
    out = model.loss(_batch(), "discriminator")
    assert "recon" in out.terms and out.terms["recon"] > 0
    names = [n for n, _ in model.named_parameters()]
    grads = torch.autograd.grad(out.terms["recon"], list(model.parameters()), allow_unused=True)
    by_name = dict(zip(names, grads))
    assert all(g is None for n, g in by_name.items() if n.startswith("generator.")), "recon reached G"
    for part in ("discriminator.decoder_whole.", "discriminator.decoder_part.", "discriminator.stem.", "discriminator.to_8."):
        reached = [g for n, g in by_name.items() if n.startswith(part) and g is not None]
        assert reached and any(g.abs().sum() > 0 for g in reached), f"recon has no gradient into {part}"
    # the patch head is not part of the auto-encoder
    assert all(g is None for n, g in by_name.items() if n.startswith("discriminator.head."))
    # and the weight scales its share of the total
    weighted, unweighted = _model().train(), _model(reconstruction_weight=0.0).train()  # the same weights
    torch.manual_seed(5)
    with_recon = weighted.loss(_batch(), "discriminator")
    torch.manual_seed(5)
    without = unweighted.loss(_batch(), "discriminator")
    assert torch.allclose(with_recon.total - without.total, with_recon.terms["recon"], atol=1e-5)


def test_quadrant_picks_each_images_own_quarter():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    parts = torch.tensor([1, 2])
    out = quadrant(x, parts)
    assert torch.equal(out[0], x[0, :, :4, 4:]) and torch.equal(out[1], x[1, :, 4:, :4])


@pytest.mark.parametrize("phase, player, other", [("discriminator", "discriminator", "generator"),
                                                   ("generator", "generator", "discriminator")])
def test_each_phase_updates_its_player_only(phase, player, other):
    model = _model()
    owned = {id(p) for p in getattr(model, player).parameters()}
    phase_params = next(model.phase_parameters(p) for p in model.phases() if p.name == phase)
    assert {id(p) for p in phase_params} == owned  # the phase's optimizer holds exactly its player's weights
    trainer = Trainer(model, ArrayDataset(_batch()), _train_config())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step = next(p for p in trainer.phases if p.name == phase)
    torch.manual_seed(0)
    trainer._run_phase(step, _batch())
    after = dict(model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert moved and all(n.startswith(player + ".") for n in moved), sorted(moved)[:5]
    assert not any(n.startswith(other + ".") for n in moved)


def test_discriminator_phase_sends_no_gradient_to_the_generator():
    model = _model().train()
    model.loss(_batch(), "discriminator").total.backward()
    assert all(p.grad is None for p in model.generator.parameters())
    model.zero_grad(set_to_none=True)
    model.loss(_batch(), "generator").total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.generator.parameters())


def test_skip_layer_excitation_scales_the_high_resolution_channels_by_the_low_resolution_input():
    torch.manual_seed(0)
    sle = SkipExcitation(low_channels=6, high_channels=5)
    high = torch.randn(2, 5, 16, 16)
    low_a, low_b = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4) * 3
    out_a, out_b = sle(low_a, high), sle(low_b, high)
    for out in (out_a, out_b):
        scale = out / high  # one factor per (image, channel), the same at every pixel
        per_channel = scale.flatten(2).median(2).values  # (B, C)
        assert torch.allclose(scale, per_channel[:, :, None, None].expand_as(scale), atol=1e-5)
        assert (per_channel > 0).all() and (per_channel < 1).all()
        assert (per_channel.std(1) > 1e-3).all(), "every channel got the same factor: no channel gating"
    assert not torch.allclose(out_a, out_b, atol=1e-3), "the low-resolution input does not change the gating"


def test_generator_routes_its_64px_features_through_the_excitation():
    model = _model().eval()
    seen: dict[str, torch.Tensor] = {}
    model.generator.excitations["64"].register_forward_hook(lambda m, args, out: seen.update(low=args[0], sle=out))
    model.generator.to_image.register_forward_hook(lambda m, args, out: seen.update(to_image=args[0]))
    model.sample(2, generator=torch.Generator().manual_seed(0))
    assert seen["low"].shape[2:] == (4, 4)  # gated by the 4x4 map
    assert torch.equal(seen["sle"], seen["to_image"])  # the gated map is what becomes the image


def test_augmentation_reaches_real_and_fake_for_d_and_fake_for_g(monkeypatch):
    calls: list[tuple[int, ...]] = []
    from genlab.nn import augment as augment_module  # the schedule calls augment() there

    original = augment_module.augment

    def spy(x, policy, p, **kw):
        calls.append((x.requires_grad, policy, p))
        return original(x, policy, p, **kw)

    monkeypatch.setattr(augment_module, "augment", spy)
    model = _model(augment="color,translation,cutout", augment_p=0.7).train()
    model.loss(_batch(), "discriminator")
    assert calls == [(False, "color,translation,cutout", 0.7)] * 2  # real, then fake (generated without grad)
    calls.clear()
    model.loss(_batch(), "generator")
    assert calls == [(True, "color,translation,cutout", 0.7)]  # the fake, differentiably: G learns through it


def test_augmentation_changes_what_d_sees():
    torch.manual_seed(3)
    plain = _model(augment="none").train().loss(_batch(), "discriminator").terms["recon"]
    torch.manual_seed(3)
    augmented = _model(augment="translation,cutout").train().loss(_batch(), "discriminator").terms["recon"]
    assert not torch.allclose(plain, augmented)


def test_augment_probability_ramps_with_training_steps_and_not_with_evaluation():
    model = _model(augment_p=0.6, augment_ramp_steps=4).train()
    assert model.augment_probability == 0.0
    for _ in range(2):
        model.loss(_batch(), "discriminator")
        model.loss(_batch(), "generator")  # counts D steps only
    assert model.augment_probability == pytest.approx(0.3)
    model.eval()
    model.evaluate(_batch())
    assert int(model.augmentation.steps_trained) == 2
    model.train()
    for _ in range(5):
        model.loss(_batch(), "discriminator")
    assert model.augment_probability == pytest.approx(0.6)
    state = model.state_dict()
    assert "augmentation.steps_trained" in state  # saved, so a resumed run continues the ramp
    # a checkpoint from before the schedule held the count names it "steps_trained": it still loads
    state["steps_trained"] = state.pop("augmentation.steps_trained")
    again = _model(augment_p=0.6, augment_ramp_steps=4)
    again.load_state_dict(state)
    assert int(again.augmentation.steps_trained) == 7


def test_adaptive_augmentation_follows_ds_patch_scores(monkeypatch):
    """ADA's p reads every patch logit of the reals for r, and moves by *images* / speed (ADA's units: a
    map of 25 patch scores is one judged image); all judged real raise p by images / speed per move."""
    from genlab.nn.augment import ADAPT_INTERVAL

    model = _model(augment="translation", augment_target=0.6, augment_speed_kimg=0.4).train()
    assert model.augment_probability == 0.0
    monkeypatch.setattr(model.discriminator.head, "forward", lambda f: torch.full((f.shape[0], 25), 1.0) + 0 * f.sum())
    batch = _batch()
    logged = [float(model.loss(batch, "discriminator").terms["augment_p"]) for _ in range(ADAPT_INTERVAL)]
    assert logged == pytest.approx([0.0] * (ADAPT_INTERVAL - 1) + [ADAPT_INTERVAL * len(batch[0]) / 400])
    assert "augmentation.p" in model.state_dict()
    with pytest.raises(ConfigError, match="choose one"):
        _model(augment_target=0.6, augment_ramp_steps=3)


@pytest.mark.parametrize("override, message", [
    ({"image_shape": [3, 32, 32]}, "side 64 or 128, got 32x32"),
    ({"augment": "colour"}, "unknown augmentation.*valid: color, translation, cutout"),
    ({"augment_p": 1.5}, r"augment_p must be in \[0, 1\]"),
    ({"reconstruction": "perceptual"}, "must be one of"),
])
def test_bad_config_is_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        FastGANConfig.from_dict({"image_shape": [3, 64, 64], **override})
    with pytest.raises(ConfigError, match="needs model.image_shape"):
        build_model("fastgan", {})


def test_a_few_training_steps_on_digits_stay_finite():
    """A smoke run: upscaled digit-like blobs at 64 px, 6 steps, every default option; losses finite and D
    learns to reconstruct (its reconstruction error falls)."""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate((torch.rand(32, 1, 8, 8, generator=g) > 0.6).float(), size=64, mode="bilinear")
    model = _model(channels=1)
    rows: list[dict] = []
    Trainer(model, ArrayDataset((x,)), _train_config(batch_size=8, max_steps=6, lr=2e-3, betas=(0.5, 0.999)),
            callbacks=[lambda t, event, info: rows.append(info) if event == "log" else None]).fit()
    values = [v for row in rows for k, v in row.items() if "/" in k]
    assert values and all(math.isfinite(v) for v in values)
    recon = [row["discriminator/recon"] for row in rows]
    assert recon[-1] < recon[0]


@pytest.mark.parametrize("side", [64, 128])
def test_generator_starts_with_unit_variance_at_its_norms_so_eval_mode_samples_are_not_flat(side):
    """Batch-norm inputs near the running variance's initial 1: an eval-mode generator (an EMA one,
    whose averaged running statistics move slowly) then draws images as varied as the training-mode one."""
    torch.manual_seed(0)
    model = build_model("fastgan", {"image_shape": [3, side, side]}).train()
    variances: list[float] = []
    for module in model.generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.register_forward_hook(lambda m, args, out: variances.append(args[0].var((0, 2, 3)).mean().item()))
    with torch.no_grad():
        train_mode = model.sample(32, generator=torch.Generator().manual_seed(0))
    assert all(0.2 < v < 5 for v in variances), [round(v, 3) for v in variances]
    eval_mode = model.eval().sample(32, generator=torch.Generator().manual_seed(0))
    assert eval_mode.flatten(1).std(1).mean() > 0.5 * train_mode.flatten(1).std(1).mean()
