"""The lecture's demonstrations, each reproducible with one command: ``genlab figure NAME``.

=================== ============================================================================
``mdn-vs-gaussian``  MDN vs one Gaussian on Bishop's inverted sinusoid: both p(t | x) as heat maps
``robot-arm``        robot-arm inverse kinematics: MDN modes vs the two true solutions vs MSE net
``random-generator`` an untrained 2 -> 12 x 100 ReLU (Glorot) -> 2 generator, 100,000 samples
``untrained-conv``   image grids of untrained conv generators (upsample+conv, transposed conv)
``naive-collapse``   a generator trained by MSE to random data points: samples vs data (ring, MNIST)
``adversarial``      original / amplified perturbation / adversarial image, with predicted labels
``style-mixing``     StyleGAN: coarse / middle / fine styles of source faces copied into destinations
``stylegan-noise``   StyleGAN: one face with only its fine noise resampled; per-pixel std map
``truncation``       StyleGAN: the same z at psi = 1 .. 0, diversity falling to the mean face
=================== ============================================================================

A demonstration that needs a trained model trains a small one with the one Trainer (seconds to a
minute on a CPU), or uses the run folder given as ``run``. The plotting helpers are reused by the
families' reporters at the end of ``genlab train``. matplotlib is imported inside the functions.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError
from .viz import _pyplot, make_grid, save_figure

log = logging.getLogger(__name__)

Demo = Callable[..., dict[str, Any]]
FIGURES: dict[str, Demo] = {}


def figure(name: str) -> Callable[[Demo], Demo]:
    def decorator(fn: Demo) -> Demo:
        FIGURES[name] = fn
        return fn

    return decorator


def make_figure(name: str, out_dir: str | Path = "figures", *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    """Run demonstration ``name``; returns ``{"paths": [...], **numbers}``. ``quick`` trains less
    (for tests); ``run`` is a trained run folder for the demonstrations that need one."""
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}; valid: {', '.join(sorted(FIGURES))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return FIGURES[name](out, seed=seed, quick=quick, run=run)


def _fit(name: str, config: dict[str, Any], data: Any, *, steps: int, lr: float, batch_size: int = 128, seed: int = 0, **train: Any) -> Any:
    """A small model trained with the one Trainer, returned in eval mode."""
    from .models import build_model
    from .training import TrainConfig, Trainer

    torch.manual_seed(seed)
    model = build_model(name, config)
    cfg = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=False, tensorboard=False,
                      device="cpu", eval_every=10**9, sample_every=10**9, checkpoint_every=10**9,
                      fused_optimizer=False, **train)
    Trainer(model, data, cfg).fit()
    return model.eval()


def _images(t: Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> array for imshow."""
    a = t.detach().cpu().clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


# ----------------------------------------------------------------------------- plotting helpers

@torch.no_grad()
def plot_conditional_density(models: dict[str, Any], data: Any, path: str | Path, *, resolution: int = 200) -> Path:
    """One panel per model: p(y | x) on a grid as a heat map, the data on top, and the prediction.
    For 1-D inputs and targets (the inverted sinusoid)."""
    plt = _pyplot()
    from matplotlib.colors import PowerNorm

    x, y = data.tensors[0][:, 0], data.tensors[1][:, 0]
    pad_x, pad_y = 0.1 * float(x.max() - x.min()), 0.1 * float(y.max() - y.min())
    xs = torch.linspace(float(x.min()) - pad_x, float(x.max()) + pad_x, resolution)
    ys = torch.linspace(float(y.min()) - pad_y, float(y.max()) + pad_y, resolution)
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.2), squeeze=False)
    for ax, (label, model) in zip(axes[0], models.items()):
        device = model.device
        dist = model.distribution(xs[:, None].to(device))
        logp = dist.log_prob(ys[:, None, None].to(device)).cpu()  # (Ny, Nx)
        # gamma < 1 so that the spread-out density of the multi-valued middle shows beside the sharp ends
        density = logp.exp().clamp(max=float(torch.quantile(logp.exp().flatten(), 0.99)))
        ax.imshow(density.numpy(), origin="lower", extent=[float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])],
                  aspect="auto", cmap="magma", norm=PowerNorm(gamma=0.4))
        ax.scatter(x[:600].numpy(), y[:600].numpy(), s=2, c="white", alpha=0.35, linewidths=0)
        ax.plot(xs.numpy(), model.predict(xs[:, None].to(device)).cpu()[:, 0].numpy(), c="cyan", lw=1.2, label="prediction")
        nll = -float(model.log_prob(data.tensors[0].to(device), data.tensors[1].to(device)).mean())
        ax.set_ylim(float(ys[0]), float(ys[-1]))
        ax.set_title(f"{label}: p(t | x), test NLL {nll:.3f}")
        ax.set_xlabel("x")
        ax.set_ylabel("t")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


