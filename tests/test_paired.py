"""Paired datasets: aligned A|B files, two folders, zips, facades layout, and the digit tasks."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import DataConfig, load_dataset
from genlab.data.paired import digit_outlines, hue_to_rgb
from genlab.errors import DataError


def _rgb(seed: int, size: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _write_aligned(folder: Path, names: list[str], size: int = 16) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = {}
    for i, name in enumerate(names):
        a, b = _rgb(2 * i, (size, size)), _rgb(2 * i + 1, (size, size))
        Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / f"{name}.png")
        pairs[name] = (a, b)
    return pairs


def _as_uint8(t: torch.Tensor) -> np.ndarray:
    return (t * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_aligned_train_test_folders_split_halves_exactly(tmp_path):
    train = _write_aligned(tmp_path / "train", ["1", "2", "10"])
    test = _write_aligned(tmp_path / "test", ["7"])
    data = load_dataset(DataConfig(name="paired", path=str(tmp_path)))
    assert data.tensors[0].shape == data.tensors[1].shape == (3, 3, 16, 16)
    assert data.info["image_shape"] == data.info["input_shape"] == (3, 16, 16)
    for i, name in enumerate(["1", "2", "10"]):  # natural order
        assert np.array_equal(_as_uint8(data.tensors[0][i]), train[name][0])
        assert np.array_equal(_as_uint8(data.tensors[1][i]), train[name][1])
    flipped = load_dataset(DataConfig(name="paired", path=str(tmp_path), options={"direction": "BtoA"}), "test")
    assert np.array_equal(_as_uint8(flipped.tensors[0][0]), test["7"][1])
    assert np.array_equal(_as_uint8(flipped.tensors[1][0]), test["7"][0])


def test_loose_aligned_files_split_90_10_disjoint(tmp_path):
    _write_aligned(tmp_path, [str(i) for i in range(20)], size=8)
    train = load_dataset(DataConfig(name="paired", path=str(tmp_path)), "train")
    test = load_dataset(DataConfig(name="paired", path=str(tmp_path)), "test")
    assert (len(train), len(test)) == (18, 2)
    rows = {tuple(x.flatten().tolist()) for x in torch.cat([train.x, test.x])}
    assert len(rows) == 20


def test_aligned_zip_reads_in_place(tmp_path):
    pairs = _write_aligned(tmp_path / "src" / "pairs" / "train", ["a", "b"])
    _write_aligned(tmp_path / "src" / "pairs" / "test", ["c"])
    archive = tmp_path / "pairs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in (tmp_path / "src").rglob("*.png"):
            z.write(file, file.relative_to(tmp_path / "src").as_posix())
    data = load_dataset(DataConfig(name="paired", path=str(archive)))
    assert len(data) == 2
    assert np.array_equal(_as_uint8(data.tensors[1][1]), pairs["b"][1])


def test_two_folders_match_by_stem_and_keep_channels(tmp_path):
    for layout in ("flat", "split"):
        root = tmp_path / layout
        for i in range(10):
            sub = "" if layout == "flat" else ("train/" if i < 8 else "test/")
            (root / "A" / sub).mkdir(parents=True, exist_ok=True)
            (root / "B" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16), 10 * i, np.uint8)).save(root / "A" / sub / f"img{i}.png")  # grey
            Image.fromarray(np.full((16, 16, 3), 10 * i, np.uint8)).save(root / "B" / sub / f"img{i}.jpg")  # RGB
        data = load_dataset(DataConfig(name="paired", path=str(root)))
        assert data.info["input_shape"] == (1, 16, 16) and data.info["image_shape"] == (3, 16, 16)
        # the pairing follows the names: each A's grey level equals its B's
        assert torch.allclose(data.tensors[0].mean((1, 2, 3)), data.tensors[1].mean((1, 2, 3)), atol=2 / 255)
        assert len(data) == 8 if layout == "split" else len(data) == 9


def _pair_folders(root: Path, a_sizes: dict[str, int], b_sizes: dict[str, int]) -> Path:
    for side, sizes in (("trainA", a_sizes), ("trainB", b_sizes)):
        (root / side).mkdir(parents=True, exist_ok=True)
        for name, size in sizes.items():
            Image.fromarray(_rgb(size, (size, size))).save(root / side / f"{name}.png")
    return root


@pytest.mark.parametrize(
    "a_sizes,b_sizes,message",
    [
        ({"1": 16, "2": 16}, {"1": 16}, "missing pair"),
        ({"1": 16}, {"1": 16, "3": 16}, "missing pair"),
        ({"1": 16, "2": 16}, {"1": 16, "2": 32}, "size mismatch in pair"),
        ({"1": 16, "2": 32}, {"1": 16, "2": 32}, "set data.image_size"),
    ],
)
def test_two_folder_errors_are_one_line_data_errors(tmp_path, a_sizes, b_sizes, message):
    root = _pair_folders(tmp_path, a_sizes, b_sizes)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(DataConfig(name="paired", path=str(root)))
    assert "\n" not in str(info.value)


def test_different_sizes_are_fine_once_resized(tmp_path):
    root = _pair_folders(tmp_path, {"1": 16, "2": 32}, {"1": 16, "2": 32})
    data = load_dataset(DataConfig(name="paired", path=str(root), image_size=16))
    assert data.x.shape == (2, 3, 16, 16)


def test_aligned_errors(tmp_path):
    (tmp_path / "odd" / "train").mkdir(parents=True)
    Image.fromarray(_rgb(0, (33, 16))).save(tmp_path / "odd" / "train" / "x.png")
    with pytest.raises(DataError, match="odd width 33"):
        load_dataset(DataConfig(name="paired", path=str(tmp_path / "odd")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="no image files"):
        load_dataset(DataConfig(name="paired", path=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="not found"):
        load_dataset(DataConfig(name="paired", path=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match="direction"):
        load_dataset(DataConfig(name="paired", path=str(tmp_path / "odd"), options={"direction": "sideways"}))
    with pytest.raises(DataError, match="unknown data.options"):
        load_dataset(DataConfig(name="paired", path=str(tmp_path / "odd"), options={"flip": True}))
    with pytest.raises(DataError, match="needs a folder or zip"):
        load_dataset(DataConfig(name="paired"))
    (tmp_path / "bad" / "train").mkdir(parents=True)
    (tmp_path / "bad" / "train" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="corrupt"):
        load_dataset(DataConfig(name="paired", path=str(tmp_path / "bad")))


def _facades_zip(path: Path, counts=(("train", 3), ("test", 2))) -> Path:
    """The real archive's layout: facades/{train,test}{A,B}/<k>.jpg; A photos (blue), B labels (red)."""
    with zipfile.ZipFile(path, "w") as z:
        for split, n in counts:
            for k in range(1, n + 1):
                for side, colour in (("A", (20, 40, 220)), ("B", (230, 30, 10))):
                    buffer = __import__("io").BytesIO()
                    Image.fromarray(np.full((32, 32, 3), colour, np.uint8)).save(buffer, format="JPEG", quality=95)
                    z.writestr(f"facades/{split}{side}/{k}.jpg", buffer.getvalue())
    return path


