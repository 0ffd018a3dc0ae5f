"""Throughput of GAN training through the Trainer's phases vs a plain hand-written alternating loop.

    nice -n 10 python benchmarks/gan_throughput.py --steps 200 --repeats 3

Both paths train the *same* networks (the plain loop gets deep copies of the model's generator and
discriminator, same initial weights) with the same algorithm: per step, a discriminator update on a
real batch and a fresh fake batch drawn without gradients, then a generator update through D with a
new z; non-saturating loss; fused Adam (as the Trainer builds it); no EMA, no logging beyond the
Trainer's defaults. Timings alternate between the two paths ``--repeats`` times after a warm-up and
the medians are compared (the CPU here is shared, so single timings are noisy).
Writes benchmarks/results/gan_throughput.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

CASES = {
    # the toy benchmark's nets: MLP G 4x256, D 3x128, batch 256 (a step is ~10 ms: framework overhead shows)
    "mlp-ring": ({"x_dim": 2, "latent_dim": 2, "generator_hidden": [256] * 4, "discriminator_hidden": [128] * 3}, (2,), 256, 1.0),
    # the MNIST benchmark's DCGAN on 28x28 images, batch 64 (a step is ~0.2 s: convolutions dominate)
    "dcgan-28": ({"image_shape": [1, 28, 28], "latent_dim": 64, "generator_channels": 16, "discriminator_channels": 32}, (1, 28, 28), 64, 0.2),
}


def trainer_run(model, data: ArrayDataset, batch_size: int, steps: int) -> float:
    cfg = TrainConfig(batch_size=batch_size, max_steps=steps, lr=2e-4, betas=(0.5, 0.999), progress=False,
                      tensorboard=False, device="cpu", eval_every=10**9, sample_every=10**9, checkpoint_every=10**9)
    trainer = Trainer(model, data, cfg)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def plain_run(generator, discriminator, data: ArrayDataset, batch_size: int, steps: int, latent_dim: int, image: bool) -> float:
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    x_all = data.x
    start = time.perf_counter()
    order = torch.randperm(len(x_all))
    per_epoch = len(x_all) // batch_size
    for step in range(steps):
        i = step % per_epoch
        if i == 0 and step:
            order = torch.randperm(len(x_all))
        x = x_all[order[i * batch_size : (i + 1) * batch_size]]
        if image:
            x = x * 2 - 1
        with torch.no_grad():
            fake = generator(torch.randn(batch_size, latent_dim))
        d_loss = F.softplus(-discriminator(x)).mean() + F.softplus(discriminator(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-discriminator(generator(torch.randn(batch_size, latent_dim)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cases", nargs="*", default=sorted(CASES))
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.cases:
        config, shape, batch_size, step_share = CASES[name]
        steps = max(5, int(args.steps * step_share))
        torch.manual_seed(0)
        data = ArrayDataset((torch.rand(batch_size * 20, *shape),))
        model = build_model("gan", config)
        generator, discriminator = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
        image = len(shape) == 3
        trainer_run(model, data, batch_size, 10)  # warm-up both paths
        plain_run(generator, discriminator, data, batch_size, 10, config["latent_dim"], image)
        t_trainer, t_plain = [], []
        for repeat in range(args.repeats):  # alternate which path goes first: load drifts on a shared CPU
            if repeat % 2:
                t_plain.append(plain_run(generator, discriminator, data, batch_size, steps, config["latent_dim"], image))
            t_trainer.append(trainer_run(model, data, batch_size, steps))
            if not repeat % 2:
                t_plain.append(plain_run(generator, discriminator, data, batch_size, steps, config["latent_dim"], image))
        trainer_sps = steps * batch_size / statistics.median(t_trainer)
        plain_sps = steps * batch_size / statistics.median(t_plain)
        results[name] = {"batch_size": batch_size, "steps": steps, "trainer_seconds": t_trainer, "plain_seconds": t_plain,
                         "trainer_samples_per_s": trainer_sps, "plain_samples_per_s": plain_sps, "ratio": trainer_sps / plain_sps}
        print(f"{name}: Trainer {trainer_sps:.0f} samples/s, plain loop {plain_sps:.0f} samples/s, "
              f"ratio {trainer_sps / plain_sps:.3f} (medians of {args.repeats} x {steps} steps, {args.threads} thread(s))", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gan_throughput.json"
    previous = json.loads(path.read_text())["results"] if path.is_file() else {}
    path.write_text(json.dumps({"args": vars(args), "results": {**previous, **results}}, indent=1))


if __name__ == "__main__":
    main()
