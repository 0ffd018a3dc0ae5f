"""Training speed per family at fp32, fp32 + channels-last, bf16 and bf16 + channels-last, through the Trainer
and a plain loop.

    taskset -c 1 python benchmarks/precision_throughput.py --steps 6 --repeats 3 --threads 1

Protocol. Each family (VAE, DCGAN, pix2pix, CycleGAN, StyleGAN) at a CPU-sized config of the kind its
configs/ recipe uses, on random images of the recipe's size (speed does not depend on the pixels). For
each variant — ``fp32``; ``fp32+cl`` (channels-last weights and activations); ``bf16`` (autocast for the forward and the loss, fp32 master weights and
optimizer state); ``bf16+cl`` (the same with channels-last weights) — two paths train copies of one
initial model for ``--steps`` steps (a first round of 2 steps per cell warms every path up, untimed):

* **trainer**: ``Trainer.fit`` with every extra (evaluation, previews, checkpoints) off;
* **plain**: a hand-written loop over the same phases — zero the gradients, ``model.loss`` under the same
  autocast, backward, the same fused Adam step — with batches drawn by one fancy index, as the Trainer's
  loader does.

Timings are interleaved: every repeat runs each (variant, path) once, in an order rotated per repeat, so a
drift in the machine's load reaches every cell alike. The medians give steps/s; the table reports
each variant's speed-up over fp32 (same path) and the Trainer / plain ratio at the same precision.
The baseline is this commit's own fp32 path, measured in the same run. On a CPU without native bf16
(AVX-512 BF16 / AMX), bf16 is emulated and slower: ``train.precision=auto`` then stays fp32.
Writes ``benchmarks/results/precision_throughput.json``.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.precision import autocast, cpu_flags, native_bf16
from genlab.training import TrainConfig, Trainer

# family -> (model config, tensors of one example, batch size, train-config extras)
FAMILIES: dict[str, tuple[dict[str, Any], list[tuple[int, ...]], int, dict[str, Any]]] = {
    "vae": ({"architecture": "conv", "image_shape": [3, 64, 64], "latent_dim": 256, "channels": [32, 64, 128, 256],
             "norm": "batch", "likelihood": "gaussian", "scale": "fixed", "fixed_scale": 0.3},
            [(3, 64, 64)], 64, {}),
    "dcgan": ({"image_shape": [3, 64, 64], "latent_dim": 100}, [(3, 64, 64)], 64, {"betas": (0.5, 0.999)}),
    "pix2pix": ({"image_shape": [3, 64, 64], "input_shape": [3, 64, 64]}, [(3, 64, 64), (3, 64, 64)], 8,
                {"betas": (0.5, 0.999)}),
    "cyclegan": ({"image_shape": [3, 64, 64], "num_filters": 32, "discriminator_filters": 32, "residual_blocks": 6},
                 [(3, 64, 64), (3, 64, 64)], 4, {"betas": (0.5, 0.999)}),
    "stylegan": ({"image_shape": [3, 32, 32], "latent_dim": 128, "w_dim": 128, "mapping_depth": 4, "channel_base": 2048,
                  "channel_max": 64, "r1_every": 16, "style_mixing_prob": 0.9},
                 [(3, 32, 32)], 32, {"betas": (0.0, 0.99)}),
}
MODEL_NAMES = {"dcgan": "gan"}
STEP_SHARE = {"dcgan": 0.5}  # DCGAN-64's default nets (G 7.5 M, D 7.0 M parameters) take seconds per step
VARIANTS = {"fp32": ("fp32", False), "fp32+cl": ("fp32", True), "bf16": ("bf16", False), "bf16+cl": ("bf16", True)}


def _data(shapes: list[tuple[int, ...]], n: int) -> ArrayDataset:
    g = torch.Generator().manual_seed(0)
    return ArrayDataset(tuple(torch.rand(n, *shape, generator=g) for shape in shapes))


def family_setup(family: str) -> tuple[Any, ArrayDataset, int, dict[str, Any]]:
    """``family``'s initial model (seed 0), its 4 batches of random data, batch size and train-config extras."""
    config, shapes, batch_size, extra = FAMILIES[family]
    torch.manual_seed(0)
    return build_model(MODEL_NAMES.get(family, family), config), _data(shapes, batch_size * 4), batch_size, extra


