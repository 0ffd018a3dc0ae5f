"""StyleGAN: the layers' maths, the inference API's promises, projection into W, lazy regularisation
on its player's optimizer (resume after SIGKILL: tests/test_faults.py, over every family)."""
from __future__ import annotations

import pytest
import torch

from genlab.checkpoint import load_tensors
from genlab.errors import ConfigError, DataError
from genlab.latent import project
from genlab.models import build_model
from genlab.nn.style import modulated_conv2d

TINY = {"latent_dim": 8, "w_dim": 8, "mapping_depth": 2, "channel_base": 256, "channel_max": 16}


def _model(resolution: int = 16, channels: int = 3, **kw):
    torch.manual_seed(0)
    return build_model("stylegan", {**TINY, "image_shape": [channels, resolution, resolution], **kw}).eval()


def _set_noise_strength(model, value: float) -> None:
    with torch.no_grad():
        for layer in model.generator.synthesis.convs:
            layer.noise.strength.fill_(value)


@pytest.mark.parametrize("implementation", ["grouped", "scaled"])
def test_demodulation_gives_unit_output_variance(implementation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 32, 24, 24, generator=g)  # unit-variance input
    weight = torch.randn(16, 32, 3, 3, generator=g)
    styles = 5 * torch.rand(4, 32, generator=g) + 0.1  # far from 1: without demodulation the variance is ~ 8x
    out = modulated_conv2d(x, weight, styles, demodulate=True, implementation=implementation)
    var = out[:, :, 1:-1, 1:-1].var(dim=(2, 3))  # (B, O), interior pixels (zero padding lowers the border's)
    assert out.shape == (4, 16, 24, 24)
    assert 0.9 < float(var.mean()) < 1.1 and float(var.min()) > 0.7 and float(var.max()) < 1.3
    plain = modulated_conv2d(x, weight, styles, demodulate=False, implementation=implementation)
    assert float(plain[:, :, 1:-1, 1:-1].var(dim=(2, 3)).mean()) > 3  # the property is demodulation's doing


def test_grouped_and_scaled_modulated_convolutions_agree():
    g = torch.Generator().manual_seed(1)
    x, weight, styles = torch.randn(3, 8, 10, 10, generator=g), torch.randn(6, 8, 3, 3, generator=g), torch.rand(3, 8, generator=g)
    for demodulate in (True, False):
        a = modulated_conv2d(x, weight, styles, demodulate=demodulate, implementation="grouped")
        b = modulated_conv2d(x, weight, styles, demodulate=demodulate, implementation="scaled")
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # each sample gets its own style: sample 0 alone equals sample 0 in the batch
    torch.testing.assert_close(modulated_conv2d(x[:1], weight, styles[:1]), modulated_conv2d(x, weight, styles)[:1])


def test_channels_last_generator_draws_the_same_images():
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    plain, fast = _model(16), _model(16, channels_last=True)
    assert fast.generator.synthesis.convs[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast.sample(3, generator=g()), plain.sample(3, generator=g()), rtol=1e-4, atol=1e-5)


def test_mixing_with_the_same_z_twice_is_no_mixing():
    model = _model(32)
    _set_noise_strength(model, 0.3)  # noise matters: mix must use the same (constant) noise as the plain image
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    with torch.no_grad():
        own_a = model.synthesis(model.mapping(z_a), noise="const")
        own_b = model.synthesis(model.mapping(z_b), noise="const")
    for layers in ("coarse", "middle", "fine", [0, 5]):
        torch.testing.assert_close(model.mix(z_a, z_a, layers), own_a, rtol=0, atol=0)
        assert (model.mix(z_a, z_b, layers) - own_a).abs().max() > 1e-3, layers  # a real swap changes the image
    torch.testing.assert_close(model.mix(z_a, z_b, "all"), own_b, rtol=0, atol=1e-6)


def test_named_layer_ranges_partition_the_styles():
    for resolution in (16, 32, 64, 128):
        model = _model(resolution)
        parts = [model.layer_indices(name) for name in ("coarse", "middle", "fine")]
        assert all(parts) and sorted(sum(parts, [])) == list(range(model.num_ws))
        assert max(parts[0]) < min(parts[1]) and max(parts[1]) < min(parts[2])
    with pytest.raises(ConfigError, match="unknown layer range"):
        model.layer_indices("medium")
    with pytest.raises(ConfigError, match="out of range"):
        model.layer_indices([model.num_ws])


