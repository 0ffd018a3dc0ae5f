"""MLP VAE 784-512-256-16 on full MNIST: genlab's Trainer against a plain hand-written PyTorch loop.

Both trainers run in their own worker process (so each has its own peak RSS) and take turns, one
epoch each, so machine noise hits both alike; the report gives medians and the ratio. Both models
are scored by the same code: test ELBO and IWAE-NLL (k importance samples) on all 10,000 test
images, binarized once with a fixed seed (dynamic) or by threshold (static).

    python benchmarks/vae_mnist.py --data ../shared/data/mnist --binarize static --epochs 10
    python benchmarks/vae_mnist.py --data ../shared/data/mnist --binarize dynamic --epochs 100

Appends a Markdown row per trainer to --results (default: print only).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

LATENT, BATCH, LR = 16, 128, 1e-3


def load_mnist(path: str, binarize: str) -> tuple[torch.Tensor, torch.Tensor]:
    from genlab.data import DataConfig, load_dataset

    cfg = DataConfig(name="mnist", path=path)
    train = load_dataset(cfg, "train").x
    test = load_dataset(cfg, "test").x
    if binarize == "static":
        return (train > 0.5).float(), (test > 0.5).float()
    return train, torch.bernoulli(test, generator=torch.Generator().manual_seed(1234))  # test binarized once


# --------------------------------------------------------------------------- the plain loop

class PlainVAE(nn.Module):
    """The same architecture written the way a tutorial writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 2 * LATENT))
        self.dec = nn.Sequential(nn.Linear(LATENT, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.shape[0], -1)
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (recon + kl) / x.shape[0]


class PlainTrainer:
    def __init__(self, train: torch.Tensor, dynamic: bool, seed: int) -> None:
        from torch.utils.data import DataLoader, TensorDataset

        torch.manual_seed(seed)
        self.model = PlainVAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loader = DataLoader(TensorDataset(train), batch_size=BATCH, shuffle=True, drop_last=True)
        self.dynamic = dynamic

    def epoch(self) -> None:
        self.model.train()
        for (x,) in self.loader:
            if self.dynamic:
                x = torch.bernoulli(x)
            loss = self.model.loss(x)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def as_genlab(self):
        """The trained weights inside a genlab VAE of the same shape, so one evaluator scores both."""
        from genlab.models import build_model

        vae = build_model("vae", {"latent_dim": LATENT, "hidden_dims": [512, 256]})
        ours = [p for p in vae.state_dict().keys()]
        theirs = list(self.model.state_dict().values())
        vae.load_state_dict(dict(zip(ours, theirs)))
        return vae


# --------------------------------------------------------------------------- genlab

class GenlabTrainer:
    def __init__(self, train: torch.Tensor, dynamic: bool, seed: int, epochs: int = 1, overrides: dict | None = None,
                 model_options: dict | None = None) -> None:
        from genlab.data import ArrayDataset
        from genlab.data.images import binarize  # the library's own dynamic binarization transform
        from genlab.models import build_model
        from genlab.training import TrainConfig, Trainer

        torch.manual_seed(seed)
        self.model = build_model("vae", {"latent_dim": LATENT, "hidden_dims": [512, 256], **(model_options or {})})
        data = ArrayDataset((train,), {"name": "mnist"})
        if dynamic:
            data = binarize(data, "dynamic")
        # the schedule spans all epochs; epoch() runs fit() one epoch at a time
        config = TrainConfig(**{**dict(batch_size=BATCH, lr=LR, epochs=epochs, progress=False, tensorboard=False, device="cpu",
                                       seed=seed, eval_every=10**9, sample_every=10**9, checkpoint_every=10**9, log_every=100),
                                **(overrides or {})})
        self.trainer = Trainer(self.model, data, config)

    def epoch(self) -> None:
        self.trainer.total_steps = self.trainer.step + self.trainer.steps_per_epoch
        self.trainer.fit()

    def as_genlab(self):
        if self.trainer.ema is not None:  # score the averaged weights, as genlab's own evaluation does
            self.model.load_state_dict({**self.model.state_dict(), **self.trainer.ema.state_dict()})
        return self.model


# --------------------------------------------------------------------------- workers

@torch.no_grad()
def score(vae, test: torch.Tensor, k: int) -> dict[str, float]:
    vae.eval()
    torch.manual_seed(0)
    elbo, nll = 0.0, 0.0
    for start in range(0, test.shape[0], 100):
        x = test[start : start + 100]
        elbo += float(vae.elbo(x).sum())
        if k:
            nll += float(vae.iwae_nll(x, k).sum())
    n = test.shape[0]
    return {"test_elbo": elbo / n, "test_iwae_nll": nll / n if k else float("nan")}


def worker(kind: str, args: argparse.Namespace, conn) -> None:
    torch.set_num_threads(args.threads)
    train, test = load_mnist(args.data, args.binarize)
    if kind == "genlab":
        trainer = GenlabTrainer(train, args.binarize == "dynamic", args.seed, args.epochs, json.loads(args.genlab_train),
                                 json.loads(args.genlab_model))
    else:
        trainer = PlainTrainer(train, args.binarize == "dynamic", args.seed)
    conn.send("ready")
    while (msg := conn.recv()) == "epoch":
        start = time.perf_counter()
        trainer.epoch()
        conn.send(time.perf_counter() - start)
    result = score(trainer.as_genlab(), test, args.k)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send(result)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/mnist", help="folder with the MNIST IDX files")
    p.add_argument("--binarize", choices=["static", "dynamic"], default="static")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--k", type=int, default=1000, help="IWAE importance samples (0 = skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=None, help="Markdown file to append the table to")
    p.add_argument("--genlab-train", default="{}", help='JSON of TrainConfig fields for genlab, e.g. \'{"lr_schedule": "cosine"}\'')
    p.add_argument("--genlab-model", default="{}", help='JSON of VAEConfig fields beyond the architecture, e.g. \'{"kl_warmup_steps": 4680}\'')
    p.add_argument("--genlab-only", action="store_true", help="skip the plain loop (a recipe run, not a speed comparison)")
    args = p.parse_args()
    kinds = ("genlab",) if args.genlab_only else ("genlab", "plain")

    ctx = mp.get_context("spawn")
    pipes, procs = {}, {}
    for kind in kinds:
        parent, child = ctx.Pipe()
        procs[kind] = ctx.Process(target=worker, args=(kind, args, child))
        procs[kind].start()
        pipes[kind] = parent
    for kind in pipes:
        assert pipes[kind].recv() == "ready"
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for epoch in range(args.epochs):
        order = kinds if epoch % 2 == 0 else kinds[::-1]  # alternate who goes first
        for kind in order:
            pipes[kind].send("epoch")
            times[kind].append(pipes[kind].recv())
        print(f"epoch {epoch + 1}: " + "  ".join(f"{kind} {times[kind][-1]:.2f}s" for kind in kinds), flush=True)
    results = {}
    for kind in pipes:
        pipes[kind].send("stop")
    for kind in pipes:
        results[kind] = pipes[kind].recv()
        procs[kind].join()
        med = statistics.median(times[kind])
        results[kind].update({"median_epoch_s": med, "samples_per_s": 60000 // BATCH * BATCH / med})
        results[kind]["min_epoch_s"] = min(times[kind])
    ratio = paired = float("nan")
    if "plain" in results:
        ratio = results["plain"]["median_epoch_s"] / results["genlab"]["median_epoch_s"]
        # Adjacent epochs of the two trainers share the machine's state, so the per-epoch ratio is far
        # less noisy than either median when other jobs come and go.
        paired = statistics.median(p / g for p, g in zip(times["plain"], times["genlab"]))
    print(json.dumps({"args": vars(args), "results": results, "times": times,
                      "throughput_ratio_genlab_over_plain": ratio, "paired_ratio": paired}, indent=2))
    if args.results:
        cmd = "python " + shlex.join(sys.argv)
        lines = [f"\n`{cmd}` ({time.strftime('%Y-%m-%d')}, {args.threads} threads; throughput genlab/plain: "
                 f"ratio of medians {ratio:.2f}, median of paired per-epoch ratios {paired:.2f})\n",
                 "| trainer | binarize | epochs | s/epoch (median) | s/epoch (fastest) | samples/s (median) | peak RSS MB | test ELBO | test IWAE-NLL (k) |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for kind in kinds:
            r = results[kind]
            lines.append(f"| {kind} | {args.binarize} | {args.epochs} | {r['median_epoch_s']:.2f} | {r['min_epoch_s']:.2f} | {r['samples_per_s']:.0f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['test_elbo']:.2f} | {r['test_iwae_nll']:.2f} ({args.k}) |")
        with open(args.results, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
