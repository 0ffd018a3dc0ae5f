"""How large is StyleGAN's lazy R1 update under each optimizer scheme? (issue 21, item 6)

    taskset -c 0 python benchmarks/lazy_r1_step.py --scheme shared --steps 320
    taskset -c 1 python benchmarks/lazy_r1_step.py --scheme own --steps 320

Trains the face StyleGAN (``configs/stylegan_celeba32.toml``, channels-last, one thread) for ``--steps`` steps
and, at every lazy R1 step, records the size of the update Adam is about to apply, in units of the learning
rate: the RMS over the discriminator's weights of g / (sqrt(v_hat) + eps), where g is the R1 gradient and
v_hat the bias-corrected second moment the step will use (betas[0] = 0 here, so there is no first moment).

- ``own``: the R1 phase has its own Adam, so v_hat is built from R1 gradients alone and the update is about one
  lr per weight whatever gamma is: gamma only sets the direction's mix, not the step's size.
- ``shared`` (stylegan2-ada): the R1 phase steps the discriminator's Adam, whose v_hat is dominated by the main
  loss's gradients; the R1 update is then r1_every * gamma/2 * grad of the penalty, measured against the main
  gradients' scale, and gamma sets its size.

Also reports the RMS of the R1 gradient and of the main phase's gradient (the shared scheme's v). Writes
``benchmarks/results/lazy_r1_step-<scheme>-g<gamma>.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from genlab.api import build, resolve
from genlab.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent


def update_rms(optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    """(RMS of g / (sqrt(v_hat) + eps), RMS of g) over the parameters about to be stepped (Adam, beta1 = 0)."""
    group = optimizer.param_groups[0]
    beta2, eps = group["betas"][1], group["eps"]
    units, grads, count = 0.0, 0.0, 0
    for p in group["params"]:
        if p.grad is None:
            continue
        g = p.grad.float()
        state = optimizer.state.get(p, {})
        step = int(state["step"]) + 1 if state else 1
        v = (state["exp_avg_sq"] * beta2 if state else 0) + (1 - beta2) * g * g
        v_hat = v / (1 - beta2 ** step)
        units += (g / (v_hat.sqrt() + eps)).pow(2).sum().item()
        grads += g.pow(2).sum().item()
        count += g.numel()
    return (units / count) ** 0.5, (grads / count) ** 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="celeba:../shared/data/celeba-10k")
    p.add_argument("--config", default=str(ROOT.parent / "configs" / "stylegan_celeba32.toml"))
    p.add_argument("--scheme", choices=["shared", "own"], default="shared")
    p.add_argument("--gamma", type=float, default=None, help="R1 gamma (default: the config's)")
    p.add_argument("--steps", type=int, default=320)
    p.add_argument("--windows", type=int, default=4, help="report medians over this many equal windows of steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    overrides = [f"model.lazy_optimizer={args.scheme}", f"train.max_steps={args.steps}", f"train.seed={args.seed}",
                 "model.channels_last=true", "train.eval_every=0", "train.sample_every=0", "train.checkpoint_every=0",
                 "train.progress=false"]
    if args.gamma is not None:
        overrides.append(f"model.r1_gamma={args.gamma}")
    spec, explicit = resolve("stylegan", config_file=args.config, data=args.data, overrides=overrides)
    model, train_data, _ = build(spec, explicit)
    trainer = Trainer(model, train_data, spec.train)
    every = model.config.r1_every
    records: list[dict[str, float]] = []
    d_steps: dict[int, int] = {}

    def on_main(optimizer, *_) -> None:  # a step pre-hook: (optimizer, args, kwargs)
        # shared: the discriminator's Adam steps twice on an R1 step, main phase first
        d_steps[trainer.step] = d_steps.get(trainer.step, 0) + 1
        if args.scheme == "shared" and d_steps[trainer.step] == 2:
            on_r1(optimizer)
        elif d_steps[trainer.step] == 1:
            records.append({"step": trainer.step, "kind": "main", "grad_rms": update_rms(optimizer)[1]})

    def on_r1(optimizer, *_) -> None:
        units, grad = update_rms(optimizer)
        records.append({"step": trainer.step, "kind": "r1", "update_over_lr": units, "grad_rms": grad})

    trainer.optimizers["discriminator"].register_step_pre_hook(on_main)
    if args.scheme == "own":
        trainer.optimizers["discriminator_r1"].register_step_pre_hook(on_r1)
    trainer.fit()

    width = args.steps // args.windows
    windows = []
    for lo in range(0, args.steps, width):
        r1 = [r for r in records if r["kind"] == "r1" and lo <= r["step"] < lo + width]
        main_ = [r["grad_rms"] for r in records if r["kind"] == "main" and lo <= r["step"] < lo + width]
        if not r1:
            continue
        row = {"steps": [lo, lo + width], "r1_steps": len(r1),
               "r1_update_over_lr": statistics.median(r["update_over_lr"] for r in r1),
               "r1_grad_rms": statistics.median(r["grad_rms"] for r in r1),
               "main_grad_rms": statistics.median(main_)}
        windows.append(row)
        print(f"{args.scheme} gamma {model.config.r1_gamma:g}, steps {lo}-{lo + width}: R1 update = "
              f"{row['r1_update_over_lr']:.3g} lr (median of {len(r1)}), R1 grad RMS {row['r1_grad_rms']:.3g}, "
              f"main grad RMS {row['main_grad_rms']:.3g}")
    out = Path(args.out) if args.out else ROOT / "results" / f"lazy_r1_step-{args.scheme}-g{model.config.r1_gamma:g}.json"
    out.write_text(json.dumps({"args": vars(args), "torch": torch.__version__, "r1_every": every,
                               "r1_gamma": model.config.r1_gamma, "windows": windows, "records": records}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
