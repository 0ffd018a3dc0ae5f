"""Latent tools: interpolation geometry, grids, attribute arithmetic, latent densities, projection.

The models here are tiny stand-ins (a linear or small MLP decoder with a matching encoder), so each
property can be checked exactly; the real AE/VAE/GAN contract is only ``decode`` (+ ``encode``).
"""
from __future__ import annotations

import importlib.util
import math
import shutil

import pytest
import torch
from torch import nn

from genlab.errors import ConfigError, DataError, GenlabError
from genlab.latent import (
    LatentDensity, apply_attribute, attribute_vector, expected_gaussian_norm, grid_codes, interpolation_codes,
    interpolation_grid, interpolation_strip, labelled_examples, lerp, norm_profile, project, slerp,
)

SHAPE = (1, 6, 6)


class LinearCoder(nn.Module):
    """decode(z) = reshape(W z + b); encode is its exact least-squares inverse."""

    def __init__(self, latent_dim: int = 4, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.latent_dim = latent_dim
        self.weight = nn.Parameter(torch.randn(math.prod(SHAPE), latent_dim, generator=g) / 3)
        self.bias = nn.Parameter(torch.full((math.prod(SHAPE),), 0.5))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight.T + self.bias).view(-1, *SHAPE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.bias) @ torch.linalg.pinv(self.weight).T


class MLPGenerator(nn.Module):
    """A small random generator with no encoder (a stand-in for a GAN generator)."""

    def __init__(self, latent_dim: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.latent_dim = latent_dim
        self.net = nn.Sequential(nn.Linear(latent_dim, 32), nn.Tanh(), nn.Linear(32, math.prod(SHAPE)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).view(-1, *SHAPE)


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds synchronisation (slow on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------------------ lerp / slerp

def test_lerp_shapes_and_values():
    z0, z1 = randn(5, seed=1), randn(5, seed=2)
    assert torch.allclose(lerp(z0, z1, 0.25), 0.75 * z0 + 0.25 * z1)
    path = lerp(z0, z1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 5)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)


@pytest.mark.parametrize("dim", [2, 16, 256])
def test_slerp_endpoints_exact(dim):
    z0, z1 = randn(dim, seed=3), randn(dim, seed=4) * 2.5
    path = slerp(z0, z1, torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[1], z1)


def test_slerp_keeps_norm_between_equal_norm_endpoints():
    z0, z1 = randn(64, seed=5), randn(64, seed=6)
    z1 = z1 * z0.norm() / z1.norm()
    norms = slerp(z0, z1, torch.linspace(0, 1, 21, dtype=torch.float64)).norm(dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, float(z0.norm())))
    # and it stays on the plane of z0, z1 along the great circle: equal angles for equal steps
    path = slerp(z0, z1, torch.linspace(0, 1, 5, dtype=torch.float64))
    cosines = torch.nn.functional.cosine_similarity(path[:-1], path[1:], dim=-1)
    torch.testing.assert_close(cosines, cosines[:1].expand(4))


def test_slerp_matches_classical_formula_for_unit_vectors():
    z0, z1 = randn(8, seed=7), randn(8, seed=8)
    z0, z1 = z0 / z0.norm(), z1 / z1.norm()
    omega = torch.arccos(z0 @ z1)
    t = 0.3
    classical = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
    torch.testing.assert_close(slerp(z0, z1, t), classical)


def test_slerp_orthogonal_midpoint():
    e0, e1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(slerp(e0, e1, 0.5), torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2))


