"""Face autoencoders' samples in genlab's two face rulers, by sampler: the prior N(0, I) against a
Gaussian and a 10-component GMM fitted to the training faces' codes (ex-post density estimation).

    python benchmarks/fitted_sampler_rulers.py --data ../shared/data/celeba-10k --ruler-cache CACHE \\
        --models vae=RUNS/vae-celeba-full-seed0-XXXX feature-vae=RUNS/feature-vae-celeba-full-seed0-XXXX

``--models`` names saved autoencoders (a run folder or its ``model`` folder), e.g. the lecture's shared runs
(``genlab lecture --budget full`` keeps them under ``OUT/runs``). Each draws ``--samples`` codes from each
sampler (fixed seeds); the decoded faces are scored against the rulers' 1,000 reference faces in both rulers
(:mod:`genlab.metrics.rulers`: FD, precision, recall), with the rulers' floor (held-out real faces). The
codes are encoded from the training split of ``genlab``'s CelebA loader at the models' image size.
The rulers are loaded from ``--ruler-cache`` (trained there first when missing, as every face benchmark
does; ``benchmarks/face_rulers.py`` validates them). Results: ``--results`` (JSON) and a printed table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genlab.checkpoint import atomic_write_text, load
from genlab.data.base import DataConfig, load_dataset
from genlab.latent import LatentDensity, decode, encode_all, random_codes
from genlab.metrics import rulers as R

HERE = Path(__file__).resolve().parent


def draws(model, codes: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """``n`` codes from each sampler, each from its own fixed seed."""
    return {"prior": random_codes(model, n, generator=torch.Generator().manual_seed(1)),
            "gaussian": LatentDensity("gaussian").fit(codes).sample(n, generator=torch.Generator().manual_seed(2)),
            "gmm10": LatentDensity("gmm", components=10, seed=0).fit(codes).sample(n, generator=torch.Generator().manual_seed(3))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the CelebA folder (celeba-10k)")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=FOLDER")
    p.add_argument("--ruler-cache", required=True)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--results", type=Path, default=HERE / "results" / "fitted_sampler_rulers.json")
    args = p.parse_args()
    if bad := [m for m in args.models if "=" not in m]:
        p.error(f"--models takes NAME=FOLDER, got {bad}")
    start = time.process_time()
    splits = R.face_splits(args.data, image_size=64)
    rulers = [R.build_ruler(name, splits["ruler_train"], cache=args.ruler_cache) for name in R.DEFAULT_RULERS]
    reference = {r.name: r.features(splits["reference"].x[:args.samples]) for r in rulers}
    result: dict = {"args": {**vars(args), "results": str(args.results)}, "torch": torch.__version__,
                    "floor": R.face_scores(splits["heldout"].x[:args.samples], reference, rulers), "models": {}}
    for name, folder in (m.split("=", 1) for m in args.models):
        folder = Path(folder)
        model = load(folder / "model" if (folder / "model" / "config.json").is_file() else folder).eval()
        size = int(model.config.image_shape[-1])
        train = load_dataset(DataConfig(name="celeba", path=args.data, image_size=size, seed=0), "train")
        codes = encode_all(model, train.x)  # posterior means for a VAE
        for sampler, z in draws(model, codes, args.samples).items():
            images = decode(model, z)
            if size != 64:
                images = torch.nn.functional.interpolate(images, size=64, mode="bilinear", antialias=True).clamp(0, 1)
            scores = R.face_scores(images, reference, rulers)
            result["models"].setdefault(name, {"folder": str(folder)})[sampler] = scores
            print(f"{name:>14} {sampler:>8}: " + ", ".join(
                f"{r} FD {row['fid']:.4g} (precision {row['precision']:.2f}, recall {row['recall']:.2f})"
                for r, row in scores.items()), flush=True)
    result["cpu_seconds"] = time.process_time() - start
    print("floor: " + ", ".join(f"{r} FD {row['fid']:.4g}" for r, row in result["floor"].items()))
    atomic_write_text(args.results, json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
