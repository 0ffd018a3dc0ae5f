"""Throughput and peak memory of CycleGAN training through the Trainer's phases vs a plain
hand-written alternating loop (issue 11).

    nice -n 10 taskset -c 1 python benchmarks/cyclegan_speed.py --steps 30 --repeats 3

Both paths train the *same* networks (the plain loop gets deep copies of the model's two generators
and two discriminators, same initial weights) with the same algorithm, the reference code's: per
step, one generator update of G and F together (least squares, cycle 10, identity 0.5, the
discriminators' weights frozen while back-propagating through them), then one update of both
discriminators on real images and the step's detached fakes passed through 50-image pools; fused
Adam 2e-4 (0.5, 0.999) as the Trainer builds it. A batch is a shuffled run of A and uniformly drawn
B images. Timings alternate between the paths ``--repeats`` times after a warm-up (the first path
flips each repeat); medians are compared. Peak memory: each path runs ``--memory-steps`` steps in a
fresh subprocess (after a tiny warm-up run through the Trainer, so lazy imports count for
neither) and reports how much its peak resident set (VmHWM) grew during training.
Writes benchmarks/results/cyclegan_speed.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from genlab.data.unpaired import unpaired_dataset
from genlab.models import build_model
from genlab.models.cyclegan import ImagePool
from genlab.training import TrainConfig, Trainer

CASES = {
    # benchmarks/cyclegan_digits.py's networks: 32 px grey, width 16, 3 residual blocks, batch 8
    "digits-32": ({"image_shape": [1, 32, 32], "num_filters": 16, "discriminator_filters": 16, "residual_blocks": 3}, 8),
    # configs/cyclegan_facades.toml's networks: 64 px RGB, width 32, 6 residual blocks, batch 4
    "facades-64": ({"image_shape": [3, 64, 64], "num_filters": 32, "discriminator_filters": 32, "residual_blocks": 6}, 4),
}


def make(case: str):
    config, batch_size = CASES[case]
    torch.manual_seed(0)
    c, s, _ = config["image_shape"]
    data = unpaired_dataset(torch.rand(batch_size * 10, c, s, s), torch.rand(batch_size * 7, c, s, s), "bench")
    return build_model("cyclegan", config), data, batch_size


def trainer_run(model, data, batch_size: int, steps: int) -> float:
    cfg = TrainConfig(batch_size=batch_size, max_steps=steps, progress=False, tensorboard=False, device="cpu",
                      eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, log_every=10**9)
    trainer = Trainer(model, data, cfg)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


class Plain:
    """The reference training step written out by hand, on copies of the model's networks."""

    def __init__(self, model) -> None:
        self.g_ab, self.g_ba = copy.deepcopy(model.generator_ab), copy.deepcopy(model.generator_ba)
        self.d_a, self.d_b = copy.deepcopy(model.discriminator_a), copy.deepcopy(model.discriminator_b)
        adam = dict(lr=2e-4, betas=(0.5, 0.999), fused=True)
        self.opt_g = torch.optim.Adam([*self.g_ab.parameters(), *self.g_ba.parameters()], **adam)
        self.opt_d = torch.optim.Adam([*self.d_a.parameters(), *self.d_b.parameters()], **adam)
        self.pool_a, self.pool_b = ImagePool(50), ImagePool(50)

    def run(self, data, batch_size: int, steps: int) -> float:
        xa, xb = data.domain_a[0], data.domain_b[0]
        per_epoch = len(xa) // batch_size
        start = time.perf_counter()
        order = torch.randperm(len(xa))
        for step in range(steps):
            i = step % per_epoch
            if i == 0 and step:
                order = torch.randperm(len(xa))
            a = xa[order[i * batch_size : (i + 1) * batch_size]] * 2 - 1
            b = xb[torch.randint(len(xb), (batch_size,))] * 2 - 1
            # generators: D frozen while the adversarial terms back-propagate through it
            for p in [*self.d_a.parameters(), *self.d_b.parameters()]:
                p.requires_grad_(False)
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
            loss_g = ((self.d_b(fake_b) - 1) ** 2).mean() + ((self.d_a(fake_a) - 1) ** 2).mean()
            loss_g = loss_g + 10 * ((self.g_ba(fake_b) - a).abs().mean() + (self.g_ab(fake_a) - b).abs().mean())
            loss_g = loss_g + 5 * ((self.g_ab(b) - b).abs().mean() + (self.g_ba(a) - a).abs().mean())
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            for p in [*self.d_a.parameters(), *self.d_b.parameters()]:
                p.requires_grad_(True)
            # discriminators: real vs pooled detached fakes, halved
            fb, fa = self.pool_b.query(fake_b.detach()), self.pool_a.query(fake_a.detach())
            loss_d = 0.5 * (((self.d_b(b) - 1) ** 2).mean() + (self.d_b(fb) ** 2).mean())
            loss_d = loss_d + 0.5 * (((self.d_a(a) - 1) ** 2).mean() + (self.d_a(fa) ** 2).mean())
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        return time.perf_counter() - start


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def memory_child(case: str, path: str, steps: int) -> None:
    # both children first run a tiny model through the Trainer, so lazily imported modules are not counted
    tiny = build_model("cyclegan", {"image_shape": [1, 8, 8], "num_filters": 2, "discriminator_filters": 2, "residual_blocks": 1})
    trainer_run(tiny, unpaired_dataset(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8), "warm-up"), 2, 1)
    model, data, batch_size = make(case)
    plain = Plain(model) if path == "plain" else None
    before = _vm("VmHWM")
    if plain is not None:
        plain.run(data, batch_size, steps)
    else:
        trainer_run(model, data, batch_size, steps)
    print(json.dumps({"peak_growth_mb": (_vm("VmHWM") - before) / 1024, "peak_mb": _vm("VmHWM") / 1024}))