def test_truncation_zero_gives_one_image_for_every_z():
    model = _model(16)
    with torch.no_grad():
        model.generator.mapping.w_avg.normal_()  # a non-trivial centre
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    for noise in ("const", "none"):
        images = model.sample(5, truncation=0.0, noise=noise, generator=g())
        assert (images - images[:1]).abs().max() < 1e-6
    assert (model.sample(5, truncation=0.5, noise="const", generator=g()) - images[:1]).abs().amax(dim=(1, 2, 3)).min() > 1e-4
    # psi on the coarse styles only: the fine ones still differ between samples
    partial = model.sample(5, truncation=0.0, truncation_cutoff=2, noise="const", generator=g())
    assert (partial - partial[:1]).abs().amax(dim=(1, 2, 3))[1:].min() > 1e-4


def test_zero_noise_strength_makes_noise_irrelevant():
    model = _model(16)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    # strengths start at 0: random noise, the constant maps and no noise draw the same image
    base = model.sample(4, noise="none", generator=g())
    for noise in ("random", "const"):
        torch.testing.assert_close(model.sample(4, noise=noise, generator=g()), base, rtol=0, atol=0)
    _set_noise_strength(model, 0.5)
    assert (model.sample(4, noise="random", generator=g()) - base).abs().max() > 1e-3


def test_per_channel_noise_strength_adds_noise_only_to_the_maps_it_scales():
    from genlab.nn.style import NoiseInjection

    layer_wise, channel_wise = NoiseInjection(), NoiseInjection(6)
    assert layer_wise.strength.shape == () and channel_wise.strength.shape == (6, 1, 1)
    x, noise = torch.randn(2, 6, 5, 5), torch.randn(2, 1, 5, 5)
    with torch.no_grad():
        channel_wise.strength[[1, 4]] = torch.tensor([0.5, -2.0])[:, None, None]
    out = channel_wise(x, noise)
    torch.testing.assert_close(out[:, [0, 2, 3, 5]], x[:, [0, 2, 3, 5]], rtol=0, atol=0)
    torch.testing.assert_close(out[:, 1], x[:, 1] + 0.5 * noise[:, 0])
    torch.testing.assert_close(out[:, 4], x[:, 4] - 2.0 * noise[:, 0])
    assert channel_wise.magnitude() == pytest.approx(((0.5 ** 2 + 2.0 ** 2) / 6) ** 0.5)
    # the model builds one strength per feature map of every styled conv, and a learned strength trains
    model = _model(16, noise_strength="channel")
    convs = model.generator.synthesis.convs
    assert [tuple(c.noise.strength.shape) for c in convs] == [(c.conv.weight.shape[0], 1, 1) for c in convs]
    model.train()
    _set_noise_strength(model, 0.1)
    model.loss((torch.rand(4, 3, 16, 16),), "generator").total.backward()
    assert all(float(c.noise.strength.grad.abs().sum()) > 0 for c in convs)


def test_w_avg_tracks_the_mean_of_w():
    model = _model(16)
    mapping = model.generator.mapping
    g = torch.Generator().manual_seed(5)
    z = torch.randn(64, 8, generator=g)
    before = mapping.w_avg.clone()
    with torch.no_grad():
        w = mapping(z, update_w_avg=True)
    torch.testing.assert_close(mapping.w_avg, before + 0.005 * (w.mean(0) - before))  # beta = 0.995
    with torch.no_grad():
        for _ in range(1500):
            mapping(torch.randn(64, 8, generator=g), update_w_avg=True)
        true_mean = mapping(torch.randn(20000, 8, generator=g)).mean(0)
        spread = float(mapping(torch.randn(1000, 8, generator=g)).std(0).mean())
    assert float((mapping.w_avg - true_mean).abs().max()) < 0.1 * spread
    # the generator phase updates it in training only; evaluation leaves it alone
    batch = (torch.rand(4, 3, 16, 16),)
    frozen = mapping.w_avg.clone()
    model.evaluate(batch)
    assert torch.equal(mapping.w_avg, frozen)
    model.train().loss(batch, "generator")
    assert not torch.equal(mapping.w_avg, frozen)


