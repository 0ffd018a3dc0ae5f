"""How close the VAE's training loop runs to its matrix-product bound, and where the rest goes.

The MLP VAE 784-512-256-16 (the issue-2 model) spends its arithmetic in matrix products: per
training step, each Linear layer's forward ``addmm`` and its two backward products (input and
weight gradients; the first layer has no input gradient). This script times, in one process and
interleaved round by round, (a) ``--steps`` training steps of genlab's Trainer (loop only, dynamic
binarization, Adam, batch 128) and (b) the same step's matrix products alone, on preallocated
tensors of the model's own shapes (``torch.addmm``/``torch.mm`` with ``out=``): the GEMM bound.
The fraction of the bound is t(GEMMs) / t(training step); the paired median over rounds is reported.

``--profile`` adds a torch.profiler table of the training steps, grouped by what the time went to
(matrix products, loss, optimizer, data, other).

    taskset -c 1 python benchmarks/bench_gemm.py --data ../shared/data/mnist --threads 1 --rounds 15 --steps 100 \\
        --variants bernoulli-binarize,unfused-adam --profile --json benchmarks/results/bench_gemm.json

``--variants`` times other versions of the loop in the same rounds (what was tried: the previous
``torch.bernoulli`` binarization, Adam without the fused kernel).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

BATCH, LATENT, HIDDEN = 128, 16, (512, 256)


def gemm_shapes(batch: int = BATCH) -> list[tuple[str, int, int, int]]:
    """(what, m, k, n) of every matrix product in one training step of the MLP VAE."""
    dims_enc = [784, *HIDDEN, 2 * LATENT]
    dims_dec = [LATENT, *HIDDEN[::-1], 784]
    shapes = []
    for net, dims in (("encoder", dims_enc), ("decoder", dims_dec)):
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            layer = f"{net}{i} {fan_in}->{fan_out}"
            shapes.append((f"{layer} forward", batch, fan_in, fan_out))  # (B, in) @ (in, out)
            if not (net == "encoder" and i == 0):  # the data needs no gradient
                shapes.append((f"{layer} grad input", batch, fan_out, fan_in))  # (B, out) @ (out, in)
            shapes.append((f"{layer} grad weight", fan_out, batch, fan_in))  # (out, B) @ (B, in)
    return shapes


class GemmStep:
    """The step's matrix products on preallocated operands (no allocation inside the timing)."""

    def __init__(self, batch: int = BATCH) -> None:
        g = torch.Generator().manual_seed(0)
        self.ops = []
        for _, m, k, n in gemm_shapes(batch):
            a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
            bias, out = torch.randn(n, generator=g), torch.empty(m, n)
            self.ops.append((a, b, bias, out))
        self.flops = sum(2 * m * k * n for _, m, k, n in gemm_shapes(batch))

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            for a, b, bias, out in self.ops:
                torch.addmm(bias, a, b, out=out)
        return time.perf_counter() - start


