"""CelebA and labelled-folder loaders on tiny synthetic files made here; the real subset only when
../shared/data is present (it may never be committed or packaged)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import DataConfig, load_dataset
from genlab.data import celeba
from genlab.errors import DataError

NAMES = ["Smiling", "Male", "Young"]
N = 12
W, H = 20, 30  # portrait like CelebA: the centred 20x20 square is rows 5..24


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("GENLAB_CACHE", str(path))
    return path


def _face(i: int) -> Image.Image:
    """Red bands above and below the centre square, which is blue with brightness set by i."""
    array = np.zeros((H, W, 3), np.uint8)
    array[:, :, 0] = 255
    array[5:25, :, 0] = 0
    array[5:25, :, 2] = 20 * i
    return Image.fromarray(array)


def _values(i: int) -> list[int]:
    return [1 if i % 2 == 0 else -1, 1 if i % 3 == 0 else -1, 1 if i < 6 else -1]


def _attr_text(count: int = N) -> str:
    lines = [str(count), " ".join(NAMES)]
    lines += [f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in _values(i)) for i in range(count)]
    return "\n".join(lines) + "\n"


def _png(i: int) -> bytes:
    buffer = io.BytesIO()
    _face(i).save(buffer, format="PNG")  # lossless, so pixel checks are exact up to resizing
    return buffer.getvalue()


@pytest.fixture
def celeba_zip(tmp_path) -> Path:
    root = tmp_path / "celeba"
    root.mkdir()
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as z:
        for i in range(N):
            z.writestr(f"img_align_celeba/{i + 1:06d}.jpg", _png(i))  # CelebA's names, PNG bytes
    (root / "list_attr_celeba.txt").write_text(_attr_text())
    return root


def test_celeba_zip_crop_resize_attributes(celeba_zip):
    config = DataConfig(name="celeba", path=str(celeba_zip), image_size=8, options={"test_size": 3})
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert train.x.shape == (9, 3, 8, 8) and test.x.shape == (3, 3, 8, 8)
    assert train.x.dtype == torch.float32 and train.info["image_shape"] == (3, 8, 8)
    # the centre crop removed the red bands; the blue level follows the image index
    assert float(train.x[:, 0].max()) < 0.02
    for i in range(N):
        x = (train.x if i < 9 else test.x)[i % 9 if i < 9 else i - 9]
        assert abs(float(x[2].mean()) - 20 * i / 255) < 0.01
    # attributes: -1/+1 -> {0, 1}, in file order; the last images are the test split
    assert train.info["attr_names"] == NAMES and train.y.shape == (9, 3)
    expected = (torch.tensor([_values(i) for i in range(N)]) > 0).long()
    assert torch.equal(torch.cat([train.y, test.y]), expected)
    assert set(train.y.unique().tolist()) == {0, 1}
    assert test.info["filenames"] == ["000010.jpg", "000011.jpg", "000012.jpg"]


def test_one_attribute_as_the_class_label(celeba_zip, tmp_path):
    config = DataConfig(name="celeba", path=str(celeba_zip), image_size=8, options={"test_size": 3, "label": "Male"})
    train = load_dataset(config, "train")
    assert train.y.shape == (9,) and train.y.dtype == torch.int64
    assert train.y.tolist() == [int(_values(i)[1] > 0) for i in range(9)]
    assert train.info["num_classes"] == 2 and train.info["label"] == "Male"
    with pytest.raises(DataError, match="unknown label 'Bald'.*valid: Smiling, Male, Young"):
        load_dataset(config.replace(options={"label": "Bald"}), "train")
    root = tmp_path / "scores"  # a CSV column of non-integers is not a class label
    root.mkdir()
    _face(0).save(root / "a.png")
    _face(1).save(root / "b.png")
    (root / "labels.csv").write_text("file,score\na.png,0.5\nb.png,1\n")
    with pytest.raises(DataError, match="'score' must hold class indices"):
        load_dataset(DataConfig(name="labelled-folder", path=str(root), options={"label": "score", "test_size": 1}), "train")


def test_celeba_cache_hit_second_time(celeba_zip, cache, monkeypatch):
    config = DataConfig(name="celeba", path=str(celeba_zip), image_size=8, options={"test_size": 3})
    first = load_dataset(config, "train")
    files = list(cache.glob("celeba-8-*"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second load decoded images instead of reading the cache")

    monkeypatch.setattr(celeba, "_decode_all", no_decoding)
    second = load_dataset(config, "train")
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert files[0].stat().st_mtime_ns == stamp
    # another size is another cache entry (and so needs decoding)
    with pytest.raises(AssertionError, match="decoded"):
        load_dataset(config.replace(image_size=4), "train")


def test_celeba_cache_invalidated_when_the_source_changes(celeba_zip, cache):
    config = DataConfig(name="celeba", path=str(celeba_zip), image_size=8, options={"test_size": 3})
    load_dataset(config, "train")
    (celeba_zip / "list_attr_celeba.txt").write_text(_attr_text(10))  # fewer rows listed
    assert len(load_dataset(config, "train")) == 7
    (store,) = cache.glob("celeba-8-*")  # rebuilt in place: one folder per source and size, never a stale copy
    assert json.loads((store / "manifest.json").read_text())["shape"][0] == 10


def test_celeba_folder_layout_grey_and_default_size(tmp_path):
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    for i in range(N):
        _face(i).save(root / "img_align_celeba" / f"{i + 1:06d}.jpg", quality=95)
    (root / "list_attr_celeba.txt").write_text(_attr_text())
    ds = load_dataset(DataConfig(name="celeba", path=str(root), channels=1), "train")
    assert ds.x.shape == (N - 1, 1, 64, 64)  # default face size 64; default test split N // 10 = 1
    assert ds.info["num_attributes"] == 3


def test_celeba_missing_images_are_dropped_and_errors_are_one_line(celeba_zip, tmp_path):
    (celeba_zip / "list_attr_celeba.txt").write_text(
        _attr_text().replace("12\n", "13\n", 1) + "000013.jpg  1 -1  1\n")
    ds = load_dataset(DataConfig(name="celeba", path=str(celeba_zip), image_size=8, options={"test_size": 2}), "train")
    assert len(ds) == N - 2
    empty = tmp_path / "empty"
    empty.mkdir()
    for config, pattern in [
        (DataConfig(name="celeba"), "needs its folder"),
        (DataConfig(name="celeba", path=str(empty)), "no img_align_celeba"),
        (DataConfig(name="celeba", path=str(celeba_zip), options={"bogus": 1}), "unknown data.options bogus"),
        (DataConfig(name="celeba", path=str(celeba_zip), options={"test_size": 99}), "test_size"),
    ]:
        with pytest.raises(DataError, match=pattern) as info:
            load_dataset(config, "train")
        assert "\n" not in str(info.value)
    (celeba_zip / "list_attr_celeba.txt").write_text("2\nA B\n000001.jpg 1\n")
    with pytest.raises(DataError, match=r"list_attr_celeba.txt:3"):
        load_dataset(DataConfig(name="celeba", path=str(celeba_zip)), "train")


def test_labelled_folder_with_csv(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    rows = ["file,score,flag"]
    for i in range(10):
        _face(i).crop((0, 5, 20, 25)).save(root / f"f{i}.png")
        rows.append(f"f{i}.png,{i * 0.5},{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    train = load_dataset(DataConfig(name="labelled-folder", path=str(root), options={"test_size": 2}), "train")
    assert train.x.shape == (8, 3, 20, 20) and train.y.shape == (8, 2)
    assert train.info["attr_names"] == ["score", "flag"]
    torch.testing.assert_close(train.y[:, 0], torch.arange(8) * 0.5)
    (root / "labels.csv").write_text("file,score\nmissing.png,1\n")
    with pytest.raises(DataError, match="not found"):
        load_dataset(DataConfig(name="labelled-folder", path=str(root)), "train")


def test_load_image_files_matches_model_shape(tmp_path):
    path = tmp_path / "face.png"
    _face(10).save(path)
    x = celeba.load_image_files([path], (3, 8, 8))
    assert x.shape == (1, 3, 8, 8) and float(x[0, 0].max()) < 0.02
    with pytest.raises(DataError, match="not found"):
        celeba.load_image_files([tmp_path / "nope.png"], (3, 8, 8))


def test_real_celeba_subset(shared_data):
    root = shared_data / "celeba-10k"
    if not root.is_dir():
        pytest.skip("celeba-10k is not present")
    config = DataConfig(name="celeba", path=str(root), image_size=32)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert train.x.shape == (9000, 3, 32, 32) and test.x.shape == (1000, 3, 32, 32)
    names = train.info["attr_names"]
    assert len(names) == 40 and names[31] == "Smiling"
    labels = torch.cat([train.y, test.y]).float()
    assert abs(float(labels[:, names.index("Smiling")].mean()) - 0.482) < 0.001  # SOURCE.md's rate
    assert abs(float(labels[:, names.index("Male")].mean()) - 0.422) < 0.001
    # 000001 is a smiling young woman (SOURCE.md)
    first = dict(zip(names, train.y[0].tolist()))
    assert (first["Smiling"], first["Male"], first["Young"]) == (1, 0, 1)
