"""Bias audit: does a generative model reproduce, amplify or erase a skew of its training data?

An attribute classifier (e.g. genlab's ``classifier`` trained on CelebA's "Male" column, or the MNIST
digit classifier) labels generated samples, and their class rates are compared with the training
data's. Two comparisons, because the classifier errs:

* **same lens**: the classifier's rates on generated samples vs its rates on held-out *real* data.
  Its mistakes hit both alike, so a difference is the model's, not the classifier's.
* **corrected**: the generated rates with the classifier's error removed, using its confusion matrix
  measured on labelled held-out data (``C[i, j] = P(predicted j | true i)``; observed rates are
  ``C^T p``, solved for ``p``; for two classes this is the Rogan-Gladen estimator), next to the
  training data's label rates.

Amplification (Zhao et al., "Men Also Like Shopping", EMNLP 2017, for a generator): how much more of
the training data's majority class the model produces than the data holds, ``p_gen[m] - p_data[m]``
with ``m`` the data's majority class; > 0 means the skew grew. Each rate carries a Wilson 95 % interval
and each same-lens difference a two-proportion z statistic, so a user can tell a shift from noise.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..batching import eval_mode, map_batches, module_device
from ..errors import DataError


def class_counts(labels: Tensor, num_classes: int) -> Tensor:
    """(N,) integer labels -> (K,) counts (float64)."""
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.numel() == 0:
        raise DataError("bias audit: no labels to count")
    if labels.is_floating_point() and bool((labels != labels.round()).any()):
        raise DataError("bias audit: labels must be class indices, got fractional values")
    labels = labels.long()
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise DataError(f"bias audit: labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
    return torch.bincount(labels, minlength=num_classes).double()


def confusion_matrix(true: Tensor, predicted: Tensor, num_classes: int) -> Tensor:
    """(K, K) row-normalised: ``C[i, j] = P(predicted j | true i)`` (a class absent from ``true`` gets
    the identity row, i.e. no correction for it)."""
    true, predicted = torch.as_tensor(true).reshape(-1).long(), torch.as_tensor(predicted).reshape(-1).long()
    if true.shape != predicted.shape:
        raise DataError(f"bias audit: {len(true)} true labels but {len(predicted)} predictions")
    class_counts(true, num_classes), class_counts(predicted, num_classes)  # range checks
    counts = torch.bincount(true * num_classes + predicted, minlength=num_classes ** 2).double().view(num_classes, num_classes)
    rows = counts.sum(1, keepdim=True)
    eye = torch.eye(num_classes, dtype=torch.float64)
    return torch.where(rows > 0, counts / rows.clamp_min(1), eye)


def corrected_rates(observed: Tensor, confusion: Tensor) -> Tensor:
    """Solve ``confusion^T p = observed`` for class rates ``p`` (least squares, then clipped to >= 0 and
    renormalised: sampling noise can push the exact solution slightly off the simplex)."""
    observed = torch.as_tensor(observed, dtype=torch.float64)
    p = torch.linalg.lstsq(confusion.T.double(), observed[:, None]).solution[:, 0]
    p = p.clamp_min(0)
    total = p.sum()
    return p / total if total > 0 else observed.clone()


def wilson_interval(count: Tensor, n: int, z: float = 1.959964) -> tuple[Tensor, Tensor]:
    """Wilson score interval for a binomial rate ``count / n`` (elementwise over ``count``)."""
    p = count.double() / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * torch.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def two_proportion_z(count_a: Tensor, n_a: int, count_b: Tensor, n_b: int) -> Tensor:
    """z statistic of rate a - rate b under the pooled null (0 where both rates are 0 or 1)."""
    pa, pb = count_a.double() / n_a, count_b.double() / n_b
    pooled = (count_a.double() + count_b.double()) / (n_a + n_b)
    se = torch.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return torch.where(se > 0, (pa - pb) / se.clamp_min(1e-300), torch.zeros_like(se))


def two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def bias_audit(
    generated_predictions: Tensor,
    data_labels: Tensor,
    *,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    heldout_labels: Tensor | None = None,
    heldout_predictions: Tensor | None = None,
) -> dict[str, Any]:
    """Compare the class rates of generated samples (as the classifier labels them) with the data's.

    Args:
        generated_predictions: (N_gen,) the classifier's labels for generated samples.
        data_labels: (N_data,) true labels of the training data.
        heldout_labels, heldout_predictions: (N_held,) true labels of held-out real data and the
            classifier's labels for it; they give the same-lens comparison and the confusion matrix
            that corrects the generated rates. Without them only the raw rates are compared.
    Returns a dict: ``classes`` (one row per class with rates, intervals, differences, z), and the
    summary ``majority_class``, ``amplification`` (corrected when possible, else raw),
    ``total_variation`` (between the generated and the data's class distributions, same basis) and
    ``protocol`` (sample counts and what was compared). On balanced data (the two largest class
    rates within 0.001) there is no majority: ``majority_class`` and ``amplification`` are None.
    """
    names = list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise DataError(f"bias audit: {len(names)} class names for {num_classes} classes")
    gen_counts, data_counts = class_counts(generated_predictions, num_classes), class_counts(data_labels, num_classes)
    n_gen, n_data = int(gen_counts.sum()), int(data_counts.sum())
    gen_rate, data_rate = gen_counts / n_gen, data_counts / n_data
    low, high = wilson_interval(gen_counts, n_gen)
    out: dict[str, Any] = {"protocol": {"generated": n_gen, "data": n_data}}
    rows = [{"class": names[k], "data_rate": float(data_rate[k]), "generated_rate": float(gen_rate[k]),
             "generated_ci95": [float(low[k]), float(high[k])]} for k in range(num_classes)]
    basis = gen_rate
    if (heldout_labels is None) != (heldout_predictions is None):
        raise DataError("bias audit: pass both heldout_labels and heldout_predictions, or neither")
    if heldout_labels is not None:
        held_counts = class_counts(heldout_predictions, num_classes)
        n_held = int(held_counts.sum())
        confusion = confusion_matrix(heldout_labels, heldout_predictions, num_classes)
        basis = corrected_rates(gen_rate, confusion)
        z = two_proportion_z(gen_counts, n_gen, held_counts, n_held)
        accuracy = float((torch.as_tensor(heldout_labels).reshape(-1).long()
                          == torch.as_tensor(heldout_predictions).reshape(-1).long()).double().mean())
        for k, row in enumerate(rows):
            row.update(heldout_classified_rate=float(held_counts[k] / n_held),
                       same_lens_difference=float(gen_rate[k] - held_counts[k] / n_held),
                       same_lens_z=float(z[k]), same_lens_p=two_sided_p(float(z[k])),
                       generated_rate_corrected=float(basis[k]))
        out["protocol"].update(heldout=n_held, classifier_accuracy=accuracy,
                               correction="confusion matrix on the held-out data (Rogan-Gladen for 2 classes)")
        out["confusion"] = confusion.tolist()
    ranked = data_rate.sort(descending=True).values
    balanced = len(ranked) > 1 and float(ranked[0] - ranked[1]) < 1e-3  # no skew to amplify (e.g. Fashion-MNIST)
    majority = int(torch.argmax(data_rate))
    out.update(
        classes=rows,
        majority_class=None if balanced else names[majority],
        amplification=None if balanced else float(basis[majority] - data_rate[majority]),
        total_variation=float(0.5 * (basis - data_rate).abs().sum()),
        basis="corrected" if heldout_labels is not None else "raw",
    )
    return out


def audit_labels(data: Any, attribute: str | None = None) -> Tensor:
    """The class labels an audit compares against: ``data.y`` (N,) as is, or the ``attribute``
    column of multi-attribute labels (N, K) named in ``data.info["attr_names"]`` (CelebA)."""
    if data.y is None:
        raise DataError(f"dataset {data.info.get('name')!r} has no labels to audit against")
    if data.y.dim() == 1:
        return data.y
    names = data.info.get("attr_names") or []
    if attribute is None or attribute not in names:
        what = f"unknown attribute {attribute!r}" if attribute else "the labels have several columns"
        raise DataError(f"{what}; name one with --attr (valid: {', '.join(names)})")
    return data.y[:, names.index(attribute)]


def classify(classifier: nn.Module, images: Tensor, *, batch_size: int = 500) -> Tensor:
    """``classifier.predict`` in eval mode and in batches: images (N, C, H, W) of the classifier's
    ``config.image_shape`` -> class indices (N,) on the CPU."""
    from ..latent.protocols import image_shape

    shape = image_shape(classifier)
    if tuple(images.shape[1:]) != shape:
        raise DataError(f"the classifier takes images of shape {shape}, the audited images are {tuple(images.shape[1:])}")
    with eval_mode(classifier):
        return map_batches(classifier.predict, images, batch_size=batch_size, device=module_device(classifier))


def classifier_audit(classifier: nn.Module, generated: Tensor | Callable[[], Tensor], train_data: Any,
                     test_data: Any = None, *, attribute: str | None = None, batch_size: int = 500) -> dict[str, Any]:
    """:func:`bias_audit` of generated images as ``classifier`` labels them.

    ``generated`` is a batch of images, or a function that draws them: it is called after the
    labels are checked, so a bad ``attribute`` fails before any sampling. ``train_data``'s labels
    are the reference rates; ``test_data`` (held-out real images with labels) gives the same-lens
    comparison and the confusion matrix, each label paired with the prediction for its own image.
    ``attribute`` picks one column of multi-attribute labels; its classes are then named
    ``not ATTR`` / ``ATTR`` for a binary classifier.
    """
    from ..latent.protocols import require

    require(classifier, "classifier", purpose="the bias audit")
    num_classes = int(classifier.config.num_classes)  # type: ignore[union-attr]
    data_labels = audit_labels(train_data, attribute)
    held: dict[str, Tensor] = {}
    if test_data is not None:
        held = {"heldout_labels": audit_labels(test_data, attribute),
                "heldout_predictions": classify(classifier, test_data.x, batch_size=batch_size)}
    if attribute is None:
        class_names = train_data.info.get("class_names")
    else:
        class_names = [f"not {attribute}", attribute] if num_classes == 2 else None
    images = generated() if callable(generated) else generated
    result = bias_audit(classify(classifier, images, batch_size=batch_size), data_labels, num_classes=num_classes,
                        class_names=class_names, **held)
    result["protocol"].update(attribute=attribute, dataset=train_data.info.get("name"))
    return result


def format_audit(audit: dict[str, Any]) -> str:
    """A plain-text table of :func:`bias_audit`'s result."""
    lens = "heldout_classified_rate" in audit["classes"][0]
    head = f"{'class':>16} {'data':>7} {'generated':>10} {'95% CI':>17}"
    if lens:
        head += f" {'real (clf)':>10} {'z':>7} {'corrected':>10}"
    lines = [head]
    for row in audit["classes"]:
        line = (f"{row['class']:>16} {row['data_rate']:7.3f} {row['generated_rate']:10.3f} "
                f"[{row['generated_ci95'][0]:6.3f}, {row['generated_ci95'][1]:6.3f}]")
        if lens:
            line += f" {row['heldout_classified_rate']:10.3f} {row['same_lens_z']:7.2f} {row['generated_rate_corrected']:10.3f}"
        lines.append(line)
    if audit["amplification"] is None:
        skew = "data classes balanced (no majority to amplify)"
    else:
        sign = "amplified" if audit["amplification"] > 0 else "reduced"
        skew = f"majority class {audit['majority_class']!r}: {sign} by {abs(audit['amplification']):.3f}"
    lines.append(f"{skew}; total variation {audit['total_variation']:.3f} ({audit['basis']} rates)")
    return "\n".join(lines)
