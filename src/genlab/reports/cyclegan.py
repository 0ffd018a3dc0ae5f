"""Evaluation, the end-of-training figure and file translation for CycleGAN.

* :func:`evaluate_cyclegan` (``genlab evaluate``): cycle errors |F(G(a)) − a| and |G(F(b)) − b| on
  the whole test split of both domains; on paired test data (``facades-unpaired``) the L1 of each
  translation to the true image of the other domain; with a classifier, *content preservation*: the
  classifier's accuracy on the raw images of both domains and on their translations, against the
  source's labels (a "3" that becomes a well-drawn "8" counts as wrong); with a feature extractor,
  the Fréchet distance and KID of each translation against the real images of its target domain.
* :func:`report_cyclegan` (``genlab train``): ``cycle.png``, the lecture's figure (slides 37-41) —
  rows a, G(a), F(G(a)) and b, F(b), G(F(b)) — and the test metrics for ``metrics.json``.
* :func:`cycle_strip`: input | translation | reconstruction, the row ``genlab translate`` writes
  per file (:mod:`genlab.reports.translation`).
* :func:`steganography`: does the cycle read content hidden in G(a)? Perturb G(a) by an amount that
  barely changes it (PSNR stated) and compare F(G(a)) with F(G(a) + δ) against a (Chu et al. 2017).
* :func:`rank_translations`: successes and failures chosen by a stated rule, not by eye.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from ..data.unpaired import UnpairedDataset
from ..errors import ConfigError, DataError
from ..latent.protocols import require
from ..models.cyclegan import CycleGAN, Direction
from ..nn.pixels import as_rgb
from ..registry import register_evaluator, register_reporter

log = logging.getLogger(__name__)


@torch.no_grad()
def _map(fn: Any, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    return torch.cat([fn(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def translate_domains(model: CycleGAN, data: UnpairedDataset, *, batch_size: int = 200) -> dict[str, Tensor]:
    """``a``, ``b``, ``fake_b`` = G(a), ``fake_a`` = F(b), ``rec_a`` = F(G(a)), ``rec_b`` = G(F(b)) on the CPU."""
    was_training = model.training
    model.eval()
    dev = model.device
    a, b = data.domain_a[0], data.domain_b[0]
    out = {"a": a, "b": b}
    out["fake_b"] = _map(lambda x: model.translate(x, "a2b"), a, batch_size, dev)
    out["fake_a"] = _map(lambda x: model.translate(x, "b2a"), b, batch_size, dev)
    out["rec_a"] = _map(lambda x: model.translate(x, "b2a"), out["fake_b"], batch_size, dev)
    out["rec_b"] = _map(lambda x: model.translate(x, "a2b"), out["fake_a"], batch_size, dev)
    model.train(was_training)
    return out


@torch.no_grad()
def content_preservation(classifier: Any, images: dict[str, Tensor], labels_a: Tensor | None, labels_b: Tensor | None,
                         *, batch_size: int = 500) -> dict[str, float]:
    """Accuracy of ``classifier`` on ``a``, ``b``, G(a) (``a2b``) and F(b) (``b2a``) against the
    source image's label (its own prediction on the source where the data has no labels). Inputs
    whose shape the classifier does not take are skipped."""
    expected = tuple(classifier.config.image_shape)
    dev = next(classifier.parameters()).device

    def predict(x: Tensor) -> Tensor | None:
        return _map(classifier.predict, x, batch_size, dev) if tuple(x.shape[1:]) == expected else None

    raw = {"a": predict(images["a"]), "b": predict(images["b"])}
    labels = {"a": labels_a, "b": labels_b}
    out: dict[str, float] = {}
    for side in ("a", "b"):  # in-domain / cross-domain accuracy on the raw images
        if raw[side] is not None and labels[side] is not None:
            out[f"acc_{side}"] = float((raw[side] == labels[side]).float().mean())
    for key, fake, side in (("a2b", "fake_b", "a"), ("b2a", "fake_a", "b")):
        truth = labels[side] if labels[side] is not None else raw[side]
        predicted = predict(images[fake])
        if predicted is not None and truth is not None:
            out[f"acc_{key}"] = float((predicted == truth).float().mean())
    return out


@register_evaluator("cyclegan")
def evaluate_cyclegan(model: CycleGAN, test_data: Any, *, batch_size: int = 200, limit: int | None = None,
                      extractor: str | None = None, extractor_path: str | None = None,
                      classifiers: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
    """Cycle errors (mean |x − x̂| in [0, 1] pixels), paired L1 where the test pairs are known,
    content preservation under each of ``classifiers`` (name -> classifier; ``extractor=classifier``
    with ``extractor_path=RUN`` adds that one as ``classifier``), and FID/KID against the real
    images of the target domain when ``extractor`` names a feature extractor."""
    if not isinstance(test_data, UnpairedDataset):
        raise DataError("cyclegan evaluation needs unpaired data with domains A and B (e.g. --data domains, unpaired, "
                        "celeba-attribute or facades-unpaired)")
    if limit is not None:
        test_data = test_data.head(limit)
    t = translate_domains(model, test_data, batch_size=batch_size)
    result: dict[str, Any] = {
        "cycle_a": float((t["rec_a"] - t["a"]).abs().mean()), "cycle_b": float((t["rec_b"] - t["b"]).abs().mean()),
        "n_a": len(t["a"]), "n_b": len(t["b"]),
    }
    if t["a"].shape[1] == t["b"].shape[1]:  # how far each translation moved from its input
        result["change_a2b"] = float((t["fake_b"] - t["a"]).abs().mean())
        result["change_b2a"] = float((t["fake_a"] - t["b"]).abs().mean())
    if test_data.info.get("paired"):
        result["l1_a2b"] = float((t["fake_b"] - t["b"]).abs().mean())
        result["l1_b2a"] = float((t["fake_a"] - t["a"]).abs().mean())
    classifiers = dict(classifiers or {})
    if extractor == "classifier" and extractor_path:
        from ..checkpoint import load

        classifiers["classifier"] = load(extractor_path, device=model.device)
    for name, classifier in classifiers.items():
        require(classifier, "classifier", purpose=f"content preservation ({name})")
        scores = content_preservation(classifier, t, test_data.domain_a[1], test_data.domain_b[1])
        result.update({f"{name}_{k}": v for k, v in scores.items()})
    if extractor is not None:
        from ..metrics import compare_features, get_extractor

        features = get_extractor(extractor, **({"path": extractor_path} if extractor_path else {}))
        for key, fake, real in (("a2b", t["fake_b"], t["b"]), ("b2a", t["fake_a"], t["a"])):
            try:
                scores = compare_features(
                    features(fake), features(real), metrics=("fid", "kid"), kid_subset_size=max(2, min(1000, len(fake) // 2, len(real) // 2)),
                    protocol={"reference": "real test images of the target domain", "extractor": features.description})
            except (DataError, ConfigError, RuntimeError) as exc:  # an extractor built for the other domain's shape
                log.warning("no %s distances for %s: %s", extractor, key, exc)
                continue
            result.update({f"{k}_{key}": v for k, v in scores.items()})
    return result


@register_reporter("cyclegan")
def report_cyclegan(model: CycleGAN, run_dir: str | Path, train_data: Any, test_data: Any) -> dict[str, float]:
    """``cycle.png``: rows a, G(a), F(G(a)), b, F(b), G(F(b)) of 8 test images each; returns the test metrics."""
    from ..viz import image_rows

    data = test_data if test_data is not None else train_data
    rows = model.cycle_rows(data.domain_a[0][:8], data.domain_b[0][:8]).cpu()  # (6, k, C, S, S)
    labels = ("a (domain A)", "G(a)", "F(G(a))", "b (domain B)", "F(b)", "G(F(b))")
    path = image_rows(list(zip(labels, rows)), Path(run_dir) / "cycle.png",
                      title="test images, their translations, and back")
    log.info("wrote %s", path)
    metrics = evaluate_cyclegan(model, data)
    return {f"test/{k}": float(v) for k, v in metrics.items() if not k.startswith("n_")}


@torch.no_grad()
def cycle_strip(model: CycleGAN, x: Tensor, direction: Direction = "a2b") -> Tensor:
    """(3, C, S, S) in [0, 1]: input, translation, reconstruction (translated back), for one input
    (1, C_in, S, S); grey images repeated to RGB when the other domain is colour."""
    back: Direction = "b2a" if direction == "a2b" else "a2b"
    x = x.to(model.device)
    y = model.translate(x, direction)
    x_back = model.translate(y, back)
    c = max(x.shape[1], y.shape[1])
    return torch.cat([as_rgb(x, c), as_rgb(y, c), as_rgb(x_back, c)]).cpu()


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image, for images in [0, 1]: 10·log10(1 / MSE)."""
    mse = (x - y).flatten(1).pow(2).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def perturb(images: Tensor, kind: Literal["noise", "blur"], size: float, *, generator: torch.Generator | None = None) -> Tensor:
    """``images`` in [0, 1] plus Gaussian noise of std ``size`` (``noise``) or blurred by a Gaussian
    of std ``size`` px (``blur``, a 5×5 kernel, edges replicated); clamped to [0, 1]."""
    if size < 0:
        raise ConfigError(f"the perturbation size must be >= 0, got {size}")
    if kind == "noise":
        noise = torch.randn(images.shape, generator=generator).to(images.device)
        return (images + size * noise).clamp(0, 1)
    if kind != "blur":
        raise ConfigError(f"perturbation must be 'noise' or 'blur', got {kind!r}")
    if size == 0:
        return images
    taps = torch.arange(-2, 3, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-taps**2 / (2 * size**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)  # rows, then columns
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
    return x.clamp(0, 1)


@torch.no_grad()
def steganography(model: CycleGAN, x: Tensor, *, direction: Direction = "a2b", kind: Literal["noise", "blur"] = "noise",
                  size: float = 10 ** (-35 / 20), classify: Callable[[Tensor], Tensor] | None = None,
                  labels: Tensor | None = None, seed: int = 0, batch_size: int = 200) -> dict[str, Any]:
    """Slide 39's steganography, measured: translate ``x`` (N, C, S, S) in [0, 1] (G for ``a2b``, F for
    ``b2a``), perturb the translation by ``kind``/``size`` (default: noise of std 10^(-35/20) = 0.018,
    i.e. PSNR ≈ 35 dB before clamping), translate both back, and compare with ``x``.

    Returns ``psnr_db`` (mean PSNR of the perturbed translation against the clean one: how little it
    changed), ``perturbation_l1`` (mean |δ|), ``cycle_clean`` / ``cycle_perturbed`` (mean |x̂ − x| in
    [0, 1] pixels), ``amplification`` = (cycle_perturbed − cycle_clean) / perturbation_l1, and with ``classify`` (images -> labels, an independent classifier of x's domain)
    and ``labels`` (x's labels; its own reading of x when None): ``acc_back_clean`` /
    ``acc_back_perturbed``, the accuracy of the round trip, and ``acc_source``. A cycle that needs
    content invisible in the translation loses it to a perturbation that leaves the translation as it
    was (``amplification`` ≫ 1, accuracy falls); a translation that carries the content visibly keeps it."""
    if x.dim() != 4:
        raise DataError(f"steganography needs images (N, C, S, S), got {tuple(x.shape)}")
    back: Direction = "b2a" if direction == "a2b" else "a2b"
    was_training = model.training
    model.eval()
    dev = model.device
    g = torch.Generator().manual_seed(seed)
    there = _map(lambda v: model.translate(v, direction), x, batch_size, dev)  # (N, C', S, S)
    shaken = perturb(there, kind, size, generator=g)
    rec = _map(lambda v: model.translate(v, back), there, batch_size, dev)
    rec_shaken = _map(lambda v: model.translate(v, back), shaken, batch_size, dev)
    model.train(was_training)
    out: dict[str, Any] = {
        "perturbation": kind, "size": float(size), "n": len(x),
        "psnr_db": float(psnr(shaken, there).mean()),
        "cycle_clean": float((rec - x).abs().mean()), "cycle_perturbed": float((rec_shaken - x).abs().mean()),
    }
    out["perturbation_l1"] = float((shaken - there).abs().mean())
    # how much the way back magnifies the change: ~1 for a translation that carries its content visibly
    out["amplification"] = (out["cycle_perturbed"] - out["cycle_clean"]) / max(out["perturbation_l1"], 1e-12)
    if classify is not None:
        source = classify(x)
        truth = labels if labels is not None else source
        out["acc_source"] = float((source == truth).float().mean())
        out["acc_back_clean"] = float((classify(rec) == truth).float().mean())
        out["acc_back_perturbed"] = float((classify(rec_shaken) == truth).float().mean())
    out["images"] = {"x": x[:10], "translation": there[:10], "perturbed": shaken[:10], "back": rec[:10], "back_perturbed": rec_shaken[:10]}
    return out


def rank_translations(kept: Tensor, cycle_error: Tensor, k: int = 10, groups: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Indices of ``k`` successes and ``k`` failures by one stated rule: a success keeps its class under
    an independent classifier (``kept``, bool (N,)) with the lowest per-image cycle error; a failure
    loses its class, with the *lowest* cycle error first (the cycle says "fine", the content is gone).
    With ``groups`` (N,) (e.g. the source labels) the rule picks per group, one each in group order
    (groups without such an image are left out), so the grids are not all the easiest class."""
    if kept.shape != cycle_error.shape or kept.dim() != 1:
        raise DataError(f"kept and cycle_error must be two (N,) vectors, got {tuple(kept.shape)} and {tuple(cycle_error.shape)}")
    if groups is not None and groups.shape != kept.shape:
        raise DataError(f"groups must be an (N,) vector like kept, got {tuple(groups.shape)} and {tuple(kept.shape)}")
    order = cycle_error.argsort()
    successes, failures = order[kept[order]], order[~kept[order]]
    if groups is None:
        return successes[:k], failures[:k]

    def first_per_group(idx: Tensor) -> Tensor:
        g = groups[idx]
        firsts = [idx[g == value][:1] for value in g.unique()]  # unique() is sorted: group order
        return torch.cat(firsts)[:k] if firsts else idx[:0]
    return first_per_group(successes), first_per_group(failures)
