"""Autoencoders and latent-space tools (slides 47-66): interpolation, lerp vs slerp, projection of
real images, the 2-D latent map, attribute vectors (the "smiling vector", White 2016) and sampling
an autoencoder from a density fitted to its codes."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..latent import (
    LatentDensity, apply_to_codes, attribute_vector, encode_all, expected_gaussian_norm, interpolation_codes,
    interpolation_grid, labelled_examples, norm_profile, project, random_codes,
)
from ..latent import decode as decode_codes
from ..latent import has
from ..metrics import sharpness_ratio
from .core import CELEBA_PHOTOS, Conditions, Context, lecture_figure
from .plots import curves, image_panels, plot_samples_vs_data
from .shared import celeba, frechet, mnist, predict


def _class_pairs(test: Any, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``n`` pairs of test digits of different classes."""
    a = torch.randperm(len(test), generator=generator)[: 4 * n]
    b = torch.randperm(len(test), generator=generator)[: 4 * n]
    keep = test.y[a] != test.y[b]
    return a[keep][:n], b[keep][:n]


def _check_interpolation(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"each of 9 steps changes the image by at most {n['max_step_over_endpoints']:.2f} of the start-to-end "
             "distance (< 0.35: a gradual morph, not a jump)", n["max_step_over_endpoints"] < 0.35),
            (f"the path starts and ends at the two digits: the classifier reads both endpoint classes in "
             f"{n['endpoint_classes_right']:.2f} of 20 pairs (>= 0.8)", n["endpoint_classes_right"] >= 0.8)]


@lecture_figure("interpolation", slides="48-49",
                claim="Decoding points on the line between the codes of two digits morphs one digit into the other "
                      "in small steps; four codes span a grid of in-between digits.",
                check=_check_interpolation)
def interpolation(ctx: Context) -> dict[str, Any]:
    vae, classifier = ctx.shared("vae-mnist"), ctx.shared("classifier-mnist")
    test = mnist(ctx, "test")
    a, b = _class_pairs(test, 20, ctx.generator())
    za, zb = encode_all(vae, test.x[a]), encode_all(vae, test.x[b])
    codes = interpolation_codes(za, zb, 10)  # (10, 20, D)
    images = decode_codes(vae, codes.flatten(0, 1)).view(10, 20, *test.x.shape[1:])  # (T, P, C, H, W)
    steps = (images[1:] - images[:-1]).flatten(2).norm(dim=2)  # (9, P)
    ends = (images[-1] - images[0]).flatten(1).norm(dim=1)  # (P,)
    start_label, end_label = predict(classifier, images[0])[0], predict(classifier, images[-1])[0]
    right = ((start_label == test.y[a]) & (end_label == test.y[b])).float().mean()
    corners = encode_all(vae, test.x[a[:4]])
    path = image_panels([("lerp between two test digits' codes (rows: pairs)", images[:, :8].transpose(0, 1).flatten(0, 1), 10),
                         ("grid between 4 test digits' codes", interpolation_grid(vae, corners, 8), 8)],
                        ctx.out / "interpolation.png")
    return {"paths": [str(path)], "max_step_over_endpoints": float((steps.max(0).values / ends).mean()),
            "endpoint_classes_right": float(right), "latent_dim": vae.latent_dim}


def _check_lerp(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"lerp's midpoint norm is {n['lerp_mid_ratio']:.3f} of E|z| (< 0.8; theory 1/sqrt(2) = 0.707)",
             n["lerp_mid_ratio"] < 0.8),
            (f"slerp's midpoint norm is {n['slerp_mid_ratio']:.3f} of E|z| (within 5 %)", abs(n["slerp_mid_ratio"] - 1) < 0.05)]


@lecture_figure("lerp-vs-slerp", slides="50",
                claim="Between two N(0, I) codes a straight line passes near the origin, where codes almost never "
                      "lie (norm ~ sqrt(d/2) instead of sqrt(d)); slerp keeps the typical norm all the way.",
                check=_check_lerp)
