"""GAN family: phases touch only their own player, the penalties match hand computations, the losses
match their formulas, packing/projection/minibatch-stddev do what they claim, and a GAN run resumed
mid-training ends bit-identical to an uninterrupted one."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.data import ArrayDataset, load_dataset
from genlab.errors import ConfigError, DataError
from genlab.models import build_model
from genlab.models.gan import DISCRIMINATOR_LOSSES, GENERATOR_LOSSES, gradient_penalty, truncated_normal
from genlab.nn.discriminators import MinibatchStdDev, MLPDiscriminator
from genlab.registry import EVALUATORS
from genlab.training import TrainConfig, Trainer


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets on a shared, loaded CPU run 10x faster on one thread than on two spinning ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train_config(**kw) -> TrainConfig:
    base = dict(batch_size=8, max_steps=2, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                eval_every=10**6, sample_every=10**6, checkpoint_every=10**6, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _dcgan(**kw):
    torch.manual_seed(0)
    cfg = {"image_shape": [1, 16, 16], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4, **kw}
    return build_model("gan", cfg)


def _images(n: int = 16, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    return ArrayDataset((torch.rand(n, 1, 16, 16, generator=g),))


@pytest.mark.parametrize("phase_name", ["discriminator", "generator"])
def test_each_phase_updates_only_its_own_parameters(phase_name):
    model = _dcgan(minibatch_std=True)
    trainer = Trainer(model, _images(), _train_config())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    phase = next(p for p in trainer.phases if p.name == phase_name)
    trainer._run_phase(phase, next(trainer.loader.epoch(0)))
    own = phase_name + "."
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed, "the phase changed nothing"
    assert all(n.startswith(own) for n in changed), sorted(n for n in changed if not n.startswith(own))
    assert len(changed) == sum(1 for n, _ in model.named_parameters() if n.startswith(own))


def test_d_to_g_ratio_follows_phase_every():
    model = _dcgan(generator_every=3)
    trainer = Trainer(model, _images(), _train_config(max_steps=6))
    trainer.fit()
    steps = {name: int(next(iter(opt.state.values()))["step"]) for name, opt in trainer.optimizers.items()}
    assert steps == {"discriminator": 6, "generator": 2}


def test_phase_learning_rates_and_betas_override_the_train_config():
    model = _dcgan(discriminator_lr=4e-4, generator_lr=1e-4, adam_betas=[0.0, 0.99])
    trainer = Trainer(model, _images(), _train_config(lr=1e-3))
    d, g = trainer.optimizers["discriminator"].param_groups[0], trainer.optimizers["generator"].param_groups[0]
    assert (d["lr"], g["lr"]) == (4e-4, 1e-4) and d["betas"] == g["betas"] == (0.0, 0.99)


def _linear_critic(**kw):
    """x_dim=3 GAN whose discriminator is linear, D(x) = w·x + b, so ∇D = w everywhere."""
    torch.manual_seed(0)
    return build_model("gan", {"x_dim": 3, "latent_dim": 2, "generator_hidden": [8], "discriminator_hidden": [], **kw})


def _critic_weight(model) -> torch.Tensor:
    return model.discriminator.head.linear.weight.detach().flatten()


def test_gradient_penalty_of_a_linear_critic_is_hand_computable():
    for pack in (1, 2):
        model = _linear_critic(loss="wgan-gp", pack=pack, gp_weight=10.0)
        w = _critic_weight(model)
        assert w.numel() == 3 * pack
        out = model.loss((torch.randn(8, 3),), "discriminator")
        expected = (w.norm() - 1) ** 2
        torch.testing.assert_close(out.terms["gp"], expected)
        torch.testing.assert_close(out.total, out.terms["adv"] + 10.0 * expected)


def test_r1_penalty_of_a_linear_critic_is_hand_computable():
    model = _linear_critic(r1_weight=4.0)
    out = model.loss((torch.randn(8, 3),), "discriminator")
    w = _critic_weight(model)
    torch.testing.assert_close(out.terms["r1"], w.square().sum())
    torch.testing.assert_close(out.total, out.terms["adv"] + 0.5 * 4.0 * w.square().sum())


def test_gradient_penalty_matches_finite_differences_on_a_nonlinear_critic():
    torch.manual_seed(1)
    critic = MLPDiscriminator(3, (16, 16)).double()
    real, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    torch.manual_seed(5)
    gp = gradient_penalty(critic, real, fake, None)
    torch.manual_seed(5)
    eps = torch.rand(6, 1, dtype=torch.float64)  # the same draw the penalty made
    mixed = eps * real + (1 - eps) * fake
    h = 1e-6
    grads = torch.stack([
        (critic(mixed + h * e) - critic(mixed - h * e)) / (2 * h) for e in torch.eye(3, dtype=torch.float64)
    ], dim=1)  # (6, 3) central differences
    expected = ((grads.norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gp.detach(), expected, rtol=1e-6, atol=1e-8)


def test_losses_match_their_formulas():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7, 1.5])
    sig = torch.sigmoid
    ns = -(sig(real).log().mean() + (1 - sig(fake)).log().mean())
    torch.testing.assert_close(DISCRIMINATOR_LOSSES["non-saturating"](real, fake), ns)
    torch.testing.assert_close(DISCRIMINATOR_LOSSES["hinge"](real, fake),
                               torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean())
    torch.testing.assert_close(DISCRIMINATOR_LOSSES["least-squares"](real, fake), 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean())
    torch.testing.assert_close(DISCRIMINATOR_LOSSES["wgan-gp"](real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(GENERATOR_LOSSES["non-saturating"](fake), -sig(fake).log().mean())
    torch.testing.assert_close(GENERATOR_LOSSES["minimax"](fake), (1 - sig(fake)).log().mean())
    torch.testing.assert_close(GENERATOR_LOSSES["least-squares"](fake), 0.5 * ((fake - 1) ** 2).mean())
    # non-saturating and minimax share the optimum but not the gradient at a confident critic
    f = torch.tensor([-6.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(GENERATOR_LOSSES["non-saturating"](f), f)
    (g_mm,) = torch.autograd.grad(GENERATOR_LOSSES["minimax"](f), f)
    assert abs(float(g_ns)) > 100 * abs(float(g_mm))


# each objective written out on the critic's scores (not via DISCRIMINATOR_LOSSES / GENERATOR_LOSSES)
_BY_HAND = {
    "non-saturating": (lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean(), lambda f: -F.logsigmoid(f).mean()),
    "minimax": (lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean(), lambda f: F.logsigmoid(-f).mean()),
    "hinge": (lambda r, f: (1 - r).clamp(min=0).mean() + (1 + f).clamp(min=0).mean(), lambda f: -f.mean()),
    "least-squares": (lambda r, f: 0.5 * (r - 1).pow(2).mean() + 0.5 * f.pow(2).mean(), lambda f: 0.5 * (f - 1).pow(2).mean()),
    "wgan-gp": (lambda r, f: f.mean() - r.mean(), lambda f: -f.mean()),
}


@pytest.mark.parametrize("loss", sorted(_BY_HAND))
def test_model_losses_on_known_critic_scores(loss):
    """model.loss scores the real batch as real and the generated batch as fake: with a linear critic of
    known weights, both phases' objectives equal their formulas on d = w·x + b."""
    model = _linear_critic(loss=loss, gp_weight=0.0)
    with torch.no_grad():
        model.discriminator.head.linear.weight.copy_(torch.tensor([[0.7, -1.3, 0.4]]))
        model.discriminator.head.linear.bias.fill_(0.2)
    w, b = torch.tensor([0.7, -1.3, 0.4]), 0.2
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)) + 2.0
    torch.manual_seed(7)
    z = torch.randn(8, 2)  # the draw model.loss makes after the same seed
    with torch.no_grad():
        fake = model.generator(z)
    d_real, d_fake = x @ w + b, fake @ w + b
    assert (d_real - d_fake).abs().min() > 0.05  # real and fake scores differ, so a swap shows
    d_loss, g_loss = _BY_HAND[loss]
    torch.manual_seed(7)
    out = model.loss((x,), "discriminator")
    torch.testing.assert_close(out.terms["adv"], d_loss(d_real, d_fake))
    torch.testing.assert_close(out.terms["real_score"], d_real.mean())
    torch.testing.assert_close(out.terms["fake_score"], d_fake.mean())
    if loss != "wgan-gp":
        torch.testing.assert_close(out.total.detach(), d_loss(d_real, d_fake))
    torch.manual_seed(7)
    out = model.loss((x,), "generator")
    torch.testing.assert_close(out.total.detach(), g_loss(d_fake))


