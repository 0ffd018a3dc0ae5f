"""Throughput of StyleGAN training through the Trainer's phases vs a plain hand-written loop.

    taskset -c 1 nice -n 10 python benchmarks/stylegan_throughput.py --steps 32 --repeats 3

Both paths train the same networks (the plain loop gets deep copies of the model's generator and
discriminator) with the same algorithm: per step a generator update (style mixing p = 0.9, fresh
noise, w_avg tracking), a discriminator update on a real batch and a fresh fake batch, and on every
16th step the lazy R1 update stepping the discriminator's own Adam, whose lr and betas carry
stylegan2-ada's lazy-regularisation correction (lr * k/(k+1), betas ** (k/(k+1)), k = 16), as the
Trainer's shared optimizer does; fused Adam, lr 2.5e-3, betas (0, 0.99); no EMA. The networks are configs/stylegan_celeba32.toml's
on random 3x32x32 data, batch 32. Timings alternate between the paths ``--repeats`` times after a
warm-up and the medians are compared. Writes benchmarks/results/stylegan_throughput.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F

from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
LR, BETAS = 2.5e-3, (0.0, 0.99)


def model_config(resolution: int) -> dict:
    config = tomllib.loads((HERE.parent / "configs" / "stylegan_celeba32.toml").read_text())["model"]
    return {**config, "image_shape": [3, resolution, resolution]}


def trainer_run(model, data: ArrayDataset, batch_size: int, steps: int) -> float:
    cfg = TrainConfig(batch_size=batch_size, max_steps=steps, lr=LR, betas=BETAS, progress=False, tensorboard=False,
                      device="cpu", eval_every=10**9, sample_every=10**9, checkpoint_every=10**9)
    trainer = Trainer(model, data, cfg)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def plain_run(generator, discriminator, data: ArrayDataset, batch_size: int, steps: int, config: dict) -> float:
    gamma, r1_every, mixing = config["r1_gamma"], config["r1_every"], config["style_mixing_prob"]
    ratio = r1_every / (r1_every + 1)  # the discriminator's optimizer also takes the lazy R1 steps
    opt_g = torch.optim.Adam(generator.parameters(), lr=LR, betas=BETAS, fused=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=LR * ratio, betas=tuple(b**ratio for b in BETAS), fused=True)
    latent, num_ws = config["latent_dim"], generator.num_ws
    resolutions = generator.synthesis.conv_resolutions
    layer = torch.arange(num_ws)

    def fake(n: int, update: bool) -> torch.Tensor:
        w = generator.mapping(torch.randn(n, latent), update_w_avg=update)
        w2 = generator.mapping(torch.randn(n, latent))
        cutoff = torch.where(torch.rand(n) < mixing, torch.randint(1, num_ws, (n,)), num_ws)
        ws = torch.where((layer[None] >= cutoff[:, None])[..., None], w2[:, None], w[:, None].expand(-1, num_ws, -1))
        return generator(ws, [torch.randn(n, 1, r, r) for r in resolutions])

    x_all = data.x
    start = time.perf_counter()
    order = torch.randperm(len(x_all))
    per_epoch = len(x_all) // batch_size
    for step in range(steps):
        i = step % per_epoch
        if i == 0 and step:
            order = torch.randperm(len(x_all))
        x = x_all[order[i * batch_size : (i + 1) * batch_size]] * 2 - 1
        g_loss = F.softplus(-discriminator(fake(batch_size, True))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        with torch.no_grad():
            fakes = fake(batch_size, False)
        d_loss = F.softplus(discriminator(fakes)).mean() + F.softplus(-discriminator(x)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if step % r1_every == 0:
            real = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
            r1 = grad.square().flatten(1).sum(1).mean() * (0.5 * gamma * r1_every)
            opt_d.zero_grad(set_to_none=True)
            r1.backward()
            opt_d.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = model_config(args.resolution)
    data = ArrayDataset((torch.rand(args.batch_size * 20, 3, args.resolution, args.resolution),))
    model = build_model("stylegan", config)
    generator, discriminator = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    trainer_run(model, data, args.batch_size, 3)  # warm-up both paths
    plain_run(generator, discriminator, data, args.batch_size, 3, config)
    t_trainer, t_plain = [], []
    for repeat in range(args.repeats):  # alternate which path goes first: load drifts on a shared CPU
        if repeat % 2:
            t_plain.append(plain_run(generator, discriminator, data, args.batch_size, args.steps, config))
        t_trainer.append(trainer_run(model, data, args.batch_size, args.steps))
        if not repeat % 2:
            t_plain.append(plain_run(generator, discriminator, data, args.batch_size, args.steps, config))
        print(f"repeat {repeat}: Trainer {t_trainer[-1]:.1f}s, plain {t_plain[-1]:.1f}s", flush=True)
    trainer_sps = args.steps * args.batch_size / statistics.median(t_trainer)
    plain_sps = args.steps * args.batch_size / statistics.median(t_plain)
    result = {"batch_size": args.batch_size, "steps": args.steps, "resolution": args.resolution, "config": config,
              "trainer_seconds": t_trainer, "plain_seconds": t_plain, "trainer_samples_per_s": trainer_sps,
              "plain_samples_per_s": plain_sps, "ratio": trainer_sps / plain_sps,
              "trainer_seconds_per_1k_images": 1000 / trainer_sps, "torch": torch.__version__}
    print(f"StyleGAN {args.resolution}px: Trainer {trainer_sps:.1f} images/s, plain loop {plain_sps:.1f} images/s, "
          f"ratio {trainer_sps / plain_sps:.3f} (medians of {args.repeats} x {args.steps} steps, {args.threads} thread(s))")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stylegan_throughput.json").write_text(json.dumps({"args": vars(args), "result": result}, indent=1))


if __name__ == "__main__":
    main()
