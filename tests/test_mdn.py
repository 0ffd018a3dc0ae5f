"""Mixture density network and the single-Gaussian / MSE regressors."""
import math

import pytest
import torch

from genlab.data import DataConfig, load_dataset
from genlab.errors import DataError, GenlabError
from genlab.models import build_model
from genlab.data.toy import arm_from_info
from genlab.reports.mdn import arm_success
from genlab.reports.mdn import evaluate_conditional
from genlab.training import TrainConfig, Trainer


def _mdn(**kw):
    cfg = {"x_dim": 2, "y_dim": 3, "num_components": 4, "hidden_dims": [8]}
    cfg.update(kw)
    torch.manual_seed(0)
    return build_model("mdn", cfg)


@pytest.mark.parametrize("component", ["gaussian", "laplace"])
def test_nll_equals_brute_force(component):
    model = _mdn(component=component)
    x, y = torch.randn(6, 2), torch.randn(6, 3)
    log_w, loc, scale = model.components(x)
    family = torch.distributions.Normal if component == "gaussian" else torch.distributions.Laplace
    # sum_k w_k prod_d p(y_d | k) in float64, computed as densities (no log-sum-exp)
    dens = family(loc.double(), scale.double()).log_prob(y[:, None].double()).sum(-1).exp()  # (B, K)
    brute = -(log_w.double().exp() * dens).sum(1).log()
    assert torch.allclose(-model.log_prob(x, y).double(), brute, rtol=1e-5, atol=1e-6)
    assert torch.allclose(model.loss((x, y)).total.double(), brute.mean(), rtol=1e-5)