def test_projection_recovers_a_generated_images_w():
    model = _model(16)
    _set_noise_strength(model, 0.3)  # the constant noise maps are part of the image to recover
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        w = model.mapping(torch.randn(3, 8, generator=g))
        target = model.synthesis(w, noise="const")
    result = project(model, target, space="w", steps=300, lr=0.1)
    assert result.space == "w" and result.z.shape == (3, 8)
    relative = (result.z - w).norm(dim=1) / w.norm(dim=1)
    assert float(relative.max()) < 0.1, relative
    assert float(result.error.max()) < 1e-4
    plus = project(model, target, space="w+", steps=150, lr=0.1)
    assert plus.z.shape == (3, model.num_ws, 8) and float(plus.error.max()) < 2e-3
    with pytest.raises(ConfigError, match="space"):
        project(model, target, space="s")


@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_shapes_from_16_to_128(resolution):
    model = _model(resolution, channels=1, channel_base=4 * resolution, channel_max=8)
    assert model.num_ws == 2 * (resolution.bit_length() - 1) - 2
    images = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, resolution, resolution) and torch.isfinite(images).all()
    assert model.discriminator(images).shape == (2,)
    ws = model.truncate(model.mapping(torch.randn(2, 8)), 0.7, truncation_cutoff=3)
    assert ws.shape == (2, model.num_ws, 8)
    assert model.synthesis(ws, noise="none").shape == images.shape


def test_bad_inputs_give_one_clear_error():
    with pytest.raises(ConfigError, match="--data.image_size=32"):
        build_model("stylegan", {**TINY, "image_shape": [1, 28, 28]})
    model = _model(16)
    with pytest.raises(DataError, match=r"expects images shaped \(B, 3, 16, 16\)"):
        model.loss((torch.rand(2, 3, 32, 32),), "generator")
    with pytest.raises(ConfigError, match="noise mode"):
        model.sample(2, noise="loud")
    with pytest.raises(DataError, match="mapping expects z"):
        model.mapping(torch.randn(2, 5))


