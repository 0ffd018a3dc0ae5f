from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the subprocesses some tests start

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Tiny test tensors gain nothing from intra-op threads, and threads spin badly on a busy machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch) -> None:
    """Decoded-image caches (CelebA, image folders) go to a temporary folder, not ~/.cache/genlab."""
    if "GENLAB_CACHE" not in os.environ:
        monkeypatch.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("genlab-cache")))


@pytest.fixture
def shared_data() -> Path:
    """The team's real datasets (../shared/data); tests that need them skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
