"""The memory-mapped uint8 image store (genlab.data.store): round trip, rebuild on a changed source,
no trust in an interrupted build, bit-identical training from the map and from memory, per-rank reads."""
from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import BatchLoader, DataConfig, load_dataset
from genlab.data import images, imageio, store
from genlab.data.store import StoredDataset, build_store, open_store
from genlab.errors import ConfigError, DataError

SRC = Path(__file__).resolve().parents[1] / "src"
_REAL_CHUNKS = images._npz_chunks


def _folder(root: Path, n: int = 40, shape: tuple[int, ...] = (8, 8), split: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = (("train" if i < n - 8 else "test") + "/") if split else ""
        path = root / f"{sub}{i % 4}" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return root


def _no_decoding(*args, **kwargs):
    raise AssertionError("decoded the images instead of opening the store")


def _store_dir(cache: Path) -> Path:
    (found,) = cache.glob("folder-*")
    return found


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("GENLAB_CACHE", str(path))
    return path


# ---------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("split", [False, True], ids=["seeded-split", "train-test-folders"])
def test_round_trip_mmap_equals_memory_and_the_files(tmp_path, cache, split):
    root = _folder(tmp_path / "imgs", split=split)
    memory = load_dataset(DataConfig(name="folder", path=str(root), storage="memory"), "train")
    with pytest.MonkeyPatch.context() as m:  # the second load opens the store, whatever the storage
        m.setattr(images, "decode_image_chunks", _no_decoding)
        mapped = load_dataset(DataConfig(name="folder", path=str(root), storage="mmap"), "train")
    assert isinstance(mapped, StoredDataset) and not isinstance(memory, StoredDataset)
    assert len(mapped) == len(memory) and mapped.info == memory.info
    assert torch.equal(mapped.x, memory.x) and torch.equal(mapped.y, memory.y)
    index = torch.randperm(len(memory), generator=torch.Generator().manual_seed(3))[:7]
    for a, b in zip(mapped.batch(index), memory.batch(index)):
        assert a.dtype == b.dtype and torch.equal(a, b)
    # and the bytes are the files' pixels: one image read back by PIL
    manifest = json.loads((_store_dir(cache) / "manifest.json").read_text())
    assert manifest["shape"] == [40, 1, 8, 8] and manifest["bytes"] == 40 * 64 and manifest["layout"] == "NCHW"
    runs = manifest["extras"]["labels"]["class_folder_runs"]  # the rows' class folders, in row order
    assert sum(count for _, count in runs) == 40 and [name for name, _ in runs] == ["0", "1", "2", "3"] * (1 + split)
    first = sorted((root / "train" if split else root).rglob("*.png"))[0]  # the store's row 0
    stored = store.ImageStore(_store_dir(cache), manifest).array[0, 0]
    assert np.array_equal(stored, np.asarray(Image.open(first)))


def test_head_is_a_stored_view_subset_is_in_memory(tmp_path, cache):
    root = _folder(tmp_path / "imgs")
    mapped = load_dataset(DataConfig(name="folder", path=str(root), storage="mmap", limit=10), "train")
    assert isinstance(mapped, StoredDataset) and len(mapped) == 10
    small = mapped.subset([3, 1])
    assert not isinstance(small, StoredDataset)
    assert torch.equal(small.x, mapped.x[[3, 1]]) and torch.equal(small.y, mapped.y[[3, 1]])
    assert torch.equal(mapped.head(4).tensors[0], mapped.x[:4])


# ---------------------------------------------------------------------------------------------- trust


def test_changed_source_rebuilds_in_place(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "imgs")
    config = DataConfig(name="folder", path=str(root), storage="mmap")
    before = load_dataset(config, "train")
    target = sorted(root.rglob("*.png"))[0]  # row 0
    old_first = before.store.array[0, 0].copy()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(target)  # rewritten: new bytes and mtime
    with monkeypatch.context() as m:
        m.setattr(images, "decode_image_chunks", _no_decoding)
        with pytest.raises(AssertionError, match="decoded"):
            load_dataset(config, "train")
    after = load_dataset(config, "train")
    assert len(list(cache.glob("folder-*"))) == 1  # the same folder, rebuilt
    assert np.array_equal(after.store.array[0, 0], np.full((8, 8), 7, np.uint8))
    assert np.array_equal(before.store.array[0, 0], old_first)  # a map opened before the rebuild still reads its array


def _identity(tmp_path: Path) -> dict:
    return {"kind": "test", "path": str(tmp_path), "size": 4, "channels": 1}


def _chunks(n: int, value: int = 5):
    return lambda: iter([np.full((n, 4, 4, 1), value, np.uint8)])


@pytest.mark.parametrize("damage", ["no-manifest", "short-array", "manifest-shape", "foreign-source", "old-format",
                                    "garbled-manifest"])
def test_an_interrupted_or_inconsistent_store_is_rebuilt_not_trusted(tmp_path, cache, damage):
    identity, source = _identity(tmp_path), {"listing": "abc"}
    built = build_store("test", identity, source, 6, _chunks(6))
    path = built.path
    manifest = json.loads((path / "manifest.json").read_text())
    if damage == "no-manifest":  # killed after writing the array, before the manifest
        (path / "manifest.json").unlink()
    elif damage == "short-array":  # the array cut short (a disk that filled up)
        with open(path / "images.u8", "r+b") as f:
            f.truncate(50)
    elif damage == "manifest-shape":
        manifest["shape"] = [7, 1, 4, 4]
        (path / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "foreign-source":
        manifest["source"] = {"listing": "zzz"}
        (path / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "old-format":
        manifest["version"] = 0
        (path / "manifest.json").write_text(json.dumps(manifest))
    else:
        (path / "manifest.json").write_text('{"version": 1, "sha')
    assert open_store("test", identity, source) is None
    rebuilt = build_store("test", identity, source, 6, _chunks(6, value=9))
    assert rebuilt.path == path and rebuilt.array.shape == (6, 1, 4, 4) and int(rebuilt.array.min()) == 9
    assert open_store("test", identity, source) is not None


def test_a_failed_decode_leaves_nothing_trusted(tmp_path, cache):
    identity, source = _identity(tmp_path), {"listing": "abc"}

    def broken():
        yield np.zeros((3, 4, 4, 1), np.uint8)
        raise DataError("x.png: unreadable or corrupt image file")

    with pytest.raises(DataError, match="corrupt"):
        build_store("test", identity, source, 6, broken)
    assert open_store("test", identity, source) is None
    assert not list(store.store_path("test", identity).glob("images.u8*"))


_SLOW_BUILD = """
import sys, time
import numpy as np
from genlab.data.store import build_store
def chunks():
    for _ in range(1000):
        yield np.full((1, 4, 4, 1), 3, np.uint8)
        time.sleep(0.01)
build_store("test", {"kind": "test", "path": sys.argv[1], "size": 4, "channels": 1}, {"listing": "abc"}, 1000, chunks)
"""


def test_kill_9_during_the_first_decode_leaves_nothing_trusted(tmp_path, cache):
    identity = _identity(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(SRC), "GENLAB_CACHE": str(cache)}
    child = subprocess.Popen([sys.executable, "-c", _SLOW_BUILD, str(tmp_path)], env=env)
    partial = store.store_path("test", identity) / "images.u8.partial"
    deadline = time.monotonic() + 60
    while not partial.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)  # a few rows in
    assert child.poll() is None, "the build finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert partial.exists() and not (partial.parent / "manifest.json").exists()
    assert open_store("test", identity, {"listing": "abc"}) is None
    rebuilt = build_store("test", identity, {"listing": "abc"}, 5, _chunks(5, value=1))
    assert rebuilt.array.shape == (5, 1, 4, 4) and int(rebuilt.array.max()) == 1


def test_a_colour_image_after_grey_ones_makes_the_store_rgb(tmp_path, cache, monkeypatch):
    rng = np.random.default_rng(1)
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).save(folder / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(folder / "7.png")
    Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).save(folder / "8.png")
    expected = images.decode_images(sorted(folder.iterdir()), channels=None, image_size=None)
    monkeypatch.setattr(imageio, "SERIAL_CHUNK", 2)  # grey chunks first, then the colour one, then grey again
    data = load_dataset(DataConfig(name="folder", path=str(folder), storage="mmap"), "train")
    assert data.store.shape == (9, 3, 6, 6)
    assert np.array_equal(data.store.array, expected.transpose(0, 3, 1, 2))


def test_an_unwritable_cache_falls_back_to_a_temporary_folder(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GENLAB_CACHE", str(blocker / "cache"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = _folder(tmp_path / "imgs", n=12)
    with caplog.at_level(logging.WARNING, logger="genlab.data.store"):
        data = load_dataset(DataConfig(name="folder", path=str(root)), "train")
    assert len(data) == 11 and "cannot write the image store" in caplog.text


# ---------------------------------------------------------------------------------------------- storage choice


def test_storage_is_validated_and_auto_is_logged(tmp_path, cache, monkeypatch, caplog):
    with pytest.raises(ConfigError, match="storage"):
        DataConfig(name="folder", storage="disk")
    root = _folder(tmp_path / "imgs")
    with caplog.at_level(logging.INFO, logger="genlab.data.store"):
        small = load_dataset(DataConfig(name="folder", path=str(root)), "train")
    assert not isinstance(small, StoredDataset) and "in memory" in caplog.text and "budget" in caplog.text
    monkeypatch.setattr(store, "MEMORY_SHARE", 1e-12)  # nothing fits: auto maps the store
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="genlab.data.store"):
        big = load_dataset(DataConfig(name="folder", path=str(root)), "train")
    assert isinstance(big, StoredDataset) and "memory-mapped store" in caplog.text
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # the budget is shared by a machine's ranks
    monkeypatch.setattr(store, "MEMORY_SHARE", 0.25)
    monkeypatch.setattr(store, "_physical_memory", lambda: 4 * 32 * 64 * 4 * 4)  # 4 ranks x exactly 32 images
    assert store.choose_storage("auto", 32, (1, 8, 8), "t") == "memory"
    assert store.choose_storage("auto", 33, (1, 8, 8), "t") == "mmap"


# ---------------------------------------------------------------------------------------------- training


def _fit(data, family: str, config: dict, *, world: tuple[int, int] | None = None):
    from genlab.models import build_model
    from genlab.training import TrainConfig, Trainer

    torch.manual_seed(0)
    model = build_model(family, config)
    settings = TrainConfig(batch_size=8, max_steps=10, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                           eval_every=10**6, sample_every=10**6, checkpoint_every=10**6, log_every=5)
    Trainer(model, data, settings).fit()
    return model.state_dict()


@pytest.mark.parametrize("family,binarize", [("autoencoder", "none"), ("vae", "dynamic")])
def test_training_from_the_store_is_bit_identical_to_memory(tmp_path, cache, family, binarize):
    root = _folder(tmp_path / "imgs")
    config = {"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [16]}
    states = {}
    for storage in ("memory", "mmap"):
        data = load_dataset(DataConfig(name="folder", path=str(root), storage=storage, binarize=binarize), "train")
        assert isinstance(data, StoredDataset) == (storage == "mmap")
        states[storage] = _fit(data, family, config)
    for name, value in states["memory"].items():
        assert torch.equal(value, states["mmap"][name]), name


def test_each_rank_reads_only_its_rows(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "imgs")
    data = load_dataset(DataConfig(name="folder", path=str(root), storage="mmap"), "train")
    read: list[int] = []
    gather = StoredDataset._gather

    def spy(self, rows):
        read.append(len(rows))
        return gather(self, rows)

    monkeypatch.setattr(StoredDataset, "_gather", spy)
    whole = [b for b in BatchLoader(data, 8, seed=5).epoch(2)]
    read.clear()
    parts = [[b for b in BatchLoader(data, 8, seed=5, rank=r, world_size=2).epoch(2)] for r in range(2)]
    assert read and set(read) == {4}  # each rank's read is its half of the global batch, never more
    for step, batch in enumerate(whole):
        for t, (a, b) in zip(batch, zip(parts[0][step], parts[1][step])):
            assert torch.equal(torch.cat([a, b]), t)



def _mapped_mb(path: Path) -> float:
    """Resident pages of ``path``'s mappings in this process (MB), from /proc/self/smaps."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and len(line.split()) >= 5:  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total / 1024


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="needs Linux's /proc/self/smaps")
def test_reading_batches_keeps_the_stores_pages_out_of_the_process(tmp_path, cache):
    """A batch maps its rows (with large page-cache folios, megabytes around each); after the batch the
    store releases them, so RSS stays bounded by the batch, not by how much of the store was read."""
    n, rows = 4000, np.random.default_rng(0)
    built = build_store("test", {**_identity(tmp_path), "size": 32, "channels": 3}, {"listing": "big"}, n,
                        lambda: iter([rows.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)]))  # 12 MB
    data = StoredDataset(built, torch.arange(n))
    for index in torch.randperm(n, generator=torch.Generator().manual_seed(0)).split(64):
        data.batch(index)
    assert _mapped_mb(built.path / "images.u8") < 1.0, _mapped_mb(built.path / "images.u8")


# ---------------------------------------------------------------------------------------------- npz


@pytest.mark.parametrize("shape", [(30, 64), (30, 8, 8), (30, 8, 8, 3), (30, 3, 8, 8)], ids=["flat", "hw", "nhwc", "nchw"])
@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_uint8_npz_streams_into_the_store(tmp_path, cache, shape, compressed, monkeypatch):
    from genlab.data.images import array_to_unit_float, split_indices, to_nchw

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, shape, dtype=np.uint8), np.arange(30) % 5
    path = tmp_path / "d.npz"
    (np.savez_compressed if compressed else np.savez)(path, x=x, y=y)
    monkeypatch.setattr(images, "_npz_chunks", functools.partial(_REAL_CHUNKS, rows=7))  # several chunks of 7 rows
    expected = to_nchw(array_to_unit_float(x, "x"), "x")  # the in-memory conversion, whole
    for split in ("train", "test"):
        index = split_indices(30, 0, split, "d")
        for storage in ("memory", "mmap"):
            data = load_dataset(DataConfig(name="npz", path=str(path), storage=storage), split)
            assert isinstance(data, StoredDataset) == (storage == "mmap")
            assert torch.equal(data.x, expected[index]) and torch.equal(data.y, torch.as_tensor(y)[index])
            assert data.info["num_classes"] == 5 and data.info["image_shape"] == tuple(expected.shape[1:])
    assert len(list(cache.glob("npz-*"))) == 1


def test_float_or_resized_npz_stays_on_the_in_memory_path(tmp_path, cache):
    path = tmp_path / "f.npz"
    np.savez(path, x=np.random.default_rng(0).random((20, 8, 8)).astype(np.float32))
    assert not isinstance(load_dataset(DataConfig(name="npz", path=str(path), storage="mmap"), "train"), StoredDataset)
    path = tmp_path / "u.npz"
    np.savez(path, x=np.zeros((20, 8, 8), np.uint8))
    small = load_dataset(DataConfig(name="npz", path=str(path), image_size=4, storage="mmap"), "train")
    assert small.x.shape[1:] == (1, 4, 4) and not list(cache.glob("npz-*"))


def test_storage_is_settled_after_the_limit_so_only_kept_rows_are_read_in(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "imgs")  # 40 images, 36 train, 8x8 grey: 256 float32 bytes each
    read: list[int] = []
    gather = StoredDataset._gather
    monkeypatch.setattr(StoredDataset, "_gather", lambda self, rows: read.append(len(rows)) or gather(self, rows))
    kept = load_dataset(DataConfig(name="folder", path=str(root), storage="memory", limit=10), "train")
    assert not isinstance(kept, StoredDataset) and len(kept) == 10 and read == [10]
    monkeypatch.setattr(store, "_physical_memory", lambda: int(20 * 256 / store.MEMORY_SHARE))  # 20 images fit
    assert isinstance(load_dataset(DataConfig(name="folder", path=str(root)), "train"), StoredDataset)
    assert not isinstance(load_dataset(DataConfig(name="folder", path=str(root), limit=20), "train"), StoredDataset)


def test_a_store_decoded_in_worker_processes_equals_one_decoded_here(tmp_path, monkeypatch):
    root = _folder(tmp_path / "imgs", n=30)
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "serial"))
    serial = load_dataset(DataConfig(name="folder", path=str(root), storage="mmap"), "train")
    monkeypatch.setattr(imageio, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(imageio, "cpu_count", lambda: 2)  # 2 workers, chunks of 4 files, a window of 4 in flight
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "parallel"))
    parallel = load_dataset(DataConfig(name="folder", path=str(root), storage="mmap"), "train")
    assert parallel.store.path.parent == tmp_path / "parallel"
    assert np.array_equal(parallel.store.array, serial.store.array)


def test_a_decode_cache_written_before_the_store_is_left_alone_and_the_store_built(tmp_path, cache):
    root = _folder(tmp_path / "imgs", n=12)
    cache.mkdir()
    old = cache / "folder-None-0123456789abcdef.npz"  # the former .npz decode cache's naming
    np.savez(old, images=np.zeros((12, 8, 8, 1), np.uint8))
    data = load_dataset(DataConfig(name="folder", path=str(root), storage="memory"), "train")
    assert float(data.x.max()) > 0  # decoded from the files, not the zeros of the old file
    assert old.is_file() and len(list(cache.glob("folder-*/manifest.json"))) == 1
