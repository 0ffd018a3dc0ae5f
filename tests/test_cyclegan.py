"""CycleGAN: cycle and identity losses, the image pool, unpaired data, resume after SIGKILL with a
full pool, a tiny run that lowers the cycle loss, translation both ways, evaluation and the CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from genlab import build_model, load
from genlab.cli import main
from genlab.data import ArrayDataset, BatchLoader, DataConfig, load_dataset
from genlab.data.unpaired import UnpairedDataset, unpaired_dataset
from genlab.errors import ConfigError, DataError
from genlab.models.cyclegan import ImagePool
from genlab.nn.resnet import ResnetGenerator
from genlab.reports.cyclegan import evaluate_cyclegan, report_cyclegan
from genlab.training import TrainConfig, Trainer

TINY = {"image_shape": [1, 8, 8], "num_filters": 2, "discriminator_filters": 2, "residual_blocks": 1}


def tiny(**overrides):
    torch.manual_seed(0)
    return build_model("cyclegan", {**TINY, **overrides})


def domains(n_a=6, n_b=5, c_a=1, c_b=1, size=8, seed=0) -> UnpairedDataset:
    g = torch.Generator().manual_seed(seed)
    return unpaired_dataset(torch.rand(n_a, c_a, size, size, generator=g), torch.rand(n_b, c_b, size, size, generator=g), "toy")


class Shift(nn.Module):
    def __init__(self, amount: float) -> None:
        super().__init__()
        self.amount = amount

    def forward(self, x):
        return x + self.amount


def train_config(**kw) -> TrainConfig:
    base = dict(batch_size=2, max_steps=6, progress=False, tensorboard=False, device="cpu", log_every=1,
                eval_every=10**6, sample_every=10**6, checkpoint_every=10**6)
    return TrainConfig(**{**base, **kw})


# ---------------------------------------------------------------------------------- losses


def test_cycle_and_identity_losses_vanish_for_identity_generators_and_grow_with_a_perturbation():
    model = tiny()
    a, b = torch.rand(3, 1, 8, 8) * 2 - 1, torch.rand(3, 1, 8, 8) * 2 - 1
    model.generator_ab, model.generator_ba = nn.Identity(), nn.Identity()
    t = model.cycle_terms(a, b)
    assert t["cycle_a"] == 0 and t["cycle_b"] == 0 and t["identity"] == 0
    previous = 0.0
    for amount in (0.01, 0.1, 0.4):
        model.generator_ab = Shift(amount)  # G(x) = x + amount, F = identity
        t = model.cycle_terms(a, b)
        assert torch.allclose(t["cycle_a"], torch.tensor(amount)) and torch.allclose(t["cycle_b"], torch.tensor(amount))
        assert torch.allclose(t["identity"], torch.tensor(amount))  # |G(b) - b| + |F(a) - a|
        assert t["cycle_a"] > previous
        previous = float(t["cycle_a"])


class Hide(nn.Module):
    """A steganographic generator: a blank image carrying its input at amplitude ``scale``."""
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return -1 + self.scale * (x + 1)


class Reveal(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, y):
        return (y + 1) / self.scale - 1


def test_cycle_noise_is_training_only_and_defeats_a_hidden_cycle():
    """Identity generators: the noisy cycle's L1 is E|2σε| = 2σ·sqrt(2/π) in signed units; evaluation
    measures the clean cycle. A pair that hides a in a near-blank G(a) cycles perfectly without noise
    and fails with it: the noise is what makes hidden content useless."""
    sigma = 0.05
    model = tiny(cycle_noise=sigma).train()
    model.generator_ab, model.generator_ba = nn.Identity(), nn.Identity()
    torch.manual_seed(1)
    a, b = torch.rand(64, 1, 8, 8) * 2 - 1, torch.rand(64, 1, 8, 8) * 2 - 1
    expected = 2 * sigma * (2 / torch.pi) ** 0.5
    assert abs(float(model.cycle_terms(a, b)["cycle_a"]) - expected) < 0.1 * expected
    assert float(model.eval().cycle_terms(a, b)["cycle_a"]) == 0.0
    hidden = tiny(cycle_noise=sigma).train()
    hidden.generator_ab, hidden.generator_ba = Hide(1e-3), Reveal(1e-3)
    assert float(hidden.eval().cycle_terms(a, b)["cycle_a"]) < 1e-4
    assert float(hidden.train().cycle_terms(a, b)["cycle_a"]) > 10
    with pytest.raises(ConfigError, match="cycle_noise"):
        tiny(cycle_noise=-0.1)


def test_generator_loss_is_adversarial_plus_weighted_cycle_and_identity():
    model = tiny(cycle_weight=7.0, identity_weight=0.25)
    model.generator_ab = Shift(0.2)
    model.generator_ba = nn.Identity()
    batch = (torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
    out = model.loss(batch, "generators")
    # logged terms are in [0, 1] pixel units: cycle = 0.2 / 2, identity = (0.2 + 0) / 4
    assert torch.allclose(out.terms["cycle_a"], torch.tensor(0.1)) and torch.allclose(out.terms["identity"], torch.tensor(0.05))
    expected = out.terms["adv_ab"] + out.terms["adv_ba"] + 7.0 * (0.2 + 0.2) + 7.0 * 0.25 * 0.2
    assert torch.allclose(out.total, expected)


def test_identity_loss_defaults_off_for_grey_to_rgb_and_is_refused_there():
    assert tiny(image_shape_b=[3, 8, 8]).config.resolved_identity_weight == 0
    assert tiny().config.resolved_identity_weight == 0.5
    with pytest.raises(ConfigError, match="same channels"):
        tiny(image_shape_b=[3, 8, 8], identity_weight=0.5)
    with pytest.raises(ConfigError, match="one image size"):
        tiny(image_shape_b=[1, 12, 12])
    with pytest.raises(ConfigError, match="divisible by 4"):
        tiny(image_shape=[1, 10, 10])


def test_discriminator_loss_is_halved_least_squares():
    model = tiny(pool_size=0).eval()
    model.discriminator_a = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))
    model.discriminator_b = model.discriminator_a
    with torch.no_grad():
        model.discriminator_a[1].weight.zero_()
        model.discriminator_a[1].bias.fill_(0.3)  # every score 0.3
    out = model.loss((torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)), "discriminators")
    per_domain = 0.5 * ((0.3 - 1) ** 2 + 0.3**2)
    assert torch.allclose(out.terms["loss_a"], torch.tensor(per_domain)) and torch.allclose(out.total, torch.tensor(2 * per_domain))


def test_resnet_generator_keeps_shape_and_range():
    net = ResnetGenerator(1, 3, num_filters=4, residual_blocks=2)
    y = net(torch.rand(2, 1, 12, 12) * 2 - 1)
    assert y.shape == (2, 3, 12, 12) and y.abs().max() <= 1
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in net.modules()) == 2 + 2 * 2


# ---------------------------------------------------------------------------------- image pool


def test_pool_fills_then_returns_stored_images_half_the_time_and_never_exceeds_its_size():
    torch.manual_seed(0)
    pool = ImagePool(50)
    ids = torch.arange(1000, dtype=torch.float32).view(250, 4, 1, 1, 1)  # image value = its id
    swapped = stored = 0
    for step, batch in enumerate(ids):
        out = pool.query(batch)
        assert pool.count <= 50 and pool.images.shape[0] == 50
        if step < 12:  # 48 images: still filling, returned unchanged
            assert torch.equal(out, batch)
        elif step >= 13:
            returned = out.flatten()
            own = returned == batch.flatten()
            swapped += int((~own).sum())
            stored += len(returned)
            assert bool((returned[~own] < batch.flatten()[0]).all())  # a swap returns an earlier image
    assert pool.count == 50
    assert abs(swapped / stored - 0.5) < 0.06, swapped / stored
    # the pool's contents are all distinct images it was given (nothing duplicated or invented)
    assert len(set(pool.images.flatten().tolist())) == 50


def test_pool_state_round_trips_and_rejects_a_bigger_pool():
    pool = ImagePool(3)
    pool.query(torch.rand(2, 1, 4, 4))
    copy = ImagePool(3)
    copy.load_state(pool.state())
    assert copy.count == 2 and torch.equal(copy.images[:2], pool.images[:2])
    with pytest.raises(DataError, match="cannot hold"):
        ImagePool(1).load_state(pool.state())


# ---------------------------------------------------------------------------------- data


def test_unpaired_loader_draws_b_independently_of_a_and_reproducibly():
    a = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1)
    b = 100 + torch.arange(13, dtype=torch.float32).view(13, 1, 1, 1)
    data = UnpairedDataset((a,), {"name": "ids"}, other=(b,))
    loader = BatchLoader(data, 4, seed=3)
    partners: dict[int, list[int]] = {}
    seen_b = set()
    for epoch in range(40):
        for xa, xb in loader.epoch(epoch):
            for i, j in zip(xa.flatten().tolist(), xb.flatten().tolist()):
                partners.setdefault(int(i), []).append(int(j))
                seen_b.add(int(j))
    assert seen_b == set(range(100, 113))  # every B image is drawn ...
    for i, js in partners.items():  # ... and no A image keeps one partner across epochs
        assert len(set(js)) >= 8, (i, js)
    # the draw is a function of (seed, epoch, step): resuming mid-epoch sees the same batches
    full = list(loader.epoch(5))
    resumed = list(loader.epoch(5, start=1))
    assert all(torch.equal(x, y) for p, q in zip(full[1:], resumed) for x, y in zip(p, q))
    other_seed = list(BatchLoader(data, 4, seed=4).epoch(5))
    assert not all(torch.equal(p[1], q[1]) for p, q in zip(full, other_seed))


def test_unpaired_head_cuts_both_domains_and_empty_domains_fail_in_one_line():
    data = domains(n_a=6, n_b=5)
    head = data.head(3)
    assert len(head.domain_a[0]) == 3 and len(head.domain_b[0]) == 3
    with pytest.raises(DataError, match="domain B is empty"):
        unpaired_dataset(torch.rand(2, 1, 8, 8), torch.rand(0, 1, 8, 8), "toy")
    with pytest.raises(DataError, match="differ in size"):
        unpaired_dataset(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 6, 6), "toy")


def _write_images(folder, count, size, mode, value=0):
    folder.mkdir(parents=True)
    for i in range(count):
        channels = 3 if mode == "RGB" else 1
        array = np.full((size, size, channels), (value + 10 * i) % 256, np.uint8)
        Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(folder / f"{i}.png")


def test_unpaired_folder_layout_sizes_channels_and_split(tmp_path):
    _write_images(tmp_path / "trainA", 10, 12, "L")
    _write_images(tmp_path / "trainB", 7, 20, "RGB")
    train = load_dataset(f"unpaired:{tmp_path}", "train")
    test = load_dataset(f"unpaired:{tmp_path}", "test")
    assert train.info["image_shape"] == (1, 12, 12) and train.info["image_shape_b"] == (3, 12, 12)  # B resized to A's size
    assert len(train.domain_a[0]) + len(test.domain_a[0]) == 10 and len(train.domain_b[0]) + len(test.domain_b[0]) == 7
    forced = load_dataset(DataConfig(name="unpaired", path=str(tmp_path), channels=3, image_size=8), "train")
    assert forced.info["image_shape"] == (3, 8, 8) == forced.info["image_shape_b"]
    (tmp_path / "testB").mkdir()
    _write_images(tmp_path / "testA", 2, 12, "L")
    with pytest.raises(DataError, match="domain B is empty"):
        load_dataset(f"unpaired:{tmp_path}", "test")
    with pytest.raises(DataError, match="trainA"):
        load_dataset(f"unpaired:{tmp_path / 'trainA'}", "train")


def test_domains_resize_to_a_common_power_of_two_and_keep_labels(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.random((20, 28, 28), dtype=np.float32), y=rng.integers(0, 10, 20))
    np.savez(tmp_path / "b.npz", x=rng.random((30, 16, 16), dtype=np.float32), y=rng.integers(0, 10, 30))
    config = DataConfig(name="domains", options={"a": f"npz:{tmp_path / 'a.npz'}", "b": f"npz:{tmp_path / 'b.npz'}"})
    data = load_dataset(config, "train")
    assert data.info["image_shape"] == (1, 32, 32) == data.info["image_shape_b"]
    assert data.domain_a[1] is not None and len(data.domain_b[1]) == len(data.domain_b[0])
    assert len(data.batch(torch.arange(4), torch.Generator().manual_seed(0))) == 2  # batches carry no labels
    with pytest.raises(DataError, match="needs data.options.b"):
        load_dataset(DataConfig(name="domains", options={"a": "npz:x"}), "train")


def test_domain_crop_takes_the_centre_once_and_matches_the_single_dataset_crop(tmp_path):
    """crop_a keeps A's central fraction, resized once to the matched size: a bright 14 px square in the
    middle of a dark 28 px image fills the 32 px frame after crop_a=0.5, B is untouched, and the pixels
    equal ``--data.crop`` on A alone (what its classifier trains on)."""
    x = np.zeros((5, 28, 28), np.float32)
    x[:, 7:21, 7:21] = 1.0
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(5))
    np.savez(tmp_path / "b.npz", x=np.full((6, 16, 16), 0.5, np.float32), y=np.arange(6))
    options = {"a": f"npz:{tmp_path / 'a.npz'}", "b": f"npz:{tmp_path / 'b.npz'}", "crop_a": 0.5}
    data = load_dataset(DataConfig(name="domains", options=options), "test")
    assert data.domain_a[0].shape[1:] == (1, 32, 32) and torch.allclose(data.domain_a[0], torch.ones(1))
    assert torch.allclose(data.domain_b[0], torch.full((1,), 0.5))
    alone = load_dataset(DataConfig(name="npz", path=str(tmp_path / "a.npz"), image_size=32, crop=0.5), "test")
    assert torch.equal(alone.x, data.domain_a[0]) and alone.info["crop"] == 0.5
    assert alone.info["image_shape"] == (1, 32, 32)  # what a model built from this dataset expects
    uncropped = load_dataset(DataConfig(name="npz", path=str(tmp_path / "a.npz"), image_size=32), "test")
    assert float(uncropped.x.mean()) < 0.3  # without the crop the square stays a quarter of the frame
    with pytest.raises(DataError, match=r"crop_b must be in \(0, 1\], got 2"):
        load_dataset(DataConfig(name="domains", options={**options, "crop_b": 2}), "test")
    with pytest.raises(DataError, match=r"data.crop needs images \(N, C, H, W\); ring has shape \(64, 2\)"):
        load_dataset(DataConfig(name="ring", size=64, crop=0.5), "train")
    with pytest.raises(ConfigError, match=r"data.crop must be in \(0, 1\]"):
        DataConfig(name="npz", crop=0.0).validate()


def test_celeba_attribute_splits_without_and_with_and_names_bad_attributes(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    lines = ["12", "Eyeglasses Smiling"]
    for i in range(12):
        Image.fromarray(np.full((30, 20, 3), 20 * i, np.uint8)).save(folder / f"{i + 1:06d}.jpg")
        lines.append(f"{i + 1:06d}.jpg {1 if i % 3 == 0 else -1} 1")
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    config = DataConfig(name="celeba-attribute", path=str(tmp_path / "celeba"), image_size=8,
                        options={"attribute": "Eyeglasses", "test_size": 2})
    data = load_dataset(config, "train")  # images 0..9: with glasses 0, 3, 6, 9
    assert len(data.domain_a[0]) == 6 and len(data.domain_b[0]) == 4
    assert data.domain_b[1].eq(1).all() and data.domain_a[1].eq(0).all()
    with pytest.raises(DataError, match="unknown CelebA attribute 'Glasses'.*Eyeglasses"):
        load_dataset(config.replace(options={"attribute": "Glasses"}), "train")
    with pytest.raises(DataError, match=r"domain A \(without Smiling\) is empty"):
        load_dataset(config.replace(options={"attribute": "Smiling", "test_size": 2}), "train")


def test_facades_unpaired_discards_training_pairs_and_keeps_test_pairs(shared_data):
    path = str(shared_data / "facades")
    train = load_dataset(DataConfig(name="facades-unpaired", path=path, image_size=16), "train")
    paired = load_dataset(DataConfig(name="facades", path=path, image_size=16), "train")
    assert torch.equal(train.domain_a[0], paired.tensors[0])
    assert not torch.equal(train.domain_b[0], paired.tensors[1])  # the photos were shuffled ...
    assert torch.equal(train.domain_b[0].sort(0).values, paired.tensors[1].sort(0).values)  # ... not changed
    assert "discarded" in train.info["pairing"]
    test = load_dataset(DataConfig(name="facades-unpaired", path=path, image_size=16), "test")
    assert test.info["paired"] is True


# ---------------------------------------------------------------------------------- training


def test_a_tiny_run_lowers_the_cycle_loss():
    g = torch.Generator().manual_seed(0)
    smooth = lambda n: F.interpolate(torch.rand(n, 1, 3, 3, generator=g), size=(8, 8), mode="bilinear")  # noqa: E731
    data = unpaired_dataset(smooth(16), smooth(16), "smooth")
    model = tiny(num_filters=4, discriminator_filters=2, generator_lr=5e-3, identity_weight=0.0)  # the cycle term alone
    batch = (data.domain_a[0], data.domain_b[0])
    before = model.eval().evaluate(batch)
    Trainer(model, data, train_config(batch_size=4, max_steps=60)).fit()
    after = model.eval().evaluate(batch)
    for key in ("generators/cycle_a", "generators/cycle_b"):
        assert after[key] < 0.8 * before[key], (key, before[key], after[key])


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    from test_cyclegan import domains, tiny, train_config
    from genlab.training import Trainer

    def die(trainer, event, info):
        if event == "checkpoint" and info["step"] == 4:
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer(tiny(pool_size=3), domains(), train_config(checkpoint_every=2), out_dir={out!r}, callbacks=[die]).fit()
""")