def lerp_vs_slerp(ctx: Context) -> dict[str, Any]:
    vae = ctx.shared("vae-mnist")
    numbers: dict[str, Any] = {}
    series = {}
    t = [i / 10 for i in range(11)]
    for d in (vae.latent_dim, 512):
        z0 = torch.randn(1000, d, generator=ctx.generator(1))
        z1 = torch.randn(1000, d, generator=ctx.generator(2))
        expected = expected_gaussian_norm(d)
        for method in ("lerp", "slerp"):
            profile = norm_profile(z0, z1, 11, method=method).mean(1) / expected  # (11,)
            series[f"{method}, d = {d}"] = (t, profile.tolist())
            numbers[f"{method}/d{d}/norm_over_expected"] = [round(float(v), 3) for v in profile]
    d = vae.latent_dim
    numbers.update(latent_dim=d, lerp_mid_ratio=numbers[f"lerp/d{d}/norm_over_expected"][5],
                   slerp_mid_ratio=numbers[f"slerp/d{d}/norm_over_expected"][5])
    plot = curves(series, ctx.out / "lerp-vs-slerp-norms.png", xlabel="t along the path", ylabel="mean |z| / E|z|",
                  title="norm along the path between two N(0, I) codes (1,000 pairs)", hlines={"1/sqrt(2)": 1 / math.sqrt(2)})
    z = random_codes(vae, 6, generator=ctx.generator(3))
    strips = {m: decode_codes(vae, interpolation_codes(z[:3], z[3:], 10, method=m).transpose(0, 1).flatten(0, 1))
              for m in ("lerp", "slerp")}
    images = image_panels([(f"{m} between N(0, I) codes (VAE, d = {d})", s, 10) for m, s in strips.items()],
                          ctx.out / "lerp-vs-slerp-images.png")
    return {"paths": [str(plot), str(images)], **numbers}


def _check_projection(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"{m}: optimising the code cuts the pixel error from {n[f'{m}/start_mse']:.4f} (z = 0) to "
             f"{n[f'{m}/projected_mse']:.4f} (< half)", n[f"{m}/projected_mse"] < 0.5 * n[f"{m}/start_mse"])
            for m in ("vae", "dcgan")]


@lecture_figure("projection", slides="51",
                claim="A real image can be projected into a generator's latent space: optimising the code by gradient "
                      "descent finds one whose decoding resembles the image, for a VAE and for a GAN (no encoder).",
                check=_check_projection, smoke_note="smoke: 100 optimisation steps on 16 digits (full: 300 steps)")
def projection(ctx: Context) -> dict[str, Any]:
    test = mnist(ctx, "test")
    images = test.x[torch.randperm(len(test), generator=ctx.generator(7))[:16]]
    numbers: dict[str, Any] = {}
    panels = [("held-out digits", images, 16)]
    for key, run in (("vae", "vae-mnist"), ("dcgan", "dcgan-mnist")):
        model = ctx.shared(run)
        start = decode_codes(model, torch.zeros(1, model.latent_dim))
        result = project(model, images, method="optimize", steps=ctx.pick(100, 300), lr=0.05, generator=ctx.generator())
        numbers[f"{key}/start_mse"] = float((start - images).square().flatten(1).mean(1).mean())
        numbers[f"{key}/projected_mse"] = float(result.error.mean())
        panels.append((f"{key.upper()} projections (mse {numbers[f'{key}/projected_mse']:.4f})", result.images, 16))
        if has(model, "encoder"):
            numbers[f"{key}/encoder_mse"] = float(project(model, images, method="encoder").error.mean())
    path = image_panels(panels, ctx.out / "projection.png", columns=1, panel_width=9)
    return {"paths": [str(path)], **numbers}


def map_2d(ctx: Context, model: Any, *, name: str, square: float | None = None) -> dict[str, Any]:
    """The 2-D latent map of test digits (:func:`genlab.reports.autoencoder.latent_map_figure`)."""
    from ..reports.autoencoder import latent_map_figure

    stats = latent_map_figure(model, mnist(ctx), mnist(ctx, "test"), ctx.out / f"{name}.png", square=square,
                              title=f"{name}: 2-D latent space of test digits")
    return {"paths": [stats.pop("path")], **stats}