@torch.no_grad()
def plot_arm_modes(model: Any, data: Any, path: str | Path, *, baseline: Any | None = None, num_arms: int = 4) -> Path:
    """Left: joint-angle space, true solutions of each test target vs the model's two heaviest modes
    (and a baseline's prediction). Right: arms drawn for a few two-solution targets."""
    from .data.toy import arm_from_info, forward_kinematics, inverse_kinematics

    plt = _pyplot()
    arm = arm_from_info(data.info)
    if arm is None:
        raise ConfigError("plot_arm_modes needs robot-arm data")
    targets = data.tensors[0][:1500]
    solutions, valid = inverse_kinematics(targets, arm["lengths"], arm["theta1_range"], arm["theta2_range"])
    modes, weights = model.modes(targets.to(model.device))
    modes, weights = modes.cpu(), weights.cpu()
    fig, (ax, ax_arm) = plt.subplots(1, 2, figsize=(11, 4.6))
    true = solutions[valid]
    ax.scatter(true[:, 0], true[:, 1], s=10, c="lightgrey", label="true solutions")
    top = modes[:, : min(2, modes.shape[1])]
    w = weights[:, : top.shape[1]]
    heavy = w > 0.1
    ax.scatter(top[heavy][:, 0], top[heavy][:, 1], s=3, c="tab:blue", label=f"{model.registry_name} modes (weight > 0.1)")
    if baseline is not None:
        pred = baseline.predict(targets.to(baseline.device)).cpu()
        ax.scatter(pred[:, 0], pred[:, 1], s=3, c="tab:red", label=f"{baseline.registry_name} prediction")
    ax.set_xlabel("shoulder angle (rad)")
    ax.set_ylabel("elbow angle (rad)")
    ax.legend(fontsize=8, markerscale=3)
    ax.set_title("joint space")
    two = torch.nonzero(valid.sum(1) == 2).flatten()[:num_arms]
    colours = plt.get_cmap("tab10")
    l1 = arm["lengths"][0]

    def draw(angles: Tensor, colour: Any, style: str, width: float) -> None:
        elbow = l1 * torch.stack([angles[0].cos(), angles[0].sin()])
        end = forward_kinematics(angles, arm["lengths"])
        ax_arm.plot([0, float(elbow[0]), float(end[0])], [0, float(elbow[1]), float(end[1])], style, c=colour, lw=width)

    for j, i in enumerate(two.tolist()):
        colour = colours(j)
        for s in range(2):
            draw(solutions[i, s], colour, ":", 2.5)
        for k in range(top.shape[1]):
            if w[i, k] > 0.1:
                draw(top[i, k], colour, "-", 1.0)
        if baseline is not None:
            draw(baseline.predict(targets[i : i + 1].to(baseline.device)).cpu()[0], colour, "--", 1.0)
        ax_arm.plot(*targets[i].tolist(), "x", c=colour, ms=9)
    ax_arm.set_aspect("equal")
    ax_arm.set_title("dotted: true solutions, solid: MDN modes" + (", dashed: baseline" if baseline is not None else ""), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_samples_vs_data(samples: Tensor, data: Tensor, path: str | Path, *, title: str = "") -> Path:
    """2-D points: one scatter with both. Images: a data grid beside a sample grid."""
    plt = _pyplot()
    if samples.dim() == 2 and samples.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(data[:, 0], data[:, 1], s=2, c="tab:blue", alpha=0.4, label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.6, label="samples")
        centre = data.mean(0)
        ax.set_aspect("equal")
        ax.legend(markerscale=4, fontsize=8)
        ax.plot(float(centre[0]), float(centre[1]), "k+", ms=14)
        ax.annotate("data mean", (float(centre[0]), float(centre[1])), xytext=(8, 8), textcoords="offset points", fontsize=8)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 5))
        for ax, images, label in zip(axes, (data[:64], samples[:64]), ("data", "samples")):
            ax.imshow(_images(make_grid(images, nrow=8)), cmap="gray", vmin=0, vmax=1)
            ax.set_title(label)
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


