"""Bishop's inverted sinusoid: test NLL (nats per example, higher is worse) of the mixture density
network vs the single-Gaussian network, on several seeds. Test set: 2,000 fresh points.

    nice -n 10 python benchmarks/inverse_sine.py --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from genlab.data import DataConfig, load_dataset
from genlab.models import build_model
from genlab.reports.mdn import evaluate_conditional
from genlab.training import TrainConfig, Trainer

MODELS = {
    "mdn (K=3)": ("mdn", {"num_components": 3}),
    "mdn (K=5)": ("mdn", {"num_components": 5}),
    "single gaussian": ("regressor", {"likelihood": "gaussian"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--out", default="benchmarks/results/inverse_sine.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for label, (name, extra) in MODELS.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg_data = DataConfig(name="inverse-sine", size=args.train_size, seed=seed)
            train, test = load_dataset(cfg_data), load_dataset(cfg_data, "test")
            torch.manual_seed(seed)
            model = build_model(name, {"x_dim": 1, "y_dim": 1, "hidden_dims": [64, 64], **extra})
            cfg = TrainConfig(max_steps=args.steps, batch_size=128, lr=3e-3, lr_schedule="cosine", warmup_steps=200, seed=seed,
                              progress=False, tensorboard=False, device="cpu", eval_every=10**9, sample_every=10**9,
                              checkpoint_every=10**9, fused_optimizer=False)
            Trainer(model, train, cfg).fit()
            metrics = evaluate_conditional(model.eval(), test)
            rows.append({"model": label, "seed": seed, **metrics})
            print(f"{label:16s} seed {seed}: test NLL {metrics['nll']:.4f}  MSE of prediction {metrics['mse']:.4f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print("\n| model | seeds | test NLL (mean +- sd) |")
    print("|---|---|---|")
    for label in MODELS:
        nll = [r["nll"] for r in rows if r["model"] == label]
        sd = statistics.stdev(nll) if len(nll) > 1 else 0.0
        print(f"| {label} | {len(nll)} | {statistics.mean(nll):.3f} +- {sd:.3f} |")


if __name__ == "__main__":
    main()