def test_resume_after_sigkill_is_bit_identical_with_a_full_pool(tmp_path):
    uninterrupted = tiny(pool_size=3)
    Trainer(uninterrupted, domains(), train_config()).fit()

    out = tmp_path / "run"
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_RUN.format(tests=os.path.dirname(__file__), out=str(out)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    from genlab.checkpoint import STATE_NAME, latest_checkpoint, load_training_state

    state = load_training_state(latest_checkpoint(out / "checkpoints") / STATE_NAME)
    assert state["step"] == 4 and state["model_extras"]["pool_a"].shape[0] == 3  # full pool, swaps happening

    resumed = tiny(pool_size=3)
    trainer = Trainer(resumed, domains(), train_config(), out_dir=out)
    trainer.fit(resume=True)
    assert trainer.step == 6
    for key, value in uninterrupted.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert torch.equal(uninterrupted.pool_b.images, resumed.pool_b.images)


# ---------------------------------------------------------------------------------- inference, evaluation, CLI


def test_translate_both_directions_keeps_shapes_channels_and_range():
    model = tiny(image_shape_b=[3, 8, 8]).eval()
    a, b = torch.rand(2, 1, 8, 8), torch.rand(3, 3, 8, 8)
    fake_b, fake_a = model.translate(a, "a2b"), model.translate(b, "b2a")
    assert fake_b.shape == (2, 3, 8, 8) and fake_a.shape == (3, 1, 8, 8)
    assert model.translate(fake_b, "b2a").shape == a.shape and model.translate(fake_a, "a2b").shape == b.shape
    for x in (fake_b, fake_a):
        assert x.min() >= 0 and x.max() <= 1
    with pytest.raises(DataError, match=r"a2b input must be \(N, 1, 8, 8\)"):
        model.translate(b, "a2b")
    with pytest.raises(DataError, match="direction"):
        model.translate(a, "sideways")


class BrightnessClassifier(nn.Module):
    """Class = mean brightness in thirds: a classifier whose answer on any image is known."""

    def __init__(self) -> None:
        super().__init__()
        self.config = type("Config", (), {"image_shape": (1, 8, 8)})()
        self.unused = nn.Parameter(torch.zeros(1))

    def predict(self, x):
        return (x.mean((1, 2, 3)) * 3).long().clamp(0, 2)


def test_evaluator_cycle_errors_and_content_preservation():
    model = tiny().eval()
    model.generator_ab, model.generator_ba = nn.Identity(), nn.Identity()
    g = torch.Generator().manual_seed(0)
    a = torch.rand(30, 1, 1, 1, generator=g).expand(30, 1, 8, 8).contiguous()  # flat images of random brightness
    b = torch.rand(20, 1, 1, 1, generator=g).expand(20, 1, 8, 8).contiguous()
    classifier = BrightnessClassifier()
    labels_b = classifier.predict(b)
    labels_b[:5] = (labels_b[:5] + 1) % 3  # 5 of 20 mislabelled: raw accuracy on B is 0.75
    data = unpaired_dataset(a, b, "toy", labels_a=classifier.predict(a), labels_b=labels_b)
    result = evaluate_cyclegan(model, data, classifiers={"clf": classifier})
    assert result["cycle_a"] == 0 and result["cycle_b"] == 0
    assert result["clf_acc_a"] == 1 and result["clf_acc_b"] == 0.75
    # identity translations keep the content: accuracy after = accuracy before
    assert result["clf_acc_a2b"] == 1 and result["clf_acc_b2a"] == 0.75
    model.generator_ab = Shift(-0.8)  # G darkens by 0.4 in [0, 1] units: the brightness class changes
    broken = evaluate_cyclegan(model, data, classifiers={"clf": classifier})
    expected = float((classifier.predict(a - 0.4) == data.domain_a[1]).float().mean())
    assert broken["clf_acc_a2b"] == pytest.approx(expected) and expected < 0.7
    assert broken["cycle_a"] == pytest.approx(0.4, abs=1e-5)
    with pytest.raises(DataError, match="unpaired"):
        evaluate_cyclegan(model, ArrayDataset((data.domain_a[0],)))


def test_reporter_and_translate_cli_both_directions(tmp_path, capsys, monkeypatch):
    import genlab.viz

    model = tiny(image_shape_b=[3, 8, 8], num_filters=4).eval()
    data = domains(c_b=3)
    drawn = []
    draw = genlab.viz.image_rows
    monkeypatch.setattr(genlab.viz, "image_rows", lambda rows, path, **kw: drawn.append(rows) or draw(rows, path, **kw))
    metrics = report_cyclegan(model, tmp_path, data, data)
    (rows,) = drawn  # cycle.png: six labelled rows, 5 columns (min of 6 and 5), grey A shown as RGB
    assert [label for label, _ in rows] == ["a (domain A)", "G(a)", "F(G(a))", "b (domain B)", "F(b)", "G(F(b))"]
    assert all(images.shape == (5, 3, 8, 8) for _, images in rows)
    assert torch.equal(rows[0][1][:, :1], data.domain_a[0][:5]) and torch.equal(rows[3][1], data.domain_b[0][:5])
    assert Image.open(tmp_path / "cycle.png").size[0] > 200
    assert {"test/cycle_a", "test/cycle_b"} <= set(metrics)
    model.save_pretrained(str(tmp_path / "model"))
    Image.fromarray(np.full((12, 12), 200, np.uint8), "L").save(tmp_path / "grey.png")
    Image.fromarray(np.full((12, 12, 3), 90, np.uint8), "RGB").save(tmp_path / "rgb.png")
    assert main(["translate", str(tmp_path / "model"), str(tmp_path / "grey.png"), "-o", str(tmp_path / "out")]) == 0
    assert main(["translate", str(tmp_path / "model"), str(tmp_path / "rgb.png"), "--direction", "b2a", "-o", str(tmp_path / "out")]) == 0
    for name in ("grey-a2b.png", "rgb-b2a.png"):
        image = Image.open(tmp_path / "out" / name)
        assert image.mode == "RGB" and image.size == (2 * (2 + 3 * 10), 2 * (2 + 10))  # input | translation | reconstruction
    assert "grey-a2b.png" in capsys.readouterr().out
    reloaded = load(tmp_path / "model")
    assert torch.equal(reloaded.translate(data.domain_a[0], "a2b"), model.translate(data.domain_a[0], "a2b"))


def test_translate_cli_refuses_b2a_for_pix2pix(tmp_path, capsys):
    torch.manual_seed(0)
    build_model("pix2pix", {"image_shape": [1, 16, 16], "num_filters": 2, "discriminator_filters": 2}).save_pretrained(str(tmp_path / "m"))
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(tmp_path / "x.png")
    assert main(["translate", str(tmp_path / "m"), str(tmp_path / "x.png"), "--direction", "b2a"]) == 2
    assert "one way only" in capsys.readouterr().err


def test_the_semantic_classifier_is_loaded_by_the_caller_not_the_model(tmp_path):
    """The model never opens a path: with only model.semantic_classifier set it refuses the semantic
    term in one line; genlab train (api.build) loads the run named there and hands it over."""
    from genlab import api, build_model

    clf = build_model("classifier", {"image_shape": [1, 32, 32], "num_classes": 10, "channels": [2], "kernel_size": 3,
                                     "hidden_dim": 4})
    clf.save_pretrained(str(tmp_path / "clf"))
    config = {"image_shape": [1, 32, 32], "num_filters": 2, "discriminator_filters": 2, "residual_blocks": 1,
              "semantic_weight": 1.0, "semantic_classifier": str(tmp_path / "clf"), "identity_weight": 0.0}
    with pytest.raises(ConfigError, match="needs a classifier"):
        build_model("cyclegan", config).loss((torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)), "generators")
    overrides = [f"--model.{k}={v}" for k, v in config.items() if k != "image_shape"]
    spec, explicit = api.resolve("cyclegan", data="domains", overrides=overrides + [
        "--data.options.a=mnist-embedded", "--data.options.b=mnist-embedded", "--data.limit=64"])
    model, train_data, _ = api.build(spec, explicit)
    assert torch.equal(next(model.semantic_classifier().parameters()), next(clf.parameters()))
    assert "semantic" in model.loss(train_data.batch(torch.arange(2)), "generators").terms


