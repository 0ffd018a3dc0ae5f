"""Training from the memory-mapped uint8 store vs from memory: peak RSS, steps/s, decode and open times.

Protocol:

1. Writes an N-image folder of 64x64 RGB PNGs (default N = 200,000, about 2.5 GB; never in the
   repository: ``--folder``, default under the system temp dir; reused when it already holds N files).
   Each image is a random smooth colour field (a 4x4 noise grid, bicubic-upsampled) plus pixel noise,
   so PNG decoding costs what it costs on photographs of that size.
2. **First decode**: a fresh process with an empty ``$GENLAB_CACHE`` loads the training split with
   ``data.storage=mmap``: every file is decoded in worker processes (all CPUs this process may use,
   reported as ``cpus``) into the store. Wall time of the load.
3. **Second open**: a fresh process loads it again (the store's manifest checked against the folder's
   file listing, the array mapped). Wall time of the load.
4. **Training** (pinned to one CPU with ``--pin``), each in a fresh process, the same tiny conv autoencoder (3x64x64, channels 16/32,
   latent 32), batch 64, ``--steps`` optimizer steps after ``--warmup`` untimed ones, one thread:
   (a) all N images from the store (``storage=mmap``); (b) the first ``--subset`` images (default
   10,000) held in memory as float32 (``storage=memory``, what genlab did before the store);
   (c) the same subset from the store (``storage=mmap``), the like-for-like speed comparison that
   ``storage=auto``'s rule rests on. Reported: steps/s over the timed steps and the process's peak
   RSS (``ru_maxrss``, which counts the mapped store's pages the process touched: page cache the
   kernel may reclaim) and the peak anonymous RSS sampled after every step (the process's own
   memory); ``--rounds`` interleaved rounds, the median steps/s reported. RSS includes the Python + torch baseline (reported as ``baseline_rss_mb``:
   a process that imports genlab and builds the model, no data).

5. **``genlab train``** as a user runs it on all N images from the store (the same autoencoder, ``--steps`` +
   ``--warmup`` steps, evaluation, checkpoints and the end-of-run report included): exit code, wall time,
   peak RSS.

Baseline: (b) is the pre-store design; at N = 200k it would need 200k x 12,288 x 4 B = 9.8 GB of
float32 in every process, which is why (a) exists. The store is read through the page cache, so a
second run (warm cache) reads no disk; the numbers are for a warm cache after step 2.

    python benchmarks/data_store.py --n 200000 --pin 0 --json benchmarks/results/data_store.json
    python benchmarks/data_store.py --n 2000 --subset 1000 --steps 20 --warmup 3 --rounds 2   # a quick check
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

MEASURE = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from genlab.data import DataConfig, load_dataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

what, folder, storage, limit, steps, warmup = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
config = DataConfig(name="folder", path=folder, storage=storage, limit=None if limit == "all" else int(limit))
out = {}
if what == "cli":  # the command a user runs: genlab train, end-of-run report included
    from genlab.cli import main
    start = time.perf_counter()
    code = main(["train", "autoencoder", "--data", folder, "--out", sys.argv[7], "--data.storage=" + storage,
                 "--model.architecture=conv", "--model.channels=[16,32]", "--model.latent_dim=32",
                 f"--train.max_steps={steps}", "--train.batch_size=64", "--train.threads=1", "--train.progress=false",
                 "--train.tensorboard=false"])
    out["exit_code"] = code
    out["wall_seconds"] = time.perf_counter() - start
    out["metrics"] = json.loads(open(sys.argv[7] + "/metrics.json").read())
elif what == "baseline":
    build_model("autoencoder", {"architecture": "conv", "image_shape": [3, 64, 64], "channels": [16, 32], "latent_dim": 32})
else:
    start = time.perf_counter()
    data = load_dataset(config, "train")
    out["load_seconds"] = time.perf_counter() - start
    out["examples"] = len(data)
    out["dataset"] = type(data).__name__
    if what == "train":
        torch.manual_seed(0)
        model = build_model("autoencoder", {"architecture": "conv", "image_shape": [3, 64, 64], "channels": [16, 32],
                                            "latent_dim": 32})
        marks, anon = [], [0]

        def clock(trainer, event, info):
            marks.append((info.get("step", trainer.step), time.perf_counter()))
            status = open("/proc/self/status").read()  # anonymous memory (not the page cache) after each step
            anon[0] = max(anon[0], int(status.split("RssAnon:")[1].split()[0]) // 1024)

        settings = TrainConfig(batch_size=64, max_steps=warmup + steps, lr=1e-3, progress=False, tensorboard=False,
                               device="cpu", eval_every=10**6, sample_every=10**6, checkpoint_every=10**6,
                               log_every=1, threads=1)
        Trainer(model, data, settings, callbacks=[lambda t, e, i: clock(t, e, i) if e == "log" else None]).fit()
        (s0, t0), (s1, t1) = marks[warmup - 1], marks[-1]
        out["steps_per_second"] = (s1 - s0) / (t1 - t0)
        out["peak_anon_mb"] = anon[0]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
status = open("/proc/self/status").read()
out["vm_hwm_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024  # this process image's own peak RSS
print("RESULT " + json.dumps(out))
"""


