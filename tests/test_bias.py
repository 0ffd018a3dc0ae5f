"""Bias audit (genlab.metrics.bias): class rates of generated samples vs the training data's."""
from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError, DataError
from genlab.metrics.bias import (bias_audit, confusion_matrix, corrected_rates, format_audit, two_proportion_z,
                                 wilson_interval)


def _draw(rates: list[float], n: int, g: torch.Generator) -> torch.Tensor:
    return torch.multinomial(torch.tensor(rates), n, replacement=True, generator=g)


def _classify(true: torch.Tensor, confusion: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A simulated classifier: each true class i is labelled j with probability confusion[i, j]."""
    return torch.multinomial(confusion[true], 1, generator=g)[:, 0]


def test_confusion_matrix_by_hand():
    true = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 2, 1, 0, 2])
    expected = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(confusion_matrix(true, pred, 3), expected)
    # a class never seen in the true labels gets the identity row (no correction for it)
    torch.testing.assert_close(confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 1]), 3)[2],
                               torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))


def test_correction_recovers_the_true_rates_through_a_noisy_classifier():
    g = torch.Generator().manual_seed(0)
    # two classes: sensitivity 0.8, specificity 0.9 (Rogan-Gladen)
    confusion = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    true = _draw([0.7, 0.3], 200_000, g)
    observed = torch.bincount(_classify(true, confusion, g), minlength=2).double() / len(true)
    assert abs(float(observed[1]) - (0.3 * 0.8 + 0.7 * 0.1)) < 0.005  # the raw rate is biased: 0.31
    torch.testing.assert_close(corrected_rates(observed, confusion.double()), torch.tensor([0.7, 0.3], dtype=torch.float64),
                               atol=0.006, rtol=0)
    # three classes with a lopsided confusion
    confusion3 = torch.tensor([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.0, 0.1, 0.9]])
    true3 = _draw([0.5, 0.2, 0.3], 200_000, g)
    observed3 = torch.bincount(_classify(true3, confusion3, g), minlength=3).double() / len(true3)
    torch.testing.assert_close(corrected_rates(observed3, confusion3.double()), torch.tensor([0.5, 0.2, 0.3], dtype=torch.float64),
                               atol=0.01, rtol=0)


def test_wilson_interval_and_z_against_known_values():
    low, high = wilson_interval(torch.tensor([0.0, 5.0]), 10)
    torch.testing.assert_close(low, torch.tensor([0.0, 0.2366], dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(high, torch.tensor([0.2775, 0.7634], dtype=torch.float64), atol=1e-4, rtol=0)
    # 60/100 vs 40/100: pooled 0.5, se = sqrt(0.25 * 0.02) -> z = 0.2 / 0.0707 = 2.828
    z = two_proportion_z(torch.tensor([60.0]), 100, torch.tensor([40.0]), 100)
    assert abs(float(z) - 2.8284) < 1e-3


def _audit_for(generated_rates: list[float], seed: int = 0) -> dict:
    """Data skewed 70/30; a classifier that errs toward class 0; generated samples at the given rates."""
    g = torch.Generator().manual_seed(seed)
    confusion = torch.tensor([[0.95, 0.05], [0.25, 0.75]])
    data = _draw([0.7, 0.3], 20_000, g)
    held_true = _draw([0.7, 0.3], 20_000, g)
    held_pred = _classify(held_true, confusion, g)
    generated_true = _draw(generated_rates, 20_000, g)
    return bias_audit(_classify(generated_true, confusion, g), data, num_classes=2, class_names=["female", "male"],
                      heldout_labels=held_true, heldout_predictions=held_pred)


def test_a_faithful_generator_shows_no_amplification_despite_the_classifier_error():
    audit = _audit_for([0.7, 0.3])
    female, male = audit["classes"]
    assert male["generated_rate"] < 0.27  # the raw classified rate looks like an erased minority ...
    assert abs(male["generated_rate_corrected"] - 0.3) < 0.015  # ... the corrected one does not
    assert abs(male["same_lens_difference"]) < 0.015 and abs(male["same_lens_z"]) < 3
    assert audit["majority_class"] == "female" and abs(audit["amplification"]) < 0.015
    assert audit["total_variation"] < 0.015 and audit["basis"] == "corrected"


def test_a_generator_that_drops_the_minority_is_flagged():
    audit = _audit_for([0.9, 0.1])
    female, male = audit["classes"]
    assert abs(audit["amplification"] - 0.2) < 0.02  # 0.9 produced where the data holds 0.7
    assert male["same_lens_z"] < -10 and male["same_lens_p"] < 1e-6
    assert female["generated_ci95"][0] < female["generated_rate"] < female["generated_ci95"][1]
    assert "amplified by 0.2" in format_audit(audit)
    raw = bias_audit(torch.zeros(10, dtype=torch.long), torch.tensor([0, 1, 1, 1]), num_classes=2)
    assert raw["basis"] == "raw" and raw["majority_class"] == "1" and raw["amplification"] == -0.75
    balanced = bias_audit(torch.zeros(10, dtype=torch.long), torch.tensor([0, 1, 0, 1]), num_classes=2)
    assert balanced["amplification"] is None and balanced["total_variation"] == 0.5
    assert "balanced" in format_audit(balanced)


def test_bad_input_names_the_problem():
    with pytest.raises(DataError, match="labels must lie in 0..1, got 0..2"):
        bias_audit(torch.tensor([0, 2]), torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(DataError, match="fractional"):
        bias_audit(torch.tensor([0.5]), torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(DataError, match="3 true labels but 2 predictions"):
        confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 2)
    with pytest.raises(DataError, match="both heldout_labels and heldout_predictions"):
        bias_audit(torch.tensor([0]), torch.tensor([0, 1]), num_classes=2, heldout_labels=torch.tensor([0]))
    with pytest.raises(DataError, match="no labels"):
        bias_audit(torch.tensor([], dtype=torch.long), torch.tensor([0, 1]), num_classes=2)


def test_correction_clips_an_impossible_rate_to_zero():
    """An observed minority rate below the classifier's false-positive rate has no non-negative
    solution (exact solve: 1.214 / -0.214): the correction clips it to 0 and renormalises. This is
    the branch behind a published 'corrected 0.000'."""
    confusion = torch.tensor([[0.8, 0.2], [0.1, 0.9]], dtype=torch.float64)  # 20 % false positives
    observed = torch.tensor([0.95, 0.05], dtype=torch.float64)
    exact = torch.linalg.solve(confusion.T, observed)
    assert float(exact[1]) == pytest.approx(-0.2143, abs=1e-4)
    torch.testing.assert_close(corrected_rates(observed, confusion), torch.tensor([1.0, 0.0], dtype=torch.float64))
    # through the audit: data 60/40, held-out classifier behaviour as above, generated rate 0.05
    held_true = torch.tensor([0] * 10 + [1] * 10)
    held_pred = torch.tensor([0] * 8 + [1] * 2 + [0] * 1 + [1] * 9)
    generated = torch.tensor([0] * 95 + [1] * 5)
    audit = bias_audit(generated, torch.tensor([0] * 6 + [1] * 4), num_classes=2,
                       heldout_labels=held_true, heldout_predictions=held_pred)
    assert audit["confusion"] == [[0.8, 0.2], [0.1, 0.9]]
    assert [row["generated_rate_corrected"] for row in audit["classes"]] == [1.0, 0.0]
    assert audit["amplification"] == pytest.approx(0.4) and audit["total_variation"] == pytest.approx(0.4)


def test_api_audit_pairs_each_heldout_label_with_the_classifiers_prediction_for_that_image():
    """A genlab classifier whose network is a known rule (class 1 = mean brightness above 0.5) audits
    a GAN: the held-out confusion matrix and accuracy must be those of the rule on the held-out images
    in their order, and the generated rates those of the rule on the GAN's samples."""
    from genlab import api
    from genlab.data.base import ArrayDataset
    from genlab.models import build_model

    torch.manual_seed(0)
    classifier = build_model("classifier", {"image_shape": [1, 16, 16], "num_classes": 2, "channels": [4], "hidden_dim": 8})
    classifier.forward = lambda x: torch.stack([torch.full_like(x[:, 0, 0, 0], 0.5), x.mean((1, 2, 3))], 1)
    gan = build_model("gan", {"image_shape": [1, 16, 16], "latent_dim": 4, "generator_channels": 4, "discriminator_channels": 4})
    brightness = torch.linspace(0.05, 0.95, 20)  # the rule predicts 0 for the first 10 images, 1 for the rest
    images = brightness[:, None, None, None].expand(-1, 1, 16, 16).clone()
    # 3 of the dark images are labelled 1 and 2 of the bright 0, scattered so that pairing any label
    # with a neighbour's prediction changes the counts
    labels = torch.tensor([0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1])
    train = ArrayDataset((images, torch.tensor([0] * 12 + [1] * 8)), {"name": "bright"})
    test = ArrayDataset((images, labels), {"name": "bright"})
    audit = api.audit(gan, classifier, train, test, num_samples=40, seed=3)
    # rows: true class; P(pred 0 | true 0) = 7/9, P(pred 1 | true 1) = 8/11
    torch.testing.assert_close(torch.tensor(audit["confusion"]), torch.tensor([[7 / 9, 2 / 9], [3 / 11, 8 / 11]]),
                               rtol=0, atol=1e-9)
    assert audit["protocol"]["classifier_accuracy"] == pytest.approx(15 / 20)
    assert [row["heldout_classified_rate"] for row in audit["classes"]] == [0.5, 0.5]
    samples = api.sample(gan, 40, seed=3)
    bright = float((samples.mean((1, 2, 3)) > 0.5).double().mean())
    assert [row["generated_rate"] for row in audit["classes"]] == pytest.approx([1 - bright, bright])
    assert [row["data_rate"] for row in audit["classes"]] == [0.6, 0.4]


def test_audit_labels_columns_and_lazy_sampling_after_the_label_checks():
    """The audit's label logic (genlab.metrics.bias): a column by attribute name, one-line errors for
    missing or ambiguous labels, and no sample drawn before the labels are known to be good."""
    from genlab.data.base import ArrayDataset
    from genlab.metrics.bias import audit_labels, classifier_audit, classify
    from genlab.models import build_model

    attrs = ArrayDataset((torch.zeros(4, 1, 4, 4), torch.tensor([[0, 1], [1, 1], [0, 0], [1, 0]])),
                         {"name": "faces", "attr_names": ["Male", "Smiling"]})
    assert audit_labels(attrs, "Smiling").tolist() == [1, 1, 0, 0]
    with pytest.raises(DataError, match=r"^the labels have several columns; name one with --attr \(valid: Male, Smiling\)$"):
        audit_labels(attrs)
    with pytest.raises(DataError, match="unknown attribute 'Bald'"):
        audit_labels(attrs, "Bald")
    with pytest.raises(DataError, match="has no labels"):
        audit_labels(ArrayDataset((torch.zeros(2, 1, 4, 4),), {"name": "plain"}))

    torch.manual_seed(0)
    classifier = build_model("classifier", {"image_shape": [1, 4, 4], "num_classes": 2, "channels": [2], "hidden_dim": 4})
    classifier.forward = lambda x: torch.stack([torch.full_like(x[:, 0, 0, 0], 0.5), x.mean((1, 2, 3))], 1)
    images = torch.linspace(0, 1, 9)[:, None, None, None].expand(-1, 1, 4, 4)
    assert classify(classifier, images, batch_size=2).tolist() == [0] * 5 + [1] * 4  # brightness > 0.5 is class 1
    with pytest.raises(DataError, match=r"the classifier takes images of shape \(1, 4, 4\)"):
        classify(classifier, torch.zeros(2, 1, 8, 8))
    drawn = []
    with pytest.raises(DataError, match="unknown attribute"):
        classifier_audit(classifier, lambda: drawn.append(1) or images, attrs, attribute="Bald")
    assert not drawn  # the sampler was never called
    audit = classifier_audit(classifier, lambda: images, attrs, attrs, attribute="Male")
    assert [row["class"] for row in audit["classes"]] == ["not Male", "Male"]
    assert [row["generated_rate"] for row in audit["classes"]] == pytest.approx([5 / 9, 4 / 9])
    assert audit["protocol"]["attribute"] == "Male" and audit["protocol"]["dataset"] == "faces"
    with pytest.raises(ConfigError, match="^model 'gan' has no classifier head .*the bias audit needs one$"):
        classifier_audit(build_model("gan", {"x_dim": 2, "latent_dim": 2}), images, attrs)