class _Brightness(torch.nn.Module):
    """A stand-in attribute classifier: class 1 = brighter than the median image of a reference set."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = torch.nn.Parameter(torch.tensor(threshold), requires_grad=False)

    def forward(self, x):
        score = (x.flatten(1).mean(1) - self.threshold) * 100
        return torch.stack([-score, score], dim=1)


def test_attribute_vector_in_w_moves_the_attribute():
    from genlab.latent import apply_w_attribute, attribute_vector_w, labelled_samples_w, w_interpolation

    model = _model(16)
    with torch.no_grad():
        threshold = float(model.sample(200, noise="const", generator=torch.Generator().manual_seed(8)).mean((1, 2, 3)).median())
    w, present = labelled_samples_w(model, _Brightness(threshold), 300, generator=torch.Generator().manual_seed(9))
    assert 0.2 < float(present.float().mean()) < 0.8
    vector = attribute_vector_w(w, present)
    torch.testing.assert_close(vector, w[present].mean(0) - w[~present].mean(0))
    strips = apply_w_attribute(model, w[:6], vector, [-2, 0, 2])  # (6, 3, C, H, W)
    torch.testing.assert_close(strips[:, 1], model.synthesis(w[:6], noise="const"))
    brightness = strips.mean((2, 3, 4))  # (6, 3)
    assert bool((brightness[:, 2] > brightness[:, 0]).all())  # adding the vector brightens every face
    path = w_interpolation(model, w[0], w[1], 5)
    torch.testing.assert_close(path[0], strips[0, 1])
    torch.testing.assert_close(path[-1], strips[1, 1])


def test_project_command_finds_w_and_w_plus_codes(tmp_path, capsys):
    from genlab.checkpoint import save_model
    from genlab.cli import main
    from PIL import Image

    from genlab.viz import to_uint8

    model = _model(16)
    _set_noise_strength(model, 0.0)
    save_model(model, tmp_path / "m")
    with torch.no_grad():
        faces = model.synthesis(model.mapping(torch.randn(2, 8, generator=torch.Generator().manual_seed(3))), noise="none")
    floor = (faces.clamp(0, 1) - faces).square().flatten(1).mean(1)
    paths = []
    for i, face in enumerate(faces):
        Image.fromarray(to_uint8(face)).save(tmp_path / f"face{i}.png")
        paths.append(str(tmp_path / f"face{i}.png"))
    found = {}
    for space, key in (("w", "w"), ("w+", "ws")):
        codes = tmp_path / f"{key}.safetensors"
        assert main(["project", str(tmp_path / "m"), *paths, "--space", space, "--steps", "300", "--lr", "0.1",
                     "--restarts", "4", "--save-codes", str(codes), "-o", str(tmp_path / f"{key}.png")]) == 0
        out = capsys.readouterr().out
        assert f"space {space}" in out
        found[key] = load_tensors(codes)[key]
        mse = torch.tensor([float(line.split("MSE ")[1]) for line in out.splitlines()[:2]])
        # the true w reproduces each PNG up to the clipping of the generator's out-of-range pixels (and 1/255 steps)
        assert bool((mse <= floor + 1e-3).all()), (out, floor)
    assert found["w"].shape == (2, 8) and found["ws"].shape == (2, model.num_ws, 8)
    # the default space of a StyleGAN is w; an encoder method is refused for w/w+ in one line
    assert main(["project", str(tmp_path / "m"), paths[0], "--steps", "2", "--restarts", "1", "-o", str(tmp_path / "d.png")]) == 0
    assert "space w)" in capsys.readouterr().out
    assert main(["project", str(tmp_path / "m"), paths[0], "--space", "w+", "--method", "encoder"]) != 0
    assert "--space w+ is found by optimisation" in capsys.readouterr().err


class _BrightOrDark(torch.nn.Module):
    """Three classes read from an image's mean brightness: 'bright' / 'dark' with a margin that
    grows with ``scale`` away from ``centre``, and a constant third class, so images near the
    centre get a top probability below one half (undecided)."""

    def __init__(self, centre: float, scale: float) -> None:
        super().__init__()
        self.centre, self.scale = centre, scale
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a device to run on

    def forward(self, x):
        d = self.scale * (x.mean((1, 2, 3)) - self.centre)
        return torch.stack([d, -d, torch.zeros_like(d)], 1)


def _noisy_model_and_brightness():
    """A tiny StyleGAN with noise strength 0.5, and the median and spread of its samples' mean brightness."""
    model = _model()
    _set_noise_strength(model, 0.5)
    with torch.no_grad():
        means = model.sample(400, truncation=0.7, generator=torch.Generator().manual_seed(5)).mean((1, 2, 3))
    return model, float(means.median()), float(means.std())


def test_noise_claim_is_judged_on_the_samples_the_classifier_decides():
    from genlab.reports.stylegan import noise_stats

    model, centre, spread = _noisy_model_and_brightness()
    stats = {scale: noise_stats(model, classifiers={"b": _BrightOrDark(centre, scale)}, num_faces=200)
             for scale in (1e-3, 1.5 / spread, 1e4)}
    # noise moves the brightness of the images near the centre across it: some labels flip
    assert all(s["unchanged_fraction"]["b"] < 0.99 and s["pixel_std"] > 1e-3 for s in stats.values())
    never, some, always = stats.values()
    assert never["decided_fraction"]["b"] == 0 and never["claim_holds"] is False  # nothing decided: no evidence
    # decided only away from the centre, where noise cannot flip the label: the claim holds there
    assert 0.5 <= some["decided_fraction"]["b"] < 1 and some["unchanged_when_decided"]["b"] == 1.0 and some["claim_holds"]
    # reported beside the claim: fewer faces at each higher confidence, and those keep their label
    levels = some["unchanged_by_confidence"]["b"]
    shares = [levels[k]["share"] for k in ("0.6", "0.7", "0.8", "0.9")]
    assert shares == sorted(shares, reverse=True) and shares[0] <= some["decided_fraction"]["b"]
    assert all(levels[k]["unchanged"] == 1.0 for k in levels if levels[k]["share"] > 0)
    # decided everywhere, flips included: judged on every sample, and it fails
    assert always["decided_fraction"]["b"] == 1.0
    assert always["unchanged_when_decided"]["b"] == always["unchanged_fraction"]["b"] < 0.95 and not always["claim_holds"]


