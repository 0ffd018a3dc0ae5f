"""Output heads and log-space losses against closed forms written out by hand (float64 references)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.distributions import Normal

from genlab.distributions import (
    HEADS,
    BernoulliHead,
    CategoricalHead,
    ContinuousBernoulliHead,
    GaussianHead,
    LaplaceHead,
    MixtureHead,
    kl_diag_gaussians,
    kl_standard_normal,
    log_mean_exp,
    log_normal_diag,
    log_standard_normal,
    make_head,
)
from genlab.errors import ConfigError, DataError

LOG_2PI = math.log(2 * math.pi)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def softplus64(t: Tensor) -> Tensor:
    """log(1 + e^t), written out: max(t, 0) + log1p(e^-|t|)."""
    return t.clamp(min=0) + torch.log1p(torch.exp(-t.abs()))


# ---------------------------------------------------------------------------- log_prob vs closed form


def test_bernoulli_log_prob_matches_formula_and_is_stable() -> None:
    head = BernoulliHead((3,))
    logits = torch.tensor([[-60.0, 0.3, 60.0], [2.0, -1.5, 0.0]])
    x = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    got = head(logits).log_prob(x)
    # log p = x*eta - log(1 + e^eta), per element, summed over the event
    eta = logits.double()
    expected = (x.double() * eta - softplus64(eta)).sum(-1)
    assert got.shape == (2,)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-5)
    # a wrong-side logit of ±60 costs 60 nats each (log σ(-60) underflows in a naive form)
    assert got[0].item() == pytest.approx(-120.0 - math.log1p(math.exp(0.3)), rel=1e-6)


def test_categorical_log_prob_matches_formula() -> None:
    k, event = 4, (2, 3)
    head = CategoricalHead(event, num_classes=k)
    raw = torch.randn(5, k * 2, 3).double() * 3  # channel-stacked: chunk j = class j's logits
    x = torch.randint(0, k, (5, *event))
    got = head(raw).log_prob(x)
    logits = raw.reshape(5, k, *event)
    expected = torch.zeros(5, dtype=torch.float64)
    for b in range(5):
        for i in range(event[0]):
            for j in range(event[1]):
                z = [logits[b, c, i, j].item() for c in range(k)]
                expected[b] += z[x[b, i, j]] - math.log(sum(math.exp(v) for v in z))
    torch.testing.assert_close(got, expected)


def _gaussian_scale(mode: str, raw_scale: Tensor, head: GaussianHead | LaplaceHead) -> Tensor:
    if mode == "fixed":
        return torch.full_like(raw_scale, head.fixed_scale)
    if mode == "exp":
        return torch.exp(raw_scale)
    if mode == "softplus":
        return softplus64(raw_scale) + head.min_scale
    return torch.full_like(raw_scale, math.exp(head.log_scale.item()))


def _loc_scale_case(cls: type, mode: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    head = cls((2, 3), scale=mode, fixed_scale=0.7, min_scale=1e-3)
    if mode == "shared":
        with torch.no_grad():
            head.log_scale.fill_(0.3)
    n = 6
    raw = torch.randn(4, head.params_per_dim * n, dtype=torch.float64)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    loc = raw[:, :n].reshape(4, 2, 3)
    raw_scale = raw[:, n:].reshape(4, 2, 3) if head.params_per_dim == 2 else torch.zeros_like(loc)
    scale = _gaussian_scale(mode, raw_scale, head)
    return head(raw).log_prob(x), x, loc, scale


@pytest.mark.parametrize("mode", ["fixed", "exp", "softplus", "shared"])
def test_gaussian_log_prob_matches_formula(mode: str) -> None:
    got, x, loc, scale = _loc_scale_case(GaussianHead, mode)
    expected = (-0.5 * LOG_2PI - scale.log() - (x - loc) ** 2 / (2 * scale**2)).sum((-2, -1))
    assert got.shape == (4,)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("mode", ["fixed", "exp", "softplus", "shared"])
def test_laplace_log_prob_matches_formula(mode: str) -> None:
    got, x, loc, scale = _loc_scale_case(LaplaceHead, mode)
    expected = (-torch.log(2 * scale) - (x - loc).abs() / scale).sum((-2, -1))
    torch.testing.assert_close(got, expected)


def test_param_counts_per_scale_mode() -> None:
    assert GaussianHead((5,), scale="fixed").num_outputs == 5
    assert GaussianHead((5,), scale="shared").num_outputs == 5
    assert GaussianHead((5,), scale="exp").num_outputs == 10
    assert LaplaceHead((5,), scale="softplus").num_outputs == 10


def test_shared_scale_is_a_learned_parameter() -> None:
    head = GaussianHead((3,), scale="shared")
    assert [name for name, _ in head.named_parameters()] == ["log_scale"]
    head(torch.randn(2, 3)).log_prob(torch.randn(2, 3)).sum().backward()
    assert head.log_scale.grad is not None and head.log_scale.grad.abs().item() > 0


def cb_log_normaliser64(lam: float) -> float:
    """log C(λ), C = 2 atanh(1 - 2λ) / (1 - 2λ) (C(1/2) = 2)."""
    if lam == 0.5:
        return math.log(2.0)
    return math.log(2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam))


def test_continuous_bernoulli_log_prob_matches_formula() -> None:
    lams = [0.05, 0.3, 0.8, 0.97]
    logits = torch.tensor([math.log(l / (1 - l)) for l in lams])
    x = torch.tensor([0.1, 0.9, 0.5, 0.0])
    got = ContinuousBernoulliHead(())(logits[:, None]).log_prob(x)
    for i, lam in enumerate(lams):
        xi = x[i].item()
        expected = xi * math.log(lam) + (1 - xi) * math.log(1 - lam) + cb_log_normaliser64(lam)
        assert got[i].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("lam", [0.01, 0.3, 0.5 - 1e-4, 0.5, 0.5 + 1e-4, 0.7, 0.99])
def test_continuous_bernoulli_integrates_to_one(lam: float) -> None:
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    for dtype, tol in ((torch.float64, 1e-7), (torch.float32, 1e-5)):
        eta = torch.tensor([math.log(lam / (1 - lam))], dtype=dtype)
        density = ContinuousBernoulliHead(())(eta.expand(grid.numel(), 1)).log_prob(grid.to(dtype)).double().exp()
        assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=tol)


def test_continuous_bernoulli_normaliser_stable_in_float32() -> None:
    # Far tails (|η| > ~16 saturates a λ-based formula in float32) and the band just outside a
    # Taylor window near λ = 1/2, where a λ-based formula loses digits; values and gradients
    # must match the float64 closed form log|η| - log tanh(|η|/2).
    etas = [-1e4, -50.0, -20.0, -3.0, -5e-3, -2e-3, 0.0, 1e-6, 2e-3, 4.5e-3, 1e-2, 0.3, 20.0, 50.0, 1e4]
    eta = torch.tensor(etas, requires_grad=True)
    x = torch.full((len(etas),), 0.25)
    head = ContinuousBernoulliHead(())
    log_prob = head(eta[:, None]).log_prob(x)
    (grad,) = torch.autograd.grad(log_prob.sum(), eta)
    for i, e in enumerate(etas):
        a = abs(e)
        log_c = math.log(2.0) if a == 0 else math.log(a) - math.log(math.tanh(a / 2))
        expected = x[i].item() * e - softplus64(torch.tensor(e, dtype=torch.float64)).item() + log_c
        assert log_prob[i].item() == pytest.approx(expected, rel=1e-6, abs=1e-5), e
        # d/dη [x η - softplus(η) + log C] = x - σ(η) + 1/η - 1/sinh(η)  (→ η/6 near 0)
        d_log_c = e / 6 if a < 1e-3 else 1 / e - 1 / math.sinh(e) if a < 700 else 1 / e
        expected_grad = x[i].item() - 1 / (1 + math.exp(-e)) + d_log_c if a < 700 else x[i].item() - (e > 0) + d_log_c
        assert grad[i].item() == pytest.approx(expected_grad, rel=1e-3, abs=2e-6), e


# ---------------------------------------------------------------------------- shapes and layout


def test_flat_and_feature_map_layouts_are_parameter_major() -> None:
    head = GaussianHead((3, 4, 5), scale="exp")
    assert head.num_outputs == 2 * 60 and head.out_channels == 6
    feature_map = torch.randn(2, 6, 4, 5)
    dist = head(feature_map)
    assert dist.batch_shape == (2,) and dist.event_shape == (3, 4, 5)
    torch.testing.assert_close(dist.base_dist.loc, feature_map[:, :3])
    torch.testing.assert_close(dist.base_dist.scale, feature_map[:, 3:].exp())
    assert dist.log_prob(torch.randn(2, 3, 4, 5)).shape == (2,)
    assert dist._validate_args is False and dist.base_dist._validate_args is False

    flat = torch.randn(7, 2, head.num_outputs)  # extra batch dims are kept
    dist = head(flat)
    assert dist.batch_shape == (7, 2)
    torch.testing.assert_close(dist.base_dist.loc, flat[..., :60].reshape(7, 2, 3, 4, 5))
    assert dist.log_prob(torch.zeros(7, 2, 3, 4, 5)).shape == (7, 2)

    with pytest.raises(DataError):
        head(torch.randn(2, 5, 4, 5))


@pytest.mark.parametrize(
    ("head", "per_dim"),
    [
        (BernoulliHead((1, 4, 4)), 1),
        (ContinuousBernoulliHead((1, 4, 4)), 1),
        (CategoricalHead((1, 4, 4), num_classes=8), 8),
        (GaussianHead((1, 4, 4), scale="softplus"), 2),
        (LaplaceHead((1, 4, 4), scale="fixed"), 1),
    ],
)
def test_every_head_reads_both_layouts(head, per_dim: int) -> None:
    assert head.num_outputs == per_dim * 16 and head.out_channels == per_dim
    x = torch.randint(0, 2, (3, 1, 4, 4)).float()
    from_map = head(torch.randn(3, per_dim, 4, 4)).log_prob(x)
    from_flat = head(torch.randn(3, head.num_outputs)).log_prob(x)
    assert from_map.shape == from_flat.shape == (3,)
    assert torch.isfinite(from_map).all() and torch.isfinite(from_flat).all()
    # The same numbers in either layout give the same distribution.
    raw = torch.randn(3, head.num_outputs)
    torch.testing.assert_close(head(raw).log_prob(x), head(raw.reshape(3, per_dim, 4, 4)).log_prob(x))


def test_scalar_event_and_categorical_class_axis() -> None:
    head = GaussianHead((), scale="softplus")
    assert head.num_outputs == 2
    assert head(torch.randn(5, 2)).log_prob(torch.randn(5)).shape == (5,)
    cat = CategoricalHead((2,), num_classes=3)
    raw = torch.randn(4, 6)
    dist = cat(raw)
    # class j of element i is raw[:, j * 2 + i]
    torch.testing.assert_close(dist.base_dist.logits.exp().sum(-1), torch.ones(4, 2))
    torch.testing.assert_close(dist.base_dist.logits[:, 1], torch.log_softmax(raw[:, [1, 3, 5]], -1))


# ---------------------------------------------------------------------------- scale floors


@pytest.mark.parametrize("mode", ["exp", "softplus"])
@pytest.mark.parametrize("cls", [GaussianHead, LaplaceHead])
def test_learned_scales_respect_the_floor(cls: type, mode: str) -> None:
    head = cls((4,), scale=mode, min_scale=1e-3)
    raw = torch.cat([torch.zeros(3, 4), torch.tensor([[-1e4, -100.0, -8.0, -7.0]]).expand(3, 4)], -1)
    scale = head(raw).base_dist.scale
    assert (scale >= 1e-3 * (1 - 1e-6)).all()
    assert torch.isfinite(head(raw).log_prob(torch.ones(3, 4))).all()


def test_shared_scale_respects_the_floor() -> None:
    head = GaussianHead((2,), scale="shared", min_scale=1e-2)
    with torch.no_grad():
        head.log_scale.fill_(-50.0)
    assert (head(torch.zeros(1, 2)).base_dist.scale >= 1e-2 * (1 - 1e-6)).all()


def test_mixture_scale_floor() -> None:
    head = MixtureHead((2,), num_components=3, min_scale=1e-4, scale="exp")
    raw = torch.full((2, head.num_outputs), -1e4)
    _, _, scale = head.components(raw)
    assert (scale >= 1e-4 * (1 - 1e-6)).all()


# ---------------------------------------------------------------------------- losses


def _mc_kl(q: Normal, p: Normal, n: int) -> tuple[float, float]:
    z = q.sample((n,))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1).double()
    return log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(n)


def test_kl_standard_normal_matches_monte_carlo() -> None:
    mu = torch.tensor([0.5, -1.0, 0.2])
    logvar = torch.tensor([0.3, -0.7, 0.1])
    analytic = kl_standard_normal(mu[None], logvar[None])
    assert analytic.shape == (1,)
    mc, se = _mc_kl(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(3), torch.ones(3)), 200_000)
    assert abs(analytic.item() - mc) < 4 * se
    # exact zero at the prior
    assert kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max().item() == 0.0


def test_kl_diag_gaussians_matches_monte_carlo() -> None:
    mu_q, logvar_q = torch.tensor([0.5, -1.0, 0.2]), torch.tensor([0.3, -0.7, 0.1])
    mu_p, logvar_p = torch.tensor([-0.2, 0.4, 0.0]), torch.tensor([0.5, 0.2, -0.4])
    analytic = kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p).item()
    q = Normal(mu_q, (0.5 * logvar_q).exp())
    p = Normal(mu_p, (0.5 * logvar_p).exp())
    mc, se = _mc_kl(q, p, 200_000)
    assert abs(analytic - mc) < 4 * se
    # against the standard-normal special case
    torch.testing.assert_close(
        kl_diag_gaussians(mu_q, logvar_q, torch.zeros(3), torch.zeros(3)), kl_standard_normal(mu_q, logvar_q)
    )


def test_log_densities_and_log_mean_exp() -> None:
    x, mu, logvar = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    expected = Normal(mu, (0.5 * logvar).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(log_normal_diag(x, mu, logvar), expected)
    torch.testing.assert_close(log_standard_normal(x), (-0.5 * LOG_2PI - 0.5 * x**2).sum(-1))

    values = torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(log_mean_exp(values, 1), values.exp().mean(1).log())
    torch.testing.assert_close(log_mean_exp(values, 0, keepdim=True), values.exp().mean(0, keepdim=True).log())
    big = torch.tensor([1000.0, 1000.0 + math.log(3.0)])  # naive exp overflows
    assert log_mean_exp(big, 0).item() == pytest.approx(1000.0 + math.log(2.0), rel=1e-6)


# ---------------------------------------------------------------------------- mixtures


def _brute_force_mixture(raw: Tensor, x: Tensor, k: int, d: int, component: str) -> Tensor:
    """log sum_k w_k prod_d f(x_d; μ_kd, σ_kd) by direct summation of densities (float64)."""
    logits, loc, raw_scale = raw[..., :k], raw[..., k : k + k * d], raw[..., k + k * d :]
    weights = torch.softmax(logits, -1)
    loc = loc.reshape(*raw.shape[:-1], k, d)
    scale = (torch.log1p(raw_scale.exp()) + 1e-4).reshape(*raw.shape[:-1], k, d)
    diff = x.unsqueeze(-2) - loc
    if component == "gaussian":
        density = torch.exp(-(diff**2) / (2 * scale**2)) / (scale * math.sqrt(2 * math.pi))
    else:
        density = torch.exp(-diff.abs() / scale) / (2 * scale)
    return torch.log((weights * density.prod(-1)).sum(-1))


@pytest.mark.parametrize("component", ["gaussian", "laplace"])
def test_mixture_log_prob_matches_brute_force(component: str) -> None:
    k, d = 3, 2
    head = MixtureHead((d,), num_components=k, component=component)
    assert head.num_outputs == k + 2 * k * d
    raw = torch.randn(6, head.num_outputs, dtype=torch.float64)
    x = torch.randn(6, d, dtype=torch.float64)
    got = head(raw).log_prob(x)
    assert got.shape == (6,)
    torch.testing.assert_close(got, _brute_force_mixture(raw, x, k, d, component))

    log_weights, loc, scale = head.components(raw)
    assert log_weights.shape == (6, k) and loc.shape == scale.shape == (6, k, d)
    torch.testing.assert_close(log_weights.logsumexp(-1), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(loc, raw[:, k : k + k * d].reshape(6, k, d))


def test_mixture_is_finite_at_extreme_logits_and_tiny_scales() -> None:
    k, d = 3, 2
    head = MixtureHead((d,), num_components=k, min_scale=1e-4)
    logits = torch.tensor([[1e4, -1e4, -1e4], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]])
    loc = torch.zeros(3, k * d)
    raw_scale = torch.full((3, k * d), -1e4)  # every scale at the floor
    raw = torch.cat([logits, loc, raw_scale], -1).requires_grad_(True)
    x = torch.full((3, d), 0.5)  # 5,000 floors away from every mean: each density underflows
    log_prob = head(raw).log_prob(x)
    assert torch.isfinite(log_prob).all()
    (grad,) = torch.autograd.grad(log_prob.sum(), raw)
    assert torch.isfinite(grad).all()
    # The dominant components decide the value: d * log N(0.5; 0, 1e-4); ties add log(1) = 0.
    expected = d * (-0.5 * LOG_2PI - math.log(1e-4) - 0.25 / (2 * 1e-8))
    torch.testing.assert_close(log_prob.double(), torch.full((3,), expected, dtype=torch.float64), rtol=1e-5, atol=0)
    # a naive log of summed densities underflows to -inf here
    assert torch.isinf(_brute_force_mixture(raw.detach().double(), x.double(), k, d, "gaussian")).all()


def test_mixture_samples_and_scalar_event() -> None:
    head = MixtureHead((2,), num_components=4)
    dist = head(torch.randn(5, head.num_outputs))
    assert dist.sample().shape == (5, 2) and dist.batch_shape == (5,)
    scalar = MixtureHead((), num_components=2)
    assert scalar.num_outputs == 6
    assert scalar(torch.randn(5, 6)).log_prob(torch.randn(5)).shape == (5,)


# ---------------------------------------------------------------------------- registry


def test_registry_names_and_errors() -> None:
    assert set(HEADS) == {"bernoulli", "categorical", "gaussian", "laplace", "continuous_bernoulli", "mixture"}
    assert isinstance(make_head("gaussian", (2,), scale="softplus"), GaussianHead)
    assert make_head("categorical", (1, 2, 2), num_classes=5).num_outputs == 20
    with pytest.raises(ConfigError) as excinfo:
        make_head("nope", (2,))
    message = str(excinfo.value)
    assert "nope" in message and all(name in message for name in HEADS)
    with pytest.raises(ConfigError, match="scale"):
        make_head("gaussian", (2,), scale="bogus")
    with pytest.raises(ConfigError, match="valid options"):
        make_head("bernoulli", (2,), temperature=1.0)
    with pytest.raises(ConfigError):
        make_head("mixture", (2, 3))


@pytest.mark.parametrize("name", ["bernoulli", "gaussian"])
def test_mean_nll_is_the_batch_mean_of_the_per_example_nll(name):
    from genlab.distributions import make_head

    torch.manual_seed(0)
    head = make_head(name, (1, 4, 4))
    raw = torch.randn(6, head.num_outputs, requires_grad=True)
    x = torch.rand(6, 1, 4, 4).round() if name == "bernoulli" else torch.rand(6, 1, 4, 4)
    expected = -head(raw).log_prob(x).mean()
    got = head.mean_nll(raw, x)
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-5)
    (g1,) = torch.autograd.grad(expected, raw)
    (g2,) = torch.autograd.grad(got, raw)
    assert torch.allclose(g1, g2, rtol=1e-5, atol=1e-7)
