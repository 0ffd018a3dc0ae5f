"""Generator networks: output shapes for every supported size, ranges, init, and distribution outputs."""
import pytest
import torch

from genlab.errors import ConfigError
from genlab.nn.generators import ConvGenerator, DistributionGenerator, MLPGenerator, glorot_init_, sample_distribution


@pytest.mark.parametrize("mode", ["upsample", "transposed"])
@pytest.mark.parametrize("size", [16, 28, 32, 64])
def test_conv_generator_shapes_and_range(mode, size):
    gen = ConvGenerator(8, (3, size, size), mode=mode, base_channels=4)
    with torch.no_grad():
        out = gen(torch.randn(2, 8))
    assert out.shape == (2, 3, size, size)
    assert float(out.min()) >= 0 and float(out.max()) <= 1  # sigmoid output


def test_conv_generator_modes_differ_in_layers():
    up = ConvGenerator(4, (1, 28, 28), mode="upsample", base_channels=4)
    tr = ConvGenerator(4, (1, 28, 28), mode="transposed", base_channels=4)
    assert any(isinstance(m, torch.nn.Upsample) for m in up.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in up.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in tr.modules())


def test_conv_generator_rejects_unsupported_sizes():
    with pytest.raises(ConfigError, match="image sizes"):
        ConvGenerator(4, (1, 30, 30))
    with pytest.raises(ConfigError, match="mode"):
        ConvGenerator(4, (1, 32, 32), mode="deconv")


def test_mlp_generator_shape_and_glorot():
    gen = MLPGenerator(2, (3, 4), hidden_dims=[100] * 12, init="glorot")
    assert gen(torch.randn(5, 2)).shape == (5, 3, 4)
    linears = [m for m in gen.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 13
    # Glorot-uniform bound sqrt(6 / (fan_in + fan_out)) and zero biases
    w = linears[1].weight.detach()
    assert float(w.abs().max()) <= (6 / 200) ** 0.5 + 1e-6
    assert float(w.abs().max()) > 0.9 * (6 / 200) ** 0.5
    assert all(float(m.bias.detach().abs().max()) == 0 for m in linears)


def test_untrained_deep_generator_is_not_gaussian():
    # the point of the "random generator" figure: a random deep ReLU net warps Gaussian noise
    torch.manual_seed(0)
    gen = glorot_init_(MLPGenerator(2, 2, hidden_dims=[100] * 12))
    with torch.no_grad():
        x = gen(torch.randn(20000, 2))
    x = (x - x.mean(0)) / x.std(0)
    excess_kurtosis = (x ** 4).mean(0) - 3
    assert float(excess_kurtosis.abs().max()) > 0.5


def test_distribution_generator_samples_from_head():
    class FixedScaleHead(torch.nn.Module):
        num_outputs = 2

        def forward(self, raw):
            return torch.distributions.Independent(torch.distributions.Normal(raw, 0.5), 1)

    gen = DistributionGenerator(MLPGenerator(3, 2, hidden_dims=[8]), FixedScaleHead(), latent_dim=3)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = gen.sample(64, generator=g1), gen.sample(64, generator=g2)
    assert a.shape == (64, 2) and torch.equal(a, b)  # reproducible from the generator
    means = gen.sample(64, generator=torch.Generator().manual_seed(1), sample_output=False)
    assert float((a - means).std()) == pytest.approx(0.5, rel=0.3)  # output noise is really drawn
    state = torch.get_rng_state()
    sample_distribution(torch.distributions.Normal(torch.zeros(3), 1.0), generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone


def test_figure_cli_writes_the_random_generator_figures(tmp_path, capsys):
    from genlab.cli import main

    assert main(["figure", "random-generator", "--quick", "-o", str(tmp_path)]) == 0
    assert main(["figure", "untrained-conv", "--quick", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("random-generator.png", "untrained-conv.png"):
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 10_000 and str(path) in out
    assert "excess_kurtosis" in out
    with pytest.raises(SystemExit):
        main(["figure", "no-such-figure"])
