"""The lecture's slide numbers match the lecture, and the figures of the per-pixel head (slide 10), the
lower bound (slide 82), the decoder's distribution (slide 93) and the social-impact arithmetic
(slides 114-125): each check holds on numbers where the claim holds and fails on numbers that break
each of its conditions in turn; the fast figures run whole."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from genlab.lecture import load_parts, run_lecture

SLIDES_MD = Path(__file__).resolve().parents[1] / ".." / "shared" / "lecture" / "slides.md"
# the slides issue 26 asks the new figures to reproduce: each is the slides of exactly one figure
NEW_SLIDE_RANGES = ("10", "82", "93", "114", "118", "121-123", "125")


def _slide_numbers(slides: str) -> list[int]:
    """ "55-58,94-96" -> [55, 56, 57, 58, 94, 95, 96]."""
    numbers = []
    for part in slides.split(","):
        first, _, last = part.partition("-")
        numbers += range(int(first), int(last or first) + 1)
    return numbers


@pytest.fixture(scope="module")
def lecture_slides() -> set[int]:
    if not SLIDES_MD.is_file():
        pytest.skip("../shared/lecture/slides.md is not present")
    return {int(n) for n in re.findall(r"^## Slide (\d+)\s*$", SLIDES_MD.read_text(), flags=re.M)}


def test_every_figure_reproduces_slides_that_exist(lecture_slides):
    for figure in load_parts().values():
        numbers = _slide_numbers(figure.slides)
        assert numbers and set(numbers) <= lecture_slides, (figure.id, figure.slides)


def test_the_new_slide_ranges_are_covered_once(lecture_slides):
    by_slides = [f.slides for f in load_parts().values()]
    for slides in NEW_SLIDE_RANGES:
        assert set(_slide_numbers(slides)) <= lecture_slides, slides
        assert by_slides.count(slides) == 1, (slides, by_slides.count(slides))


def test_known_slide_numbers():
    # the figures whose numbers drifted from the lecture's, and the one that redoes two places of it: what
    # slides.md says they reproduce
    expected = {"robot-arm": "12", "random-generator": "17-18", "untrained-conv": "19", "interpolation": "48-49",
                "lerp-vs-slerp": "50", "cgan-mnist": "34-36", "vae-vs-ae-samples": "94-95", "vae-latent-2d": "100",
                "ae-vs-vae-faces": "55-58,94-96"}
    figures = load_parts()
    assert {k: figures[k].slides for k in expected} == expected


# --------------------------------------------------------------------------------------------- checks

# For each figure: numbers for which its claim holds, then one change per condition of its check that
# breaks that condition (and only that one is expected to fail; the test asserts the check fails).
HOLDS = {
    "prosecutors-fallacy": {"population": 10_000_000, "p_use_given_group": 0.09, "p_use_given_other": 0.08,
                            "p_innocent_given_group": 0.91, "p_group_given_use": 0.144, "pros": 384, "tall": 300_598,
                            "p_tall_given_pro": 0.977, "p_pro_given_tall": 0.00125, "p_pro_given_tall_bayes": 0.00131},
    "decision-cost": {"delete/bayes_threshold": 0.909, "delete/best_threshold": 0.91, "delete/cost_at_best": 0.308,
                      "delete/cost_at_half": 0.774, "delete/accuracy_at_best": 0.739, "junk folder/cost_at_best": 0.154,
                      "accuracy_at_half": 0.846},
    "spurious-correlations": {"fixed_instances": 20, "fixed_features": 1000, "widths": [1, 10, 100, 1000, 10000],
                              "max_r_by_width": [0.22, 0.45, 0.60, 0.70, 0.77], "heights": [10, 20, 50, 100, 500, 2000],
                              "max_r_by_height": [0.89, 0.68, 0.45, 0.34, 0.15, 0.07], "best_feature_train_r": 0.68,
                              "held_out": 10000, "best_feature_held_out_r": -0.011},
    "causal-graphs": {"confounder/gap": 0.029, "confounder/gap_se": 0.0014, "confounder/gap_given_c": 0.0008,
                      "confounder/gap_given_c_se": 0.0013, "through C/gap": 0.019, "through C/gap_se": 0.0014,
                      "through C/gap_given_c": -0.0016, "through C/gap_given_c_se": 0.0013, "direct/gap": 0.020,
                      "direct/gap_se": 0.0014, "direct/gap_given_c": 0.020, "direct/gap_given_c_se": 0.0014},
}


def _bound_row(step, elbo, iwae_10, iwae_100, iwae_1000, log_px, quadrature_error=0.003):
    return {"step": step, "elbo": elbo, "iwae_10": iwae_10, "iwae_100": iwae_100, "iwae_1000": iwae_1000,
            "log_px": log_px, "quadrature_error": quadrature_error}


HOLDS["elbo-gap"] = {
    "joint": [_bound_row(50, -215.5, -210.6, -209.8, -209.4, -209.2), _bound_row(125, -200.6, -199.4, -199.1, -199.0, -198.7),
              _bound_row(500, -171.6, -170.5, -170.1, -169.98, -169.8), _bound_row(1000, -167.9, -165.5, -164.6, -164.1, -162.8)],
    "q_only": [_bound_row(0, -309.6, -195.5, -169.0, -163.7, -162.82), _bound_row(50, -188.6, -183.5, -181.1, -179.1, -162.82),
               _bound_row(200, -169.9, -167.4, -166.4, -165.9, -162.82), _bound_row(400, -169.3, -167.0, -166.1, -165.4, -162.82)],
}
HOLDS["decoder-choice"] = {
    "bits_per_dim": {"Gaussian, fixed sigma 0.1": 3.71, "Gaussian, learned sigma": 2.95, "Laplace, learned scale": 2.88,
                     "Bernoulli (BCE)": 37.0, "continuous Bernoulli": 6.02},
    "continuous_bits_per_dim": {"Gaussian, fixed sigma 0.1": -0.3, "Gaussian, learned sigma": -1.96,
                                "Laplace, learned scale": -2.84, "continuous Bernoulli": -5.8},
    "reconstruction_mse": {"Gaussian, fixed sigma 0.1": 0.021, "Gaussian, learned sigma": 0.064, "Laplace, learned scale": 0.076,
                           "Bernoulli (BCE)": 0.033, "continuous Bernoulli": 0.073},
}
HOLDS["pixel-gaussians"] = {"sigma_edge": 0.38, "sigma_background": 0.022, "sigma_error_correlation": 0.70,
                            "edge_z_rms": 1.55, "nll_learned": -1420.0, "nll_one_sigma": -88.0}


def _with(figure_id, key, index=None, **changes):
    """HOLDS[figure_id] with ``changes`` made in the dict ``key`` (a row of it when ``index`` is given)."""
    value = HOLDS[figure_id][key]
    if index is None:
        return {key: {**value, **changes}}
    rows = [dict(r) for r in value]
    rows[index].update(changes)
    return {key: rows}


BREAKS = {
    "pixel-gaussians": [{"sigma_background": 0.2},  # as unsure on the background as at the edges
                        {"sigma_error_correlation": 0.1},  # sigma unrelated to the errors
                        {"edge_z_rms": 5.0},  # sigma far smaller than the errors
                        {"nll_learned": -50.0}],  # the learned sigma a worse density than one sigma
    "elbo-gap": [_with("elbo-gap", "joint", 2, iwae_100=-169.0),  # a larger k gives a lower bound
                 _with("elbo-gap", "joint", 1, quadrature_error=0.02),  # the grid is too coarse
                 _with("elbo-gap", "joint", 0, log_px=-170.0),  # the likelihood did not rise
                 _with("elbo-gap", "q_only", 3, elbo=-240.0),  # q's training did not close the gap
                 _with("elbo-gap", "q_only", 3, log_px=-162.7)],  # p(x) moved while only q trained
    "decoder-choice": [_with("decoder-choice", "bits_per_dim", **{"continuous Bernoulli": 9.0}),
                       _with("decoder-choice", "bits_per_dim", **{"Laplace, learned scale": 3.0}),
                       _with("decoder-choice", "bits_per_dim", **{"Gaussian, fixed sigma 0.1": 2.9}),
                       _with("decoder-choice", "bits_per_dim", **{"Bernoulli (BCE)": 5.0}),
                       _with("decoder-choice", "reconstruction_mse", **{"Bernoulli (BCE)": 0.07}),
                       _with("decoder-choice", "continuous_bits_per_dim", **{"Gaussian, learned sigma": 0.5})],
    "prosecutors-fallacy": [{"p_use_given_group": 0.08, "p_use_given_other": 0.09},  # the feature predicts nothing
                            {"p_innocent_given_group": 0.6},  # the group is mostly users
                            {"p_pro_given_tall": 0.5, "p_pro_given_tall_bayes": 0.5},  # inverse conditionals close
                            {"p_pro_given_tall": 0.003}],  # simulation disagrees with Bayes' rule
    "decision-cost": [{"delete/best_threshold": 0.5},
                      {"delete/cost_at_best": 0.75},
                      {"delete/accuracy_at_best": 0.9},
                      {"junk folder/cost_at_best": 0.4}],
    "spurious-correlations": [{"max_r_by_width": [0.22, 0.45, 0.40, 0.70, 0.77]},
                              {"max_r_by_width": [0.1, 0.2, 0.3, 0.4, 0.5]},
                              {"max_r_by_height": [0.89, 0.68, 0.75, 0.34, 0.15, 0.07]},
                              {"best_feature_held_out_r": 0.5}],
    "causal-graphs": [{"confounder/gap": 0.002}, {"through C/gap": 0.0}, {"direct/gap": -0.01},
                      {"confounder/gap_given_c": 0.02}, {"through C/gap_given_c": -0.01},
                      {"direct/gap_given_c": 0.001}],
}


def test_every_new_figure_has_holding_and_breaking_numbers():
    assert set(HOLDS) == set(BREAKS) and set(HOLDS) <= set(load_parts())


@pytest.mark.parametrize("figure_id", sorted(HOLDS))
@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_check_holds(figure_id, budget):
    conditions = load_parts()[figure_id].check(HOLDS[figure_id], budget)
    assert conditions and all(ok for _, ok in conditions), conditions


@pytest.mark.parametrize("figure_id, index", [(f, i) for f in sorted(BREAKS) for i in range(len(BREAKS[f]))])
@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_check_fails_when_one_condition_breaks(figure_id, index, budget):
    conditions = load_parts()[figure_id].check({**HOLDS[figure_id], **BREAKS[figure_id][index]}, budget)
    # the broken condition is the index-th one; the others still hold
    assert [ok for _, ok in conditions] == [i != index for i in range(len(conditions))], conditions
    assert len(conditions) == len(BREAKS[figure_id])


# --------------------------------------------------------------------------------------------- smoke runs

FAST = ["prosecutors-fallacy", "decision-cost", "spurious-correlations", "causal-graphs"]  # a few s each
# elbo-gap and decoder-choice take about 40 s of CPU each at the smoke budget: they run in the lecture
# (and by ``genlab figure ID``), not here; their checks are tested above. The quadrature they rest on is
# tested on its own below.


@pytest.mark.parametrize("figure_id", FAST)
def test_fast_figure_runs_and_passes(tmp_path, figure_id):
    (result,) = run_lecture(tmp_path, budget="smoke", only=[figure_id], progress=False, flat=True)
    assert result.verdict == "pass", (result.error, result.conditions)
    assert result.paths and all(Path(p).is_file() for p in result.paths)
    assert result.cpu_seconds < 20


def test_quadrature_and_bounds_agree_on_a_tiny_vae():
    """The exact log p(x) by quadrature lies above every importance-weighted bound, which rises with k,
    and the two subdivisions of the adaptive grid agree."""
    import torch

    from genlab.lecture.likelihood import KS, bounds, importance_log_weights, quadrature_log_px
    from genlab.models import build_model

    torch.manual_seed(0)
    model = build_model("vae", {"image_shape": [1, 4, 4], "latent_dim": 2, "hidden_dims": [8]}).eval()
    x = (torch.rand(5, 16) > 0.5).float()
    fine, check = quadrature_log_px(model, x, cell=0.1)
    assert (fine - check).abs().max() < 1e-4
    b = bounds(importance_log_weights(model, x, 4000, torch.Generator().manual_seed(0)))
    values = [b[k] for k in KS]
    assert all(a < c for a, c in zip(values, values[1:])) and values[-1] <= float(fine.mean()) + 0.01
    assert float(fine.mean()) - values[-1] < 0.05  # a broad posterior: 1,000 samples nearly close the gap
    # the model's own IWAE estimate (an independent implementation) agrees with the quadrature
    torch.manual_seed(1)
    assert abs(float(-model.iwae_nll(x, k=1000).mean()) - float(fine.mean())) < 0.05


def test_quadrature_refines_until_a_sharp_posterior_converges():
    """A sharp decoder narrows the posterior to a few grid cells: one fixed subdivision misses log p(x) by
    a few hundredths of a nat, the adaptive refinement lands within its tolerance of a very fine reference."""
    import torch

    from genlab.lecture.likelihood import quadrature_log_px
    from genlab.models import build_model

    torch.manual_seed(0)
    model = build_model("vae", {"image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [16]}).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(12)
    x = (torch.rand(5, 64) > 0.5).float()
    reference, _ = quadrature_log_px(model, x, tolerance=1e-5, max_subdivide=128)
    coarse, _ = quadrature_log_px(model, x, max_subdivide=2)
    fine, check = quadrature_log_px(model, x)
    assert (coarse - reference).abs().max() > 0.02
    assert (fine - check).abs().max() <= 0.004
    assert (fine - reference).abs().max() < 0.004


def test_discretised_likelihood_sums_to_one_over_the_bins():
    import torch
    from torch.distributions import ContinuousBernoulli, Laplace, Normal

    from genlab.lecture.likelihood import LEVELS, discretised_log_prob

    bins = torch.arange(LEVELS, dtype=torch.float64) / (LEVELS - 1)
    for base in (Normal(torch.full((LEVELS,), 0.3), torch.full((LEVELS,), 0.05)),
                 Laplace(torch.full((LEVELS,), 0.0), torch.full((LEVELS,), 0.2)),
                 ContinuousBernoulli(logits=torch.full((LEVELS,), -2.0))):
        total = discretised_log_prob(base, bins).exp().sum()
        assert abs(float(total) - 1) < 1e-4, (type(base).__name__, float(total))


def test_edge_and_background_masks():
    import torch

    from genlab.lecture.pixels import pixel_masks

    image = torch.zeros(1, 1, 12, 12)
    image[0, 0, 4:8, 4:8] = 1.0  # a 4 x 4 square stroke
    edge, background = pixel_masks(image)
    assert bool(edge[0, 0, 4, 4]) and bool(edge[0, 0, 3, 5]) and not bool(edge[0, 0, 0, 0])
    assert not bool(edge[0, 0, 5:7, 5:7].any())  # the inside of the stroke is no edge
    assert bool(background[0, 0, 0, 0]) and not bool(background[0, 0, 2, 5]) and not bool(background[0, 0, 5, 5])
    assert not bool((edge & background).any())
