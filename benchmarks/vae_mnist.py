"""MLP VAE 784-512-256-16 on full MNIST: genlab's Trainer against a plain hand-written PyTorch loop.

Each trainer runs in its own worker process (so each has its own peak RSS) and they take turns, one
epoch each, so machine noise hits all alike; the report gives medians and the ratio. All models
are scored by the same code: test ELBO and IWAE-NLL (k importance samples) on all 10,000 test
images, binarized once with a fixed seed (dynamic) or by threshold (static).

Trainers (``--trainers``): ``genlab`` is the Trainer's loop alone (evaluation, previews and
checkpoints switched off), ``plain`` a hand-written DataLoader loop, and ``cli`` genlab as
``genlab train vae --data idx:DATA`` runs it: ``api.train`` with the command's defaults and all its
per-epoch extras (evaluation, preview grid, curves, checkpoint at epoch ends — as often as
``train.epoch_extras_budget`` allows — and the progress bar); its epoch time runs from one epoch's
end (after its extras) to the next, and the end-of-run work (model export, report) is timed apart.

    python benchmarks/vae_mnist.py --data ../shared/data/mnist --binarize static --epochs 10
    python benchmarks/vae_mnist.py --data ../shared/data/mnist --binarize dynamic --epochs 100
    taskset -c 1 python benchmarks/vae_mnist.py --data ../shared/data/mnist --binarize dynamic --epochs 10 \
        --threads 1 --k 0 --trainers genlab,cli,plain

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

class Probe:
    """The same fixed work in every worker process (40 steps of a tutorial VAE on one fixed batch), timed
    after each epoch and not counted in it: if one process runs it slower, its epochs are slower for
    reasons of the process (memory layout, what else it has loaded), not of its training code."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(99)
        with torch.random.fork_rng():
            torch.manual_seed(99)
            self.model = PlainVAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.x = torch.rand(BATCH, 784, generator=gen).round()

    def __call__(self) -> float:
        start = time.perf_counter()
        with torch.random.fork_rng():
            for _ in range(40):
                loss = self.model.loss(self.x)
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
        return time.perf_counter() - start


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