def _check_ae_map(n: dict[str, Any], budget: str) -> Conditions:
    return [(f"5-NN in the 2-D codes classifies {n['knn_accuracy']:.2f} of test digits (>= 0.6; chance 0.1)",
             n["knn_accuracy"] >= 0.6)]


@lecture_figure("ae-latent-map", slides="53-54",
                claim="An autoencoder squeezed through 2 numbers arranges the digits by class in its latent plane, "
                      "and decoding a grid over that plane walks through the digits.",
                check=_check_ae_map)
def ae_latent_map(ctx: Context) -> dict[str, Any]:
    return map_2d(ctx, ctx.shared("ae-mnist-2d"), name="ae-latent-map")


SMILE_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


def smiling_vector_of(ctx: Context, model: Any) -> torch.Tensor:
    """The mean code of 20 smiling training faces minus that of 20 non-smiling ones: (D,)."""
    train = celeba(ctx)
    pos, neg = labelled_examples(train.y, train.info["attr_names"], "Smiling", 20, generator=ctx.generator())
    return attribute_vector(model, train.x[pos], train.x[neg])


def smiling_rates(model: Any, classifier: Any, faces: torch.Tensor, vector: torch.Tensor, scales: list[float]) -> list[float]:
    """The smiling classifier's rate on ``faces`` decoded from code + s * vector, one per scale s."""
    edited = apply_to_codes(model, encode_all(model, faces), vector, scales)  # (N, S, C, H, W)
    return [round(float(predict(classifier, edited[:, k])[0].float().mean()), 3) for k in range(len(scales))]