def bernoulli_binarize(batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The dynamic binarization genlab used before (torch.bernoulli), for the comparison."""
    return (torch.bernoulli(batch[0], generator=generator), *batch[1:])


# What was tried against the loop as it is: name -> (TrainConfig overrides, data transform or None)
VARIANTS = {
    "bernoulli-binarize": ({}, bernoulli_binarize),
    "unfused-adam": ({"fused_optimizer": False}, None),
}


class TrainSteps:
    def __init__(self, data_path: str, seed: int = 0, train_overrides: dict | None = None, transform=None) -> None:
        from genlab.data import ArrayDataset, DataConfig, load_dataset
        from genlab.data.images import binarize
        from genlab.models import build_model
        from genlab.training import TrainConfig, Trainer

        torch.manual_seed(seed)
        x = load_dataset(DataConfig(name="mnist", path=data_path), "train").x
        data = binarize(ArrayDataset((x,), {"name": "mnist"}), "dynamic")
        if transform is not None:
            data = ArrayDataset(data.tensors, data.info, transform)
        self.model = build_model("vae", {"latent_dim": LATENT, "hidden_dims": list(HIDDEN)})
        config = TrainConfig(**{**dict(batch_size=BATCH, lr=1e-3, epochs=1000, progress=False, tensorboard=False,
                                       device="cpu", seed=seed, eval_every=10**9, sample_every=10**9,
                                       checkpoint_every=10**9, log_every=100), **(train_overrides or {})})
        self.trainer = Trainer(self.model, data, config)

    def run(self, steps: int) -> float:
        self.trainer.total_steps = self.trainer.step + steps
        start = time.perf_counter()
        self.trainer.fit()
        return time.perf_counter() - start


CATEGORIES = (  # (name, substrings of profiler op names), first match wins
    ("matrix products", ("addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear")),
    ("optimizer", ("adam", "optimizer", "_foreach")),
    ("loss", ("binary_cross_entropy", "log_sigmoid", "softplus", "aten::exp", "aten::sum", "aten::mean",
              "aten::pow", "aten::sub", "aten::rsub", "aten::add", "aten::mul", "aten::neg", "aten::div",
              "xlogy", "clamp", "aten::log")),
    ("data", ("bernoulli", "index_select", "aten::index", "randperm", "aten::to", "copy_")),
    ("activations", ("relu", "threshold")),
    ("sampling", ("randn", "normal")),
)


def profile_steps(train: TrainSteps, steps: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    train.run(10)  # warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        wall = train.run(steps)
    events = prof.key_averages()
    rows = sorted(((e.key, e.self_cpu_time_total / 1e3, e.count) for e in events), key=lambda r: -r[1])
    total_ms = sum(r[1] for r in rows)
    grouped: dict[str, float] = {}
    for key, ms, _ in rows:
        name = next((c for c, subs in CATEGORIES if any(s in key.lower() for s in subs)), "other (autograd, python)")
        grouped[name] = grouped.get(name, 0.0) + ms
    return {
        "steps": steps, "wall_s_under_profiler": wall, "self_cpu_ms_total": total_ms,
        "by_category_ms_per_step": {k: v / steps for k, v in sorted(grouped.items(), key=lambda kv: -kv[1])},
        "top_ops_ms_per_step": [(key, ms / steps, count // steps) for key, ms, count in rows[:25]],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/mnist")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--steps", type=int, default=100, help="training steps (and GEMM-only steps) per round")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--train", default="{}", help="JSON of TrainConfig overrides, e.g. '{\"fused_optimizer\": false}'")
    p.add_argument("--variants", default="", help=f"comma-separated loop variants timed in the same rounds: {', '.join(VARIANTS)}")
    p.add_argument("--json", default=None, help="write the summary here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    gemm = GemmStep()
    train = TrainSteps(args.data, train_overrides=json.loads(args.train))
    runners = {"train": train, "gemm": gemm}
    for name in filter(None, args.variants.split(",")):
        if name not in VARIANTS:
            p.error(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
        overrides, transform = VARIANTS[name]
        runners[name] = TrainSteps(args.data, train_overrides={**json.loads(args.train), **overrides}, transform=transform)
    for runner in runners.values():
        runner.run(20)  # warm up (allocator, kernels, first-call costs)
    per_step: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds):
        for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):  # alternate who goes first
            per_step[name].append(runners[name].run(args.steps) / args.steps)
        print(f"round {r + 1}: " + ", ".join(f"{name} {times[-1] * 1e3:.2f} ms/step" for name, times in per_step.items()),
              flush=True)
    fraction = statistics.median(g / t for g, t in zip(per_step["gemm"], per_step["train"]))
    variants = {name: {"ms_per_step": statistics.median(per_step[name]) * 1e3,
                       "paired_time_ratio_variant_over_train": statistics.median(v / t for v, t in zip(per_step[name], per_step["train"])),
                       "fraction_of_bound_paired_median": statistics.median(g / v for g, v in zip(per_step["gemm"], per_step[name]))}
                for name in runners if name not in ("train", "gemm")}
    t_gemm, t_train = statistics.median(per_step["gemm"]), statistics.median(per_step["train"])
    summary = {
        "args": vars(args), "torch": torch.__version__, "gemm_flops_per_step": gemm.flops,
        "gemm_shapes": gemm_shapes(),
        "gemm_ms_per_step": t_gemm * 1e3, "train_ms_per_step": t_train * 1e3,
        "gemm_gflops": gemm.flops / t_gemm / 1e9, "train_gemm_gflops": gemm.flops / t_train / 1e9,
        "fraction_of_bound_paired_median": fraction, "variants": variants, "per_step_s": per_step,
    }
    if args.profile:
        summary["profile"] = profile_steps(train, args.steps)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("per_step_s", "gemm_shapes")}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