def test_facades_zip_layout_labels_to_photo_by_default(tmp_path):
    archive = _facades_zip(tmp_path / "facades_256_AB_jpg.zip")
    train = load_dataset(DataConfig(name="facades", path=str(archive), image_size=16))
    test = load_dataset(DataConfig(name="facades", path=str(tmp_path)), "test")  # the folder holding the zip
    assert train.x.shape == (3, 3, 16, 16) and test.x.shape == (2, 3, 64, 64)  # 64 px by default
    assert train.info["image_shape"] == (3, 16, 16)
    red, blue = train.x[:, 0].mean(), train.x[:, 2].mean()
    assert red > 0.8 > 0.2 > blue  # input = B = label map (red here)
    assert train.y[:, 2].mean() > 0.8  # target = A = photo (blue)
    photo_first = load_dataset(DataConfig(name="facades", path=str(archive), image_size=16, options={"direction": "AtoB"}))
    assert photo_first.x[:, 2].mean() > 0.8
    with pytest.raises(DataError, match="facades data not found"):
        load_dataset(DataConfig(name="facades", path=str(tmp_path / "missing")))


def test_real_facades(shared_data):
    path = shared_data / "facades"
    if not path.is_dir():
        pytest.skip("facades not in shared data")
    train = load_dataset(DataConfig(name="facades", path=str(path)))
    test = load_dataset(DataConfig(name="facades", path=str(path)), "test")
    assert train.x.shape == train.y.shape == (400, 3, 64, 64)
    assert test.x.shape == (106, 3, 64, 64)
    # B->A: the input is the label map (saturated class colours), the target the photo (near grey)
    spread = lambda t: (t.amax(1) - t.amin(1)).mean((1, 2))  # noqa: E731  per-image mean chroma
    assert (spread(train.x) > spread(train.y)).all()
    assert spread(train.x).mean() > 0.5 > 0.2 > spread(train.y).mean()