def test_semantic_consistency_term_is_cross_entropy_to_the_source_prediction_and_reaches_the_generators():
    model = tiny(semantic_weight=2.0, identity_weight=0.0)
    with pytest.raises(ConfigError, match="semantic_classifier"):
        model.loss((torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)), "generators")
    torch.manual_seed(1)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    model.set_semantic_classifier(classifier)
    a, b = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    out = model.loss((a, b), "generators")
    with torch.no_grad():
        fake_b, fake_a = model.translate(a, "a2b"), model.translate(b, "b2a")
        expected = (F.cross_entropy(classifier(fake_b), classifier(a).argmax(1))
                    + F.cross_entropy(classifier(fake_a), classifier(b).argmax(1)))
    assert torch.allclose(out.terms["semantic"], expected, atol=1e-6)
    plain = tiny(identity_weight=0.0).loss((a, b), "generators")
    assert torch.allclose(out.total - plain.total, 2.0 * expected, atol=1e-5)  # same init: only the semantic term differs
    out.total.backward()
    assert model.generator_ab.net[1].weight.grad is not None
    assert all(p.grad is None for p in classifier.parameters())  # frozen, and never saved with the model
    assert not any(k.startswith("_semantic") for k in model.state_dict())
    # one side only: the term of the domain the classifier was trained on
    for side, (real, fake) in {"a": (a, fake_b), "b": (b, fake_a)}.items():
        one = tiny(semantic_weight=2.0, identity_weight=0.0, semantic_terms=side)
        one.set_semantic_classifier(classifier)
        with torch.no_grad():
            want = F.cross_entropy(classifier(fake), classifier(real).argmax(1))
        assert torch.allclose(one.loss((a, b), "generators").terms["semantic"], want, atol=1e-6)
    # a confidence threshold: unsure pseudo-labels add zero, the mean is still over the whole batch
    with torch.no_grad():
        confidence = torch.cat([classifier(a), classifier(b)]).softmax(1).max(1).values
    threshold = float(confidence.median())
    sure = tiny(semantic_weight=2.0, identity_weight=0.0, semantic_threshold=threshold)
    sure.set_semantic_classifier(classifier)
    with torch.no_grad():
        want = sum((F.cross_entropy(classifier(fake), classifier(real).argmax(1), reduction="none")
                    * (classifier(real).softmax(1).max(1).values >= threshold)).mean()
                   for real, fake in ((a, fake_b), (b, fake_a)))
    got = sure.loss((a, b), "generators").terms["semantic"]
    assert torch.allclose(got, want, atol=1e-6) and 0 < got < expected