def _config(batch_size: int, steps: int, precision: str, channels_last: bool, extra: dict[str, Any]) -> TrainConfig:
    return TrainConfig(batch_size=batch_size, max_steps=steps, lr=2e-4, progress=False, tensorboard=False, device="cpu",
                       eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, log_every=10**9,
                       precision=precision, channels_last=channels_last, **extra)


def trainer_run(model, data: ArrayDataset, cfg: TrainConfig) -> float:
    """Seconds of ``Trainer.fit`` from its first step (the plain loop is timed the same way: both pay the
    same first-step costs)."""
    trainer = Trainer(model, data, cfg)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def plain_run(model, data: ArrayDataset, cfg: TrainConfig) -> float:
    device = torch.device("cpu")
    precision = cfg.precision
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    phases = model.phases()
    params: dict[str, list] = {}
    for phase in phases:
        params.setdefault(phase.optimizer_name, []).extend(model.phase_parameters(phase))
    optimizers = {name: torch.optim.Adam(list(dict.fromkeys(ps)), lr=cfg.lr, betas=cfg.betas, fused=True)
                  for name, ps in params.items()}
    g = torch.Generator().manual_seed(cfg.seed)
    tensors = data.tensors
    n = len(data)
    model.train()
    start = time.perf_counter()
    order = torch.randperm(n, generator=g)
    per_epoch = n // cfg.batch_size
    for step in range(cfg.max_steps):
        i = step % per_epoch
        if i == 0 and step:
            order = torch.randperm(n, generator=g)
        index = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        batch = tuple(t[index] for t in tensors)
        for phase in phases:
            if step % phase.every:
                continue
            model.zero_grad(set_to_none=True)
            with autocast(precision, device):
                total = model.loss(batch, phase.name).total
            total.float().backward()
            optimizers[phase.optimizer_name].step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=6, help="steps per timed run (the first ones included)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/precision_throughput.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    for family in args.families:
        initial, data, batch_size, extra = family_setup(family)
        cells = [(variant, path) for variant in args.variants for path in ("trainer", "plain")]
        times: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
        for repeat in range(args.repeats + 1):  # repeat 0 warms every cell up and is not kept
            shift = repeat % len(cells)
            for variant, path in cells[shift:] + cells[:shift]:
                precision, channels_last = VARIANTS[variant]
                steps = max(2, round(args.steps * STEP_SHARE.get(family, 1.0)))
                cfg = _config(batch_size, steps if repeat else 2, precision, channels_last, extra)
                model = copy.deepcopy(initial)
                seconds = trainer_run(model, data, cfg) if path == "trainer" else plain_run(model, data, cfg)
                if repeat:
                    times[(variant, path)].append(seconds)
        steps = max(2, round(args.steps * STEP_SHARE.get(family, 1.0)))
        row: dict[str, Any] = {"batch_size": batch_size, "steps": steps, "parameters": initial.num_parameters()}
        for (variant, path), values in times.items():
            row[f"{variant}/{path}/seconds"] = values
            row[f"{variant}/{path}/steps_per_s"] = steps / statistics.median(values)
        for variant in args.variants:
            for path in ("trainer", "plain"):
                row[f"{variant}/{path}/speedup_vs_fp32"] = row[f"{variant}/{path}/steps_per_s"] / row.get(
                    f"fp32/{path}/steps_per_s", float("nan"))
            row[f"{variant}/trainer_vs_plain"] = row[f"{variant}/trainer/steps_per_s"] / row[f"{variant}/plain/steps_per_s"]
        results[family] = row
        print(f"{family} (batch {batch_size}, {steps} steps, medians of {args.repeats}):", flush=True)
        for variant in args.variants:
            print(f"  {variant:8s} trainer {row[f'{variant}/trainer/steps_per_s']:.3f} steps/s "
                  f"({row[f'{variant}/trainer/speedup_vs_fp32']:.2f}x fp32), plain {row[f'{variant}/plain/steps_per_s']:.3f} "
                  f"({row[f'{variant}/plain/speedup_vs_fp32']:.2f}x), trainer/plain {row[f'{variant}/trainer_vs_plain']:.3f}",
                  flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads,
               "native_bf16": native_bf16(torch.device("cpu")),
               "bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})}
    out.write_text(json.dumps({"args": vars(args), "machine": machine, "results": results}, indent=1))


if __name__ == "__main__":
    main()
