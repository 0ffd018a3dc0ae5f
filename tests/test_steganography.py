"""Slide 39's steganography: the measure (a cycle that reads hidden content breaks under a perturbation
that barely changes the translation; one that carries it visibly does not), the ranking rule of
successes and failures, and the figure's check, one breaking example per condition."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab import build_model
from genlab.errors import ConfigError, DataError
from genlab.lecture import load_parts
from genlab.reports.cyclegan import perturb, psnr, rank_translations, steganography
from test_cyclegan import Hide, Reveal  # a G that hides its input, and the F that reads it back

TINY = {"image_shape": [1, 8, 8], "num_filters": 2, "discriminator_filters": 2, "residual_blocks": 1}


def model_with(g: nn.Module, f: nn.Module):
    torch.manual_seed(0)
    model = build_model("cyclegan", TINY)
    model.generator_ab, model.generator_ba = g, f
    return model


def bright_or_dark(n=200):
    """Images whose class is their brightness: 0 = dark (0.2), 1 = bright (0.8), with a little texture."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    x = (0.2 + 0.6 * labels.float())[:, None, None, None] + 0.05 * torch.randn(n, 1, 8, 8, generator=g)
    return x.clamp(0, 1), labels


def classify(x):
    return (x.mean((1, 2, 3)) > 0.5).long()


def test_psnr_of_noise_matches_its_std_and_perturb_is_small_at_35_db():
    x = torch.full((64, 1, 28, 28), 0.5)
    sigma = 10 ** (-35 / 20)
    shaken = perturb(x, "noise", sigma, generator=torch.Generator().manual_seed(0))
    assert abs(float(psnr(shaken, x).mean()) - 35.0) < 0.3
    blurred = perturb(x, "blur", 0.5)
    assert torch.allclose(blurred, x, atol=1e-6)  # a flat image is its own blur
    with pytest.raises(ConfigError, match="noise' or 'blur"):
        perturb(x, "jpeg", 0.1)
    with pytest.raises(ConfigError, match=">= 0"):
        perturb(x, "noise", -1.0)


def test_a_hidden_cycle_breaks_under_a_35_db_perturbation_and_a_visible_one_does_not():
    x, labels = bright_or_dark()
    hidden = steganography(model_with(Hide(1e-3), Reveal(1e-3)), x, classify=classify, labels=labels)
    visible = steganography(model_with(nn.Identity(), nn.Identity()), x, classify=classify, labels=labels)
    for s in (hidden, visible):
        assert s["psnr_db"] > 34.0 and s["acc_source"] == 1.0 and s["acc_back_clean"] == 1.0
    assert hidden["cycle_clean"] < 1e-4 and visible["cycle_clean"] < 1e-6  # both cycles come back when untouched
    assert hidden["amplification"] > 100 and hidden["acc_back_perturbed"] < 0.8
    assert 0.9 < visible["amplification"] < 1.1 and visible["acc_back_perturbed"] == 1.0
    assert set(hidden["images"]) == {"x", "translation", "perturbed", "back", "back_perturbed"}
    with pytest.raises(DataError, match="N, C, S, S"):
        steganography(model_with(nn.Identity(), nn.Identity()), x[0])


def test_without_labels_the_classifier_reading_of_the_source_is_the_truth():
    x, labels = bright_or_dark()
    s = steganography(model_with(nn.Identity(), nn.Identity()), x, classify=lambda v: 1 - classify(v))
    assert s["acc_source"] == 1.0 and s["acc_back_clean"] == 1.0