def _faults() -> int:
    """Minor page faults of this process so far (memory the allocator handed back and took again)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def cli_worker(args: argparse.Namespace, test: torch.Tensor, conn) -> None:
    """``genlab train`` through ``api.train``, paused at the end of each epoch (after its extras) until told to go on."""
    import os
    import shutil
    import tempfile

    from genlab import api

    sys.stderr = open(os.devnull, "w")  # the progress bar draws (as for a user) but out of the log
    run_dir = Path(tempfile.mkdtemp(prefix="genlab-bench-cli-"))
    overrides = [f"--train.epochs={args.epochs}", f"--train.seed={args.seed}", f"--train.threads={args.threads}",
                 f"--data.binarize={args.binarize}", *shlex.split(args.cli_overrides)]
    conn.send("ready")
    assert conn.recv() == "epoch"
    clock = {"start": time.perf_counter(), "faults": _faults()}
    state: dict = {}

    probe = Probe() if args.probe else None

    def pause_after_epoch(trainer, event: str, info: dict) -> None:
        if event == "epoch":  # after the epoch's extras (evaluation, preview, checkpoint) when it has them
            seconds, faults = time.perf_counter() - clock["start"], _faults() - clock["faults"]
            conn.send((seconds, faults, probe() if probe else None))
            conn.recv()  # "epoch" (or "stop" after the last one)
            clock["start"], clock["faults"] = time.perf_counter(), _faults()
        elif event == "end":
            state["model"] = trainer.model

    try:
        summary = api.train("vae", data=f"idx:{args.data}", out=run_dir / "run", overrides=overrides,
                            callbacks=[pause_after_epoch])
        end_of_run = time.perf_counter() - clock["start"]
        result = score(state["model"], test, args.k)
        result.update({"end_of_run_s": end_of_run, "cli_test_elbo": summary.get("test/elbo", float("nan"))})
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send(result)


def worker(kind: str, args: argparse.Namespace, conn) -> None:
    torch.set_num_threads(args.threads)
    train, test = load_mnist(args.data, args.binarize)
    if kind == "cli":
        del train  # genlab train loads its own copy, as for a user; this one would only sit in memory
        return cli_worker(args, test, conn)
    if kind == "genlab":
        trainer = GenlabTrainer(train, args.binarize == "dynamic", args.seed, args.epochs, json.loads(args.genlab_train),
                                 json.loads(args.genlab_model))
    else:
        trainer = PlainTrainer(train, args.binarize == "dynamic", args.seed)
    probe = Probe() if args.probe else None
    conn.send("ready")
    while (msg := conn.recv()) == "epoch":
        start, faults = time.perf_counter(), _faults()
        trainer.epoch()
        seconds, faults = time.perf_counter() - start, _faults() - faults
        conn.send((seconds, faults, probe() if probe else None))
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
    p.add_argument("--json", default=None, help="file to write the JSON summary to")
    p.add_argument("--cli-overrides", default="", help="extra genlab overrides for the cli trainer, e.g. '--train.progress=false'")
    p.add_argument("--genlab-train", default="{}", help='JSON of TrainConfig fields for genlab, e.g. \'{"lr_schedule": "cosine"}\'')
    p.add_argument("--genlab-model", default="{}", help='JSON of VAEConfig fields beyond the architecture, e.g. \'{"kl_warmup_steps": 4680}\'')
    p.add_argument("--genlab-only", action="store_true", help="skip the plain loop (a recipe run, not a speed comparison)")
    p.add_argument("--probe", action="store_true",
                   help="after each epoch, time the same fixed 40-step workload in every worker (not counted in the epoch)")
    p.add_argument("--trainers", default="genlab,plain",
                   help="comma-separated: genlab (loop only), cli (as genlab train runs it), plain (DataLoader loop)")
    args = p.parse_args()
    kinds = tuple(args.trainers.split(","))
    if args.genlab_only:
        kinds = tuple(k for k in kinds if k != "plain")
    unknown = set(kinds) - {"genlab", "cli", "plain"}
    if unknown or not kinds:
        p.error(f"unknown trainer(s) {sorted(unknown)}; valid: genlab, cli, plain")

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
    faults: dict[str, list[int]] = {kind: [] for kind in kinds}
    probes: dict[str, list[float]] = {kind: [] for kind in kinds}
    for epoch in range(args.epochs):
        order = kinds if epoch % 2 == 0 else kinds[::-1]  # alternate who goes first
        for kind in order:
            pipes[kind].send("epoch")
            seconds, count, probe_s = pipes[kind].recv()
            times[kind].append(seconds)
            faults[kind].append(count)
            if probe_s is not None:
                probes[kind].append(probe_s)
        print(f"epoch {epoch + 1}: " + "  ".join(f"{kind} {times[kind][-1]:.2f}s" for kind in kinds)
              + ("  probe " + " ".join(f"{kind} {probes[kind][-1]:.3f}s" for kind in kinds) if args.probe else ""), flush=True)
    results = {}
    for kind in pipes:
        pipes[kind].send("stop")
    for kind in pipes:
        results[kind] = pipes[kind].recv()
        procs[kind].join()
        med = statistics.median(times[kind])
        results[kind].update({"median_epoch_s": med, "samples_per_s": 60000 // BATCH * BATCH / med})
        results[kind]["min_epoch_s"] = min(times[kind])
        results[kind]["minor_faults_per_epoch"] = statistics.median(faults[kind])
        if probes[kind]:
            results[kind]["probe_s"] = probes[kind]
    ratios: dict[str, dict[str, float]] = {}
    if "plain" in results:
        for kind in kinds:
            if kind == "plain":
                continue
            # Adjacent epochs of the trainers share the machine's state, so the per-epoch ratio is far
            # less noisy than either median when other jobs come and go.
            ratios[kind] = {"ratio_of_medians": results["plain"]["median_epoch_s"] / results[kind]["median_epoch_s"],
                            "paired_ratio": statistics.median(p / g for p, g in zip(times["plain"], times[kind]))}
    if "cli" in results and "genlab" in results:
        # what the per-epoch extras (evaluation, preview, curves, checkpoint) cost, as a share of the CLI's epoch
        ratios["cli_extras_share"] = {"paired": statistics.median((c - g) / c for c, g in zip(times["cli"], times["genlab"]))}
    summary = {"args": vars(args), "results": results, "times": times, "ratios_over_plain": ratios}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    if args.results:
        cmd = "python " + shlex.join(sys.argv)
        said = "; ".join(f"{k}/plain: ratio of medians {v['ratio_of_medians']:.2f}, median of paired per-epoch ratios "
                         f"{v['paired_ratio']:.2f}" for k, v in ratios.items() if "paired_ratio" in v)
        lines = [f"\n`{cmd}` ({time.strftime('%Y-%m-%d')}, {args.threads} threads; throughput {said})\n",
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