def test_truncation_diversity_in_features_ignores_how_strongly_each_sample_is_answered():
    """Feature diversity is measured on unit-length feature vectors: features rescaled per sample (a
    classifier answering some images more strongly) give the same diversity; the raw distances do not."""
    from genlab.reports.stylegan import truncation_stats

    class Features(torch.nn.Module):
        def __init__(self, rescale: bool) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(16 * 16, 8)
            torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
            torch.nn.init.zeros_(self.proj.bias)
            self.rescale = rescale

        def features(self, x):
            f = self.proj(x.mean(1).flatten(1))
            # a positive per-sample factor: larger for images nearer mid-grey
            return f * (1 + 20 * (0.5 - x.mean((1, 2, 3))).abs().reciprocal().clamp(max=50))[:, None] if self.rescale else f

    model = _model(16)
    with torch.no_grad():
        model.generator.mapping.w_avg.normal_()
    plain, scaled = (truncation_stats(model, (1.0, 0.5, 0.0), num_samples=24, features=Features(r)) for r in (False, True))
    assert plain["diversity_features"] == pytest.approx(scaled["diversity_features"], rel=1e-6)
    assert plain["diversity_features_raw"] != pytest.approx(scaled["diversity_features_raw"], rel=1e-2)
    assert plain["diversity_features"][-1] == pytest.approx(0, abs=1e-6) and plain["diversity_features"][0] > 0
    assert len(plain["feature_norm"]) == 3


def test_lazy_optimizer_own_gives_each_lazy_phase_a_second_adam_at_the_configured_lr():
    """model.lazy_optimizer = "own" (the scheme before the shared optimizer, kept for comparison): R1 and
    path length get Adams of their own over the same weights, and no optimizer's lr or betas is scaled."""
    from genlab.data import ArrayDataset
    from genlab.training import TrainConfig, Trainer

    config = {**TINY, "channel_base": 64, "channel_max": 8, "image_shape": [1, 16, 16], "r1_every": 4,
              "pl_weight": 1.0, "pl_every": 3, "lazy_optimizer": "own"}
    data = ArrayDataset((torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(0)),))
    torch.manual_seed(0)
    train = TrainConfig(max_steps=5, batch_size=8, lr=2e-3, betas=(0.5, 0.99), progress=False, tensorboard=False)
    trainer = Trainer(build_model("stylegan", config), data, train)
    trainer.fit()
    assert sorted(trainer.optimizers) == ["discriminator", "discriminator_r1", "generator", "generator_pl"]
    for name, optimizer in trainer.optimizers.items():
        assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-3), name
        assert optimizer.param_groups[0]["betas"] == pytest.approx((0.5, 0.99)), name
    d, r1 = trainer.optimizers["discriminator"], trainer.optimizers["discriminator_r1"]
    assert {id(p) for p in d.param_groups[0]["params"]} == {id(p) for p in r1.param_groups[0]["params"]}
    assert int(next(iter(r1.state.values()))["step"]) == 2  # steps 0 and 4
    assert int(next(iter(d.state.values()))["step"]) == 5
    with pytest.raises(Exception, match="lazy_optimizer"):
        build_model("stylegan", {**config, "lazy_optimizer": "separate"})