def measure_memory(case: str, path: str, steps: int, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-child", case, path, str(steps), "--threads", str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cases", nargs="*", default=sorted(CASES))
    p.add_argument("--memory-child", nargs=3, metavar=("CASE", "PATH", "STEPS"), help=argparse.SUPPRESS)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        case, path, steps = args.memory_child
        memory_child(case, path, int(steps))
        return
    results = {}
    for name in args.cases:
        model, data, batch_size = make(name)
        plain = Plain(model)
        trainer_run(model, data, batch_size, 3)  # warm-up both paths
        plain.run(data, batch_size, 3)
        t_trainer, t_plain = [], []
        for repeat in range(args.repeats):  # alternate which path goes first: load drifts on a shared CPU
            if repeat % 2:
                t_plain.append(plain.run(data, batch_size, args.steps))
            t_trainer.append(trainer_run(model, data, batch_size, args.steps))
            if not repeat % 2:
                t_plain.append(plain.run(data, batch_size, args.steps))
        trainer_sps = args.steps * batch_size / statistics.median(t_trainer)
        plain_sps = args.steps * batch_size / statistics.median(t_plain)
        memory = {path: measure_memory(name, path, args.memory_steps, args.threads) for path in ("plain", "trainer")}
        results[name] = {
            "batch_size": batch_size, "steps": args.steps, "trainer_seconds": t_trainer, "plain_seconds": t_plain,
            "trainer_samples_per_s": trainer_sps, "plain_samples_per_s": plain_sps, "ratio": trainer_sps / plain_sps,
            "memory_mb": memory,
            "memory_ratio": memory["trainer"]["peak_growth_mb"] / max(memory["plain"]["peak_growth_mb"], 1e-9),
        }
        print(f"{name}: Trainer {trainer_sps:.1f} samples/s, plain loop {plain_sps:.1f} samples/s, ratio "
              f"{trainer_sps / plain_sps:.3f} (medians of {args.repeats} x {args.steps} steps, {args.threads} thread(s)); "
              f"peak RSS growth Trainer {memory['trainer']['peak_growth_mb']:.1f} MB vs plain {memory['plain']['peak_growth_mb']:.1f} MB",
              flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cyclegan_speed.json"
    previous = json.loads(path.read_text())["results"] if path.is_file() else {}
    path.write_text(json.dumps({"args": vars(args), "results": {**previous, **results}}, indent=1))


if __name__ == "__main__":
    main()