def test_slerp_antipodal_is_finite_and_turns_through_an_orthogonal_direction():
    z0 = randn(10, seed=9)
    path = slerp(z0, -z0, torch.linspace(0, 1, 9, dtype=torch.float64))
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], -z0)
    torch.testing.assert_close(path.norm(dim=-1), torch.full((9,), float(z0.norm()), dtype=torch.float64))
    assert abs(float(path[4] @ z0)) < 1e-9 * float(z0.norm()) ** 2  # the midpoint is orthogonal
    # the angle to z0 grows evenly from 0 to pi
    angles = torch.arccos((path @ z0 / z0.norm() ** 2).clamp(-1, 1))
    torch.testing.assert_close(angles, torch.linspace(0, math.pi, 9, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("delta", [0.0, 1e-12, 1e-6])
def test_slerp_parallel_and_nearly_parallel_reduce_to_lerp(delta):
    z0 = randn(32, seed=10)
    z1 = 2.0 * z0 + delta * randn(32, seed=11)
    t = torch.linspace(0, 1, 6, dtype=torch.float64)
    path = slerp(z0, z1, t)
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, lerp(z0, z1, t), atol=1e-5, rtol=1e-5)


def test_slerp_zero_endpoint_and_batches():
    zero, z1 = torch.zeros(4), torch.ones(4)
    torch.testing.assert_close(slerp(zero, z1, 0.5), torch.full((4,), 0.5))
    a, b = randn(3, 5, seed=12), randn(3, 5, seed=13)
    batched = slerp(a, b, torch.tensor([0.4], dtype=torch.float64))[0]
    for i in range(3):
        torch.testing.assert_close(batched[i], slerp(a[i], b[i], 0.4))


def test_slerp_keeps_gaussian_norms_where_lerp_shrinks_them():
    d = 256
    z0, z1 = randn(200, d, seed=14), randn(200, d, seed=15)
    mid_lerp = norm_profile(z0, z1, 3, method="lerp")[1].mean()
    mid_slerp = norm_profile(z0, z1, 3, method="slerp")[1].mean()
    expected = expected_gaussian_norm(d)
    assert abs(expected - math.sqrt(d - 0.5)) < 0.01
    assert abs(float(mid_slerp) / expected - 1) < 0.01
    assert abs(float(mid_lerp) / expected - 1 / math.sqrt(2)) < 0.02  # lerp's midpoint: sqrt(d/2)


def test_interpolation_errors():
    with pytest.raises(GenlabError):
        interpolation_codes(torch.zeros(3), torch.ones(3), 1)
    with pytest.raises(GenlabError, match="valid: lerp, slerp"):
        interpolation_codes(torch.zeros(3), torch.ones(3), 4, method="cubic")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ strips and grids

@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_grid_corners_equal_decoded_corner_codes(method):
    model = LinearCoder()
    corners = torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(16))
    steps = 5
    images = interpolation_grid(model, corners, steps, method=method)
    assert images.shape == (steps * steps, *SHAPE)
    with torch.no_grad():
        expected = model.decode(corners)
    for corner, index in enumerate([0, steps - 1, steps * (steps - 1), steps * steps - 1]):
        torch.testing.assert_close(images[index], expected[corner])
    # every row and column of codes is itself an interpolation path between its edge codes
    codes = grid_codes(corners, steps, method=method).view(steps, steps, -1)
    torch.testing.assert_close(codes[0], interpolation_codes(corners[0], corners[1], steps, method=method))
    torch.testing.assert_close(codes[:, 0], interpolation_codes(corners[0], corners[2], steps, method=method))


def test_strip_decodes_the_path():
    model = LinearCoder()
    z0, z1 = torch.randn(2, model.latent_dim, generator=torch.Generator().manual_seed(17))
    strip = interpolation_strip(model, z0, z1, 6, method="slerp")
    with torch.no_grad():
        expected = model.decode(interpolation_codes(z0, z1, 6, method="slerp"))
    torch.testing.assert_close(strip, expected)


# ------------------------------------------------------------------------------------------ attribute vectors

def test_attribute_vector_is_the_difference_of_code_means():
    model = LinearCoder()
    g = torch.Generator().manual_seed(18)
    positives, negatives = torch.rand(5, *SHAPE, generator=g), torch.rand(7, *SHAPE, generator=g)
    vector = attribute_vector(model, positives, negatives)
    with torch.no_grad():
        expected = model.encode(positives).mean(0) - model.encode(negatives).mean(0)
    torch.testing.assert_close(vector, expected)
    # a shift of the positives along a code direction is recovered exactly by the linear coder
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0])
    with torch.no_grad():
        moved = model.decode(model.encode(negatives) + shift)
    torch.testing.assert_close(attribute_vector(model, moved, negatives), shift, atol=1e-4, rtol=1e-4)


