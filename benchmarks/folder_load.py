"""First and second load of a 70,000-image folder: MNIST train + test written out as PNG files.

Writes ``train/<digit>/*.png`` and ``test/<digit>/*.png`` into a temporary folder (never the
repository), then loads both splits with ``load_dataset(folder)`` in fresh processes: the first
load with an empty ``$GENLAB_CACHE`` (decoding every file), the second with the cache the first one
wrote. ``--src`` times another source tree the same way (e.g. the code before the cache:
``git archive <commit> src | tar -x -C /tmp/before`` then ``--src /tmp/before/src``).

    python benchmarks/folder_load.py --data ../shared/data/mnist --json benchmarks/results/folder_load_70k.json
    python benchmarks/folder_load.py --data ../shared/data/mnist --src /tmp/before/src --loads 1
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LOAD = """
import json, sys, time
from genlab.data import DataConfig, load_dataset
config = DataConfig(name="folder", path=sys.argv[1])
start = time.perf_counter()
train = load_dataset(config, "train")
test = load_dataset(config, "test")
print(json.dumps({"seconds": time.perf_counter() - start, "train": len(train), "test": len(test),
                  "checksum": float(train.x.sum() + test.x.sum())}))
"""


def write_pngs(idx_folder: str, root: Path) -> None:
    from PIL import Image

    from genlab.data.images import read_idx_folder

    for split in ("train", "test"):
        x, y, _ = read_idx_folder(idx_folder, split)
        pixels = (x[:, 0] * 255).round().byte().numpy()
        for digit in range(10):
            (root / split / str(digit)).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(pixels, y.tolist())):
            Image.fromarray(image).save(root / split / str(label) / f"{i:05d}.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/mnist", help="MNIST IDX folder to write out as PNGs")
    p.add_argument("--folder", default=None, help="use this PNG folder instead of writing one")
    p.add_argument("--src", default=None, help="source tree to time (default: the installed/PYTHONPATH genlab)")
    p.add_argument("--loads", type=int, default=2, help="loads in fresh processes sharing one cache")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="genlab-folder-bench-"))
    try:
        folder = Path(args.folder) if args.folder else work / "mnist70k"
        if not args.folder:
            write_pngs(args.data, folder)
        env = {**os.environ, "GENLAB_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}
        if args.src:
            env["PYTHONPATH"] = args.src
        loads = []
        for i in range(args.loads):
            out = subprocess.run([sys.executable, "-c", LOAD, str(folder)], env=env, capture_output=True, text=True, check=True)
            loads.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"load {i + 1}: {loads[-1]['seconds']:.2f} s ({loads[-1]['train']} + {loads[-1]['test']} images)", flush=True)
        summary = {"args": vars(args), "cpus": len(os.sched_getaffinity(0)), "loadavg_after": os.getloadavg(), "loads": loads}
        print(json.dumps(summary, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