def test_packing_feeds_the_discriminator_pack_samples_at_once():
    model = _linear_critic(pack=4)
    x = torch.randn(8, 3)
    packed = model._pack(x)
    assert packed.shape == (2, 12) and torch.equal(packed[1], x[4:8].reshape(-1))
    with pytest.raises(DataError, match="multiple of model.pack"):
        model.loss((torch.randn(6, 3),), "discriminator")
    conv = _dcgan(pack=2)
    assert conv.discriminator.body[0].in_channels == 2
    assert conv.discriminator(conv._pack(torch.rand(6, 1, 16, 16))).shape == (3,)


def test_minibatch_stddev_appends_the_group_std():
    layer = MinibatchStdDev(group_size=2)
    h = torch.randn(4, 5)
    out = layer(h)
    # groups are samples {0, 2} and {1, 3}
    expected = torch.stack([(h[[0, 2]].var(0, unbiased=False) + 1e-8).sqrt().mean(),
                            (h[[1, 3]].var(0, unbiased=False) + 1e-8).sqrt().mean()])
    torch.testing.assert_close(out[:, :5], h)
    torch.testing.assert_close(out[:, 5], expected.repeat(2))
    images = MinibatchStdDev(4)(torch.randn(4, 3, 5, 5))
    assert images.shape == (4, 4, 5, 5) and torch.equal(images[0, 3], images[3, 3])


