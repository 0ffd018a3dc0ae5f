"""FGSM / PGD: constraint sets, targeted behaviour, and attack strength on a trained tiny classifier."""
import pytest
import torch

from genlab.attacks import attack_table, fgsm, format_table, pgd, project, robust_accuracy
from genlab.data import ArrayDataset
from genlab.errors import ConfigError, DataError
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer


def _blobs(n: int, seed: int):
    """Two-class 1x8x8 images: class 1 is brighter in the left half. Linearly separable, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.35 + 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    x[:, :, :, :4] += 0.2 * (2 * y.float() - 1).view(-1, 1, 1, 1)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = build_model("classifier", {"image_shape": [1, 8, 8], "num_classes": 2, "channels": [4], "kernel_size": 3,
                                       "hidden_dim": 16, "dropout": 0.0, "augment_shift": 0})
    x, y = _blobs(512, 0)
    cfg = TrainConfig(max_steps=80, batch_size=64, lr=5e-3, fused_optimizer=False, progress=False, tensorboard=False, device="cpu", eval_every=10**6,
                      checkpoint_every=10**6, sample_every=10**6)
    Trainer(model, ArrayDataset((x, y)), cfg).fit()
    return model.eval()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_adversarial_examples_stay_in_ball_and_box(trained, method, norm):
    x, y = _blobs(64, 1)
    x[:8] = 0.0  # corners of the box are where clipping matters
    x[8:16] = 1.0
    eps = 0.3 if norm == "linf" else 1.5
    adv = fgsm(trained, x, y, eps=eps, norm=norm) if method == "fgsm" else pgd(trained, x, y, eps=eps, norm=norm, steps=10)
    assert adv.shape == x.shape and not adv.requires_grad
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(size.max()) > 0.5 * eps  # the attack really moved


def test_project_is_nearest_point_for_l2():
    x = torch.full((1, 1, 2, 2), 0.5)
    far = x + torch.tensor([0.3, 0.4, 0.0, 0.0]).view(1, 1, 2, 2)  # distance 0.5
    out = project(far, x, 0.25, "l2")
    assert torch.allclose((out - x).flatten().norm(), torch.tensor(0.25))
    assert torch.allclose(out - x, (far - x) / 2)


def test_pgd_at_least_as_strong_as_fgsm_and_both_hurt(trained):
    x, y = _blobs(400, 2)
    clean = robust_accuracy(trained, x, y, method=None)
    assert clean > 0.95
    for eps in (0.05, 0.1, 0.2):
        acc_fgsm = robust_accuracy(trained, x, y, method="fgsm", eps=eps)
        acc_pgd = robust_accuracy(trained, x, y, method="pgd", eps=eps, steps=20)
        assert acc_pgd <= acc_fgsm + 1e-9, (eps, acc_pgd, acc_fgsm)
    # the class means differ by 0.4 on half the pixels: past eps = 0.2 every example can be flipped
    assert robust_accuracy(trained, x, y, method="pgd", eps=0.25, steps=20) < 0.5 * clean


def test_targeted_pgd_reaches_the_target(trained):
    x, y = _blobs(100, 3)
    target = 1 - y
    adv = pgd(trained, x, target, eps=0.2, steps=30, targeted=True)
    with torch.no_grad():
        hit = (trained(adv).argmax(1) == target).float().mean()
    assert float(hit) > 0.9


def test_attacks_leave_parameters_and_mode_alone(trained):
    x, y = _blobs(16, 4)
    trained.train()
    trained.zero_grad(set_to_none=True)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    pgd(trained, x, y, eps=0.1, steps=3)
    robust_accuracy(trained, x, y, method="fgsm", eps=0.1)
    assert trained.training
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    assert all(p.grad is None for p in trained.parameters())
    trained.eval()


def test_random_start_is_reproducible_from_generator(trained):
    x, y = _blobs(8, 5)
    a = pgd(trained, x, y, eps=0.1, steps=1, generator=torch.Generator().manual_seed(0))
    b = pgd(trained, x, y, eps=0.1, steps=1, generator=torch.Generator().manual_seed(0))
    c = pgd(trained, x, y, eps=0.1, steps=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_table_and_errors(trained):
    x, y = _blobs(50, 6)
    rows = attack_table(trained, x, y, eps=(0.1,), steps=5)
    assert [r["method"] for r in rows] == ["clean", "fgsm", "pgd"]
    assert "pgd" in format_table(rows)
    with pytest.raises(DataError, match="must lie in"):
        fgsm(trained, x * 3, y, eps=0.1)
    with pytest.raises(ConfigError, match="norm"):
        fgsm(trained, x, y, eps=0.1, norm="l1")


def test_attack_cli_prints_table_and_writes_figure(tmp_path, capsys):
    import json

    from genlab.checkpoint import save_model
    from genlab.cli import main

    torch.manual_seed(0)
    model = build_model("classifier", {"image_shape": [1, 28, 28], "num_classes": 10, "channels": [2], "hidden_dim": 8})
    save_model(model, tmp_path / "clf")
    figure = tmp_path / "attack.png"
    code = main(["attack", str(tmp_path / "clf"), "--data", "mnist-embedded", "--limit", "16", "--eps", "0.05,0.1",
                 "--steps", "2", "-o", str(figure)])
    assert code == 0
    out = capsys.readouterr().out
    assert "clean" in out and "fgsm" in out and "pgd" in out
    rows = json.loads(figure.with_suffix(".json").read_text())
    assert [(r["method"], r["eps"]) for r in rows] == [("clean", 0.0), ("fgsm", 0.05), ("fgsm", 0.1), ("pgd", 0.05), ("pgd", 0.1)]
    assert figure.is_file() and figure.stat().st_size > 5_000
    assert main(["attack", str(tmp_path / "clf"), "--data", "mnist-embedded", "--method", "cw"]) == 2  # one-line error
