"""Classifier: features, augmentation (shifts; random affine maps), adversarial training, evaluator."""
import pytest
import torch

from genlab.data import ArrayDataset
from genlab.errors import ConfigError, DataError
from genlab.models import build_model
from genlab.models.classifier import random_affine, random_shift
from genlab.registry import EVALUATORS, MODELS


def _tiny(**kw):
    cfg = {"image_shape": [1, 12, 12], "num_classes": 3, "channels": [4, 8], "kernel_size": 3, "hidden_dim": 6}
    cfg.update(kw)
    torch.manual_seed(0)
    return build_model("classifier", cfg)


def test_features_are_penultimate_layer():
    model = _tiny(dropout=0.0).eval()
    x = torch.rand(5, 1, 12, 12)
    feats = model.features(x)
    assert feats.shape == (5, 6) and float(feats.detach().min()) >= 0  # post-ReLU
    assert torch.allclose(model(x), model.output(feats), atol=1e-6)
    assert MODELS.get("classifier") is type(model)


def test_wrong_input_shape_is_a_data_error():
    with pytest.raises(DataError, match="expects images"):
        _tiny()(torch.rand(2, 1, 10, 10))
    with pytest.raises(ConfigError, match="pooling"):
        build_model("classifier", {"image_shape": [1, 4, 4], "channels": [4, 4, 4]})


def test_random_shift_moves_content_by_at_most_max_shift():
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    torch.manual_seed(0)
    out = random_shift(x, 2)
    assert out.shape == x.shape and torch.equal(out.sum((1, 2, 3)), torch.ones(64))  # nothing lost
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert int((rows - 4).abs().max()) == 2 and int((cols - 4).abs().max()) == 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # per-example offsets


def _discs(n: int, size: int = 28, radius: float = 5.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) <= radius**2).float().expand(n, 1, size, size).clone()


def test_random_affine_with_no_range_is_the_identity():
    x = torch.rand(4, 2, 28, 28)
    y = random_affine(x, max_scale=1.0, max_degrees=0.0, max_shift=0.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_random_affine_scales_each_image_both_ways_within_the_range():
    x = _discs(400)
    y = random_affine(x, max_scale=1.4, max_degrees=0.0, max_shift=0.0, generator=torch.Generator().manual_seed(1))
    scale = (y.sum((1, 2, 3)) / x.sum((1, 2, 3))).sqrt()  # a centred disc's ink grows with the area: scale**2
    assert scale.min() > 1 / 1.4 - 0.05 and scale.max() < 1.4 + 0.05
    assert (scale < 0.9).float().mean() > 0.2 and (scale > 1.1).float().mean() > 0.2  # shrinks and grows
    assert abs(float(scale.log().mean())) < 0.05  # log-uniform: centred on 1 (its sd over 400 draws is ~0.01)


def test_affine_augmentation_is_used_in_training_only():
    x, y = torch.rand(6, 1, 12, 12), torch.randint(0, 3, (6,))
    plain = _tiny(augment_shift=0, dropout=0.0)
    affine = _tiny(augment_shift=0, dropout=0.0, augment_scale=1.4, augment_degrees=15.0)  # same weights (seed 0)
    assert not torch.allclose(plain.train().loss((x, y)).total, affine.train().loss((x, y)).total)
    assert torch.allclose(plain.eval().evaluate((x, y))["loss"], affine.eval().evaluate((x, y))["loss"])
    with pytest.raises(ConfigError, match="augment_scale"):
        _tiny(augment_scale=0.5)


def test_adversarial_training_uses_fresh_attacks():
    model = _tiny(adversarial="fgsm", adv_eps=0.2, adv_weight=0.5, augment_shift=0, dropout=0.0).train()
    x, y = torch.rand(6, 1, 12, 12), torch.randint(0, 3, (6,))
    out = model.loss((x, y))
    assert {"adv_ce", "ce", "adv_accuracy", "accuracy"} <= set(out.terms)
    assert torch.allclose(out.total, 0.5 * out.terms["adv_ce"] + 0.5 * out.terms["ce"])
    # FGSM increases the loss to first order, so the adversarial term exceeds the clean one
    assert out.terms["adv_ce"].detach().item() > out.terms["ce"].detach().item()
    assert model.training  # the attack ran in eval mode and restored the mode
    assert all(p.grad is None for p in model.parameters())
    assert "fgsm_accuracy" in model.eval().evaluate((x, y))


def test_pgd_trained_model_reports_accuracy_under_its_training_attack():
    model = _tiny(adversarial="pgd", adv_eps=0.3, adv_steps=5, dropout=0.0).eval()
    with torch.no_grad():  # confident logits: a flat loss surface at x where one gradient step is weak
        for p in model.parameters():
            p.mul_(3.0)
    x = torch.rand(16, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)  # every clean prediction is right
    torch.manual_seed(0)  # PGD's random start
    metrics = model.evaluate((x, y))
    assert float(metrics["accuracy"]) == 1.0
    # the 5-step attack from a random start finds what the one-step attack misses
    assert float(metrics["pgd_accuracy"]) < min(0.5, float(metrics["fgsm_accuracy"]))


def test_evaluator_counts_correct_predictions():
    model = _tiny(dropout=0.0).eval()
    x = torch.rand(20, 1, 12, 12)
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = pred.clone()
    y[:5] = (y[:5] + 1) % 3  # exactly 5 wrong
    metrics = EVALUATORS.get("classifier")(model, ArrayDataset((x, y)), batch_size=7, attack="fgsm", eps=0.1)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["fgsm_accuracy"] <= metrics["accuracy"] + 1e-9