def test_lazy_regularisation_steps_the_players_own_optimizer_with_scaled_lr_and_betas(tmp_path):
    """stylegan2-ada's lazy regularisation: R1 (every 4) steps the discriminator's optimizer and path length
    (every 3) the generator's, whose lr is scaled by k/(k+1) and betas raised to k/(k+1). A checkpoint keeps
    one state per optimizer, and a resume from it ends on the uninterrupted run's weights."""
    from genlab.checkpoint import STATE_NAME, latest_checkpoint, load_training_state
    from genlab.data import ArrayDataset
    from genlab.training import TrainConfig, Trainer

    config = {**TINY, "channel_base": 64, "channel_max": 8, "image_shape": [1, 16, 16], "r1_every": 4,
              "pl_weight": 1.0, "pl_every": 3}
    data = ArrayDataset((torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0)),))

    def trainer(out=None, **kw):
        torch.manual_seed(0)
        train = TrainConfig(max_steps=9, batch_size=8, lr=2e-3, betas=(0.5, 0.99), progress=False, tensorboard=False, **kw)
        return Trainer(build_model("stylegan", config), data, train, out_dir=out)

    full = trainer()
    phases = {p.name: p for p in full.phases}
    assert sorted(full.optimizers) == ["discriminator", "generator"]
    stepped: list[tuple[str, int]] = []  # (phase, id of the optimizer it stepped)
    for optimizer in full.optimizers.values():
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: stepped.append((current[0], id(opt))))
    current = [""]
    loss = full.model.loss
    full.model.loss = lambda batch, phase="main": (current.__setitem__(0, phase), loss(batch, phase))[1]
    full.fit()
    d, g = full.optimizers["discriminator"], full.optimizers["generator"]
    assert ("discriminator_r1", id(d)) in stepped and ("discriminator", id(d)) in stepped
    assert ("generator_pl", id(g)) in stepped and ("generator", id(g)) in stepped
    assert phases["discriminator_r1"].optimizer_name == phases["discriminator"].optimizer_name == "discriminator"
    assert d.param_groups[0]["lr"] == pytest.approx(2e-3 * 4 / 5)
    assert d.param_groups[0]["betas"] == pytest.approx((0.5 ** 0.8, 0.99 ** 0.8))
    assert g.param_groups[0]["lr"] == pytest.approx(2e-3 * 3 / 4)
    assert g.param_groups[0]["betas"] == pytest.approx((0.5 ** 0.75, 0.99 ** 0.75))
    # Adam counted every step of the shared optimizer: 9 main steps + 3 R1 steps (steps 0, 4, 8)
    assert int(next(iter(d.state.values()))["step"]) == 9 + 3

    class Killed(Exception):
        pass

    def kill(trainer, event, info):
        if event == "checkpoint" and info["step"] == 4:
            raise Killed

    killed = trainer(tmp_path, checkpoint_every=4)
    killed.callbacks.append(kill)
    with pytest.raises(Killed):
        killed.fit()
    state = load_training_state(latest_checkpoint(tmp_path / "checkpoints") / STATE_NAME)
    assert sorted(state["optimizers"]) == ["discriminator", "generator"]
    resumed = trainer(tmp_path, checkpoint_every=4)
    resumed.fit(resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_truncation_pulls_towards_w_avg_and_psi_zero_draws_the_w_avg_image():
    """Truncation is w_avg + psi (w - w_avg) (Karras et al. 2019, section 3 / appendix B): psi = 0
    gives exactly the mean style, so every z draws the image of w_avg, and psi = 0.5 lands halfway."""
    model = _model(16)
    with torch.no_grad():
        model.generator.mapping.w_avg.normal_()  # a centre far from 0, so "towards 0" cannot pass
        w_avg = model.generator.mapping.w_avg.clone()
        z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
        w = model.mapping(z)
        torch.testing.assert_close(model.mapping(z, truncation=0.0), w_avg.expand(4, -1))
        torch.testing.assert_close(model.truncate(w, 0.0), w_avg.expand(4, model.num_ws, -1))
        torch.testing.assert_close(model.truncate(w, 0.5)[:, 0], w_avg + 0.5 * (w - w_avg))
        torch.testing.assert_close(model.mapping(z, truncation=0.5), w_avg + 0.5 * (w - w_avg))
        mean_image = model.synthesis(w_avg[None], noise="const")
        images = model.sample(3, truncation=0.0, noise="const", generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(images, mean_image.expand(3, -1, -1, -1), rtol=0, atol=1e-5)


def test_training_fakes_mix_two_styles_at_a_random_layer():
    """Style-mixing regularisation (Karras et al. 2019, section 3.1): with style_mixing_prob = 1 every
    fake the training loss draws takes one w up to a cutoff layer in [1, num_ws) and a second w from
    there on; with probability 0 every fake has one w for all layers."""
    seen = []

    def styles_of_the_fakes(mixing: float) -> torch.Tensor:
        model = _model(16, style_mixing_prob=mixing).train()
        handle = model.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
        try:
            model.loss((torch.rand(16, 3, 16, 16),), "generator")
        finally:
            handle.remove()
        return seen.pop()  # (B, num_ws, w_dim)

    ws = styles_of_the_fakes(1.0)
    same = (ws == ws[:, :1]).all(2)  # (B, num_ws): layer i has the first layer's style
    cutoffs = (~same).float().argmax(1)  # the first layer with the second style
    assert bool((~same[:, -1]).all()), "a fake drew one style for every layer"
    assert bool((cutoffs >= 1).all()) and bool((cutoffs < ws.shape[1]).all())
    for i, cut in enumerate(cutoffs.tolist()):  # one w before the cutoff, one w after it
        assert bool(same[i, :cut].all()) and bool((ws[i, cut:] == ws[i, cut]).all())
    assert len(set(cutoffs.tolist())) > 1  # the cutoff is drawn per fake, not fixed
    ws = styles_of_the_fakes(0.0)
    assert bool((ws == ws[:, :1]).all())


# ---------------------------------------------------------------------- DiffAugment (issue 24)

def _record_augment(monkeypatch):
    """Wrap the ``augment`` that the GAN families' DiffAugmentSchedule calls; keep (input, output) pairs."""
    from genlab.nn import augment as gan_module  # the schedule calls augment() there

    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_augment = gan_module.augment

    def recording(x, *args, **kwargs):
        calls.append((x, real_augment(x, *args, **kwargs)))
        return calls[-1][1]

    monkeypatch.setattr(gan_module, "augment", recording)
    return calls


@pytest.mark.parametrize("r1_every", [1, 2])
@pytest.mark.parametrize("off", [{}, {"augment": ""}, {"augment": "color,translation", "augment_p": 0.0}],
                         ids=["default-config", "empty", "p0"])
def test_diffaugment_off_gives_the_plain_losses_bit_for_bit(r1_every, off):
    """Augmentation off computes exactly StyleGAN2's losses written out by hand (D on clean reals, R1 on
    D's gradient w.r.t. them, G's non-saturating loss), for the inline and the lazy R1."""
    import torch.nn.functional as F

    from genlab.models.gan import r1_penalty

    model = _model(16, r1_every=r1_every, r1_gamma=0.5, **off)
    D = model.discriminator
    batch = (torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)),)
    real = batch[0] * 2 - 1
    for phase in [p.name for p in model.phases()]:
        torch.manual_seed(7)
        out = model.loss(batch, phase)
        torch.manual_seed(7)
        if phase == "generator":
            expected = F.softplus(-D(model._fake(model._training_ws(4, update_w_avg=False)))).mean()
        elif phase == "discriminator":
            with torch.no_grad():
                fake = model._fake(model._training_ws(4, update_w_avg=False))
            with torch.enable_grad():
                real_in = real.clone().requires_grad_(r1_every == 1)
                real_score = D(real_in)
                expected = F.softplus(D(fake)).mean() + F.softplus(-real_score).mean()
                if r1_every == 1:
                    expected = expected + 0.25 * r1_penalty(real_score, real_in)
        else:
            with torch.enable_grad():
                real_in = real.clone().requires_grad_(True)
                expected = 0.25 * 2 * r1_penalty(D(real_in), real_in)
        assert torch.equal(out.total.detach(), expected.detach()), phase