@torch.no_grad()
def plot_adversarial(model: Any, x: Tensor, x_adv: Tensor, y: Tensor, path: str | Path, *, title: str = "") -> Path:
    """Rows: original, perturbation (amplified to fill [0, 1]), adversarial; predicted labels on top."""
    plt = _pyplot()
    device = model.device
    pred_clean = model(x.to(device)).argmax(1).cpu()
    pred_adv = model(x_adv.to(device)).argmax(1).cpu()
    delta = x_adv - x
    scale = float(delta.abs().max()) or 1.0
    amplified = 0.5 + 0.5 * delta / scale
    n = x.shape[0]
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.6), squeeze=False)
    for i in range(n):
        for row, (images, label) in enumerate(((x, f"{int(pred_clean[i])}"), (amplified, ""), (x_adv, f"{int(pred_adv[i])}"))):
            ax = axes[row, i]
            ax.imshow(_images(images[i]), cmap="gray" if images.shape[1] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if label:
                wrong = row == 2 and int(pred_adv[i]) != int(y[i])
                ax.set_title(f"pred {label}", fontsize=8, color="red" if wrong else "black")
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel(f"delta x{0.5 / scale:.1f}", fontsize=8)
    axes[2, 0].set_ylabel("adversarial", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- demonstrations

@figure("mdn-vs-gaussian")
def mdn_vs_gaussian(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    from .data import DataConfig, load_dataset
    from .models.mdn import evaluate_conditional

    train = load_dataset(DataConfig(name="inverse-sine", size=1000 if quick else 4000, seed=seed))
    test = load_dataset(DataConfig(name="inverse-sine", size=2000, seed=seed), "test")
    steps = 200 if quick else 4000
    common = {"x_dim": 1, "y_dim": 1, "hidden_dims": [32, 32]}
    models = {
        "MDN (K=3)": _fit("mdn", {**common, "num_components": 3}, train, steps=steps, lr=1e-2, lr_schedule="cosine", seed=seed),
        "single Gaussian": _fit("regressor", common, train, steps=steps, lr=1e-2, lr_schedule="cosine", seed=seed),
    }
    path = plot_conditional_density(models, test, out / "mdn-vs-gaussian.png")
    nll = {f"nll/{k}": evaluate_conditional(m, test)["nll"] for k, m in models.items()}
    return {"paths": [str(path)], **nll}


@figure("robot-arm")
def robot_arm_figure(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    from .data import DataConfig, load_dataset
    from .models.mdn import evaluate_conditional

    test = load_dataset(DataConfig(name="robot-arm", size=2000, seed=seed), "test")
    if run is not None:
        from .api import load_run

        model, _ = load_run(run)
    else:
        train = load_dataset(DataConfig(name="robot-arm", size=2000 if quick else 10000, seed=seed))
        # the MDN configuration of benchmarks/robot_arm.py
        model = _fit("mdn", {"x_dim": 2, "y_dim": 2, "hidden_dims": [128, 128], "num_components": 5}, train,
                     steps=200 if quick else 15000, lr=3e-3, lr_schedule="cosine", warmup_steps=0 if quick else 500, seed=seed)
    train_b = load_dataset(DataConfig(name="robot-arm", size=2000 if quick else 10000, seed=seed))
    baseline = _fit("regressor", {"x_dim": 2, "y_dim": 2, "hidden_dims": [64, 64], "likelihood": "mse"}, train_b,
                    steps=200 if quick else 4000, lr=3e-3, lr_schedule="cosine", seed=seed)
    path = plot_arm_modes(model, test, out / "robot-arm.png", baseline=baseline)
    numbers = {f"mdn/{k}": v for k, v in evaluate_conditional(model, test).items()}
    numbers.update({f"mse_net/{k}": v for k, v in evaluate_conditional(baseline, test).items()})
    return {"paths": [str(path)], **numbers}


@figure("random-generator")
def random_generator(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    """An untrained deep ReLU generator already maps Gaussian noise to a complex, non-Gaussian
    distribution: depth folds the plane (each ReLU layer is piecewise linear)."""
    from .nn.generators import MLPGenerator

    plt = _pyplot()
    n = 10_000 if quick else 100_000
    torch.manual_seed(seed)
    generator = MLPGenerator(2, 2, hidden_dims=[100] * 12, activation="relu", init="glorot").eval()
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g)
    with torch.no_grad():
        x = generator(z)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].scatter(z[:, 0], z[:, 1], s=0.2, c="k", alpha=0.2, linewidths=0)
    axes[0].set_title(f"input z ~ N(0, I), n = {n:,}")
    axes[1].scatter(x[:, 0], x[:, 1], s=0.2, c="k", alpha=0.2, linewidths=0)
    axes[1].set_title("untrained 2 -> 12 x 100 ReLU (Glorot) -> 2")
    for ax in axes:
        ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    path = save_figure(fig, out / "random-generator.png")
    standard = (x - x.mean(0)) / x.std(0)
    return {"paths": [str(path)], "excess_kurtosis": [float(v) for v in (standard ** 4).mean(0) - 3]}


@figure("untrained-conv")
def untrained_conv(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    """Untrained DCGAN generators: the architecture alone imposes structure (smooth blobs from
    up-sampling, checkerboards from transposed convolutions)."""
    from .nn.generators import ConvGenerator

    plt = _pyplot()
    size = 32 if quick else 64
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    for ax, mode in zip(axes, ("upsample", "transposed")):
        torch.manual_seed(seed)
        # batch-norm on batch statistics, as while training (with fresh running statistics, eval-mode
        # BN would normalise nothing and the signal would fade into the last layer's bias)
        generator = ConvGenerator(100, (3, size, size), mode=mode, base_channels=32).train()
        with torch.no_grad():
            images = generator(torch.randn(36, 100, generator=torch.Generator().manual_seed(seed)))
        # untrained outputs sit near 0.5; stretch each image's contrast, per channel, so the structure shows
        flat = images.flatten(2)
        lo, hi = flat.min(2).values[..., None, None], flat.max(2).values[..., None, None]
        ax.imshow(_images(make_grid((images - lo) / (hi - lo).clamp_min(1e-8), nrow=6)))
        ax.set_title(f"untrained ConvGenerator, mode={mode!r} (contrast stretched)", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return {"paths": [str(save_figure(fig, out / "untrained-conv.png"))]}


@figure("naive-collapse")
def naive_collapse(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    from .data import DataConfig, load_dataset
    from .models.naive import collapse_stats

    results: dict[str, Any] = {"paths": []}
    ring = load_dataset(DataConfig(name="ring8", seed=seed, size=2000 if quick else 10000))
    model = _fit("naive", {"x_dim": 2, "latent_dim": 2, "loss": "mse"}, ring, steps=150 if quick else 2000, lr=1e-3, seed=seed)
    samples = model.sample(4000, generator=torch.Generator().manual_seed(seed))
    stats = collapse_stats(samples, ring.x)
    results.update({f"ring/{k}": v for k, v in stats.items()})
    results["paths"].append(str(plot_samples_vs_data(samples, ring.x[:4000], out / "naive-collapse-ring.png",
                                                     title=f"naive MSE generator on ring8: spread ratio {stats['spread_ratio']:.3f}")))
    mnist = load_dataset(DataConfig(name="mnist-embedded", seed=seed))
    if quick:
        mnist = mnist.head(512)
    model = _fit("naive", {"image_shape": [1, 28, 28], "latent_dim": 16, "loss": "mse", "hidden_dims": [256, 256]}, mnist,
                 steps=60 if quick else 1500, lr=1e-3, batch_size=64, seed=seed)
    samples = model.sample(1000, generator=torch.Generator().manual_seed(seed))
    stats = collapse_stats(samples, mnist.x)
    results.update({f"mnist/{k}": v for k, v in stats.items()})
    results["paths"].append(str(plot_samples_vs_data(samples, mnist.x[:64], out / "naive-collapse-mnist.png",
                                                     title=f"naive MSE generator on MNIST: spread ratio {stats['spread_ratio']:.3f}")))
    return results


@figure("adversarial")
def adversarial(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None, eps: float = 0.2) -> dict[str, Any]:
    from .attacks import fgsm, pgd, robust_accuracy
    from .data import DataConfig, load_dataset

    test = load_dataset(DataConfig(name="mnist-embedded", seed=seed), "test")
    if run is not None:
        from .api import load_run

        model, _ = load_run(run)
    else:
        train = load_dataset(DataConfig(name="mnist-embedded", seed=seed))
        if quick:
            train = train.head(256)
        model = _fit("classifier", {"image_shape": [1, 28, 28], "num_classes": 10}, train, steps=20 if quick else 600,
                     lr=1e-3, batch_size=64, seed=seed)
    x, y = test.x[:10].to(model.device), test.y[:10].to(model.device)
    paths = []
    for name, x_adv in (("fgsm", fgsm(model, x, y, eps=eps)),
                        ("pgd", pgd(model, x, y, eps=eps, steps=40, generator=torch.Generator(model.device).manual_seed(seed)))):
        paths.append(str(plot_adversarial(model, x.cpu(), x_adv.cpu(), y.cpu(), out / f"adversarial-{name}.png",
                                          title=f"{name.upper()}, L-inf eps = {eps}")))
    n = 200 if quick else len(test)
    numbers = {"clean_accuracy": robust_accuracy(model, test.x[:n], test.y[:n], method=None),
               "fgsm_accuracy": robust_accuracy(model, test.x[:n], test.y[:n], method="fgsm", eps=eps),
               "eps": eps}
    return {"paths": paths, **numbers}


# ----------------------------------------------------------------------------- StyleGAN (slides 43-44)

def _stylegan(run: str | None, seed: int, quick: bool) -> Any:
    """A trained StyleGAN run, or (without ``run``) a small one trained here on 16x16 digits: a
    minute on a CPU, enough to show the mechanics, not the lecture's faces."""
    if run is not None:
        from .api import load_run

        model, _ = load_run(run)
        if model.registry_name != "stylegan":
            raise ConfigError(f"this figure needs a stylegan run, got a {model.registry_name!r} model")
        return model.eval()
    from .data import DataConfig, load_dataset

    data = load_dataset(DataConfig(name="mnist-embedded", seed=seed, image_size=16))
    config = {"image_shape": [1, 16, 16], "latent_dim": 32, "w_dim": 32, "mapping_depth": 2, "channel_base": 512,
              "channel_max": 32}
    return _fit("stylegan", config, data, steps=20 if quick else 600, lr=2.5e-3, batch_size=32, seed=seed,
                betas=(0.0, 0.99), ema_decay=0.99)


@figure("style-mixing")
def style_mixing(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    """Slide 43: destinations in rows, sources in columns, coarse / middle / fine styles from the source."""
    from .reports.stylegan import style_mixing_figure

    stats = style_mixing_figure(_stylegan(run, seed, quick), out / "style-mixing.png", seed=seed, num_pairs=50 if quick else 200)
    return {"paths": [stats.pop("path")], **stats}


@figure("stylegan-noise")
def stylegan_noise(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    """Slide 44: one face with only the fine noise resampled, and the per-pixel standard deviation."""
    from .reports.stylegan import noise_figure

    stats = noise_figure(_stylegan(run, seed, quick), out / "stylegan-noise.png", seed=seed, num_faces=50 if quick else 200)
    return {"paths": [stats.pop("path")], **stats}


@figure("truncation")
def truncation(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    """The truncation trick: psi from 1 to 0 converges on the mean face; diversity falls monotonically."""
    from .reports.stylegan import truncation_figure

    stats = truncation_figure(_stylegan(run, seed, quick), out / "truncation.png", seed=seed, num_samples=50 if quick else 200)
    return {"paths": [stats.pop("path")], **stats}
