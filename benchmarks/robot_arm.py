"""Robot-arm inverse kinematics: fraction of test targets reached within 0.05 by the forward
kinematics of the predicted angles, overall and on targets with two solutions (elbow up/down).

MDN vs the MSE network vs the single-Gaussian network, each on several seeds. Every model trains with
a warm-up + cosine schedule, is validated on a separate validation draw every ``--eval-every`` steps,
and the *best validation checkpoint* (highest validation reach rate, then lowest validation NLL) is
the one scored on the test set: the last iterate of a plain run can be a bad one.

    nice -n 10 python benchmarks/robot_arm.py --seeds 0,1,2,3,4
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from genlab.data import ArrayDataset, DataConfig, load_dataset
from genlab.data.toy import robot_arm
from genlab.models import build_model
from genlab.reports.mdn import evaluate_conditional
from genlab.training import TrainConfig, Trainer

MODELS = {
    "mdn": ("mdn", {"hidden_dims": [128, 128], "num_components": 5, "activation": "tanh"}),
    "mse-net": ("regressor", {"hidden_dims": [128, 128], "likelihood": "mse", "activation": "tanh"}),
    "gaussian-net": ("regressor", {"hidden_dims": [128, 128], "likelihood": "gaussian", "activation": "tanh"}),
}


class KeepBest:
    """Trainer callback: on every evaluation, score the model on the validation set and keep a copy
    of the weights when the score improves. Score = (validation reach rate, -validation NLL)."""

    def __init__(self, validation: ArrayDataset) -> None:
        self.validation = validation
        self.best_score: tuple[float, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = -1

    def __call__(self, trainer: Trainer, event: str, info: dict) -> None:
        if event != "eval":
            return
        model = trainer.model
        was_training = model.training
        model.eval()
        metrics = evaluate_conditional(model, self.validation)
        model.train(was_training)
        score = (metrics["reach_rate"], -metrics.get("nll", metrics["mse"]))
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_step = score, trainer.step
            self.best_state = copy.deepcopy(model.state_dict())


def run(kind: str, seed: int, steps: int, eval_every: int, lr: float, train_size: int) -> dict:
    name, config = MODELS[kind]
    data_cfg = DataConfig(name="robot-arm", size=train_size, seed=seed)
    train = load_dataset(data_cfg)
    test = load_dataset(data_cfg, "test")
    # validation: an independent draw (neither the training nor the test stream)
    g = torch.Generator().manual_seed(10_000 + seed)
    val_x, val_y = robot_arm(2000, generator=g)
    validation = ArrayDataset((val_x, val_y), dict(test.info))
    torch.manual_seed(seed)
    model = build_model(name, {"x_dim": 2, "y_dim": 2, **config})
    keeper = KeepBest(validation)
    cfg = TrainConfig(max_steps=steps, batch_size=128, lr=lr, lr_schedule="cosine", warmup_steps=min(500, steps // 10),
                      seed=seed, eval_every=eval_every, sample_every=10**9, checkpoint_every=10**9, progress=False,
                      tensorboard=False, device="cpu", fused_optimizer=False, log_every=eval_every)
    start = time.perf_counter()
    Trainer(model, train, cfg, eval_data=validation, callbacks=[keeper]).fit()
    last = evaluate_conditional(model.eval(), test)
    assert keeper.best_state is not None
    model.load_state_dict(keeper.best_state)
    best = evaluate_conditional(model.eval(), test)
    return {"model": kind, "seed": seed, "best_step": keeper.best_step, "seconds": time.perf_counter() - start,
            "test": best, "test_last_iterate": last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--models", default="mdn,mse-net,gaussian-net")
    parser.add_argument("--steps", type=int, default=15000, help="MDN training steps")
    parser.add_argument("--baseline-steps", type=int, default=5000, help="training steps of the MSE and Gaussian networks")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--out", default="benchmarks/results/robot_arm.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for kind in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            steps = args.steps if kind == "mdn" else args.baseline_steps
            row = run(kind, seed, steps, args.eval_every, args.lr, args.train_size)
            rows.append(row)
            t, last = row["test"], row["test_last_iterate"]
            print(f"{kind:13s} seed {seed}: reach {100 * t['reach_rate']:6.2f}%  two-solution {100 * t['reach_rate_two_solutions']:6.2f}%"
                  f"  (last iterate {100 * last['reach_rate']:6.2f}% / {100 * last['reach_rate_two_solutions']:6.2f}%)"
                  f"  best step {row['best_step']}  {row['seconds']:.0f}s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print("\n| model | seeds | reach rate (mean, min) | two-solution targets (mean, min) | test NLL (mean) |")
    print("|---|---|---|---|---|")
    for kind in args.models.split(","):
        sel = [r["test"] for r in rows if r["model"] == kind]
        reach = [100 * r["reach_rate"] for r in sel]
        two = [100 * r["reach_rate_two_solutions"] for r in sel]
        nll = [r["nll"] for r in sel if "nll" in r]
        nll_text = f"{statistics.mean(nll):.3f}" if nll else "n/a"
        print(f"| {kind} | {len(sel)} | {statistics.mean(reach):.2f}%, {min(reach):.2f}% | {statistics.mean(two):.2f}%, {min(two):.2f}% | {nll_text} |")


if __name__ == "__main__":
    main()
