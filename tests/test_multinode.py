"""Two "nodes" on this machine: two ``torchrun --nnodes=2 --node_rank=R --nproc_per_node=1`` launches
meeting at one static rendezvous (gloo on CPU), each with its own decode store as separate machines
would have, train a tiny VAE (from the memory-mapped store, dynamically binarized) and a tiny GAN; the
weights must equal one process's to float tolerance (DDP averages the two halves' gradients, a
different summation order than one process's mean). Tiny configs: runs in CI in about 10-20 s.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import checkpoint as ckpt

HERE = Path(__file__).resolve().parent
WORKER = HERE / "multinode_worker.py"
FAMILIES = ("vae", "gan")
TRANSPORT_ERRORS = ("Address already in use", "EADDRINUSE", "Connection refused", "Connection reset by peer",
                    "RendezvousConnectionError", "RendezvousTimeoutError", "connectFullMesh", "DistNetworkError")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    if Path("/sys/class/net/lo").exists():  # both "nodes" on this host: keep gloo on the loopback device
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def _two_nodes(folder: Path, out: Path, root: Path) -> list[subprocess.CompletedProcess]:
    port = _free_port()
    nodes = []
    for rank in range(2):
        launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}",
                  "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                  str(WORKER), str(folder), str(out)]
        nodes.append(subprocess.Popen(launch, env=_env(root / f"cache-node{rank}"), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for node in nodes:
        try:
            stdout, stderr = node.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for other in nodes:
                other.kill()
            raise
        results.append(subprocess.CompletedProcess(node.args, node.returncode, stdout, stderr))
    return results


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    root = tmp_path_factory.mktemp("multinode")
    folder = root / "images"
    rng = np.random.default_rng(0)
    for i in range(72):  # 64 train, 8 test (a seeded split); 8x8 grey
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / str(i % 2) / f"{i:02d}.png")
    single = root / "single"
    single.mkdir()
    result = subprocess.run([sys.executable, str(WORKER), str(folder), str(single)], env=_env(root / "cache-single"),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    two = root / "two-nodes"
    for attempt in range(2):
        two.mkdir()
        results = _two_nodes(folder, two, root)
        failed = [r for r in results if r.returncode != 0]
        if not failed or attempt or not any(s in r.stderr for r in failed for s in TRANSPORT_ERRORS):
            break
        shutil.rmtree(two)  # the port or gloo's loopback handshake lost a race on a busy machine: once more
    for rank, r in enumerate(results):
        assert r.returncode == 0, f"node {rank}:\n" + r.stderr[:3000] + "\n...\n" + r.stderr[-1500:]
    return {name: {f: ckpt.load_tensors(path / f"{f}.safetensors") for f in FAMILIES}
            for name, path in (("single", single), ("two", two))}


@pytest.mark.parametrize("family", FAMILIES)
def test_two_nodes_train_the_weights_of_one_process(trained, family):
    single, two = trained["single"][family], trained["two"][family]
    assert single.keys() == two.keys()
    for k in single:
        torch.testing.assert_close(two[k], single[k], rtol=1e-4, atol=1e-5)
    # and training moved the weights: equal results are not two untouched initialisations
    torch.manual_seed(0)
    from genlab.models import build_model

    config = ({"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [32]} if family == "vae" else
              {"x_dim": 2, "latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16]})
    initial = build_model(family, config).state_dict()
    assert any(not torch.allclose(initial[k], single[k]) for k in single if initial[k].is_floating_point())