# ---------------------------------------------------------------------------------- adversarial wiring


class Constant(nn.Module):
    """A generator whose every output pixel is ``value`` (signed [-1, 1] units)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x, self.value)


class MeanCritic(nn.Module):
    """A discriminator with a known score per image: ``slope * mean(x) + offset`` as a (B, 1, 1, 1) patch map."""

    def __init__(self, slope: float, offset: float) -> None:
        super().__init__()
        self.slope, self.offset = slope, offset

    def forward(self, x):
        return (self.slope * x.mean((1, 2, 3)) + self.offset)[:, None, None, None]


@pytest.mark.parametrize("gan_loss", ["least-squares", "non-saturating"])
def test_adversarial_terms_on_known_scores_of_two_distinct_discriminators(gan_loss):
    """Each discriminator scores its own domain's real images as real and the translations *into* its
    domain as fake; each generator is judged by the discriminator of the domain it translates into.
    D_A and D_B differ and every score is known, so the expected losses are written out here from the
    paper's formulas (LSGAN: plain MSE for the generators, halved for the discriminators; the
    non-saturating logistic loss likewise) -- a swap of real and fake, or of the two judges, shows."""
    model = tiny(gan_loss=gan_loss, identity_weight=0.0, cycle_weight=10.0, pool_size=0).eval()
    model.generator_ab, model.generator_ba = Constant(0.2), Constant(-0.3)  # G(.) = 0.2, F(.) = -0.3
    model.discriminator_a, model.discriminator_b = MeanCritic(2.0, 1.0), MeanCritic(-3.0, 0.25)
    d_a = lambda v: 2.0 * v + 1.0  # noqa: E731  (the same scores, by hand)
    d_b = lambda v: -3.0 * v + 0.25  # noqa: E731
    a, b = torch.full((2, 1, 8, 8), 0.75), torch.full((2, 1, 8, 8), 0.25)  # signed: a = 0.5, b = -0.5
    real_a, real_b, fake_b, fake_a = 0.5, -0.5, 0.2, -0.3

    def as_real(score: float) -> float:  # generator's loss, and the discriminator's on real images
        return (score - 1) ** 2 if gan_loss == "least-squares" else float(F.softplus(torch.tensor(-score)))

    def as_fake(score: float) -> float:
        return score**2 if gan_loss == "least-squares" else float(F.softplus(torch.tensor(score)))

    out = model.loss((a, b), "discriminators")
    expected_a = 0.5 * (as_real(d_a(real_a)) + as_fake(d_a(fake_a)))  # D_A: a real, F(b) fake
    expected_b = 0.5 * (as_real(d_b(real_b)) + as_fake(d_b(fake_b)))  # D_B: b real, G(a) fake
    assert float(out.terms["loss_a"]) == pytest.approx(expected_a, abs=1e-6)
    assert float(out.terms["loss_b"]) == pytest.approx(expected_b, abs=1e-6)
    assert float(out.total) == pytest.approx(expected_a + expected_b, abs=1e-6)

    out = model.loss((a, b), "generators")
    adv_ab, adv_ba = as_real(d_b(fake_b)), as_real(d_a(fake_a))  # G(a) judged by D_B, F(b) by D_A
    cycle = abs(-0.3 - real_a) + abs(0.2 - real_b)  # |F(G(a)) - a| + |G(F(b)) - b|
    assert float(out.terms["adv_ab"]) == pytest.approx(adv_ab, abs=1e-6)
    assert float(out.terms["adv_ba"]) == pytest.approx(adv_ba, abs=1e-6)
    assert float(out.total) == pytest.approx(adv_ab + adv_ba + 10.0 * cycle, abs=1e-5)


# ---------------------------------------------------------------------- DiffAugment (issue 24)

def _d_inputs(model) -> dict[str, list[torch.Tensor]]:
    seen: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
    model.discriminator_a.register_forward_pre_hook(lambda m, args: seen["a"].append(args[0]))
    model.discriminator_b.register_forward_pre_hook(lambda m, args: seen["b"].append(args[0]))
    return seen


def test_diffaugment_both_discriminators_judge_augmented_reals_and_fakes_and_the_cycle_stays_clean():
    """With a policy each image a discriminator scores, in both phases, is augmented (translation moves
    it); G learns through the augmentation; the cycle terms are the plain model's. Off, both phases'
    losses are the plain model's bit for bit."""
    batch = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)),
             torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2)))
    signed = [x * 2 - 1 for x in batch]
    plain, off, on = tiny(pool_size=0), tiny(pool_size=0, augment="none"), tiny(pool_size=0, augment="translation,cutout")
    for phase in ("generators", "discriminators"):
        torch.manual_seed(3)
        want = plain.loss(batch, phase)
        torch.manual_seed(3)
        assert torch.equal(off.loss(batch, phase).total, want.total)
    seen = _d_inputs(on)
    out = on.loss(batch, "generators")
    fake_b, fake_a = on.generator_ab(signed[0]), on.generator_ba(signed[1])
    assert not torch.allclose(seen["b"][0], fake_b) and not torch.allclose(seen["a"][0], fake_a)
    torch.manual_seed(3)
    assert torch.equal(out.terms["cycle_a"], plain.loss(batch, "generators").terms["cycle_a"])  # same weights, clean cycle
    out.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in on.generator_ab.parameters())
    seen["a"].clear(), seen["b"].clear()
    on.loss(batch, "discriminators")
    real_a, judged_fake_a = seen["a"]
    assert real_a.shape == signed[0].shape and not torch.allclose(real_a, signed[0])  # the reals are augmented too
    assert not torch.allclose(judged_fake_a, fake_a.detach())


