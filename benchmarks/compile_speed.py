"""Does ``--train.compile=true`` pay, per family? Compile time against the per-step gain, through the Trainer.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/compile_speed.py --steps 12 --threads 1

Protocol. The families and CPU-sized configs of ``precision_throughput.py`` (VAE, DCGAN, pix2pix, CycleGAN,
StyleGAN), random images of the recipe's size, at ``--precision`` (fp32 by default). For each family two
Trainers train copies of one initial model for ``--steps`` steps, logging every step:

* **eager**: ``train.compile=false``;
* **compiled**: ``train.compile=true`` with inductor's on-disk caches off and dynamo reset first, so the
  compile is paid in full, as on a user's first run.

Reported per family: the time to the end of the first step (the compile lands there; the first phase of
each graph compiles when it first runs, so steps that first run a lazy phase pay again), the median seconds
per step over the steps after ``--warmup`` (both paths), the speed-up, and the **break-even**: the number of
steps after which the compiled run has caught up, (compiled total − eager total over the warm-up) /
(eager − compiled per step). A family where compiling is slower per step, or where dynamo cannot compile
(an error), is reported as such. The runs alternate eager/compiled per family; one thread, one core.
Writes ``benchmarks/results/compile_speed.json``.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch._dynamo
import torch._inductor.config as inductor_config

from genlab.training import TrainConfig, Trainer
from precision_throughput import FAMILIES, family_setup  # the same families, configs and data


def timed_run(model, data, batch_size: int, steps: int, precision: str, compile: bool, extra: dict[str, Any]) -> list[float]:
    """Seconds from the start of ``fit`` to the end of each step."""
    marks: list[float] = []
    cfg = TrainConfig(batch_size=batch_size, max_steps=steps, lr=2e-4, progress=False, tensorboard=False, device="cpu",
                      eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, log_every=1, precision=precision,
                      compile=compile, **extra)
    trainer = Trainer(model, data, cfg, callbacks=[lambda t, event, info: marks.append(time.perf_counter())
                                                   if event == "log" else None])
    start = time.perf_counter()
    trainer.fit()
    return [m - start for m in marks]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--steps", type=int, default=12, help="steps per run (the first --warmup not in the per-step time)")
    p.add_argument("--warmup", type=int, default=4, help="steps before the per-step timing (recompiles land there)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/compile_speed.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    inductor_config.force_disable_caches = True  # a user's first compile: nothing reused from an earlier run
    results: dict[str, Any] = {}
    for family in args.families:
        initial, data, batch_size, extra = family_setup(family)
        row: dict[str, Any] = {"batch_size": batch_size, "steps": args.steps, "parameters": initial.num_parameters()}
        for path in ("eager", "compiled"):
            torch._dynamo.reset()
            try:
                marks = timed_run(copy.deepcopy(initial), data, batch_size, args.steps, args.precision, path == "compiled", extra)
            except Exception as exc:  # noqa: BLE001 - a family dynamo cannot compile is a result
                row[f"{path}/error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                traceback.print_exc()
                continue
            per_step = [b - a for a, b in zip(marks[args.warmup - 1:], marks[args.warmup:])]
            row[f"{path}/first_step_s"] = marks[0]
            row[f"{path}/warmup_s"] = marks[args.warmup - 1]
            row[f"{path}/step_s"] = statistics.median(per_step)
            row[f"{path}/total_s"] = marks[-1]
        if "compiled/step_s" in row and "eager/step_s" in row:
            gain = row["eager/step_s"] - row["compiled/step_s"]
            row["speedup"] = row["eager/step_s"] / row["compiled/step_s"]
            overhead = row["compiled/warmup_s"] - row["eager/warmup_s"]
            row["compile_overhead_s"] = overhead
            row["break_even_steps"] = args.warmup + overhead / gain if gain > 0 else None
        results[family] = row
        print(family, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
        out = Path(args.out)  # after every family: a long run stopped early keeps what it measured
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"args": vars(args), "torch": torch.__version__, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