def test_apply_attribute_scale_zero_is_reconstruction_and_negative_scales_reverse():
    model = LinearCoder()
    g = torch.Generator().manual_seed(19)
    images, vector = torch.rand(3, *SHAPE, generator=g), torch.randn(4, generator=g)
    scales = [-2.0, -1.0, 0.0, 1.0, 2.0]
    strips = apply_attribute(model, images, vector, scales)
    assert strips.shape == (3, 5, *SHAPE)
    with torch.no_grad():
        reconstruction = model.decode(model.encode(images))
        step = model.decode(vector[None]) - model.bias.view(1, *SHAPE)  # W v: the image-space direction
    torch.testing.assert_close(strips[:, 2], reconstruction)
    for k, s in enumerate(scales):  # linear decoder: image(s) = reconstruction + s W v
        torch.testing.assert_close(strips[:, k], reconstruction + s * step, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(strips[:, 0] + strips[:, 4], 2 * strips[:, 2], atol=1e-5, rtol=1e-5)


def test_labelled_examples_pick_the_right_groups():
    labels = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 0]])
    pos, neg = labelled_examples(labels, ["Smiling", "Male"], "Smiling", 2, generator=torch.Generator().manual_seed(0))
    assert set(pos.tolist()) <= {0, 2, 4} and set(neg.tolist()) <= {1, 3, 5}
    assert len(set(pos.tolist())) == 2 and len(set(neg.tolist())) == 2
    with pytest.raises(DataError, match="did you mean Smiling"):
        labelled_examples(labels, ["Smiling", "Male"], "smiling", 2)
    with pytest.raises(DataError, match="need 4"):
        labelled_examples(labels, ["Smiling", "Male"], "Male", 4)


# ------------------------------------------------------------------------------------------ latent densities

def _correlated_codes(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing.T + torch.linspace(-2, 3, d, dtype=torch.float64)


def test_gaussian_density_reproduces_the_codes_moments():
    codes = _correlated_codes(4000, 6, seed=20)
    density = LatentDensity("gaussian").fit(codes)
    z = density.sample(40000, generator=torch.Generator().manual_seed(21))
    assert z.shape == (40000, 6) and z.dtype == torch.float32
    z = z.double()
    torch.testing.assert_close(z.mean(0), codes.mean(0), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), torch.cov(codes.T), atol=0.04, rtol=0)
    # exact fitted moments, and a proper torch distribution
    torch.testing.assert_close(density.mean(), codes.mean(0))
    torch.testing.assert_close(density.covariance(), torch.cov(codes.T), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(density.log_prob(codes[:10])).all()
    # the same generator seed gives the same samples
    again = density.sample(5, generator=torch.Generator().manual_seed(22))
    torch.testing.assert_close(again, density.sample(5, generator=torch.Generator().manual_seed(22)))


def test_gmm_density_finds_clusters_and_matches_moments():
    pytest.importorskip("sklearn")
    g = torch.Generator().manual_seed(23)
    centres = torch.tensor([[-6.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 8.0, 0.0]], dtype=torch.float64)
    counts = [1500, 1000, 500]
    codes = torch.cat([c + torch.randn(k, 3, generator=g, dtype=torch.float64) * 0.5 for c, k in zip(centres, counts)])
    density = LatentDensity.from_spec("gmm:3").fit(codes)
    assert density.kind == "gmm" and density.components == 3
    order = density.means[:, 0].argsort()
    torch.testing.assert_close(density.weights[order], torch.tensor([0.5, 1 / 6, 1 / 3], dtype=torch.float64), atol=0.01, rtol=0)
    z = density.sample(30000, generator=torch.Generator().manual_seed(24)).double()
    assert z.shape == (30000, 3)
    torch.testing.assert_close(z.mean(0), codes.mean(0), atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), torch.cov(codes.T), atol=0.4, rtol=0.03)
    # samples fall near a centre (a single Gaussian would fill the gaps between them)
    nearest = torch.cdist(z, centres).min(1).values
    assert float((nearest < 2.5).double().mean()) > 0.99
    # log-density: mixture > single Gaussian on the data
    single = LatentDensity("gaussian").fit(codes)
    assert float(density.log_prob(codes).mean()) > float(single.log_prob(codes).mean()) + 1.0


