"""Metrics against references: Fréchet distance vs the SciPy formula of pytorch-fid and a closed form,
KID vs a brute-force MMD, k-NN precision/recall/density/coverage on cases with known answers, and the
PacGAN mode counter on exact and collapsed samplers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.data.toy import grid, ring
from genlab.errors import ConfigError, DataError
from genlab.metrics import (
    DEFAULT_METRICS, METRICS, compare_features, count_modes, density_coverage, fid_from_features, frechet_distance,
    get_extractor, kid_from_features, polynomial_mmd2, precision_recall, sqrtm_psd,
)


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance, verbatim in substance."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_the_scipy_reference_on_random_features():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 24))
    b = rng.normal(size=(500, 24)) @ rng.normal(size=(24, 24)) * 0.3 + 0.5
    ours, ref = fid_from_features(a, b), _scipy_fid(a, b)
    assert ref > 1.0
    assert ours == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("n1, n2", [(40, 30), (30, 90)])
def test_fid_with_fewer_samples_than_features_equals_the_covariance_route(n1, n2):
    # 100 features, at most 90 samples: rank-deficient covariances, where fid_from_features takes
    # the samples' route (N1 x N2 singular values) instead of the F x F one
    from genlab.metrics import frechet_distance, gaussian_stats

    rng = np.random.default_rng(3)
    a = rng.normal(size=(n1, 100)) @ rng.normal(size=(100, 100)) * 0.2
    b = rng.normal(size=(n2, 100)) * 1.5 + 0.3
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)), rel=1e-9)
    assert ours == pytest.approx(_scipy_fid(a, b), rel=1e-6)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_torch_input_works():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 16))
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9)
    assert fid_from_features(torch.from_numpy(a).float(), torch.from_numpy(a).float()) == pytest.approx(0.0, abs=1e-5)


def test_frechet_distance_closed_form_for_diagonal_gaussians_even_when_singular():
    # FD = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2 for diagonal covariances; zeros make S1 S2 singular
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 0.0]), np.array([1.0, 1.0, 0.0, 0.0])
    s1, s2 = np.array([4.0, 1.0, 0.0, 2.0]), np.array([1.0, 9.0, 3.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)
    # rotate both into a common non-diagonal basis: the distance is invariant
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))
    r1, r2 = q @ np.diag(s1) @ q.T, q @ np.diag(s2) @ q.T
    rotated = frechet_distance(q @ mu1, r1, q @ mu2, r2)
    assert rotated == pytest.approx(expected, rel=1e-10)
    # SciPy's sqrtm of the singular product S1 S2 comes back complex here; we stay real and closer
    from scipy import linalg

    assert np.iscomplexobj(linalg.sqrtm(r1 @ r2))
    d = q @ (mu1 - mu2)
    scipy_value = d @ d + np.trace(r1) + np.trace(r2) - 2 * np.trace(linalg.sqrtm(r1 @ r2)).real
    assert abs(rotated - expected) <= abs(scipy_value - expected)


def test_sqrtm_psd_matches_scipy():
    from scipy import linalg

    m = np.random.default_rng(3).normal(size=(10, 10))
    spd = m @ m.T + 0.1 * np.eye(10)
    root = sqrtm_psd(spd)
    np.testing.assert_allclose(root, linalg.sqrtm(spd).real, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(root @ root, spd, rtol=1e-10, atol=1e-10)


def test_polynomial_mmd_matches_a_brute_force_sum():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(1000, 32)), rng.normal(size=(1000, 32))
    same, same_std = kid_from_features(a, b, num_subsets=50, subset_size=200)
    shifted, shifted_std = kid_from_features(a, b + 0.5, num_subsets=50, subset_size=200)
    assert abs(same) < 3 * same_std / math.sqrt(50) + 1e-3  # unbiased: the mean is centred on 0
    assert shifted > 20 * abs(same) and shifted > 5 * shifted_std
    # the subset draw is a function of the seed only
    assert kid_from_features(a, b, num_subsets=5, subset_size=100, seed=7) == kid_from_features(a, b, num_subsets=5, subset_size=100, seed=7)


def test_precision_recall_density_coverage_on_known_cases():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(400, 2))
    same = precision_recall(real, real, k=3)
    assert same == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(real, real + 100, k=3)
    assert far == {"precision": 0.0, "recall": 0.0}
    collapsed = np.repeat(real[:1], 400, axis=0) + 1e-6 * rng.normal(size=(400, 2))  # one point, many times
    pr = precision_recall(real, collapsed, k=3)
    assert pr["precision"] == 1.0 and pr["recall"] < 0.05
    fresh = rng.normal(size=(2000, 2))
    dc = density_coverage(rng.normal(size=(2000, 2)), fresh, k=5)
    assert 0.8 < dc["density"] < 1.2 and dc["coverage"] > 0.9
    dc_collapsed = density_coverage(real, collapsed, k=5)
    assert dc_collapsed["coverage"] < 0.05


def test_mode_counter_on_exact_and_collapsed_samplers():
    g = torch.Generator().manual_seed(0)
    points, centres = ring(2500, modes=8, radius=2.0, sigma=0.02, generator=g)
    exact = count_modes(points, centres, 0.02)
    assert exact["modes"] == 8 and exact["num_modes"] == 8
    # P(|N(0, s^2 I_2)| <= 3s) = 1 - exp(-4.5) = 0.9889; binomial std over 2,500 samples 0.0021
    assert exact["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    assert exact["reverse_kl"] < 0.01
    collapsed = centres[3] + 0.02 * torch.randn(2500, 2, generator=g)
    one = count_modes(collapsed, centres, 0.02)
    assert one["modes"] == 1 and one["reverse_kl"] == pytest.approx(math.log(8))
    grid_points, grid_centres = grid(2500, generator=g)
    assert count_modes(grid_points, grid_centres, 0.05)["modes"] == 25
    # samples between modes are low quality and capture nothing
    between = count_modes(torch.zeros(100, 2), centres, 0.02)
    assert between["modes"] == 0 and between["high_quality"] == 0 and math.isinf(between["reverse_kl"])
    with pytest.raises(DataError):
        count_modes(points, centres[:, :1], 0.02)


def test_extractors_are_batch_size_invariant_and_need_their_files():
    x = torch.rand(23, 1, 8, 8)
    small, large = get_extractor("pixels", batch_size=5), get_extractor("pixels", batch_size=500)
    assert torch.equal(small(x), large(x)) and small(x).shape == (23, 64)
    with pytest.raises(ConfigError, match="path=RUN"):
        get_extractor("classifier")
    with pytest.raises(ConfigError, match="never downloads"):
        get_extractor("inception", path="/nonexistent/weights.pth")
    with pytest.raises(ConfigError, match="valid: classifier"):
        get_extractor("clip")


def test_compare_features_carries_its_protocol():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(120, 6)), rng.normal(size=(100, 6))
    out = compare_features(a, b, protocol={"reference": "test split", "extractor": "pixels"},
                           kid_subsets=4, kid_subset_size=50)
    assert set(DEFAULT_METRICS) == {"fid", "kid", "precision_recall", "density_coverage"} <= set(METRICS)
    assert {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"} <= set(out)
    assert out["protocol"] == {"num_generated": 120, "num_reference": 100, "feature_dim": 6, "kid_subsets": 4,
                               "kid_subset_size": 50, "reference": "test split", "extractor": "pixels"}
    with pytest.raises(DataError, match="feature"):
        fid_from_features(a[:, :3], b)


def test_high_quality_means_within_three_sigma_of_a_centre():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    directions = torch.nn.functional.normalize(torch.randn(6, 2, generator=torch.Generator().manual_seed(0)), dim=1)
    for radius, expected in ((2.9, 1.0), (3.1, 0.0), (50.0, 0.0)):
        points = centres[1] + 0.5 * radius * directions  # sigma 0.5
        stats = count_modes(points, centres, 0.5)
        assert stats["high_quality"] == expected, (radius, stats)
        assert stats["modes"] == expected  # a mode counts only with a high-quality sample


def test_compare_features_passes_generated_and_reference_the_right_way_round():
    """Generated = the reference's points with a negative first feature: every generated point lies on
    the reference manifold (precision 1) but half the reference is missed (recall, coverage < 1)."""
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(400, 4))
    generated = reference[reference[:, 0] < 0]
    out = compare_features(generated, reference, kid_subsets=4, kid_subset_size=50)
    assert out["precision"] == 1.0 and out["recall"] < 0.8, out
    assert out["coverage"] < 0.8 and out["density"] > 1.0, out
    assert (out["precision"], out["recall"]) == tuple(precision_recall(reference, generated, k=3).values())
    assert out["protocol"]["num_generated"] == len(generated) and out["protocol"]["num_reference"] == 400


def test_gradient_energy_falls_with_blur_and_rises_with_noise():
    from genlab.errors import DataError
    from genlab.metrics import gradient_energy, sharpness_ratio

    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 16, 16, generator=g)
    blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    assert sharpness_ratio(images, images) == pytest.approx(1.0)
    assert sharpness_ratio(blurred, images) < 0.5 < 1.5 < sharpness_ratio(images, blurred)
    assert gradient_energy(torch.full((2, 1, 4, 4), 0.3)).abs().max() == 0  # a flat image has no detail
    ramp = torch.arange(4.0).expand(1, 1, 4, 4)  # steps of 1 along columns, none along rows
    assert gradient_energy(ramp).item() == pytest.approx(0.5)
    assert sharpness_ratio(blurred + 0.2 * torch.randn(blurred.shape, generator=g), blurred) > 1
    with pytest.raises(DataError, match=r"\(N, C, H, W\) with H, W >= 2"):
        gradient_energy(torch.rand(3, 16, 16))