def _check_smiling(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.4 if budget == "smoke" else 0.8
    added, removed = n["smiling_rate_added"], n["smiling_rate_removed"]
    rise, drop = added[-1] - added[0], removed[0] - removed[-1]
    s = n["scales"][-1]
    return [(f"the smiling classifier is right on {n['classifier_accuracy']:.2f} of held-out faces (>= 0.75), so its "
             "reading means something", n["classifier_accuracy"] >= 0.75),
            (f"adding the vector to non-smiling faces raises the classifier's smiling rate ({added[0]:.2f} at s = 0 -> "
             f"{added[-1]:.2f} at s = {s:g}) and subtracting it from smiling faces lowers it ({removed[0]:.2f} -> "
             f"{removed[-1]:.2f}); together by {rise + drop:.2f} (>= {need})", rise > 0 and drop > 0 and rise + drop >= need)]


@lecture_figure("smiling-vector", slides="59-61",
                claim="The mean code of 20 smiling faces minus that of 20 non-smiling ones is a 'smiling vector': "
                      "adding it to a face's code makes the decoded face smile, subtracting it takes the smile away.",
                check=_check_smiling, smoke_note="smoke: 32-px faces, a 600-step feature-consistent VAE and classifier, "
                                                 "change >= 0.4 (full: 64 px, 8,000 and 2,000 steps, 0.8)", restricted=CELEBA_PHOTOS)
def smiling_vector(ctx: Context) -> dict[str, Any]:
    """Edited in the lecture's sharpest face model, the feature-consistent VAE (slides 97-98; its mean codes):
    the same vector works in the plain autoencoder's codes, whose decoded faces are blurrier."""
    train, test = celeba(ctx), celeba(ctx, "test")
    model, classifier = ctx.shared("feature-vae-celeba"), ctx.shared("classifier-celeba-smiling")
    column = train.info["attr_names"].index("Smiling")
    vector = smiling_vector_of(ctx, model)
    scales = list(SMILE_SCALES)
    rates = {}
    for key, present, sign in (("added", 0, 1.0), ("removed", 1, -1.0)):
        faces = (test.y[:, column] == present).nonzero().squeeze(1)[:200]
        rates[key] = smiling_rates(model, classifier, test.x[faces], vector, [sign * s for s in scales])
    faces = torch.cat([test.x[(test.y[:, column] == 0).nonzero().squeeze(1)[:3]], test.x[(test.y[:, column] == 1).nonzero().squeeze(1)[:3]]])
    strips = apply_to_codes(model, encode_all(model, faces), vector, [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    path = image_panels([("face | feature-consistent VAE: decoded code + s x smiling vector, s = -2 .. 3",
                          torch.cat([faces[:, None], strips], 1).flatten(0, 1), 7)], ctx.out / "smiling-vector.png", panel_width=6)
    accuracy = float((predict(classifier, test.x)[0] == test.y[:, column]).float().mean())
    held_out = test.x[:200]  # how much detail the decoded faces keep (1 = as much as the faces; reported, not checked)
    sharpness = sharpness_ratio(decode_codes(model, encode_all(model, held_out)), held_out)
    return {"paths": [str(path)], "scales": scales, "smiling_rate_added": rates["added"], "smiling_rate_removed": rates["removed"],
            "classifier_accuracy": accuracy, "smiling_share_test": float(test.y[:, column].float().mean()),
            "vector_norm": float(vector.norm()), "sharpness/decoded": sharpness, "image_size": int(train.x.shape[-1])}


def _check_density(n: dict[str, Any], budget: str) -> Conditions:
    out = [(f"decoding codes from a Gaussian fitted to the training codes beats N(0, I): Fréchet distance "
            f"{n['frechet/fitted_gaussian']:.1f} < {n['frechet/standard_normal']:.1f}",
            n["frechet/fitted_gaussian"] < n["frechet/standard_normal"])]
    if "frechet/gmm10" in n:
        out.append((f"a 10-component GMM fitted to the codes also beats N(0, I): {n['frechet/gmm10']:.1f} < "
                    f"{n['frechet/standard_normal']:.1f}", n["frechet/gmm10"] < n["frechet/standard_normal"]))
    return out


def density_draws(ctx: Context, model: Any, codes: torch.Tensor, n: int = 1000) -> dict[str, torch.Tensor]:
    """``n`` codes from each sampler of slides 63-66: the prior N(0, I), a Gaussian fitted to ``codes`` and,
    with scikit-learn, a 10-component GMM fitted to them (``standard_normal``, ``fitted_gaussian``, ``gmm10``)."""
    draws = {"standard_normal": random_codes(model, n, generator=ctx.generator(1)),
             "fitted_gaussian": LatentDensity("gaussian").fit(codes).sample(n, generator=ctx.generator(2))}
    try:
        draws["gmm10"] = LatentDensity("gmm", components=10, seed=ctx.seed).fit(codes).sample(n, generator=ctx.generator(3))
    except ImportError:  # scikit-learn is optional ([latent] extra)
        pass
    return draws


@lecture_figure("latent-density", slides="63-66",
                claim="A plain autoencoder's codes do not follow N(0, I), so decoding N(0, I) draws gives poor digits; "
                      "sampling from a Gaussian (MVN) or a GMM fitted to the training codes gives far better ones.",
                check=_check_density)
def latent_density(ctx: Context) -> dict[str, Any]:
    ae, classifier = ctx.shared("ae-mnist"), ctx.shared("classifier-mnist")
    train, test = mnist(ctx), mnist(ctx, "test")
    codes = encode_all(ae, train.x[:10000])
    samplers = density_draws(ctx, ae, codes)
    numbers: dict[str, Any] = {"code_norm_mean": float(codes.norm(dim=1).mean()),
                               "standard_normal_norm": expected_gaussian_norm(ae.latent_dim)}
    panels = []
    reference = test.x[:1000]
    for key, z in samplers.items():
        images = decode_codes(ae, z)
        numbers[f"frechet/{key}"] = frechet(classifier, images, reference)
        panels.append((f"AE decoder, z ~ {key.replace('_', ' ')}", images[:64], 8))
    path = image_panels(panels, ctx.out / "latent-density.png")
    return {"paths": [str(path)], **numbers}


FACE_JUDGES = ("male", "smiling")  # the face classifiers whose features the face figures' Fréchet distances use


def _check_density_faces(n: dict[str, Any], budget: str) -> Conditions:
    out = []
    for key, name in (("fitted_gaussian", "a Gaussian (MVN)"), ("gmm10", "a 10-component GMM")):
        if f"frechet/male/{key}" not in n:  # no scikit-learn: no GMM
            continue
        fd = {j: (n[f"frechet/{j}/{key}"], n[f"frechet/{j}/standard_normal"]) for j in FACE_JUDGES}
        shown = ", ".join(f"{j} {a:.1f} < {b:.1f}" for j, (a, b) in fd.items())
        out.append((f"decoding draws from {name} fitted to the training faces' codes gives faces closer to real ones "
                    f"than decoding N(0, I) draws, in both classifiers' features: Fréchet {shown}",
                    all(a < b for a, b in fd.values())))
    return out


@lecture_figure("latent-density-faces", slides="64-66",
                claim="A generator from a face autoencoder: encode the training faces, fit a Gaussian (MVN) to their "
                      "codes and decode draws from it. The draws are new faces, closer to real ones than what the "
                      "decoder makes of N(0, I) draws, even for a VAE trained towards that prior.",
                check=_check_density_faces,
                smoke_note="smoke: 32-px faces, a 600-step feature-consistent VAE and classifiers (full: 64 px, 8,000 "
                           "and 2,000 steps)")
def latent_density_faces(ctx: Context) -> dict[str, Any]:
    """Slides 64-66 on the lecture's sharpest face model, the feature-consistent VAE (slides 97-98). Fitting a
    density to a trained autoencoder's codes after the fact is also what Ghosh et al. (2020) call ex-post
    density estimation; for a VAE it samples where the codes are rather than where the prior says."""
    model = ctx.shared("feature-vae-celeba")
    judges = {judge: ctx.shared(f"classifier-celeba-{judge}") for judge in FACE_JUDGES}
    train, test = celeba(ctx), celeba(ctx, "test")
    codes = encode_all(model, train.x)  # posterior means
    samplers = density_draws(ctx, model, codes)
    reference = test.x[:1000]
    numbers: dict[str, Any] = {"image_size": int(train.x.shape[-1]), "latent_dim": int(codes.shape[1]),
                               "code_norm_mean": float(codes.norm(dim=1).mean()),
                               "standard_normal_norm": expected_gaussian_norm(int(codes.shape[1]))}
    # the codes' scale matches the prior's, their shape does not: the participation ratio (sum of the covariance's
    # eigenvalues)^2 / (sum of their squares) is the dimension they effectively fill (N(0, I): latent_dim)
    eigenvalues = torch.linalg.eigvalsh(torch.cov(codes.T.double()))
    numbers["codes_participation_ratio"] = float(eigenvalues.sum() ** 2 / eigenvalues.square().sum())
    for judge, classifier in judges.items():  # the floor: real training faces against the same reference
        numbers[f"frechet/{judge}/real_train"] = frechet(classifier, train.x[:1000], reference)
    names = {"standard_normal": "N(0, I), the prior", "fitted_gaussian": "Gaussian fitted to the codes",
             "gmm10": "10-component GMM fitted to the codes"}
    panels = []
    for key, z in samplers.items():
        images = decode_codes(model, z)
        for judge, classifier in judges.items():
            numbers[f"frechet/{judge}/{key}"] = frechet(classifier, images, reference)
        fd = ", ".join(f"{numbers[f'frechet/{j}/{key}']:.1f}" for j in FACE_JUDGES)
        panels.append((f"z ~ {names[key]}\nFréchet to test faces (Male, Smiling features) {fd}", images[:32], 8))
    floor = ", ".join(f"{numbers[f'frechet/{j}/real_train']:.2f}" for j in FACE_JUDGES)
    decoded = image_panels(panels, ctx.out / "latent-density-faces.png", columns=1, panel_width=7,
                           title=f"feature-consistent VAE decoder (real training faces vs test faces: {floor})")
    cloud = plot_samples_vs_data(samplers["fitted_gaussian"][:400, :2], codes[:, :2], ctx.out / "latent-density-faces-codes.png",
                                 title=f"training faces' codes (data) and 400 fitted-Gaussian draws (samples)\n"
                                       f"dimensions 1-2 of {codes.shape[1]}", mark_mean=False)
    return {"paths": [str(cloud), str(decoded)], **numbers}