@pytest.mark.parametrize("gan_loss, centre", [("least-squares", 0.5), ("non-saturating", 0.0)])
def test_adaptive_augmentation_reads_both_discriminators_against_the_losss_midpoint(monkeypatch, gan_loss, centre):
    """ADA's p follows the reals' scores of both discriminators, compared with the loss's real/fake midpoint:
    least squares' targets are 1 and 0, so a score of 0.4 is a real judged fake there but a logit's "real"."""
    from genlab.nn.augment import ADAPT_INTERVAL

    model = tiny(pool_size=0, gan_loss=gan_loss, augment="translation", augment_target=0.6, augment_speed_kimg=0.032).train()
    batch = (torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8))
    for d in (model.discriminator_a, model.discriminator_b):
        monkeypatch.setattr(d, "forward", lambda x: torch.full((x.shape[0], 1, 2, 2), 0.4) + 0 * x.sum())
    for _ in range(ADAPT_INTERVAL):
        terms = model.loss(batch, "discriminators").terms
    # per step 2 discriminators x 4 images (a 2x2 patch map is one image); 4 steps a move: 32 / 32 = 1
    assert float(terms["augment_p"]) == (1.0 if 0.4 > centre else 0.0)
    model.augmentation.p.fill_(0.5)
    for _ in range(ADAPT_INTERVAL):
        terms = model.loss(batch, "discriminators").terms
    assert float(terms["augment_p"]) == pytest.approx(1.0 if 0.4 > centre else 0.0)  # 0.5 +- 1 (4x that if patches counted)
    model.augmentation.speed_kimg = 0.128  # 32 images / 128 = 0.25 a move
    model.augmentation.p.fill_(0.5)
    for _ in range(ADAPT_INTERVAL):
        terms = model.loss(batch, "discriminators").terms
    assert float(terms["augment_p"]) == pytest.approx(0.75 if 0.4 > centre else 0.25)


def test_diffaugment_ramp_is_saved_and_a_killed_run_resumes_it(tmp_path):
    model = tiny(augment="color", augment_p=0.6, augment_ramp_steps=10)
    Trainer(model, domains(), train_config(max_steps=4)).fit()
    assert int(model.augmentation.steps_trained) == 4 and model.augmentation.probability == pytest.approx(0.24)
    model.save_pretrained(str(tmp_path / "m"))
    assert int(load(tmp_path / "m").augmentation.steps_trained) == 4
    assert "augmentation.steps_trained" not in tiny(augment="color").state_dict()  # no ramp: nothing saved
    with pytest.raises(ConfigError, match="augment_p must be in"):
        tiny(augment="color", augment_p=1.5)
