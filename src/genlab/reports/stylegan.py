"""StyleGAN's figures, each with the number that says whether it shows its claim (Karras et al.,
"A Style-Based Generator Architecture for GANs", CVPR 2019, figures 3, 4 and 8; the lecture's
slides 43-44).

* :func:`style_mixing_figure`: destination faces in rows, source faces in columns; one panel each
  for the coarse, middle and fine styles taken from the source. Claim: coarse styles carry the
  attributes (pose, sex, age), fine ones only colour and texture, so swapping coarse styles changes
  an independent attribute classifier's outputs far more than swapping fine styles.
* :func:`noise_figure`: one face with only its fine noise inputs resampled, several times, and the
  per-pixel standard deviation. Claim: the classifier's outputs stay the same (>= 95 % of faces)
  while pixels change.
* :func:`truncation_figure`: the same z at psi from 1 to 0. Claim: diversity falls monotonically,
  to one image (the mean face) at psi = 0.

``classifiers`` maps a name to a genlab classifier (or any module returning logits): binary
attribute classifiers (CelebA Male, Young, Smiling) or the MNIST digit classifier. Without them
the numbers are in pixel space only. The end of ``genlab train stylegan`` writes all three figures;
``genlab evaluate`` uses the GAN evaluator (FID, KID, precision/recall in classifier features).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.base import ArrayDataset
from ..registry import register_evaluator, register_reporter
from .gan import evaluate_gan as _evaluate_gan

log = logging.getLogger(__name__)

RANGES = ("coarse", "middle", "fine")


def _batched(fn, *tensors: Tensor, size: int = 100) -> Tensor:
    return torch.cat([fn(*parts) for parts in zip(*(t.split(size) for t in tensors))])


def _fit_input(classifier: Any, images: Tensor) -> Tensor:
    """Images in [0, 1] re-coloured and resized to ``classifier.config.image_shape`` when it has one."""
    shape = getattr(getattr(classifier, "config", None), "image_shape", None)
    if shape is None:
        return images
    c, h, w = shape
    if images.shape[1] != c:
        images = images.mean(1, keepdim=True) if c == 1 else images.expand(-1, c, -1, -1)
    if tuple(images.shape[2:]) != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return images


@torch.no_grad()
def class_probabilities(classifier: Any, images: Tensor) -> Tensor:
    """Softmax outputs (N, K) of ``classifier`` on images in [0, 1] (fitted to its input shape)."""
    device = next(classifier.parameters()).device
    classifier.eval()
    return torch.cat([torch.softmax(classifier(_fit_input(classifier, c).to(device)), dim=1).cpu() for c in images.split(200)])


def _output_changes(classifiers: Mapping[str, Any], before: Tensor, after: Tensor) -> dict[str, dict[str, float]]:
    """Per classifier: mean total-variation distance of its outputs, and the share of changed labels."""
    out = {}
    for name, classifier in classifiers.items():
        p, q = class_probabilities(classifier, before), class_probabilities(classifier, after)
        out[name] = {"output_change": float(0.5 * (p - q).abs().sum(1).mean()),
                     "label_flip_rate": float((p.argmax(1) != q.argmax(1)).float().mean())}
    return out


def _pairs(model: Any, n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, model.latent_dim, generator=g), torch.randn(n, model.latent_dim, generator=g)


# ------------------------------------------------------------------------------ style mixing

@torch.no_grad()
def style_mixing_stats(model: Any, *, classifiers: Mapping[str, Any] | None = None, num_pairs: int = 200,
                       seed: int = 0, truncation: float = 1.0) -> dict[str, Any]:
    """For ``num_pairs`` (destination, source) pairs: how much the coarse / middle / fine swaps
    change pixels (mean absolute difference) and each classifier's outputs. ``coarse_over_fine`` is
    the ratio of the mean output changes (pixels when there are no classifiers); the claim holds
    when it is well above 1 (``claim_holds``: above 2)."""
    model.eval()
    z_a, z_b = _pairs(model, num_pairs, seed)
    dest = _batched(lambda a: model.mix(a, a, [], truncation=truncation).cpu(), z_a)
    out: dict[str, Any] = {"num_pairs": num_pairs, "truncation": truncation, "seed": seed,
                           "layers": {r: model.layer_indices(r) for r in RANGES}}
    for r in RANGES:
        mixed = _batched(lambda a, b: model.mix(a, b, r, truncation=truncation).cpu(), z_a, z_b)
        entry: dict[str, Any] = {"pixel_change": float((mixed - dest).abs().mean())}
        if classifiers:
            entry["classifiers"] = _output_changes(classifiers, dest, mixed)
            entry["output_change"] = sum(v["output_change"] for v in entry["classifiers"].values()) / len(classifiers)
        out[r] = entry
    key = "output_change" if classifiers else "pixel_change"
    out["coarse_over_fine"] = out["coarse"][key] / max(out["fine"][key], 1e-12)
    out["measured_in"] = "classifier outputs" if classifiers else "pixels"
    out["claim_holds"] = bool(out["coarse_over_fine"] > 2.0)
    return out


@torch.no_grad()
def style_mixing_grid(model: Any, layers: str, *, rows: int = 4, cols: int = 5, seed: int = 0,
                      truncation: float = 0.7) -> Tensor:
    """(rows + 1) x (cols + 1) images: a blank corner, sources across the top, destinations down
    the left, and each destination with ``layers`` styles from each source."""
    g = torch.Generator().manual_seed(seed)
    z_dest, z_src = torch.randn(rows, model.latent_dim, generator=g), torch.randn(cols, model.latent_dim, generator=g)
    sources = model.mix(z_src, z_src, [], truncation=truncation).cpu()
    dests = model.mix(z_dest, z_dest, [], truncation=truncation).cpu()
    mixed = model.mix(z_dest.repeat_interleave(cols, 0), z_src.repeat(rows, 1), layers, truncation=truncation).cpu()
    blank = torch.ones_like(sources[:1])
    cells = [blank, sources] + [t for i in range(rows) for t in (dests[i : i + 1], mixed[i * cols : (i + 1) * cols])]
    return torch.cat(cells)


def style_mixing_figure(model: Any, path: str | Path, *, seed: int = 0, classifiers: Mapping[str, Any] | None = None,
                        num_pairs: int = 200, truncation: float = 0.7) -> dict[str, Any]:
    from ..viz import _pyplot, make_grid, save_figure

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, r in zip(axes, RANGES):
        grid = make_grid(style_mixing_grid(model, r, seed=seed, truncation=truncation), nrow=6)
        ax.imshow(_as_image(grid), cmap="gray", vmin=0, vmax=1)
        res = sorted({model.style_resolutions[i] for i in model.layer_indices(r)})
        span = f"{res[0]}" if res[0] == res[-1] else f"{res[0]}-{res[-1]}"
        ax.set_title(f"{r} styles ({span} px) from the sources (top row)", fontsize=9)
        ax.axis("off")
    stats = style_mixing_stats(model, classifiers=classifiers, num_pairs=num_pairs, seed=seed, truncation=truncation)
    fig.suptitle(f"style mixing: destinations down the left; change coarse / fine = {stats['coarse_over_fine']:.1f}x "
                 f"({stats['measured_in']})", fontsize=10)
    stats["path"] = str(save_figure(fig, path))
    return stats


# ------------------------------------------------------------------------------ noise

def _fine_noise(model: Any, n: int, generator: torch.Generator, layers: Sequence[int]) -> list[Tensor | None]:
    """The constant noise maps, with the ``layers`` ones replaced by fresh draws."""
    noise = list(model.noise_inputs(n, "const"))
    for j in layers:
        r = noise[j].shape[-1]  # type: ignore[union-attr]
        noise[j] = torch.randn(n, 1, r, r, generator=generator).to(model.device)
    return noise


def _kept_share(kept: Tensor, mask: Tensor) -> float | None:
    """The share of ``kept`` among the ``mask`` samples; None when there are none."""
    return float(kept[mask].float().mean()) if bool(mask.any()) else None


@torch.no_grad()
def noise_stats(model: Any, *, classifiers: Mapping[str, Any] | None = None, num_faces: int = 200, resamples: int = 4,
                seed: int = 0, truncation: float = 0.7, layers: str = "fine", decided_at: float = 0.5) -> dict[str, Any]:
    """Resample only the ``layers`` noise inputs of ``num_faces`` faces ``resamples`` times: the mean
    per-pixel standard deviation, and per classifier the share of faces whose label never changes.

    A label flip says something about the image only where the classifier has a reading to keep: a
    face it scores 0.45 / 0.55 flips under any perturbation at all. So the claim is judged on the
    faces the classifier *decides* (first draw's top probability > ``decided_at``, ``decided_fraction``):
    ``unchanged_when_decided`` >= 0.95 on them, at least half the faces decided, while pixels move.
    ``unchanged_fraction`` (every face) is reported beside it. A two-class classifier's top probability
    is never below 0.5, so for the face attributes every face counts as decided and the 0.45 / 0.55
    faces stay in: the rule was set for the 10-class digit and clothing classifiers; for two-class ones pass a
    higher ``decided_at`` (the lecture's face figure: 0.9).
    ``unchanged_by_confidence`` reports beside it, per classifier, the share of faces whose first draw's top
    probability is at least 0.6, 0.7, 0.8 and 0.9 and the unchanged share among them (not part of the claim)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    ws = model.truncate(model.mapping(torch.randn(num_faces, model.latent_dim, generator=g)), truncation)
    noise_layers = model.noise_layers(layers)
    draws = torch.stack([_batched(lambda w: model.synthesis(w, noise=_fine_noise(model, w.shape[0], g, noise_layers)).cpu(), ws)
                         for _ in range(resamples)])  # (R, N, C, H, W)
    out: dict[str, Any] = {"num_faces": num_faces, "resamples": resamples, "noise_layers": noise_layers, "seed": seed,
                           "pixel_std": float(draws.std(0).mean()),
                           "noise_strengths": [c.noise.magnitude() for c in model.generator.synthesis.convs]}
    if classifiers:
        unchanged, decided, unchanged_decided, by_confidence = {}, {}, {}, {}
        for name, classifier in classifiers.items():
            probs = class_probabilities(classifier, draws.flatten(0, 1)).view(resamples, num_faces, -1)
            labels = probs.argmax(-1)
            kept = (labels == labels[:1]).all(0)
            top = probs[0].max(-1).values  # the first draw's confidence
            sure = top > decided_at
            unchanged[name] = float(kept.float().mean())
            decided[name] = float(sure.float().mean())
            unchanged_decided[name] = _kept_share(kept, sure) or 0.0
            by_confidence[name] = {f"{level:g}": {"share": float((top >= level).float().mean()),
                                                  "unchanged": _kept_share(kept, top >= level)}
                                   for level in (0.6, 0.7, 0.8, 0.9)}
        out.update(decided_at=decided_at, unchanged_fraction=unchanged, decided_fraction=decided,
                   unchanged_when_decided=unchanged_decided,
                   unchanged_by_confidence=by_confidence)
        out["claim_holds"] = bool(min(unchanged_decided.values()) >= 0.95 and min(decided.values()) >= 0.5
                                  and out["pixel_std"] > 1e-3)
    else:
        out["claim_holds"] = None  # needs a classifier
    return out


def noise_figure(model: Any, path: str | Path, *, seed: int = 0, classifiers: Mapping[str, Any] | None = None,
                 resamples: int = 6, num_faces: int = 200, truncation: float = 0.7, decided_at: float = 0.5) -> dict[str, Any]:
    """One face with its fine noise resampled ``resamples`` times, the per-pixel standard deviation
    over 32 fine-noise draws, and over 32 draws of every noise input for comparison."""
    from ..viz import _pyplot, save_figure

    model.eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = model.truncate(model.mapping(torch.randn(1, model.latent_dim, generator=g)), truncation).expand(32, -1, -1)
        fine = model.synthesis(w, noise=_fine_noise(model, 32, g, model.noise_layers("fine"))).cpu()
        every = model.synthesis(w, noise=_fine_noise(model, 32, g, model.noise_layers("all"))).cpu()
    plt = _pyplot()
    fig, axes = plt.subplots(1, resamples + 2, figsize=(1.7 * (resamples + 2), 2.2))
    for i in range(resamples):
        axes[i].imshow(_as_image(fine[i]), cmap="gray", vmin=0, vmax=1)
        axes[i].set_title(f"fine noise #{i + 1}", fontsize=7)
    top = float(every.std(0).mean(0).max().clamp_min(1e-8))  # one colour scale for both maps
    for ax, images, title in ((axes[-2], fine, "std: fine noise"), (axes[-1], every, "std: all noise")):
        ax.imshow(images.std(0).mean(0).numpy(), cmap="magma", vmin=0, vmax=top)
        ax.set_title(title, fontsize=7)
    for ax in axes:
        ax.axis("off")
    stats = noise_stats(model, classifiers=classifiers, num_faces=num_faces, seed=seed, truncation=truncation,
                        decided_at=decided_at)
    fig.suptitle(f"noise inputs: pixel std {stats['pixel_std']:.4f}"
                 + (f", labels unchanged on {min(stats['unchanged_when_decided'].values()):.0%} of the samples a "
                    f"classifier decides (top probability > {decided_at:g}; "
                    f"{min(stats['unchanged_fraction'].values()):.0%} of all)" if classifiers else ""),
                 fontsize=9)
    fig.tight_layout()
    stats["path"] = str(save_figure(fig, path))
    return stats


# ------------------------------------------------------------------------------ truncation

@torch.no_grad()
def truncation_stats(model: Any, psis: Sequence[float] = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0), *, num_samples: int = 200,
                     seed: int = 0, features: Any = None) -> dict[str, Any]:
    """Diversity (mean pairwise L2 distance between ``num_samples`` samples of the same z) at each psi, in
    pixels and, given a classifier, in its ``features``; ``monotone``: it falls at every step.

    Feature vectors are scaled to unit length first, as LPIPS normalises activations: a classifier answers
    typical faces more strongly (the mean norm of the face classifiers' features grows by ~7 % from psi 1 to
    0.8), and raw distances would count that growth as diversity. The raw distances and the mean norm are
    reported beside (``diversity_features_raw``, ``feature_norm``), outside the claim.
    """
    model.eval()
    z = torch.randn(num_samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    out: dict[str, Any] = {"psi": list(psis), "num_samples": num_samples, "seed": seed}
    spaces: dict[str, list[float]] = {"pixels": []}
    if features is not None:
        spaces["features"], out["diversity_features_raw"], out["feature_norm"] = [], [], []
    for psi in psis:
        images = _batched(lambda zz: model.synthesis(model.truncate(model.mapping(zz), psi), noise="const").cpu(), z)
        spaces["pixels"].append(_mean_pairwise(images.flatten(1)))
        if features is not None:
            f = _features(features, images).flatten(1).double()
            norms = f.norm(dim=1, keepdim=True)
            spaces["features"].append(_mean_pairwise(f / norms.clamp_min(1e-12)))
            out["diversity_features_raw"].append(_mean_pairwise(f))
            out["feature_norm"].append(float(norms.mean()))
    for name, values in spaces.items():
        out[f"diversity_{name}"] = values
        out[f"monotone_{name}"] = bool(all(a > b for a, b in zip(values[:-1], values[1:])))
    out["claim_holds"] = all(out[f"monotone_{name}"] for name in spaces)
    return out


def _mean_pairwise(x: Tensor) -> float:
    n = x.shape[0]
    d = torch.cdist(x.double(), x.double())
    return float(d.sum() / (n * (n - 1)))


@torch.no_grad()
def _features(classifier: Any, images: Tensor) -> Tensor:
    device = next(classifier.parameters()).device
    classifier.eval()
    return torch.cat([classifier.features(_fit_input(classifier, c).to(device)).cpu() for c in images.split(200)])


def truncation_figure(model: Any, path: str | Path, *, seed: int = 0, rows: int = 5,
                      psis: Sequence[float] = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0), num_samples: int = 200,
                      features: Any = None) -> dict[str, Any]:
    from ..viz import _pyplot, make_grid, save_figure

    model.eval()
    z = torch.randn(rows, model.latent_dim, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        cells = torch.stack([model.synthesis(model.truncate(model.mapping(z), psi), noise="const").cpu() for psi in psis], 1)
    stats = truncation_stats(model, psis, num_samples=num_samples, seed=seed, features=features)
    plt = _pyplot()
    fig, (ax, curve) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    ax.imshow(_as_image(make_grid(cells.flatten(0, 1), nrow=len(psis))), cmap="gray", vmin=0, vmax=1)
    ax.set_title("truncation: psi = " + ", ".join(f"{p:g}" for p in psis) + " (left to right)", fontsize=9)
    ax.axis("off")
    for name in ("pixels", "features"):
        if f"diversity_{name}" in stats:
            values = torch.tensor(stats[f"diversity_{name}"])
            curve.plot(list(psis), (values / values[0]).tolist(), "o-",
                       label="features (unit length)" if name == "features" else name)
    curve.set_xlabel("psi")
    curve.set_ylabel("diversity / diversity at psi = 1")
    curve.set_title("mean pairwise distance of samples", fontsize=9)
    curve.legend()
    fig.tight_layout()
    stats["path"] = str(save_figure(fig, path))
    return stats


def _as_image(t: Tensor) -> Any:
    a = t.detach().cpu().clamp(0, 1)
    return a[0].numpy() if a.shape[0] == 1 else a.permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------------ registry

@register_evaluator("stylegan")
def evaluate_stylegan(model: Any, test_data: ArrayDataset, **options: Any) -> dict[str, Any]:
    """The GAN evaluator: FID, KID, precision/recall, density/coverage in classifier features."""
    return _evaluate_gan(model, test_data, **options)


@register_reporter("stylegan")
def report_stylegan(model: Any, run_dir: Any, train_data: ArrayDataset, test_data: ArrayDataset | None) -> dict[str, Any]:
    """End of ``genlab train stylegan``: the three figures into the run folder and their pixel-space numbers."""
    run_dir = Path(run_dir)
    mixing = style_mixing_figure(model, run_dir / "style-mixing.png", num_pairs=100)
    noise = noise_figure(model, run_dir / "stylegan-noise.png", num_faces=100)
    truncation = truncation_figure(model, run_dir / "truncation.png", num_samples=100)
    return {"style_mixing/coarse_over_fine_pixels": mixing["coarse_over_fine"],
            "noise/fine_pixel_std": noise["pixel_std"],
            "truncation/diversity_monotone": float(truncation["monotone_pixels"])}
