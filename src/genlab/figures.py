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
minute on a CPU), or uses the run folder given as ``run``. The plotting helpers they share with the
families' reporters live in :mod:`genlab.viz`. matplotlib is imported inside the functions.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .attacks import ATTACKS, METHODS, Norm, attack, attack_table, eval_mode
from .errors import ConfigError
from .viz import (  # noqa: F401  (the plotting helpers are re-exported: genlab.figures.plot_arm_modes, ...)
    _images, _pyplot, make_grid, plot_adversarial, plot_arm_modes, plot_conditional_density, plot_samples_vs_data,
    save_figure,
)

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


# ----------------------------------------------------------------------------- genlab attack

def attack_report(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    methods: Sequence[str] = METHODS,
    eps: Sequence[float] = (0.1, 0.2, 0.3),
    norm: Norm = "linf",
    steps: int = 40,
    seed: int = 0,
    figure: str | None = None,
    figure_count: int = 10,
) -> list[dict[str, Any]]:
    """:func:`attack_table` plus, when ``figure`` is a path, the original / perturbation /
    adversarial figure of the strongest listed method at the largest eps (``genlab attack``)."""
    for method in methods:
        if method not in ATTACKS:
            raise ConfigError(f"unknown attack {method!r}; valid: {', '.join(ATTACKS)}")
    if not eps:
        raise ConfigError("give at least one eps")
    rows = attack_table(model, x, y, methods=methods, eps=eps, norm=norm, steps=steps, seed=seed)
    if figure is not None:
        method = "pgd" if "pgd" in methods else methods[0]
        device = next(model.parameters()).device
        xs, ys = x[:figure_count].to(device), y[:figure_count].to(device)
        extra = {"steps": steps, "generator": torch.Generator(device=device).manual_seed(seed)} if method == "pgd" else {}
        with eval_mode(model):
            x_adv = attack(model, xs, ys, method=method, eps=max(eps), norm=norm, **extra)  # type: ignore[arg-type]
            plot_adversarial(model, xs.cpu(), x_adv.cpu(), ys.cpu(), figure, title=f"{method.upper()}, {norm} eps = {max(eps)}")
    return rows


# ----------------------------------------------------------------------------- demonstrations

@figure("mdn-vs-gaussian")
def mdn_vs_gaussian(out: Path, *, seed: int = 0, quick: bool = False, run: str | None = None) -> dict[str, Any]:
    from .data import DataConfig, load_dataset
    from .reports.mdn import evaluate_conditional

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
    from .reports.mdn import evaluate_conditional

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