def write_folder(root: Path, n: int, workers: int) -> float:
    """``n`` 64x64 RGB PNGs in 100 sub-folders; returns the seconds it took (0 when already there)."""
    existing = sum(1 for _ in root.rglob("*.png")) if root.is_dir() else 0
    if existing == n:
        return 0.0
    start = time.perf_counter()
    from concurrent.futures import ProcessPoolExecutor

    blocks = [(root, i, min(i + 1000, n)) for i in range(0, n, 1000)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_block, blocks))
    return time.perf_counter() - start


def _write_block(args: tuple[Path, int, int]) -> None:
    import numpy as np
    from PIL import Image

    root, lo, hi = args
    rng = np.random.default_rng(lo)
    for i in range(lo, hi):
        folder = root / f"{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        grid = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((64, 64), Image.Resampling.BICUBIC)
        pixels = np.asarray(grid, dtype=np.int16) + rng.integers(-12, 13, (64, 64, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.png")


PIN: set[int] | None = None  # the CPU the timed training runs are pinned to (--pin); decoding uses every CPU


def measure(what: str, folder: Path, cache: Path, storage: str = "mmap", limit: str = "all", steps: int = 0,
            warmup: int = 0, out: Path | None = None) -> dict:
    env = {**os.environ, "GENLAB_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    pin = PIN if what in ("train", "baseline", "cli") else None
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, what, str(folder), storage, limit, str(steps), str(warmup),
                             str(out)], env=env, capture_output=True, text=True,
                            preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None)
    if result.returncode:
        raise SystemExit(f"{what} {storage} {limit} failed:\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return {**json.loads(line[len("RESULT "):]), "process_seconds": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="images in the generated folder")
    p.add_argument("--subset", type=int, default=10_000, help="examples of the in-memory comparison")
    p.add_argument("--steps", type=int, default=100, help="timed optimizer steps per training run")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three training runs (median reported)")
    p.add_argument("--folder", type=Path, default=None, help="where the PNG folder is written (not the repository)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--pin", type=int, default=None, metavar="CPU",
                   help="pin the timed training runs to this CPU (the first decode still uses every CPU)")
    p.add_argument("--open-only", action="store_true",
                   help="only time opening the existing store (--rounds fresh processes) and merge into --json")
    args = p.parse_args()
    global PIN
    PIN = {args.pin} if args.pin is not None else None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    work = Path(tempfile.gettempdir()) / "genlab-data-store-bench"
    folder = args.folder or work / f"png-{args.n}"
    cache = work / f"cache-{args.n}"
    subset = min(args.subset, int(args.n * 0.9))
    results: dict = {"n": args.n, "subset": subset, "cpus": cpus, "steps": args.steps, "warmup": args.warmup,
                     "write_seconds": write_folder(folder, args.n, cpus)}
    import shutil

    if args.open_only:
        opens = [measure("load", folder, cache)["load_seconds"] for _ in range(args.rounds)]
        previous = json.loads(args.json.read_text()) if args.json and args.json.is_file() else {}
        previous["reopen_seconds"] = {"all": opens, "median": sorted(opens)[len(opens) // 2]}
        print(json.dumps(previous["reopen_seconds"]))
        if args.json:
            args.json.write_text(json.dumps(previous, indent=2) + "\n")
        return
    shutil.rmtree(cache, ignore_errors=True)
    results["baseline_rss_mb"] = measure("baseline", folder, cache)["peak_rss_mb"]
    results["first_decode"] = measure("load", folder, cache)
    results["second_open"] = measure("load", folder, cache)
    runs = {"train_store_all": ("mmap", "all"), "train_memory_subset": ("memory", str(subset)),
            "train_store_subset": ("mmap", str(subset))}
    rounds: dict[str, list[dict]] = {name: [] for name in runs}
    for _ in range(args.rounds):  # interleaved: a busy neighbour slows every variant alike
        for name, (storage, limit) in runs.items():
            rounds[name].append(measure("train", folder, cache, storage, limit, args.steps, args.warmup))
    for name, got in rounds.items():
        speeds = sorted(r["steps_per_second"] for r in got)
        results[name] = {**got[0], "steps_per_second": speeds[len(speeds) // 2], "steps_per_second_all": speeds,
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in got),
                         "peak_anon_mb": max(r["peak_anon_mb"] for r in got)}
    cli_out = work / f"cli-run-{args.n}"
    shutil.rmtree(cli_out, ignore_errors=True)
    results["genlab_train_all"] = measure("cli", folder, cache, "mmap", "all", args.steps + args.warmup, 0, cli_out)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
