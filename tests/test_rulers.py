"""The face rulers (genlab.metrics.rulers) on tiny synthetic data: coloured shapes at 16 px with six
binary attributes, and two rulers trained in seconds. Distances rise along the blur and noise ladders
in both rulers' features, precision falls with noise, density/coverage match a plain numpy
implementation of Naeem et al. (2020), the ruler cache is reused for an unchanged recipe and rebuilt
for a changed one, and no training code imports a ruler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import ArrayDataset
from genlab.errors import ConfigError, DataError
from genlab.metrics import density_coverage, precision_recall
from genlab.metrics import rulers as R

ATTRIBUTES = ["square", "big", "red", "green", "blue", "left"]


def shapes(n: int, seed: int, size: int = 16) -> ArrayDataset:
    """Squares and discs of random size, colour and place on a dark background; labels (N, 6)."""
    g = torch.Generator().manual_seed(seed)
    square = torch.rand(n, generator=g) < 0.5
    radius = 2 + 4 * torch.rand(n, generator=g)  # 2..6 px
    centre = radius[:, None] + (size - 2 * radius[:, None]) * torch.rand(n, 2, generator=g)
    colour = (torch.rand(n, 3, generator=g) < 0.5).float() * 0.7 + 0.3 * torch.rand(n, 3, generator=g)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    dy, dx = yy[None] - centre[:, 0, None, None], xx[None] - centre[:, 1, None, None]  # (N, H, W)
    r = radius[:, None, None]
    inside = torch.where(square[:, None, None], (dy.abs() <= r) & (dx.abs() <= r), dy**2 + dx**2 <= r**2)
    background = 0.1 + 0.1 * torch.rand(n, 3, 1, 1, generator=g)
    x = torch.where(inside[:, None], colour[:, :, None, None], background)  # (N, 3, H, W)
    labels = torch.stack([square, radius > 4, colour[:, 0] > 0.5, colour[:, 1] > 0.5, colour[:, 2] > 0.5,
                          centre[:, 1] < size / 2], dim=1).long()
    return ArrayDataset((x, labels), {"name": "shapes", "attr_names": ATTRIBUTES})


TINY_CONFIG = {"attributes": {"widths": [8, 16], "stem_stride": 1}, "ssl": {"channels": [8, 16], "projection_dim": 8}}


def tiny_ruler(name: str, data: ArrayDataset, cache, epochs: int = 3) -> R.Ruler:
    return R.build_ruler(name, data, cache=cache, epochs=epochs, config=TINY_CONFIG[name],
                         train={"batch_size": 64, "warmup_steps": 0, "log_every": 10**6}, threads=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cache = tmp_path_factory.mktemp("rulers")
    train = shapes(768, seed=0)
    return {"cache": cache, "train": train, "rulers": [tiny_ruler(name, train, cache) for name in R.DEFAULT_RULERS]}


def test_ladders_raise_fd_and_kid_monotonically_in_both_rulers(trained):
    floor, reference = shapes(300, seed=1).x, shapes(300, seed=2).x
    spec = R.LadderSpec(blur_sigmas=(0.7, 1.4, 2.8), noise_stds=(0.05, 0.1, 0.2))
    ladder = R.degradation_ladder(floor, spec=spec)
    ladder = {k: ladder[k] for k in ("blur", "noise")}
    result = R.run_ladder(trained["rulers"], ladder, reference, kid_subsets=20, kid_subset_size=200)
    for family, entry in result["families"].items():
        for name, check in entry["checks"].items():
            assert check["monotone"], (family, name, check["values"])
    assert result["all_monotone"]
    # the undegraded rung is the floor: near zero KID (unbiased) and the smallest FD
    for ruler in trained["rulers"]:
        rows = result["families"]["blur"]["rows"]
        assert abs(rows[0][ruler.name]["kid"]) < rows[-1][ruler.name]["kid"] / 5


def test_precision_falls_with_noise(trained):
    floor, reference = shapes(300, seed=1).x, shapes(300, seed=2).x
    for ruler in trained["rulers"]:
        clean = R.face_scores(floor, reference, [ruler], kid_subsets=5, kid_subset_size=100)[ruler.name]
        noisy = R.face_scores(R.add_noise(floor, 0.3), reference, [ruler], kid_subsets=5, kid_subset_size=100)[ruler.name]
        # at n = 300 precision's sampling std is about 0.02: a fall of 0.05 is no accident
        assert noisy["precision"] < clean["precision"] - 0.05, (ruler.name, clean["precision"], noisy["precision"])
        assert noisy["density"] < clean["density"]


def test_face_scores_reports_every_metric_with_its_protocol(trained):
    scores = R.face_scores(shapes(64, seed=3).x, shapes(64, seed=4).x, trained["rulers"], kid_subsets=3, kid_subset_size=32)
    assert set(scores) == {"attributes", "ssl"}
    for name, s in scores.items():
        assert {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"} <= set(s)
        assert s["protocol"]["num_reference"] == 64 and name in s["protocol"]["extractor"]
    with pytest.raises(ConfigError):
        R.face_scores(shapes(8, seed=3).x, shapes(8, seed=4).x, [])


def test_the_two_rulers_see_different_features(trained):
    a, b = trained["rulers"]
    x = shapes(32, seed=5).x
    assert a.recipe.model != b.recipe.model and a.recipe.seed != b.recipe.seed
    assert a.features(x).shape[0] == b.features(x).shape[0] == 32


def test_cache_is_reused_for_the_same_recipe_and_rebuilt_for_a_changed_one(trained):
    cache, train = trained["cache"], trained["train"]
    first = next(r for r in trained["rulers"] if r.name == "attributes")
    assert first.trained_now and (first.folder / "recipe.json").is_file()
    again = tiny_ruler("attributes", train, cache)
    assert not again.trained_now and again.folder == first.folder
    x = shapes(16, seed=6).x
    assert np.array_equal(again.features(x), first.features(x))
    changed = tiny_ruler("attributes", train, cache, epochs=1)  # another recipe: another folder, trained afresh
    assert changed.trained_now and changed.fingerprint != first.fingerprint
    # the weights' digest names the build: the same for the loaded copy, another for other weights
    assert again.weights == first.weights and len(first.weights) == 12 and changed.weights != first.weights
    relabelled = ArrayDataset((train.x, 1 - train.tensors[1]), train.info)  # other data: another fingerprint
    assert R.recipe_fingerprint(first.recipe, relabelled) != first.fingerprint


def test_attributes_ruler_refuses_data_without_labels(tmp_path):
    with pytest.raises(DataError, match="labels"):
        R.build_ruler("attributes", ArrayDataset((torch.rand(8, 3, 16, 16),)), cache=tmp_path)
    with pytest.raises(ConfigError, match="unknown ruler"):
        R.build_ruler("inception", ArrayDataset((torch.rand(8, 3, 16, 16),)), cache=tmp_path)


# ------------------------------------------------------------------------------ degradations


def test_degradations_keep_shapes_and_range_and_order_their_strength():
    x = shapes(20, seed=7).x
    for y in (R.gaussian_blur(x, 1.0), R.add_noise(x, 0.1), R.jpeg(x, 10)):
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    errors = [float((R.gaussian_blur(x, s) - x).abs().mean()) for s in (0.5, 1, 2)]
    assert errors[0] < errors[1] < errors[2]
    errors = [float((R.jpeg(x, q) - x).abs().mean()) for q in (90, 30, 5)]
    assert errors[0] < errors[1] < errors[2]
    mixed = R.mix(x, torch.zeros_like(x), 0.25)
    assert int((mixed.flatten(1).abs().sum(1) == 0).sum()) == 5


def test_drop_attribute_removes_the_mode_at_equal_size():
    data = shapes(200, seed=8)
    x, has = data.x, data.tensors[1][:, 0]  # "square"
    kept = R.drop_attribute(x, has, 0.0)
    gone = R.drop_attribute(x, has, 1.0)
    assert len(kept) == len(gone) == int((has == 0).sum())
    squares = {tuple(v.tolist()) for v in x[has.bool()].flatten(1)[:, :8]}
    assert not any(tuple(v.tolist()) in squares for v in gone.flatten(1)[:, :8])
    assert any(tuple(v.tolist()) in squares for v in kept.flatten(1)[:, :8])


# ------------------------------------------------------------------------------ reference parity


def naive_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Naeem et al. (2020) and Kynkäänniemi et al. (2019) written out with loops, as in the papers."""
    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    real_radii = np.sort(dist(real, real), axis=1)[:, k]  # column 0 is the point itself
    fake_radii = np.sort(dist(fake, fake), axis=1)[:, k]
    d = dist(real, fake)  # (R, F)
    precision = np.mean([any(d[i, j] <= real_radii[i] for i in range(len(real))) for j in range(len(fake))])
    recall = np.mean([any(d[i, j] <= fake_radii[j] for j in range(len(fake))) for i in range(len(real))])
    density = sum(sum(d[i, j] <= real_radii[i] for i in range(len(real))) for j in range(len(fake))) / (k * len(fake))
    coverage = np.mean([any(d[i, j] <= real_radii[i] for j in range(len(fake))) for i in range(len(real))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("seed", [0, 1])
def test_prdc_matches_the_naive_reference(seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(40, 5)), rng.normal(0.3, 1.2, size=(30, 5))
    for k in (3, 5):
        expected = naive_prdc(real, fake, k)
        got = {**precision_recall(real, fake, k=k), **density_coverage(real, fake, k=k)}
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-12), (key, k)


# ------------------------------------------------------------------------------ never a training loss


def test_no_training_code_imports_a_ruler():
    """Models, networks, distributions, data and training never import the ruler module, and no model
    family imports a ruler's network: a ruler a generator was optimised against would be gamed."""
    from test_layers import import_graph

    graph = import_graph()
    ruler_modules = {"genlab.metrics.rulers", "genlab.models.attributes", "genlab.models.contrastive"}
    lower = ("genlab.models", "genlab.nn", "genlab.distributions", "genlab.data", "genlab.training")
    offenders = [(module, target) for module, edges in graph.items() if module.startswith(lower)
                 and module not in ruler_modules and module != "genlab.models"  # the package registers the families
                 for target in edges if target in ruler_modules]
    assert not offenders, offenders
    assert "genlab.metrics.rulers" in graph  # the walk sees the module (a renamed file would pass vacuously)


def test_ladder_refuses_an_unknown_attribute():
    data = shapes(20, seed=9)
    with pytest.raises(DataError, match="unknown attribute"):
        R.degradation_ladder(data.x, labels=data.tensors[1], attr_names=ATTRIBUTES, spec=R.LadderSpec(drop_attribute="Bald"))


CELEBA = __import__("pathlib").Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celeba-10k"


@pytest.mark.skipif(not CELEBA.is_dir(), reason="CelebA subset not in ../shared/data")
def test_celeba_splits_are_disjoint_and_the_reference_is_the_benchmarks_test_split():
    from genlab.data import DataConfig, load_dataset

    splits = R.face_splits(CELEBA, image_size=32, train_limit=500)
    names = {k: v.info["filenames"] for k, v in splits.items()}
    assert len(names["ruler_train"]) == 500 and len(names["heldout"]) == len(names["reference"]) == 1000
    assert not set(names["ruler_train"]) & set(names["heldout"]) and not set(names["heldout"]) & set(names["reference"])
    assert names["heldout"][0] == "008001.jpg" and names["reference"][0] == "009001.jpg"
    test = load_dataset(DataConfig(name="celeba", path=str(CELEBA), image_size=32), "test")  # what generators never see
    assert test.info["filenames"] == names["reference"]
    assert splits["reference"].tensors[1].shape == (1000, 40)


def test_face_scores_refuses_images_outside_the_unit_range(trained):
    x = shapes(16, seed=10).x
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        R.face_scores(x * 2 - 1, x, trained["rulers"])


def test_rulers_agree_only_when_every_ruler_ranks_the_same_way():
    a = {"attributes": {"fid": 1.0}, "ssl": {"fid": 0.2}}
    assert R.rulers_agree(a, {"attributes": {"fid": 2.0}, "ssl": {"fid": 0.3}}) is True  # both say a is better
    assert R.rulers_agree(a, {"attributes": {"fid": 0.5}, "ssl": {"fid": 0.1}}) is True  # both say b is better
    assert R.rulers_agree(a, {"attributes": {"fid": 2.0}, "ssl": {"fid": 0.1}}) is False
    assert R.rulers_agree(a, {"attributes": {"fid": 1.0}, "ssl": {"fid": 0.1}}) is None


def test_a_cached_ruler_is_a_registered_feature_extractor(trained, tmp_path):
    from genlab.metrics import get_extractor

    ruler = trained["rulers"][1]
    x = shapes(12, seed=11).x
    extractor = get_extractor("ruler", path=ruler.folder)
    assert np.allclose(extractor(x).double().numpy(), ruler.features(x)) and ruler.fingerprint in extractor.description
    with pytest.raises(ConfigError, match="trained ruler"):
        get_extractor("ruler", path=tmp_path)


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_a_ruler_network_embeds_each_image_on_its_own(norm):
    """A ruler's features of an image must not depend on the other images it is batched with (else a score
    would move with the batch size or order): true for GroupNorm, and for BatchNorm in eval mode once trained."""
    from genlab.models import build_model

    torch.manual_seed(0)
    net = build_model("contrastive", {"image_shape": [3, 16, 16], "channels": [4, 8], "norm": norm})
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net.train()
    net.loss((x,)).total.backward()  # one training pass moves BatchNorm's running statistics
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == (norm == "batch")
    net.eval()
    with torch.no_grad():
        together = net.features(x)
        alone = torch.cat([net.features(x[i:i + 1]) for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-5)