def test_diffaugment_reaches_every_d_term_and_g_learns_through_it(monkeypatch):
    """With a policy: the D phase scores augmented fakes and reals; the lazy R1 phase scores augmented
    reals and differentiates w.r.t. the clean ones; G's loss scores augmented fakes, and its gradient
    reaches G's output through cutout (zero where a fake was cut out, non-zero elsewhere)."""
    model = _model(16, r1_every=2, augment="color,translation,cutout").train()
    calls = _record_augment(monkeypatch)
    seen: list[torch.Tensor] = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    batch = (torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)),)
    model.loss(batch, "discriminator")
    (fake_in, fake_aug), (real_in, real_aug) = calls
    assert torch.equal(real_in, batch[0] * 2 - 1) and not fake_in.requires_grad
    assert seen == [real_aug, fake_aug] and not torch.allclose(real_aug, real_in)
    calls.clear(), seen.clear()
    r1 = model.loss(batch, "discriminator_r1")
    (clean, augmented), = calls
    assert seen == [augmented] and clean.requires_grad and torch.equal(clean, batch[0] * 2 - 1)
    assert float(r1.terms["r1"]) > 0

    model = _model(16, augment="cutout").train()
    calls = _record_augment(monkeypatch)
    loss = model.loss(batch, "generator").total
    (fake, augmented), = calls
    hole = (augmented == 0).all(dim=1)  # (B, H, W) cut out
    assert 0 < hole.float().mean() < 1
    (grad,) = torch.autograd.grad(loss, fake)  # fake: G's output, before the augmentation
    grad = grad.abs().sum(dim=1)
    assert torch.all(grad[hole] == 0) and torch.all(grad[~hole] > 0)


