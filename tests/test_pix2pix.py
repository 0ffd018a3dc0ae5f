"""pix2pix: U-Net and PatchGAN shapes, skip connections, phases, the L1-only mode, stochastic
translation, the evaluator/reporter and ``genlab translate``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import build_model, load
from genlab.cli import main
from genlab.errors import ConfigError, DataError
from genlab.reports.pix2pix import evaluate_pix2pix, mean_saturation, report_pix2pix
from genlab.nn.unet import PatchDiscriminator, UNetGenerator, patch_layers_for, patch_receptive_field
from genlab.data.base import ArrayDataset
from genlab.data.paired import hue_to_rgb


def tiny(**overrides):
    config = {"image_shape": [3, 16, 16], "input_shape": [1, 16, 16], "num_filters": 4, "discriminator_filters": 4}
    torch.manual_seed(0)
    return build_model("pix2pix", {**config, **overrides})


def pair_batch(n=4, c_in=1, c_out=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c_in, size, size, generator=g), torch.rand(n, c_out, size, size, generator=g)


# ---------------------------------------------------------------------------------- networks


@pytest.mark.parametrize("size", [32, 64, 256])
def test_unet_output_shape_equals_input_shape(size):
    torch.manual_seed(0)
    net = UNetGenerator(3, 2, size, num_filters=2).eval()
    assert len(net.encoder) == int(np.log2(size))  # down to 1×1
    out = net(torch.rand(1, 3, size, size) * 2 - 1)
    assert out.shape == (1, 2, size, size)
    assert out.abs().max() <= 1  # tanh


def test_unet_rejects_sizes_that_do_not_halve_to_one():
    with pytest.raises(ValueError, match="power-of-two"):
        UNetGenerator(1, 1, 48)
    with pytest.raises(ConfigError, match="power-of-two"):
        build_model("pix2pix", {"image_shape": [1, 28, 28]})
    with pytest.raises(ConfigError, match="sizes differ"):
        build_model("pix2pix", {"image_shape": [1, 32, 32], "input_shape": [1, 64, 64]})


def test_skip_connections_carry_detail_past_a_zeroed_bottleneck():
    torch.manual_seed(0)
    net = UNetGenerator(1, 1, 32, num_filters=8, norm="none").eval()
    plain = torch.full((1, 1, 32, 32), -1.0)
    dotted = plain.clone()
    dotted[..., 8, 22] = 1.0  # one bright pixel
    with torch.no_grad():
        diff = (net(dotted, bottleneck_scale=0.0) - net(plain, bottleneck_scale=0.0)).abs()[0, 0]
        assert not torch.equal(net(dotted), net(dotted, bottleneck_scale=0.0))  # the bottleneck is used too
    assert diff.max() > 1e-3  # the detail gets through without the bottleneck ...
    row, col = divmod(int(diff.argmax()), 32)
    assert abs(row - 8) <= 3 and abs(col - 22) <= 3  # ... at its own position


@pytest.mark.parametrize("size,expected", [(16, 6), (32, 6), (64, 6), (256, 30)])
def test_patchgan_map_sizes(size, expected):
    layers = patch_layers_for(size)
    disc = PatchDiscriminator(4, num_filters=2, layers=layers)
    assert disc(torch.rand(2, 4, size, size)).shape == (2, 1, expected, expected)


def test_patchgan_receptive_field_is_70_at_256():
    assert patch_layers_for(256) == 3 and patch_receptive_field(3) == 70
    torch.manual_seed(0)
    disc = PatchDiscriminator(2, num_filters=2, layers=3, norm="none")
    x = torch.rand(1, 2, 256, 256, requires_grad=True)
    disc(x)[0, 0, 15, 15].backward()
    rows = (x.grad.abs().sum((0, 1, 3)) > 0).nonzero().flatten()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_discriminator_sees_input_and_output_channels():
    model = tiny()
    assert model.discriminator.net[0].in_channels == 1 + 3
    assert model.discriminator(torch.rand(2, 4, 16, 16)).shape == (2, 1, 6, 6)


# ---------------------------------------------------------------------------------- objective and phases


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_each_phase_updates_only_its_own_parameters():
    model = tiny()
    batch = pair_batch()
    assert [p.name for p in model.phases()] == ["discriminator", "generator"]
    for phase in model.phases():
        owner, other = ("discriminator", "generator") if phase.name == "discriminator" else ("generator", "discriminator")
        before = {name: _snapshot(getattr(model, name)) for name in (owner, other)}
        model.zero_grad(set_to_none=True)
        model.loss(batch, phase.name).total.backward()
        if phase.name == "discriminator":  # the fake pair is detached: no gradient reaches G at all
            assert all(p.grad is None for p in model.generator.parameters())
        with torch.no_grad():  # a plain SGD step on the phase's parameters (what its optimizer holds)
            for p in model.phase_parameters(phase):
                p -= 0.1 * p.grad
        after = {name: _snapshot(getattr(model, name)) for name in (owner, other)}
        assert all(torch.equal(before[other][k], after[other][k]) for k in before[other])
        assert any(not torch.equal(before[owner][k], after[owner][k]) for k in before[owner])


def test_generator_loss_is_adversarial_plus_lambda_l1():
    model = tiny(l1_weight=7.0, adversarial_weight=0.5)
    model.eval()  # no dropout: two calls see the same generator output
    a, b = pair_batch()
    out = model.loss((a, b), "generator")
    fake = model(a)
    l1 = (fake - b).abs().mean()
    assert torch.allclose(out.terms["l1"], l1, atol=1e-6)  # logged in [0, 1] pixel units
    logits = model.discriminator(torch.cat([a * 2 - 1, fake * 2 - 1], 1))
    adv = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert torch.allclose(out.terms["adv"], adv, atol=1e-6)
    assert torch.allclose(out.total, 0.5 * adv + 7.0 * 2 * l1, atol=1e-5)  # λ on the [-1, 1] L1


def test_l1_only_mode_has_no_adversarial_term():
    model = tiny(adversarial_weight=0.0)
    assert model.discriminator is None
    assert [p.name for p in model.phases()] == ["generator"]
    model.eval()
    a, b = pair_batch()
    out = model.loss((a, b), "generator")
    assert set(out.terms) == {"l1"}
    assert torch.allclose(out.total, 100.0 * 2 * (model(a) - b).abs().mean(), atol=1e-4)
    assert "discriminator" not in "".join(model.state_dict())


def test_discriminator_loss_is_halved_real_plus_fake():
    model = tiny(gan_loss="lsgan")
    out = model.loss(pair_batch(), "discriminator")
    assert set(out.terms) == {"real", "fake"}
    assert torch.allclose(out.total, 0.5 * (out.terms["real"] + out.terms["fake"]))


@pytest.mark.parametrize("gan_loss", ["vanilla", "lsgan"])
def test_discriminator_loss_scores_real_pairs_as_real_and_generated_pairs_as_fake(gan_loss):
    """0.5 * (loss(D(a, b) as real) + loss(D(a, G(a)) as fake)), written out on the patch logits."""
    model = tiny(gan_loss=gan_loss).eval()  # no dropout: G(a) is the same in both computations
    a, b = pair_batch()
    with torch.no_grad():
        fake = model(a) * 2 - 1
        d_real = model.discriminator(torch.cat([a * 2 - 1, b * 2 - 1], 1))
        d_fake = model.discriminator(torch.cat([a * 2 - 1, fake], 1))
    if gan_loss == "vanilla":  # -log sigmoid(d) for real, -log(1 - sigmoid(d)) for fake
        real, fake_term = -torch.nn.functional.logsigmoid(d_real).mean(), -torch.nn.functional.logsigmoid(-d_fake).mean()
    else:
        real, fake_term = (d_real - 1).pow(2).mean(), d_fake.pow(2).mean()
    assert abs(float(real - fake_term)) > 1e-3  # a swap of the two would show
    out = model.loss((a, b), "discriminator")
    torch.testing.assert_close(out.total, 0.5 * (real + fake_term), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.terms["real"], real, atol=1e-6, rtol=1e-5)


def test_phase_hyperparameters_from_config():
    phases = {p.name: p for p in tiny(discriminator_every=3, generator_lr=1e-3, betas=None).phases()}
    assert phases["discriminator"].every == 3 and phases["discriminator"].lr == 2e-4
    assert phases["generator"].lr == 1e-3 and phases["generator"].betas is None


# ---------------------------------------------------------------------------------- inference


def test_stochastic_translate_depends_on_the_generator_only():
    model = tiny().eval()
    a, _ = pair_batch(n=2)
    draw = lambda seed: model.translate(a, 4, stochastic=True, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    first, same, other = draw(1), draw(1), draw(2)
    assert first.shape == (2, 4, 3, 16, 16)
    assert torch.equal(first, same)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first[:, 0], first[:, 1])  # the n outputs of one input differ
    plain = model.translate(a, 3)
    assert torch.equal(plain[:, 0], plain[:, 2]) and torch.allclose(plain[:, 0], model(a))
    assert 0 <= first.min() and first.max() <= 1


def test_translate_checks_its_input():
    model = tiny().eval()
    with pytest.raises(DataError, match="input must be"):
        model.translate(torch.rand(1, 3, 16, 16))
    with pytest.raises(DataError, match="n >= 1"):
        model.translate(torch.rand(1, 1, 16, 16), 0)


def test_preview_stacks_input_output_target():
    model = tiny().eval()
    a, b = pair_batch(n=20)
    cells = model.preview((a, b))
    assert cells.shape == (16, 3, 3 * 16 + 2, 16)
    assert torch.equal(cells[:, :, :16], a[:16].expand(-1, 3, -1, -1))
    assert torch.equal(cells[:, :, -16:], b[:16])
    assert 0 <= cells.min() and cells.max() <= 1


def test_mean_saturation_grey_vs_colour():
    hues = torch.rand(8, generator=torch.Generator().manual_seed(0))
    colour = hue_to_rgb(hues)[:, :, None, None] * torch.ones(8, 3, 4, 4)
    assert mean_saturation(colour) == pytest.approx(1.0)
    assert mean_saturation(colour.mean(1, keepdim=True).expand(-1, 3, -1, -1)) == pytest.approx(0.0)
    assert mean_saturation(colour.mean(0, keepdim=True)) < 0.5  # averaging hues drifts to grey
    assert mean_saturation(torch.zeros(2, 3, 4, 4)) == 0.0  # nothing lit


def test_evaluator_and_reporter(tmp_path):
    model = tiny().eval()
    a, b = pair_batch(n=10)
    data = ArrayDataset((a, b), {"image_shape": (3, 16, 16), "input_shape": (1, 16, 16)})
    result = evaluate_pix2pix(model, data, batch_size=3)
    with torch.no_grad():
        assert result["l1"] == pytest.approx(float((model(a) - b).abs().mean()), abs=1e-6)
    assert result["n"] == 10 and 0 <= result["saturation"] <= 1
    assert evaluate_pix2pix(model, data, limit=4)["n"] == 4
    with_features = evaluate_pix2pix(model, data, extractor="pixels")
    assert with_features["fid"] > 0 and np.isfinite(with_features["kid"])
    assert with_features["protocol"]["num_reference"] == 10 and "pixels" in with_features["protocol"]["extractor"]
    summary = report_pix2pix(model, tmp_path, data, data)
    assert summary["test/l1"] == pytest.approx(result["l1"])
    image = Image.open(tmp_path / "translations.png")
    assert image.size == (2 * (2 + 7 * 18), 2 * (2 + 8 * 18))  # 8 rows of input | 4 samples | plain | target


def test_translate_cli_writes_one_grid_per_image(tmp_path, capsys):
    model = tiny()
    model.save_pretrained(str(tmp_path / "model"))
    assert torch.equal(load(tmp_path / "model").generator.head[1].weight, model.generator.head[1].weight)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    code = main(["translate", str(tmp_path / "model"), str(tmp_path / "x.png"), "-n", "3", "-o", str(tmp_path / "out"),
                 "--half", "left"])
    assert code == 0
    grid = Image.open(tmp_path / "out" / "x-a2b.png")
    assert grid.size == (2 * (2 + 5 * 18), 2 * (2 + 18))  # input | 3 samples | deterministic
    assert "x-a2b.png" in capsys.readouterr().out
    assert main(["translate", str(tmp_path / "model"), str(tmp_path / "x.png"), "--deterministic", "-o", str(tmp_path / "d")]) == 0
    assert Image.open(tmp_path / "d" / "x-a2b.png").size == (2 * (2 + 2 * 18), 2 * (2 + 18))  # input | output
    assert main(["translate", str(tmp_path / "model"), str(tmp_path / "missing.png")]) == 2