def test_cgan_uses_labels_in_both_players():
    torch.manual_seed(0)
    model = build_model("cgan", {"image_shape": [1, 16, 16], "num_classes": 4, "latent_dim": 4,
                                 "generator_channels": 4, "discriminator_channels": 4}).eval()
    z = torch.randn(3, 4)
    with torch.no_grad():
        a, b = model.decode(z, label=0), model.decode(z, label=1)
    assert a.shape == (3, 1, 16, 16) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert not torch.allclose(a, b)
    x = torch.rand(3, 1, 16, 16)
    assert not torch.allclose(model.discriminator(x, torch.zeros(3, dtype=torch.long)),
                              model.discriminator(x, torch.ones(3, dtype=torch.long)))
    samples = model.sample(8, generator=torch.Generator().manual_seed(0), label=torch.arange(8) % 4)
    assert samples.shape == (8, 1, 16, 16)
    with pytest.raises(ConfigError, match="label"):
        model.sample(2, label=7)
    with pytest.raises(DataError, match="labels must lie"):
        model.loss((torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 9])), "discriminator")


def test_truncation_bounds_latents_and_keeps_samples_reproducible():
    z = truncated_normal((20000,), 0.5, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert float(z.abs().max()) <= 0.5 and float(z.abs().max()) > 0.49
    z_wide = truncated_normal((20000,), 6.0, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert abs(float(z_wide.std()) - 1) < 0.03
    model = _dcgan().eval()
    s1 = model.sample(4, generator=torch.Generator().manual_seed(3), truncation=0.7)
    s2 = model.sample(4, generator=torch.Generator().manual_seed(3), truncation=0.7)
    assert torch.equal(s1, s2)
    with pytest.raises(ConfigError, match="unconditional"):
        model.sample(2, label=3)


def test_config_errors_are_readable():
    with pytest.raises(ConfigError, match="gradient penalties"):
        build_model("gan", {"image_shape": [1, 16, 16], "loss": "wgan-gp", "discriminator_norm": "batch"})
    with pytest.raises(ConfigError, match="power of two"):
        build_model("gan", {"image_shape": [1, 20, 20]})
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("cgan", {"x_dim": 2})
    with pytest.raises(ConfigError, match="loss"):
        build_model("gan", {"x_dim": 2, "loss": "wasserstein"})


class _Killed(Exception):
    pass


def test_resume_mid_gan_training_is_bit_identical(tmp_path):
    """Two phases (D every step, G every other), warm-up + cosine schedules, EMA of G: a run killed
    after its step-3 checkpoint and resumed in a fresh Trainer runs steps 4..7 only and ends
    bit-identical to the uninterrupted run."""
    kw = dict(batch_size=4, max_steps=7, ema_decay=0.9, checkpoint_every=3, lr=2e-3, lr_schedule="cosine", warmup_steps=2)
    cfg = {"loss": "wgan-gp", "r1_weight": 0.5, "generator_every": 2, "minibatch_std": True}
    data = _images(16)
    straight = _dcgan(**cfg)
    full = Trainer(straight, data, _train_config(**kw))
    full.fit()

    def kill_after_step_3(trainer, event, info):
        if event == "checkpoint" and info["step"] == 3:
            raise _Killed

    with pytest.raises(_Killed):
        Trainer(_dcgan(**cfg), data, _train_config(**kw), out_dir=tmp_path, callbacks=[kill_after_step_3]).fit()
    resumed_model = _dcgan(**cfg)
    torch.manual_seed(1234)  # a new process would not share the first one's RNG
    steps_run: list[int] = []
    resumed = Trainer(resumed_model, data, _train_config(**kw), out_dir=tmp_path,
                      callbacks=[lambda trainer, event, info: steps_run.append(int(info["step"])) if event == "log" else None])
    resumed.fit(resume=True)
    assert steps_run == [4, 5, 6, 7]  # starts at the checkpoint's step, redoes none of the first three
    for name in ("discriminator", "generator"):
        assert resumed.schedulers[name].get_last_lr() == full.schedulers[name].get_last_lr(), name
    for (name, a), b in zip(straight.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    for name, a in full.ema.state_dict().items():
        assert torch.equal(a, resumed.ema.state_dict()[name]), f"ema {name}"


def test_mode_evaluator_on_ring_data_reports_its_protocol():
    from genlab.data import DataConfig

    test = load_dataset(DataConfig(name="ring8", size=512), "test")
    torch.manual_seed(0)
    model = build_model("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [8], "discriminator_hidden": [8]})
    result = EVALUATORS.get("gan")(model, test, num_samples=300)
    from genlab.metrics import count_modes

    samples = model.sample(300, generator=torch.Generator().manual_seed(0))
    expected = count_modes(samples, test.info["centres"], 0.01)
    assert {k: result[k] for k in expected} == expected  # the untrained generator's own statistics
    # a generator that draws from the data distribution itself captures all 8 modes, ~98.9 % high quality
    model.sample = lambda n, generator=None, **_: load_dataset(DataConfig(name="ring8", size=n, seed=5), "train").x
    perfect = EVALUATORS.get("gan")(model, test, num_samples=2500)
    assert perfect["num_modes"] == 8 and perfect["modes"] == 8
    assert perfect["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    assert result["protocol"]["num_samples"] == 300 and "sigma 0.01" in result["protocol"]["reference"]


def test_image_evaluator_reports_metrics_with_protocol():
    test = ArrayDataset((torch.rand(40, 1, 16, 16), torch.randint(0, 10, (40,))), {"name": "fake-mnist"})
    model = _dcgan()
    result = EVALUATORS.get("gan")(model, test, extractor="pixels", kid_subset_size=20, kid_subsets=5)
    assert {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"} <= set(result)
    assert all(math.isfinite(result[k]) for k in ("fid", "kid", "precision"))
    p = result["protocol"]
    assert p["num_generated"] == p["num_reference"] == 40 and p["feature_dim"] == 256
    assert "test split of fake-mnist" in p["reference"] and "pixels" in p["extractor"]


def test_genlab_train_fills_shapes_from_data_and_reports_modes(tmp_path):
    from genlab import api

    summary = api.train("gan", data="ring8", out=tmp_path / "ring", overrides=[
        "model.latent_dim=2", "model.generator_hidden=[16]", "model.discriminator_hidden=[16]", "data.size=256",
        "train.max_steps=4", "train.batch_size=32", "train.progress=false", "train.tensorboard=false"])
    assert summary["num_modes"] == 8 and "modes" in summary and "high_quality" in summary
    assert (tmp_path / "ring" / "modes.png").is_file() and (tmp_path / "ring" / "samples.png").is_file()
    grid = api.train("gan", data="grid25", dry_run=True, overrides=["data.size=256", "train.batch_size=32"])
    assert grid["spec"]["model_config"]["data_scale"] == pytest.approx(2.83, abs=0.1)  # the grid's std, filled from the data
    dry = api.train("cgan", data="mnist-embedded", dry_run=True, overrides=[
        "model.generator_channels=4", "model.discriminator_channels=4", "train.batch_size=8"])
    config = dry["spec"]["model_config"]
    assert config["num_classes"] == 10 and config["image_shape"] == [1, 28, 28]
    assert all(math.isfinite(v) for v in dry["first_batch_loss"].values())


def test_vector_data_reach_the_networks_at_unit_scale():
    torch.manual_seed(0)
    model = build_model("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [8], "discriminator_hidden": [8], "data_scale": 4.0})
    z = torch.randn(5, 2)
    assert torch.allclose(model.decode(z), 4.0 * model.generator(z))  # samples come back in data units
    x = 4.0 * torch.randn(6, 2)
    seen = []
    hook = model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model.loss((x,), "discriminator")
    hook.remove()
    assert torch.allclose(seen[0], x / 4.0)  # the real batch, divided by data_scale


# ---------------------------------------------------------------------- DiffAugment (issue 24)

def _record_augment(monkeypatch, module):
    """Wrap ``module.augment`` so each call's input and output are kept, in call order."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_augment = module.augment

    def recording(x, *args, **kwargs):
        out = real_augment(x, *args, **kwargs)
        calls.append((x, out))
        return out

    monkeypatch.setattr(module, "augment", recording)
    return calls


def _discriminator_inputs(model) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


@pytest.mark.parametrize("config", [{}, {"loss": "wgan-gp", "r1_weight": 0.5, "pack": 2, "discriminator_norm": "none"}],
                         ids=["default", "wgan-gp-r1-pack2"])
@pytest.mark.parametrize("off", [{}, {"augment": ""}, {"augment": "none"}, {"augment": "color,cutout", "augment_p": 0.0}],
                         ids=["default-config", "empty", "none", "p0"])
def test_diffaugment_off_gives_the_plain_losses_bit_for_bit(config, off):
    """Augmentation off (the default, an empty policy, or p = 0) computes exactly the losses of the GAN
    without augmentation, written out here by hand: D's terms on the clean batch, R1 as the norm of D's
    gradient w.r.t. its packed input, the gradient penalty between the clean reals and the fakes."""
    from genlab.models.gan import _input_gradient
    from genlab.runtime import batch_randn

    model = _dcgan(**config, **off)
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    cfg, D, G = model.config, model.discriminator, model.generator
    torch.manual_seed(5)
    d_out = model.loss((x,), "discriminator")
    torch.manual_seed(5)
    real = x * 2 - 1
    z = batch_randn((8, cfg.latent_dim))
    with torch.no_grad():
        fake = G(z)
    real_in = model._pack(real).requires_grad_(cfg.r1_weight > 0)
    real_score, fake_score = D(real_in, None), D(model._pack(fake), None)
    expected = DISCRIMINATOR_LOSSES[cfg.loss](real_score, fake_score)
    if cfg.loss == "wgan-gp":
        expected = expected + cfg.gp_weight * gradient_penalty(D, real, fake, None, model._pack)
    if cfg.r1_weight:
        expected = expected + 0.5 * cfg.r1_weight * _input_gradient(real_score, real_in).square().sum(1).mean()
    assert torch.equal(d_out.total, expected.detach())
    torch.manual_seed(6)
    g_out = model.loss((x,), "generator")
    torch.manual_seed(6)
    g_expected = GENERATOR_LOSSES[cfg.loss](D(model._pack(G(batch_randn((8, cfg.latent_dim)))), None))
    assert torch.equal(g_out.total, g_expected)


def test_diffaugment_d_sees_augmented_reals_and_fakes(monkeypatch):
    """With a policy, every image D scores in its phase is an output of ``augment``: the reals (in
    [-1, 1]) and G's fakes, each augmented on its own draws; the R1 gradient is w.r.t. the clean reals."""
    from genlab.nn import augment as gan_module  # the schedule calls augment() there

    model = _dcgan(augment="color,translation,cutout", r1_weight=1.0, discriminator_norm="none")
    calls = _record_augment(monkeypatch, gan_module)
    seen = _discriminator_inputs(model)
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    out = model.loss((x,), "discriminator")
    assert len(calls) == 2 and len(seen) == 2  # fakes (drawn first, under no_grad), then reals
    (fake_in, fake_aug), (real_in, real_aug) = calls
    assert torch.equal(real_in, x * 2 - 1) and not fake_in.requires_grad
    assert seen[0] is real_aug and seen[1] is fake_aug  # D scores the augmented images, not the clean ones
    assert not torch.allclose(real_aug, real_in)  # and augmentation changed them
    assert math.isfinite(float(out.terms["r1"])) and float(out.terms["r1"]) > 0


def test_diffaugment_g_learns_through_the_augmentation(monkeypatch):
    """G's loss scores augmented fakes, and its gradient reaches G's output through the augmentation:
    zero exactly where cutout erased the fake, non-zero where it kept it."""
    from genlab.nn import augment as gan_module  # the schedule calls augment() there

    model = _dcgan(augment="cutout", discriminator_norm="none")
    calls = _record_augment(monkeypatch, gan_module)
    seen = _discriminator_inputs(model)
    kept: list[torch.Tensor] = []

    def keep_grad(module, args, output):
        output.retain_grad()
        kept.append(output)

    model.generator.register_forward_hook(keep_grad)
    model.loss((torch.rand(8, 1, 16, 16),), "generator").total.backward()
    (fake, augmented), = calls
    assert seen == [augmented] and fake is kept[0] and fake.requires_grad
    hole = (augmented == 0).all(dim=1)  # (B, H, W): cut out (tanh outputs are never exactly 0)
    assert 0 < hole.float().mean() < 1
    grad = fake.grad.abs().sum(dim=1)
    assert torch.all(grad[hole] == 0) and torch.all(grad[~hole] > 0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())


def test_diffaugment_ramp_counts_training_d_steps_and_is_saved(tmp_path):
    """p ramps from 0 over augment_ramp_steps D steps; evaluation does not count; the count is in the
    saved weights and comes back on load."""
    from genlab import load

    model = _dcgan(augment="color", augment_p=0.8, augment_ramp_steps=4, generator_every=2)
    assert model.augmentation.probability == 0.0
    Trainer(model, _images(16), _train_config(max_steps=3)).fit()
    assert int(model.augmentation.steps_trained) == 3
    assert model.augmentation.probability == pytest.approx(0.8 * 3 / 4)
    batch = (torch.rand(8, 1, 16, 16),)
    model.eval()
    model.loss(batch, "discriminator")
    model.train()
    with torch.no_grad():
        model.loss(batch, "discriminator")
    assert int(model.augmentation.steps_trained) == 3  # neither an eval-mode nor a no-grad pass counts
    model.save_pretrained(str(tmp_path / "m"))
    assert int(load(tmp_path / "m").augmentation.steps_trained) == 3
    assert "augmentation.steps_trained" not in _dcgan(augment="color").state_dict()  # no ramp: nothing saved


def test_adaptive_augmentation_follows_the_real_scores_is_logged_and_saved(tmp_path, monkeypatch):
    """With ``augment_target`` D's scores of the augmented reals drive p (ADA): D calling every real real
    raises it by the images judged over the speed, once per ADAPT_INTERVAL D steps; the D phase logs p;
    the state is in the saved weights."""
    from genlab import load
    from genlab.nn.augment import ADAPT_INTERVAL

    model = _dcgan(augment="translation", augment_target=0.6, augment_speed_kimg=0.08, discriminator_norm="none")
    assert model.augmentation.adaptive and model.augmentation.probability == 0.0
    batch = (torch.rand(5, 1, 16, 16),)
    sure = lambda x, labels=None: torch.full((x.shape[0],), 2.0) + 0 * x.sum()  # noqa: E731  every real judged real
    monkeypatch.setattr(model.discriminator, "forward", sure)
    logged = [float(model.loss(batch, "discriminator").terms["augment_p"]) for _ in range(2 * ADAPT_INTERVAL)]
    move = 5 * ADAPT_INTERVAL / 80  # images judged per move / (speed_kimg * 1000)
    assert logged == pytest.approx([0.0] * (ADAPT_INTERVAL - 1) + [move] * ADAPT_INTERVAL + [2 * move])
    model.eval()
    model.loss(batch, "discriminator")  # evaluation moves nothing
    assert model.augmentation.probability == pytest.approx(2 * move)
    model.save_pretrained(str(tmp_path / "m"))
    assert float(load(tmp_path / "m").augmentation.probability) == pytest.approx(2 * move)
    unsure = lambda x, labels=None: torch.full((x.shape[0],), -2.0) + 0 * x.sum()  # noqa: E731
    monkeypatch.setattr(model.discriminator, "forward", unsure)
    model.train()
    for _ in range(ADAPT_INTERVAL):
        model.loss(batch, "discriminator")
    assert model.augmentation.probability == pytest.approx(move)


def test_diffaugment_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="augments images, but this GAN models vectors"):
        build_model("gan", {"x_dim": 2, "augment": "color"})
    with pytest.raises(ConfigError, match="unknown augmentation.*'colour'.*valid: color, translation, cutout"):
        _dcgan(augment="colour")
    with pytest.raises(ConfigError, match=r"augment_p must be in \[0, 1\], got 1.5"):
        _dcgan(augment="color", augment_p=1.5)
    with pytest.raises(ConfigError, match="augment_ramp_steps must be >= 0"):
        _dcgan(augment_ramp_steps=-1)
    with pytest.raises(ConfigError, match="both set p over training; choose one"):
        _dcgan(augment="color", augment_target=0.6, augment_ramp_steps=10)
    with pytest.raises(ConfigError, match=r"augment_target must be in \[0, 1\)"):
        _dcgan(augment="color", augment_target=1.0)
    with pytest.raises(ConfigError, match="wgan-gp's has none"):
        _dcgan(augment="color", augment_target=0.6, loss="wgan-gp")
    build_model("gan", {"x_dim": 2, "augment": "none"})  # "none" is off, and fine for vectors


@pytest.mark.slow
def test_sigkill_mid_diffaugment_ramp_then_resume_is_bit_identical(tmp_path):
    """The fault drill of tests/test_faults.py on a DCGAN killed halfway up its augmentation ramp."""
    import test_faults

    test_faults.test_sigkill_then_resume_is_bit_identical(tmp_path, "gan:dcgan-diffaugment-ramp")


@pytest.mark.slow
def test_sigkill_mid_adaptive_augmentation_interval_then_resume_is_bit_identical(tmp_path):
    """The same drill with ADA's adaptive p, killed between two moves of p (its running sums half full)."""
    import test_faults

    test_faults.test_sigkill_then_resume_is_bit_identical(tmp_path, "gan:dcgan-diffaugment-adaptive")


def test_genlab_train_fastgan_draws_its_figure_and_genlab_evaluate_scores_it(tmp_path, monkeypatch):
    """FastGAN's reporter and evaluator through the CLI: the end of training writes fastgan.png and D's
    statistics into metrics.json; `genlab evaluate` writes FID & co. against the held-out split."""
    import json

    from genlab.cli import main

    run = tmp_path / "fastgan"
    assert main(["train", "fastgan", "--data", "mnist-embedded", "--out", str(run), "--data.limit=16", "--model.latent_dim=8",
                 "--model.generator_channels=1", "--model.discriminator_channels=1", "--model.augment=color,cutout",
                 "--train.max_steps=2", "--train.batch_size=8", "--train.progress=false", "--train.tensorboard=false"]) == 0
    assert (run / "fastgan.png").is_file()
    summary = json.loads((run / "metrics.json").read_text())
    assert {"discriminator/reconstruction_mse", "discriminator/real_score", "discriminator/fake_score"} <= set(summary)
    assert main(["evaluate", str(run), "--limit", "16", "--extractor", "pixels"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert {"fid", "kid", "precision", "recall"} <= set(result) and result["protocol"]["num_generated"] == 16
    # the figure's "as D sees it" row is the run's augmentation: cutout zeroes pixels of [0, 1] reals at -1 -> 0
    from genlab import api
    from genlab.reports.fastgan import discriminator_stats  # after the CLI: it must have registered it itself

    model, _ = api.load_run(run)
    reals = torch.full((4, 1, 64, 64), 0.75)
    stats = discriminator_stats(model, reals)
    assert stats["seen"].shape == reals.shape and stats["reconstruction"].shape == (4, 1, 32, 32)
    assert not torch.allclose(stats["seen"], reals)
    model.config.augment = ""
    assert torch.equal(discriminator_stats(model, reals)["seen"], reals)  # no policy: D sees the reals as they are


def test_evaluating_a_gan_of_points_without_mode_centres_is_one_clear_error():
    """The evaluator asks the protocol module whether the model makes images: a GAN of 2-D points on data
    without mode centres is refused in one line; a DCGAN on images is scored."""
    from genlab.errors import DataError
    from genlab.reports.gan import evaluate_gan

    points = build_model("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [8], "discriminator_hidden": [8]})
    with pytest.raises(DataError, match="GAN evaluation needs image data or a toy mixture"):
        evaluate_gan(points, ArrayDataset((torch.randn(32, 2),)), num_samples=16)
    scores = evaluate_gan(_dcgan(), _images(32), num_samples=32, extractor="pixels")
    assert scores["fid"] >= 0