def test_adaptive_augmentation_follows_the_reals_scores_and_is_saved(monkeypatch):
    from genlab.nn.augment import ADAPT_INTERVAL

    model = _model(16, augment="translation", augment_target=0.6, augment_speed_kimg=0.032, r1_every=4).train()
    real = (torch.rand(4, 3, 16, 16),)
    monkeypatch.setattr(model.discriminator, "forward", lambda x: torch.full((x.shape[0],), 1.0) + 0 * x.sum())
    logged = [float(model.loss(real, "discriminator").terms["augment_p"]) for _ in range(2 * ADAPT_INTERVAL)]
    assert logged[ADAPT_INTERVAL - 2] == 0.0 and logged[ADAPT_INTERVAL - 1] == pytest.approx(0.5)  # 16 / 32
    assert logged[-1] == pytest.approx(1.0)
    model.loss(real, "discriminator_r1")  # the lazy R1 phase is not a step of the schedule
    assert int(model.augmentation.pending_steps) == 0 and "augmentation.p" in model.state_dict()


def test_diffaugment_ramp_counts_d_steps_and_config_errors_are_one_line():
    from genlab.data import ArrayDataset
    from genlab.training import TrainConfig, Trainer

    model = _model(16, augment="translation", augment_p=0.6, augment_ramp_steps=5, r1_every=2).train()
    data = ArrayDataset((torch.rand(8, 3, 16, 16),))
    Trainer(model, data, TrainConfig(max_steps=2, batch_size=4, progress=False, tensorboard=False)).fit()
    assert int(model.augmentation.steps_trained) == 2  # D steps, not the lazy R1 phase's
    assert model.augmentation.probability == pytest.approx(0.6 * 2 / 5)
    assert "augmentation.steps_trained" in model.state_dict()
    with pytest.raises(ConfigError, match="unknown augmentation"):
        _model(16, augment="flip")
    with pytest.raises(ConfigError, match="augment_p must be in"):
        _model(16, augment_p=-0.1)


@pytest.mark.slow
def test_sigkill_mid_diffaugment_ramp_then_resume_is_bit_identical(tmp_path):
    """The fault drill of tests/test_faults.py on a StyleGAN killed halfway up its augmentation ramp."""
    import test_faults

    test_faults.test_sigkill_then_resume_is_bit_identical(tmp_path, "stylegan:diffaugment-ramp")


class _BrightOrDarkBinary(_BrightOrDark):
    """The same reading with two classes only, as a face attribute classifier: its top probability is
    never below one half, so every sample counts as decided at the default ``decided_at``."""

    def forward(self, x):
        return super().forward(x)[:, :2]


def test_a_two_class_classifier_is_judged_on_the_samples_it_reads_with_confidence():
    from genlab.reports.stylegan import noise_stats

    model, centre, spread = _noisy_model_and_brightness()
    classifier = {"b": _BrightOrDarkBinary(centre, 1.5 / spread)}
    default = noise_stats(model, classifiers=classifier, num_faces=200)
    confident = noise_stats(model, classifiers=classifier, num_faces=200, decided_at=0.9)
    # at 0.5 every sample is "decided", the ones at the boundary included, and noise flips some of them
    assert default["decided_fraction"]["b"] == 1.0 and default["unchanged_when_decided"]["b"] < 1.0
    # at 0.9 only those read with confidence count, and noise cannot move them across the boundary
    assert 0 < confident["decided_fraction"]["b"] < 1 and confident["unchanged_when_decided"]["b"] == 1.0
    assert confident["decided_at"] == 0.9 and confident["unchanged_fraction"] == default["unchanged_fraction"]