# ---------------------------------------------------------------------------------- digit tasks


def test_edges2digits_outlines_surround_the_ink():
    data = load_dataset(DataConfig(name="edges2digits", limit=200))
    a, b = data.tensors
    assert a.shape == b.shape == (200, 1, 32, 32)
    assert data.info["input_shape"] == data.info["image_shape"] == (1, 32, 32)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    ink = b > 0.5
    assert not (a.bool() & ink).any()  # the outline lies outside the stroke ...
    near_ink = torch.nn.functional.max_pool2d(ink.float(), 3, 1, 1).bool()
    assert (a.bool() <= near_ink).all()  # ... and touches it
    assert (a.flatten(1).sum(1) > 0).all()  # every digit has an outline
    small = load_dataset(DataConfig(name="edges2digits", image_size=16), "test")  # limit applies to train only
    assert small.x.shape == (1000, 1, 16, 16)


def test_digit_outlines_of_a_square():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 3:5, 3:5] = 1
    ring = digit_outlines(x)
    assert ring.sum() == 16 - 4 and ring[..., 3:5, 3:5].sum() == 0


def test_colorize_is_the_grey_digit_in_a_random_hue():
    data = load_dataset(DataConfig(name="colorize"), "test")
    a, b = data.tensors
    assert a.shape == (1000, 1, 32, 32) and b.shape == (1000, 3, 32, 32)
    assert data.info["input_shape"] == (1, 32, 32) and data.info["image_shape"] == (3, 32, 32)
    assert torch.allclose(b.amax(1, keepdim=True), a, atol=1e-6)  # full value: the brightest channel is the grey
    colour = (b.flatten(2).sum(2) / a.flatten(2).sum(2))  # (N, 3): each example's colour
    assert torch.allclose(colour.amax(1), torch.ones(1000), atol=1e-5)
    assert torch.allclose(colour.amin(1), torch.zeros(1000), atol=1e-5)  # fully saturated
    # hue from the colour: which channel is max and which is min gives the sextant
    sextant = torch.unique(colour.argmax(1) * 3 + colour.argmin(1), return_counts=True)[1]
    assert len(sextant) == 6 and sextant.min() > 100  # uniform over the wheel (1000 / 6 = 167)
    again = load_dataset(DataConfig(name="colorize"), "test")
    other = load_dataset(DataConfig(name="colorize", seed=1), "test")
    assert torch.equal(again.y, b)
    assert not torch.allclose(other.y.flatten(2).sum(2), b.flatten(2).sum(2))


def test_hue_to_rgb_primaries():
    rgb = hue_to_rgb(torch.tensor([0.0, 1 / 6, 1 / 3, 0.5, 2 / 3, 5 / 6]))
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=torch.float32)
    assert torch.allclose(rgb, expected, atol=1e-6)
