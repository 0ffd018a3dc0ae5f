"""Naive generator training collapses: spread of samples / spread of data, and how close the samples
sit to the data mean, on the 8-Gaussian ring and on MNIST (the embedded 4,000-image subset).

Each generator is trained by pairing its samples with random data points and minimising MSE, L1 or
BCE (images only). Reported per setting: spread ratio (1 = as varied as the data), mean distance of
samples to the data mean / mean distance of data to it, and both before and after training.

    nice -n 10 python benchmarks/naive_collapse.py
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from genlab.data import DataConfig, load_dataset
from genlab.models import build_model
from genlab.reports.naive import collapse_stats
from genlab.training import TrainConfig, Trainer

SETTINGS = [
    ("ring8", {"x_dim": 2, "latent_dim": 2, "hidden_dims": [128, 128], "loss": "mse"}),
    ("ring8", {"x_dim": 2, "latent_dim": 2, "hidden_dims": [128, 128], "loss": "l1"}),
    ("mnist-embedded", {"image_shape": [1, 28, 28], "latent_dim": 32, "hidden_dims": [256, 256], "loss": "mse"}),
    ("mnist-embedded", {"image_shape": [1, 28, 28], "latent_dim": 32, "hidden_dims": [256, 256], "loss": "bce"}),
    ("mnist-embedded", {"image_shape": [1, 28, 28], "latent_dim": 32, "generator": "conv", "base_channels": 16, "loss": "mse"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/naive_collapse.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for data_name, config in SETTINGS:
        data = load_dataset(DataConfig(name=data_name, seed=args.seed))
        test = load_dataset(DataConfig(name=data_name, seed=args.seed), "test")
        torch.manual_seed(args.seed)
        model = build_model("naive", config)
        g = lambda: torch.Generator().manual_seed(args.seed)  # noqa: E731
        before = collapse_stats(model.eval().sample(len(test), generator=g()), test.x)
        cfg = TrainConfig(max_steps=args.steps, batch_size=64, lr=1e-3, seed=args.seed, progress=False, tensorboard=False,
                          device="cpu", eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, fused_optimizer=False)
        Trainer(model.train(), data, cfg).fit()
        after = collapse_stats(model.eval().sample(len(test), generator=g()), test.x)
        label = f"{data_name} {config.get('generator', 'mlp')} {config['loss']}"
        rows.append({"setting": label, "before": before, "after": after, "steps": args.steps})
        print(f"{label:32s} spread ratio {before['spread_ratio']:.3f} -> {after['spread_ratio']:.4f}   "
              f"distance-to-mean ratio {before['mean_distance_ratio']:.3f} -> {after['mean_distance_ratio']:.4f}   "
              f"mean offset {after['mean_offset']:.4f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print("\n| setting | spread ratio (untrained -> trained) | distance to data mean / data's (trained) | |mean offset| / data spread |")
    print("|---|---|---|---|")
    for r in rows:
        b, a = r["before"], r["after"]
        print(f"| {r['setting']} | {b['spread_ratio']:.3f} -> {a['spread_ratio']:.4f} | {a['mean_distance_ratio']:.4f} | {a['mean_offset']:.4f} |")


if __name__ == "__main__":
    main()