def test_rank_translations_successes_keep_the_class_failures_lose_it_lowest_cycle_first():
    kept = torch.tensor([False, True, True, False, True])
    cycle = torch.tensor([0.5, 0.1, 0.2, 0.3, 0.05])
    successes, failures = rank_translations(kept, cycle, k=2)
    assert successes.tolist() == [4, 1] and failures.tolist() == [3, 0]
    with pytest.raises(DataError, match="two \\(N,\\) vectors"):
        rank_translations(kept, cycle[:3])
    # per group (source label): the lowest-cycle success and failure of each group, in group order
    groups = torch.tensor([1, 0, 1, 1, 0])
    successes, failures = rank_translations(kept, cycle, k=10, groups=groups)
    assert successes.tolist() == [4, 2] and failures.tolist() == [3]  # group 0: 4 (0.05) before 1 (0.1); group 1: 2
    with pytest.raises(DataError, match="groups"):
        rank_translations(kept, cycle, groups=groups[:3])


# numbers for which the figure's claim holds, and for each condition a change that breaks it alone
HOLDS = {"cyclegan-steganography": {
    "early/psnr_db": 36.8, "early/amplification": 1.0, "early/acc_back_clean": 0.94, "early/acc_back_perturbed": 0.94,
    "early/content_a2b": 0.35, "full/content_a2b": 0.99, "full/acc_back_clean": 0.99},
    "cyclegan-successes-failures": {"kept_a2b": 0.8, "kept_b2a": 0.75, "failures_a2b": 400, "failures_b2a": 500,
                                    "cycle_auc_a2b": 0.6, "cycle_auc_b2a": 0.55}}
BREAKS = {"cyclegan-steganography": [
    {"early/psnr_db": 25.0},  # a perturbation one can see proves nothing
    {"early/acc_back_clean": 0.5, "early/acc_back_perturbed": 0.5},  # F(G(a)) knows no more than G(a) shows
    {"early/acc_back_perturbed": 0.6},  # the code is fragile after all
    {"full/content_a2b": 0.5},  # (full budget) trained long, G(a) still hides the digit
], "cyclegan-successes-failures": [
    {"kept_b2a": 0.3},  # it mostly fails
    {"failures_a2b": 3},  # too few failures to show
    {"cycle_auc_b2a": 0.95},  # the cycle error does find the failures
]}
FULL_ONLY = {"cyclegan-steganography": 1}  # how many of a figure's conditions (the last ones) only the full budget checks


@pytest.mark.parametrize("figure_id", sorted(HOLDS))
@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_figure_check_holds_and_each_condition_has_its_breaking_example(figure_id, budget):
    figure = load_parts()[figure_id]
    assert figure.slides == {"cyclegan-steganography": "39", "cyclegan-successes-failures": "40-41"}[figure_id]
    holds = HOLDS[figure_id]
    breaks = BREAKS[figure_id][:len(BREAKS[figure_id]) - FULL_ONLY.get(figure_id, 0)] if budget == "smoke" else BREAKS[figure_id]
    conditions = figure.check(holds, budget)
    assert len(conditions) == len(breaks) and all(ok for _, ok in conditions), conditions
    for index, change in enumerate(breaks):
        failed = [i for i, (_, ok) in enumerate(figure.check({**holds, **change}, budget)) if not ok]
        assert failed == [index], (change, failed)


def test_auc_of_a_perfect_a_useless_and_a_tied_score():
    from genlab.lecture.steganography import _auc

    positive = torch.tensor([True, True, False, False])
    assert _auc(torch.tensor([0.9, 0.8, 0.1, 0.2]), positive) == 1.0
    assert _auc(torch.tensor([0.1, 0.2, 0.9, 0.8]), positive) == 0.0
    assert _auc(torch.ones(4), positive) == 0.5
    assert _auc(torch.ones(4), torch.zeros(4, dtype=torch.bool)) == 0.5


def test_the_successes_figure_is_skipped_cleanly_without_usps(tmp_path):
    from genlab.lecture import Context, DataAbsent
    from genlab.lecture.steganography import _usps28

    with pytest.raises(DataAbsent, match="usps"):
        _usps28(Context(out=tmp_path, runs=tmp_path / "runs", data_root=tmp_path), "test")