def test_nll_of_known_mixture_parameters_against_the_formula():
    """Network outputs fixed to known weights, means and scales (log-sigma heads): the training loss is
    -log sum_k pi_k prod_d N(y_d; mu_kd, sigma_kd), computed here from those numbers alone."""
    model = build_model("mdn", {"x_dim": 2, "y_dim": 2, "num_components": 3, "hidden_dims": [4], "scale": "exp"})
    logits = torch.tensor([0.5, -1.0, 1.5])
    means = torch.tensor([[0.0, 1.0], [-2.0, 0.5], [1.0, -1.0]])  # (K, D)
    sigmas = torch.tensor([[0.5, 1.0], [2.0, 0.3], [0.8, 0.8]])
    with torch.no_grad():
        model.network[-1].weight.zero_()
        model.network[-1].bias.copy_(torch.cat([logits, means.flatten(), sigmas.log().flatten()]))
    x = torch.randn(5, 2)
    y = torch.tensor([[0.1, 0.9], [-2.0, 0.4], [1.2, -0.7], [5.0, 5.0], [0.0, 0.0]])
    pi = logits.double().exp() / logits.double().exp().sum()
    s, m = sigmas.double(), means.double()
    gauss = torch.exp(-0.5 * ((y.double()[:, None] - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))  # (B, K, D)
    nll = -(pi * gauss.prod(-1)).sum(1).log()  # (B,)
    torch.testing.assert_close(model.loss((x, y)).total.double(), nll.mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(-model.log_prob(x, y).double(), nll, rtol=1e-5, atol=1e-6)


def test_nll_finite_at_extreme_logits_and_tiny_scales():
    model = _mdn(min_scale=1e-4)
    k, d = 4, 3
    raw = torch.zeros(2, k + 2 * k * d)
    raw[:, :k] = torch.tensor([1e4, -1e4, 0.0, -5e3])  # near one-hot weights
    raw[:, k + k * d :] = -1e3  # scales at the floor
    dist = model.head(raw.requires_grad_(True))
    far = torch.full((2, d), 50.0)  # far from every mean at tiny scale: log-density ~ -1e11, finite
    for value in (torch.zeros(2, d), far):
        lp = dist.log_prob(value)
        assert torch.isfinite(lp).all()
        (grad,) = torch.autograd.grad(lp.sum(), raw, retain_graph=True)
        assert torch.isfinite(grad).all()


def test_sample_modes_predict_shapes_and_order():
    model = _mdn()
    x = torch.randn(5, 2)
    assert model.sample(x, 7, generator=torch.Generator().manual_seed(0)).shape == (7, 5, 3)
    means, weights = model.modes(x)
    assert means.shape == (5, 4, 3) and weights.shape == (5, 4)
    assert torch.all(weights[:, :-1] >= weights[:, 1:])
    assert torch.allclose(weights.sum(1), torch.ones(5), atol=1e-5)
    pred = model.predict(x, refine_steps=0)
    # without refinement the prediction is one of the component means
    assert ((means - pred[:, None]).abs().amax(-1) < 1e-6).any(1).all()
    # refinement only ever climbs the mixture density
    dist = model.distribution(x)
    assert torch.all(dist.log_prob(model.predict(x)) >= dist.log_prob(pred) - 1e-4)
    with pytest.raises(GenlabError, match="conditional"):
        model.sample(3)
    with pytest.raises(DataError, match="expects inputs"):
        model(torch.randn(5, 3))


def test_samples_follow_the_mixture():
    model = build_model("mdn", {"x_dim": 1, "y_dim": 1, "num_components": 2, "hidden_dims": [4]})
    raw = torch.tensor([[0.0, math.log(3.0), -2.0, 2.0, -3.0, -3.0]])  # weights 1/4, 3/4 at -2, +2
    with torch.no_grad():
        model.network[-1].weight.zero_()
        model.network[-1].bias.copy_(raw[0])
    s = model.sample(torch.zeros(1, 1), 8000, generator=torch.Generator().manual_seed(0)).flatten()
    assert abs(float((s > 0).float().mean()) - 0.75) < 0.02
    assert abs(float(model.predict(torch.zeros(1, 1))) - 2.0) < 1e-3  # the heavier mode


def test_predict_finds_the_mode_of_overlapping_components():
    """Two equal components at -0.5 and +0.5 with scale 1 make ONE mode at 0 (no mean is a mode);
    a third, lighter and narrow component at 3 is a lower mode."""
    model = build_model("mdn", {"x_dim": 1, "y_dim": 1, "num_components": 3, "hidden_dims": [4], "scale": "exp"})
    logits = [0.0, 0.0, math.log(0.3)]
    locs = [-0.5, 0.5, 3.0]
    log_scales = [0.0, 0.0, math.log(0.5)]
    with torch.no_grad():
        model.network[-1].weight.zero_()
        model.network[-1].bias.copy_(torch.tensor(logits + locs + log_scales))
    pred = float(model.predict(torch.zeros(1, 1)))
    assert abs(pred) < 1e-3
    assert abs(float(model.predict(torch.zeros(1, 1), refine_steps=0)) - 3.0) > 1  # a mean, not the mode


def test_mdn_beats_single_gaussian_on_inverse_sine():
    """The point of the family: several answers per input. Quick training, clear gap in test NLL."""
    data = load_dataset(DataConfig(name="inverse-sine", size=2000))
    test = load_dataset(DataConfig(name="inverse-sine", size=2000), "test")
    cfg = TrainConfig(max_steps=1000, batch_size=100, lr=1e-2, lr_schedule="cosine", progress=False, tensorboard=False,
                      device="cpu", eval_every=10**6, checkpoint_every=10**6, sample_every=10**6, fused_optimizer=False)
    nll = {}
    for name, extra in (("mdn", {"num_components": 3}), ("regressor", {})):
        torch.manual_seed(0)
        model = build_model(name, {"x_dim": 1, "y_dim": 1, "hidden_dims": [32, 32], **extra})
        Trainer(model, data, cfg).fit()
        nll[name] = evaluate_conditional(model.eval(), test)["nll"]
    assert nll["mdn"] < nll["regressor"] - 0.25, nll


def test_mse_regressor_and_arm_success():
    model = build_model("regressor", {"x_dim": 2, "y_dim": 2, "likelihood": "mse", "hidden_dims": [4]})
    x, y = torch.randn(4, 2), torch.randn(4, 2)
    out = model.loss((x, y))
    assert torch.allclose(out.total, ((model(x) - y) ** 2).sum(1).mean())
    arm_data = load_dataset(DataConfig(name="robot-arm", size=200), "test")
    metrics = evaluate_conditional(model.eval(), arm_data)
    hits, _ = arm_success(model.predict(arm_data.x), arm_data.x, arm_from_info(arm_data.info))
    assert "nll" not in metrics and metrics["reach_rate"] == float(hits.float().mean())
    # a model that predicts the true angles reaches every target; one 0.2 rad off reaches few
    model.predict = lambda x: arm_data.y
    assert evaluate_conditional(model, arm_data)["reach_rate"] == 1.0
    model.predict = lambda x: arm_data.y + 0.2
    assert evaluate_conditional(model, arm_data)["reach_rate"] < 0.2
    # true angles always reach; their mirror image reaches only where two solutions exist
    from genlab.data.toy import ARM_THETA1, ARM_THETA2, ARM_LENGTHS

    arm = {"lengths": ARM_LENGTHS, "theta1_range": ARM_THETA1, "theta2_range": ARM_THETA2}
    hit, two = arm_success(arm_data.y, arm_data.x, arm)
    assert bool(hit.all()) and 0 < float(two.float().mean()) < 1
    wrong, _ = arm_success(arm_data.y + 0.2, arm_data.x, arm)
    assert float(wrong.float().mean()) < 0.2


def test_train_mdn_on_robot_arm_through_the_api(tmp_path):
    from genlab import api

    summary = api.train("mdn", data="robot-arm", out=tmp_path / "run",
                        overrides=["train.max_steps=30", "data.size=512", "train.progress=false", "train.tensorboard=false"])
    assert summary["steps"] == 30
    assert "reach_rate_two_solutions" in summary  # the reporter's numbers
    assert (tmp_path / "run" / "arm_modes.png").is_file()
    model, spec = api.load_run(tmp_path / "run")
    assert model.config.x_dim == 2 and model.config.y_dim == 2  # filled from the data
    again = api.evaluate(model, api.run_data(spec, None))
    assert set(again) >= {"nll", "mse", "reach_rate"}
    assert summary["reach_rate"] == pytest.approx(again["reach_rate"])  # the summary is the saved model's test rate