def test_density_spec_and_errors():
    assert LatentDensity.from_spec("gaussian").kind == "gaussian"
    assert LatentDensity.from_spec("gmm:7").components == 7
    for bad in ("gmm:x", "uniform", "gaussian:3"):
        with pytest.raises(ConfigError):
            LatentDensity.from_spec(bad)
    with pytest.raises(GenlabError, match="not fitted"):
        LatentDensity().sample(3)
    with pytest.raises(DataError):
        LatentDensity().fit(torch.tensor([[float("nan"), 1.0], [0.0, 1.0]]))
    # rank-deficient codes (fewer codes than dimensions) still factorise thanks to the ridge
    flat = LatentDensity().fit(torch.randn(3, 10, generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(flat.sample(4, generator=torch.Generator().manual_seed(0))).all()


# ------------------------------------------------------------------------------------------ projection

def test_projection_recovers_a_known_latent_of_a_random_generator():
    model = MLPGenerator()
    z_true = torch.randn(6, 3, generator=torch.Generator().manual_seed(25))
    with torch.no_grad():
        targets = model.decode(z_true)
    result = project(model, targets, steps=250, lr=0.1, restarts=3, generator=torch.Generator().manual_seed(26))
    assert result.z.shape == (6, 3) and result.images.shape == targets.shape
    assert float(result.error.max()) < 1e-6
    torch.testing.assert_close(result.z, z_true, atol=0.02, rtol=0)
    assert result.history[-1] < result.history[0] / 100
    assert all(p.requires_grad for p in model.parameters())  # weights unfrozen afterwards


def test_projection_leaves_the_weights_unchanged():
    model = MLPGenerator(seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    project(model, torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(0)), steps=20)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_encoder_projection_and_hybrid():
    model = LinearCoder()
    z_true = torch.randn(5, 4, generator=torch.Generator().manual_seed(27))
    with torch.no_grad():
        targets = model.decode(z_true)
    encoded = project(model, targets, method="encoder")
    torch.testing.assert_close(encoded.z, z_true, atol=1e-4, rtol=0)
    assert encoded.history == [] and float(encoded.error.max()) < 1e-9
    # hybrid starts at the encoder's code and can only improve an imperfect one
    noisy_targets = (targets + 0.05 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(28)))
    enc = project(model, noisy_targets, method="encoder")
    hybrid = project(model, noisy_targets, method="hybrid", steps=50, lr=0.01)
    assert float(hybrid.error.mean()) <= float(enc.error.mean()) * (1 + 1e-4)


def test_projection_errors():
    model = MLPGenerator()
    with pytest.raises(DataError, match="decodes"):
        project(model, torch.rand(2, 3, 6, 6), steps=2)
    with pytest.raises(GenlabError, match="no encoder"):
        project(model, torch.rand(2, *SHAPE), method="encoder")
    with pytest.raises(ConfigError):
        project(model, torch.rand(2, *SHAPE), method="magic")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ CLI

@pytest.fixture
def face_run(tmp_path, monkeypatch):
    """A run folder (untrained tiny AE + run.json) over a labelled-folder dataset of 8x8 faces."""
    import json

    import numpy as np
    from PIL import Image

    from genlab.api import RunSpec
    from genlab.data import DataConfig
    from genlab.models import build_model
    from genlab.training.trainer import TrainConfig

    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "faces"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,Smiling,Male"]
    for i in range(30):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(data / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,{i % 2},{i % 3 == 0:d}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    config = {"architecture": "mlp", "image_shape": [3, 8, 8], "latent_dim": 4, "hidden_dims": [16]}
    run = tmp_path / "run"
    build_model("autoencoder", config).save_pretrained(str(run / "model"))
    spec = RunSpec("autoencoder", config, DataConfig(name="labelled-folder", path=str(data), options={"test_size": 6}),
                   TrainConfig())
    (run / "run.json").write_text(json.dumps(spec.to_dict()))
    return run, data


def _cli(monkeypatch, *argv: str) -> int:
    from genlab import cli

    monkeypatch.setattr(cli, "_MODULES", ["latent", "inspect"])  # only the commands under test
    return cli.main(list(argv))


def _png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def test_cli_latent_commands(face_run, monkeypatch, capsys):
    run, data = face_run
    a, b = str(data / "000.png"), str(data / "001.png")
    assert _cli(monkeypatch, "interpolate", str(run), "--seeds", "3", "4", "--steps", "5", "--slerp") == 0
    # 5 cells of 8 px + 2 px padding, enlarged 14x so that each image is at least 112 px
    assert _png_size(run / "interpolate.png") == (14 * (2 + 5 * 10), 14 * (2 + 10))
    assert _cli(monkeypatch, "interpolate", str(run), "--from", a, "--to", b, "--steps", "4", "-o", str(run / "ab.png")) == 0
    assert _png_size(run / "ab.png")[0] == 14 * (2 + 6 * 10)  # the two originals frame the 4 steps
    assert _cli(monkeypatch, "grid", str(run), "--steps", "3") == 0
    assert _png_size(run / "grid.png") == (32, 32)
    assert _cli(monkeypatch, "attribute", str(run), "--attr", "Smiling", "--labelled", "5", "--scales=-1,0,1", "--count", "2") == 0
    assert _png_size(run / "attribute-Smiling.png") == (2 + 4 * 10, 2 + 2 * 10)
    assert _cli(monkeypatch, "project", str(run), a, b, "--method", "optimize", "--steps", "5", "--restarts", "1",
                "--save-codes", str(run / "z.safetensors")) == 0
    out = capsys.readouterr().out
    assert "mean MSE" in out and "(optimize, space z)" in out
    from genlab.checkpoint import load_tensors

    assert load_tensors(run / "z.safetensors")["z"].shape == (2, 4)
    # genlab sample --latent-density: codes from a density fitted to the encoded training faces
    assert _cli(monkeypatch, "sample", str(run), "-n", "6", "--latent-density", "gaussian", "-o", str(run / "g.png")) == 0
    assert _png_size(run / "g.png") == (2 + 3 * 10, 2 + 2 * 10)
    if importlib.util.find_spec("sklearn") is not None:
        assert _cli(monkeypatch, "sample", str(run), "-n", "4", "--latent-density", "gmm:2", "-o", str(run / "m.png")) == 0
    assert _cli(monkeypatch, "sample", str(run), "--latent-density", "gmm:x") == 2
    # a bare model folder has no run.json: --data names the faces whose codes the density fits
    bare = shutil.copytree(run / "model", run.parent / "bare")
    capsys.readouterr()
    assert _cli(monkeypatch, "sample", str(bare), "-n", "2", "--latent-density", "gaussian") == 2
    assert "pass --data" in capsys.readouterr().err
    assert _cli(monkeypatch, "sample", str(bare), "-n", "2", "--latent-density", "gaussian",
                "--data", f"labelled-folder:{data}", "-o", str(run / "bare.png")) == 0
    assert _png_size(run / "bare.png") == (2 + 2 * 10, 2 + 10)
    capsys.readouterr()
    # bad input: one line on stderr, exit status 2
    assert _cli(monkeypatch, "attribute", str(run), "--attr", "Bald") == 2
    assert _cli(monkeypatch, "interpolate", str(run), "--from", a) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown attribute 'Bald'" in err[0] and "--from and --to" in err[1]


# ------------------------------------------------------------------------------------------ capabilities

def test_every_tiny_family_is_a_sampler_exactly_when_it_samples_without_inputs():
    from genlab.latent.protocols import has
    from genlab.models import build_model
    from tiny_configs import TINY

    for key, case in TINY.items():
        model = build_model(key.split(":")[0], case.config)
        assert has(model, "sampler") == case.can_sample, key


def test_capabilities_of_real_families_and_stand_ins():
    from genlab.latent.protocols import Decodes, Encodes, StyleBased, capabilities, has
    from genlab.models import build_model

    vae = build_model("vae", {"architecture": "mlp", "image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [8]})
    stylegan = build_model("stylegan", {"latent_dim": 4, "w_dim": 4, "mapping_depth": 1, "channel_base": 32,
                                        "channel_max": 8, "image_shape": [1, 16, 16]})
    classifier = build_model("classifier", {"image_shape": [1, 8, 8], "channels": [4]})
    assert set(capabilities(vae)) == {"decoder", "encoder", "reconstruct", "sampler"}
    assert set(capabilities(stylegan)) == {"decoder", "sampler", "styles"}
    assert set(capabilities(classifier)) == {"classifier", "features"}
    assert has(LinearCoder(), "decoder", "encoder") and not has(MLPGenerator(), "encoder")
    assert isinstance(LinearCoder(), Encodes) and isinstance(stylegan, StyleBased) and not isinstance(vae, StyleBased)
    broken = MLPGenerator()
    broken.decode = None  # present but not callable: no capability
    assert not has(broken, "decoder") and isinstance(MLPGenerator(), Decodes)


def test_require_names_the_model_and_the_missing_capability_in_one_line():
    from genlab.latent.protocols import MissingCapability, require
    from genlab.models import build_model

    model = MLPGenerator()
    assert require(model, "decoder") is model
    with pytest.raises(MissingCapability) as info:
        require(model, "decoder", "encoder", purpose="plot-latent")
    assert str(info.value) == "model 'MLPGenerator' has no encoder (encode(x)); plot-latent needs one"
    gan = build_model("gan", {"x_dim": 2, "latent_dim": 2})
    with pytest.raises(ConfigError, match=r"^model 'gan' has no style-based generator .*W-space tools needs one$"):
        from genlab.latent import w_interpolation

        w_interpolation(gan, torch.zeros(2), torch.ones(2))
    with pytest.raises(ConfigError, match="unknown capability 'flying'; valid: decoder, encoder"):
        require(model, "flying")


def test_latent_dim_falls_back_to_the_config_and_refuses_a_model_without_one():
    from types import SimpleNamespace

    from genlab.latent import latent_dim
    from genlab.latent.protocols import MissingCapability

    assert latent_dim(LinearCoder(latent_dim=5)) == 5
    configured = nn.Linear(1, 1)
    configured.config = SimpleNamespace(latent_dim=7)  # a family that keeps it only in its config
    assert latent_dim(configured) == 7
    with pytest.raises(MissingCapability, match="^model 'Linear' has no latent space"):
        latent_dim(nn.Linear(1, 1))


def test_image_shape_is_read_from_the_config_without_decoding_and_measured_only_without_one():
    from genlab.latent import image_shape
    from genlab.latent.protocols import MissingCapability
    from genlab.models import build_model

    vae = build_model("vae", {"architecture": "mlp", "image_shape": [3, 8, 8], "latent_dim": 2, "hidden_dims": [8]})
    vae.decode = None  # reading the declared shape must not decode
    assert image_shape(vae) == (3, 8, 8)
    coder = LinearCoder().train()
    assert image_shape(coder) == SHAPE and coder.training  # measured once, in eval mode, mode restored
    with pytest.raises(MissingCapability, match=r"makes samples of shape \(2,\), not images"):
        image_shape(build_model("gan", {"x_dim": 2, "latent_dim": 2}))


def test_seed_codes_draw_each_seed_alone_as_the_cli_and_the_explorer_do():
    from genlab.explore.render import seed_codes as explorer_seed_codes
    from genlab.latent import random_codes, seed_codes

    model = LinearCoder(latent_dim=6)
    codes = seed_codes(model, [3, 11, 3])
    assert codes.shape == (3, 6) and torch.equal(codes[0], codes[2])
    assert torch.equal(codes[1], random_codes(model, 1, generator=torch.Generator().manual_seed(11))[0])
    assert torch.equal(seed_codes(model, [11])[0], codes[1])  # a seed's code does not depend on its neighbours
    assert torch.equal(codes, explorer_seed_codes(model, [3, 11, 3]))
    assert seed_codes(model, []).shape == (0, 6)
