"""The lecture layer: a smoke subset runs and passes its checks, every check fails on numbers that
violate its claim, a broken figure is reported without stopping the rest, shared runs are reused,
and the HTML page is self-contained."""
from __future__ import annotations

import json
import os
import re

import pytest
import torch

from genlab.errors import ConfigError
from genlab.lecture import FIGURES, Context, Figure, load_parts, ordered_figures, run_lecture
from genlab.lecture.core import DataAbsent
from genlab.lecture.runner import FigureResult, write_page

SUBSET = ["untrained-conv", "naive-collapse"]  # fast figures of the smoke lecture (one trains two shared runs)


@pytest.fixture(scope="module")
def smoke_subset(tmp_path_factory):
    out = tmp_path_factory.mktemp("lecture")
    return out, run_lecture(out, budget="smoke", only=SUBSET, progress=False)


def test_smoke_subset_passes_its_checks(smoke_subset):
    out, results = smoke_subset
    assert [r.id for r in results] == SUBSET
    for r in results:
        assert r.verdict == "pass", (r.id, r.error, r.conditions)
        assert r.conditions and r.paths
        numbers = json.loads((out / r.id / "numbers.json").read_text())
        assert numbers["verdict"] == "pass" and numbers["numbers"] == r.numbers
    summary = json.loads((out / "lecture.json").read_text())
    assert summary["header"]["budget"] == "smoke" and len(summary["figures"]) == len(SUBSET)


def test_page_is_self_contained(smoke_subset):
    out, results = smoke_subset
    page = (out / "index.html").read_text()
    for needle in ("http://", "https://", "<script", "<link", "@import", "url(", "//fonts"):
        assert needle not in page.lower(), needle
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == sum(len(r.paths) for r in results) >= 3
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    for r in results:  # every figure's claim, slides and verdict are on the page
        assert f'id="{r.id}"' in page and r.slides in page and 'class="v pass"' in page
    assert "torch " + torch.__version__ in page and "seed 0" in page


def test_second_call_reuses_the_shared_runs(smoke_subset, monkeypatch):
    out, _ = smoke_subset
    (folder,) = (out / "runs").glob("naive-ring-smoke-seed0-*")
    assert (folder / "model" / "config.json").is_file()

    def no_training(self, name, folder, *, resume):
        raise AssertionError(f"retrained {name}")

    monkeypatch.setattr(Context, "_train", no_training)
    (again,) = run_lecture(out / "again", budget="smoke", only=["naive-collapse"], runs=out / "runs", progress=False)
    assert again.verdict == "pass"


def _figure(id: str, make, check=lambda n, b: [("value is 1", n.get("value") == 1)]) -> Figure:
    return Figure(id, "999", "a test claim", "tests", make, check)


@pytest.fixture
def test_figures():
    def broken(ctx):
        raise RuntimeError("boom")

    def absent(ctx):
        raise DataAbsent("no faces")

    load_parts()
    added = [_figure("zz-broken", broken), _figure("zz-false", lambda ctx: {"paths": [], "value": 2}),
             _figure("zz-true", lambda ctx: {"paths": [], "value": 1}), _figure("zz-absent", absent)]
    for f in added:
        FIGURES.register(f.id)(f)
    yield
    for f in added:
        FIGURES.pop(f.id)


def test_a_broken_figure_is_reported_and_the_rest_still_run(tmp_path, test_figures, capsys):
    results = run_lecture(tmp_path, only=["zz-broken", "zz-false", "zz-true", "zz-absent"], progress=False)
    verdicts = {r.id: r.verdict for r in results}
    assert verdicts == {"zz-broken": "error", "zz-false": "fail", "zz-true": "pass", "zz-absent": "skipped"}
    assert "boom" in (tmp_path / "zz-broken" / "error.txt").read_text()
    page = (tmp_path / "index.html").read_text()
    assert "RuntimeError: boom" in page and "data absent: no faces" in page

    from genlab.cli import main

    assert main(["lecture", "--out", str(tmp_path / "cli"), "--only", "zz-true", "zz-absent", "--no-progress"]) == 0
    assert main(["lecture", "--out", str(tmp_path / "cli"), "--only", "zz-true", "zz-false", "--no-progress"]) == 1
    assert "not held: value is 1" in capsys.readouterr().out
    page = (tmp_path / "cli" / "index.html").read_text()  # a partial call keeps the earlier call's figures
    assert all(f'id="{i}"' in page for i in ("zz-true", "zz-absent", "zz-false"))


def test_unknown_figure_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown lecture figure 'nope'.*valid: .*mdn-vs-gaussian"):
        run_lecture(tmp_path, only=["nope"], progress=False)


def test_missing_celeba_skips_with_data_absent(tmp_path):
    (result,) = run_lecture(tmp_path, only=["smiling-vector"], data_root=tmp_path / "empty", progress=False)
    assert result.verdict == "skipped" and "data absent" in result.error and not result.failed


def test_registry_covers_the_lecture():
    figures = ordered_figures()
    ids = [f.id for f in figures]
    assert len(ids) == len(set(ids)) >= 21
    assert [f.first_slide for f in figures] == sorted(f.first_slide for f in figures)
    for f in figures:
        # a range, or several joined by commas for a figure that redoes two places of the lecture
        assert f.claim.endswith(".") and re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", f.slides), f.id
    assert {f.part for f in figures} >= {"heads", "generators", "gans", "translation", "latent", "vaes", "social"}


# Numbers for which each claim holds, and for every condition of the check the changes that break
# that condition alone: (index of the condition, change). A condition with no breaking example could
# be deleted unnoticed; a condition made of several parts (a and b) gets one example per part.
_RING = {"ring/spread_ratio": 0.023, "ring/mean_offset": 0.031, "ring/excess_mse": 0.0015,
         "ring/untrained/excess_mse": 0.111}
_MNIST = {"mnist/spread_ratio": 0.068, "mnist/mean_offset": 0.082, "mnist/excess_mse": 0.011,
          "mnist/untrained/excess_mse": 2.44}
HOLDS_AND_BREAKS: dict[str, tuple[dict, list[tuple[int, dict]]]] = {
    "mdn-vs-gaussian": ({"nll/MDN (K=3)": -1.08, "nll/single Gaussian": -0.56}, [(0, {"nll/MDN (K=3)": -0.6})]),
    "robot-arm": ({"mdn/reach_rate_two_solutions": 0.995, "mse_net/reach_rate_two_solutions": 0.6},
                  [(0, {"mdn/reach_rate_two_solutions": 0.85}), (1, {"mse_net/reach_rate_two_solutions": 0.95})]),
    "random-generator": ({"excess_kurtosis": [2.0, 2.6], "input_excess_kurtosis": [0.01, 0.0]},
                         [(0, {"excess_kurtosis": [0.02, -0.01]}), (1, {"input_excess_kurtosis": [0.3, 0.0]})]),
    "untrained-conv": ({"upsample/lag1": 0.85, "upsample/periodic8": 0.007, "transposed/lag1": 0.0,
                        "transposed/periodic8": 0.24, "noise/lag1": 0.0, "noise/periodic8": 0.015},
                       [(0, {"upsample/lag1": 0.1}), (0, {"noise/lag1": 0.2}),
                        (1, {"transposed/periodic8": 0.02}), (1, {"noise/periodic8": 0.2})]),
    "naive-collapse": ({**_RING, **_MNIST},
                       [(0, {"ring/mean_offset": 0.4}), (1, {"ring/spread_ratio": 0.5}), (2, {"ring/excess_mse": 0.08}),
                        (3, {"mnist/mean_offset": 0.4}), (4, {"mnist/spread_ratio": 0.5}), (5, {"mnist/excess_mse": 1.5})]),
    "adversarial": ({"clean_accuracy": 0.98, "fgsm_accuracy": 0.1, "eps": 0.2},
                    [(0, {"clean_accuracy": 0.85}), (1, {"fgsm_accuracy": 0.9})]),
    "gan-ring-modes": ({"first/step": 100, "first/high_quality": 0.05, "final/high_quality": 0.9,
                        "later/min_modes": 5, "later/max_modes": 8},
                       [(0, {"final/high_quality": 0.2}), (0, {"first/high_quality": 0.95}),
                        (1, {"later/min_modes": 8})]),
    "dcgan-mnist": ({"confident_fraction": 0.8, "classes_present": 10, "frechet/dcgan": 20.0, "frechet/shuffled": 400.0},
                    [(0, {"confident_fraction": 0.2}), (1, {"classes_present": 3}), (2, {"frechet/dcgan": 500.0})]),
    "cgan-mnist": ({"label_accuracy": 0.95}, [(0, {"label_accuracy": 0.1})]),
    "pix2pix-edges": ({"class_agreement": 0.97, "l1": 0.02, "l1_mean_digit": 0.2, "dropout_diversity": 0.01},
                      [(0, {"class_agreement": 0.5}), (1, {"l1": 0.15}), (2, {"dropout_diversity": 0.1})]),
    "pix2pix-colorize": ({"saturation/pix2pix": 0.95, "saturation/l1_only": 0.4, "saturation/targets": 1.0},
                         [(0, {"saturation/pix2pix": 0.41})]),
    "cyclegan-digits": ({"content_a2b": 0.98, "content_b2a": 0.97, "cycle_l1_a": 0.03, "l1_other_digit": 0.17,
                         "saturation_g_a": 0.94, "saturation_b": 1.0},
                        [(0, {"content_a2b": 0.45}), (0, {"content_b2a": 0.45}), (1, {"cycle_l1_a": 0.1}),
                         (2, {"saturation_g_a": 0.3})]),
    "truncation": ({"psi": [1.0, 0.5, 0.0], "diversity_pixels": [3.0, 1.6, 0.0], "diversity_features": [6.8, 4.0, 0.0],
                    "classes_at_psi1": 9},
                   [(0, {"diversity_pixels": [3.0, 3.1, 0.0]}), (1, {"diversity_features": [6.8, 7.0, 0.0]}),
                    (2, {"diversity_features": [6.8, 4.0, 0.5]}), (3, {"classes_at_psi1": 2})]),
    "style-mixing": ({"coarse_over_fine": 2.5, "coarse/output_change": 0.5, "fine/output_change": 0.2,
                      "coarse/label_flip_rate": 0.6, "fine/label_flip_rate": 0.2},
                     [(0, {"coarse_over_fine": 1.0}), (1, {"coarse/label_flip_rate": 0.1})]),
    "stylegan-noise": ({"unchanged_fraction": 0.94, "decided_fraction": 0.88, "unchanged_when_decided": 0.98,
                        "pixel_std": 0.01},
                       [(0, {"unchanged_when_decided": 0.6}), (1, {"decided_fraction": 0.1}), (2, {"pixel_std": 1e-5})]),
    "stylegan-faces": ({"truncation/psi": [1.0, 0.5, 0.0], "truncation/diversity_pixels": [9.0, 5.0, 0.0],
                        "truncation/diversity_features": [0.9, 0.5, 0.0], "male_share_at_psi1": 0.4,
                        "mixing/coarse_over_fine": 3.0, "mixing/coarse/output_change": 0.3,
                        "mixing/fine/output_change": 0.1, "mixing/coarse/male_flip_rate": 0.4,
                        "mixing/fine/male_flip_rate": 0.05, "noise/male/confident_share": 0.7,
                        "noise/male/unchanged_when_confident": 0.99, "noise/smiling/confident_share": 0.6,
                        "noise/smiling/unchanged_when_confident": 0.98, "noise/pixel_std": 0.01},
                       [(0, {"truncation/diversity_pixels": [9.0, 9.5, 0.0]}),
                        (1, {"truncation/diversity_features": [0.9, 0.95, 0.0]}),
                        (2, {"truncation/diversity_features": [0.9, 0.5, 0.2]}),  # psi = 0 is not one face
                        (3, {"male_share_at_psi1": 0.02}),  # a generator of one sex
                        (4, {"mixing/coarse_over_fine": 1.1}),
                        (5, {"mixing/fine/male_flip_rate": 0.5}),
                        (6, {"noise/male/unchanged_when_confident": 0.8}),
                        (6, {"noise/male/confident_share": 0.05}),  # too few faces read with confidence
                        (7, {"noise/smiling/unchanged_when_confident": None}),  # no confident face at all
                        (8, {"noise/pixel_std": 1e-5})]),
    "interpolation": ({"max_step_over_endpoints": 0.2, "endpoint_classes_right": 0.95},
                      [(0, {"max_step_over_endpoints": 0.9}), (1, {"endpoint_classes_right": 0.5})]),
    "lerp-vs-slerp": ({"lerp_mid_ratio": 0.708, "slerp_mid_ratio": 1.0},
                      [(0, {"lerp_mid_ratio": 1.0}), (1, {"slerp_mid_ratio": 0.9})]),
    "projection": ({"vae/start_mse": 0.1, "vae/projected_mse": 0.02, "dcgan/start_mse": 0.1, "dcgan/projected_mse": 0.03},
                   [(0, {"vae/projected_mse": 0.09}), (1, {"dcgan/projected_mse": 0.09})]),
    "ae-latent-map": ({"knn_accuracy": 0.75}, [(0, {"knn_accuracy": 0.12})]),
    "smiling-vector": ({"smiling_rate_added": [0.1, 0.3, 0.5, 0.9], "smiling_rate_removed": [0.9, 0.5, 0.2, 0.05],
                        "scales": [0, 1, 2, 3], "classifier_accuracy": 0.9},
                       [(0, {"classifier_accuracy": 0.6}),
                        (1, {"smiling_rate_removed": [0.5, 0.5, 0.55, 0.6]}),  # subtracting adds smiles
                        (1, {"smiling_rate_added": [0.3, 0.3, 0.25, 0.2]}),  # adding takes them away
                        (1, {"smiling_rate_added": [0.1, 0.1, 0.15, 0.2], "smiling_rate_removed": [0.5, 0.5, 0.45, 0.4]})]),
    "latent-density": ({"frechet/standard_normal": 90.0, "frechet/fitted_gaussian": 30.0, "frechet/gmm10": 20.0},
                       [(0, {"frechet/fitted_gaussian": 95.0}), (1, {"frechet/gmm10": 95.0})]),
    "latent-density-faces": ({"frechet/male/standard_normal": 80.0, "frechet/male/fitted_gaussian": 15.0,
                              "frechet/male/gmm10": 12.0, "frechet/smiling/standard_normal": 19.0,
                              "frechet/smiling/fitted_gaussian": 4.0, "frechet/smiling/gmm10": 3.0},
                             [(0, {"frechet/smiling/fitted_gaussian": 19.5}),  # closer in one classifier only
                              (0, {"frechet/male/fitted_gaussian": 80.0}),  # a tie is not closer
                              (1, {"frechet/male/gmm10": 90.0})]),
    "ae-vs-vae-faces": ({"frechet/male/ae_prior": 60.0, "frechet/male/vae_prior": 25.0, "frechet/male/real_train": 2.0,
                         "frechet/smiling/ae_prior": 50.0, "frechet/smiling/vae_prior": 20.0,
                         "frechet/smiling/real_train": 2.0, "mse/ae": 0.010, "mse/vae": 0.013, "mse/mean_face": 0.06,
                         "vae/smiling_rate_added": [0.1, 0.2, 0.4, 0.55, 0.7, 0.8, 0.85], "scales": [0, 0.5, 1, 1.5, 2, 2.5, 3]},
                        [(0, {"frechet/male/vae_prior": 65.0}),  # the VAE's samples no closer to faces
                         (1, {"frechet/smiling/vae_prior": 55.0}),
                         (2, {"mse/vae": 0.025}),  # the VAE reconstructs 2.5x worse
                         (3, {"vae/smiling_rate_added": [0.1, 0.1, 0.15, 0.15, 0.2, 0.2, 0.25]})]),  # the vector barely smiles
    "feature-vae-faces": ({"frechet/male/vae_recon": 9.0, "frechet/male/feature_vae_recon": 6.0, "frechet/male/faces": 0.5,
                           "frechet/smiling/vae_recon": 5.0, "frechet/smiling/feature_vae_recon": 4.0,
                           "frechet/smiling/faces": 0.4, "sharpness/vae": 0.30, "sharpness/feature_vae": 0.45,
                           "mse/vae": 0.007, "mse/feature_vae": 0.008},
                          [(0, {"frechet/male/feature_vae_recon": 9.5}),  # no closer in the male features
                           (1, {"frechet/smiling/feature_vae_recon": 5.0}),  # a tie is not closer
                           (2, {"sharpness/feature_vae": 0.28}),  # blurrier than the plain VAE
                           (3, {"mse/feature_vae": 0.0112})]),  # 1.6x the pixel error: features won by losing pixels
    "vae-vs-ae-samples": ({"frechet/vae_prior": 20.0, "frechet/ae_standard_normal": 80.0}, [(0, {"frechet/vae_prior": 85.0})]),
    "vae-latent-2d": ({"code_mean": [0.02, -0.05], "code_std": [0.9, 1.0], "knn_accuracy": 0.7},
                      [(0, {"code_mean": [0.5, 0.0]}), (0, {"code_std": [4.0, 1.0]}), (0, {"code_std": [0.9, 0.2]}),
                       (1, {"knn_accuracy": 0.3})]),
    "bias-mnist": ({"max_abs_z": 6.0, "total_variation": 0.1}, [(0, {"max_abs_z": 1.0}), (1, {"total_variation": 0.01})]),
    "bias-celeba": ({"majority_class": "not Male", "amplification": 0.1},
                    [(0, {"amplification": -0.05}), (0, {"amplification": None})]),
}
_SENTENCES = {"vae/well_formed_share": [0.8, 0.75, 0.64], "ae/well_formed_share": [0.5, 0.55, 0.58],
              "vae/kl": [4.0, 3.5, 2.0], "vae/copy_share": [0.2, 0.2, 0.2], "ae/copy_share": [0.1, 0.1, 0.1]}
# Checks whose smoke budget states other conditions than the full one: a case per budget.
BY_BUDGET: dict[str, dict[str, tuple[dict, list[tuple[int, dict]]]]] = {
    "sentence-interpolation": {
        "smoke": (_SENTENCES, [(0, {"vae/well_formed_share": [0.3, 0.3]})]),
        "full": (_SENTENCES, [(0, {"vae/well_formed_share": [0.8, 0.75, 0.62]}),  # one seed short of the margin
                              (0, {"vae/well_formed_share": [0.8, 0.75], "ae/well_formed_share": [0.5, 0.55],
                                   "vae/kl": [4.0, 3.5]}),  # two seeds
                              (1, {"vae/kl": [4.0, 3.5, 0.5]})]),
    },
}


def _case(figure_id: str, budget: str) -> tuple[dict, list[tuple[int, dict]]]:
    return BY_BUDGET[figure_id][budget] if figure_id in BY_BUDGET else HOLDS_AND_BREAKS[figure_id]


CASES = sorted(set(HOLDS_AND_BREAKS) | set(BY_BUDGET))
BREAKS = [(figure_id, budget, k) for figure_id in CASES for budget in ("smoke", "full")
          for k in range(len(_case(figure_id, budget)[1]))]


def test_every_figure_has_a_holding_and_a_breaking_example():
    from test_lecture_figures import HOLDS  # the figures of issue 26 are tested condition by condition there
    from test_tricks import HOLDS as TRICKS_HOLDS  # and gan-tricks in its own file
    from test_steganography import HOLDS as STEGANOGRAPHY  # and slide 39's steganography there
    assert set(CASES) | set(HOLDS) | set(TRICKS_HOLDS) | set(STEGANOGRAPHY) == set(load_parts())


@pytest.mark.parametrize("figure_id", CASES)
@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_every_condition_of_a_check_has_its_breaking_example(figure_id, budget):
    figure = load_parts()[figure_id]
    holds, breaks = _case(figure_id, budget)
    conditions = figure.check(holds, budget)
    assert conditions and all(ok for _, ok in conditions), conditions
    assert {i for i, _ in breaks} == set(range(len(conditions))), "a condition without a breaking example"


@pytest.mark.parametrize("figure_id,budget,k", BREAKS, ids=[f"{i}-{b}-{k}" for i, b, k in BREAKS])
def test_check_fails_on_the_condition_that_is_broken_and_only_there(figure_id, budget, k):
    figure = load_parts()[figure_id]
    holds, breaks = _case(figure_id, budget)
    index, change = breaks[k]
    conditions = figure.check({**holds, **change}, budget)
    failed = [i for i, (_, ok) in enumerate(conditions) if not ok]
    assert failed == [index], (change, conditions)


def test_naive_collapse_fails_for_untrained_generators():
    """An untrained generator's samples are narrow too (spread 0.08 of the data's): the check must
    ask for the collapse towards the data mean that training produces. Numbers measured on the smoke
    recipe's networks at initialisation (genlab figure naive-collapse --budget smoke)."""
    untrained = {"ring/spread_ratio": 0.082, "ring/mean_offset": 0.323, "ring/excess_mse": 0.111,
                 "ring/untrained/excess_mse": 0.111, "mnist/spread_ratio": 0.067, "mnist/mean_offset": 1.56,
                 "mnist/excess_mse": 2.44, "mnist/untrained/excess_mse": 2.44}
    conditions = load_parts()["naive-collapse"].check(untrained, "smoke")
    failed = {text.split(":")[0] + ":" + text.split(":")[1][:9] for text, ok in conditions if not ok}
    assert not all(ok for _, ok in conditions)
    # the spread alone would pass; the mean offset and the loss against the untrained control fail
    assert [ok for _, ok in conditions] == [False, True, False, False, True, False], failed


def test_page_escapes_and_inlines(tmp_path):
    from PIL import Image

    png = tmp_path / "a.png"
    Image.new("L", (4, 4)).save(png)
    result = FigureResult("x", "1", "claim <b>", "tests", "", "pass", 1.0, [("x < 1", True)], {"k": [1.5, None]}, [str(png)])
    header = {"versions": {"genlab": "0"}, "seed": 3, "budget": "smoke", "machine": "m", "torch_threads": 1,
              "written": "now", "seconds": 1.0, "data_root": None}
    page = write_page([result], tmp_path / "index.html", header=header).read_text()
    assert "claim &lt;b&gt;" in page and "x &lt; 1" in page and "data:image/png;base64," in page


def test_readme_lists_every_figure():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for figure in ordered_figures():
        assert f"| `{figure.id}` | {figure.slides} | {figure.claim} |" in readme, figure.id


def _report(folder, figures):
    """A built report in ``folder``: lecture.json and one PNG per (figure id, picture name)."""
    from PIL import Image

    results = []
    for figure_id, names in figures.items():
        paths = []
        for name in names:
            path = folder / figure_id / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("L", (4, 4), color=len(name)).save(path)
            paths.append(str(path))
        results.append(FigureResult(figure_id, "1", "claim", "tests", "", "pass", 1.0, [("x < 1", True)], {"k": 1}, paths))
    header = {"versions": {"genlab": "0"}, "seed": 0, "budget": "full", "machine": "m", "torch_threads": 1,
              "written": "now", "seconds": 1.0, "cpu_seconds": 1.0, "data_root": None}
    (folder / "lecture.json").write_text(json.dumps({"header": header, "figures": [r.__dict__ for r in results]}))


def test_gallery_withholds_restricted_pictures_and_keeps_their_numbers(tmp_path):
    from genlab.lecture.gallery import publish

    restricted = load_parts()["ae-vs-vae-faces"]
    assert restricted.restricted and restricted.public == ("ae-vs-vae-faces-samples.png",)
    assert load_parts()["smiling-vector"].restricted and not load_parts()["dcgan-mnist"].restricted
    _report(tmp_path / "report", {"dcgan-mnist": ["dcgan-mnist.png"],
                                  "ae-vs-vae-faces": ["ae-vs-vae-faces.png", "ae-vs-vae-faces-samples.png"],
                                  "smiling-vector": ["smiling-vector.png"], "retired-figure": ["old.png"]})
    gallery = publish(tmp_path / "report", tmp_path / "docs")
    files = sorted(str(p.relative_to(tmp_path / "docs")) for p in (tmp_path / "docs").rglob("*.png"))
    assert files == ["ae-vs-vae-faces/ae-vs-vae-faces-samples.png", "dcgan-mnist/dcgan-mnist.png"]
    assert gallery.pictures == 2 and set(gallery.withheld) == {"ae-vs-vae-faces", "smiling-vector", "retired-figure"}
    saved = json.loads((tmp_path / "docs" / "gallery.json").read_text())
    assert [f["id"] for f in saved["figures"]] == ["dcgan-mnist", "ae-vs-vae-faces", "smiling-vector", "retired-figure"]
    assert saved["figures"][2]["numbers"] == {"k": 1} and saved["figures"][2]["paths"] == []
    page, readme = (tmp_path / "docs" / "index.html").read_text(), (tmp_path / "docs" / "README.md").read_text()
    assert 'src="dcgan-mnist/dcgan-mnist.png"' in page and "base64" not in page
    assert "](dcgan-mnist/dcgan-mnist.png)" in readme and "smiling-vector.png" not in readme + page
    assert "forbid redistributing" in readme and "forbid redistributing" in page
    assert "pixel-gaussians" in gallery.unbuilt and "dcgan-mnist" not in gallery.unbuilt and "`pixel-gaussians`" in readme


def test_gallery_replaces_an_old_gallery_and_refuses_any_other_folder(tmp_path):
    from genlab.lecture.gallery import publish

    _report(tmp_path / "report", {"dcgan-mnist": ["dcgan-mnist.png"], "cgan-mnist": ["cgan-mnist.png"]})
    publish(tmp_path / "report", tmp_path / "docs")
    _report(tmp_path / "report", {"dcgan-mnist": ["dcgan-mnist.png"]})
    publish(tmp_path / "report", tmp_path / "docs")  # a figure dropped: its picture goes with it
    assert not (tmp_path / "docs" / "cgan-mnist").exists() and (tmp_path / "docs" / "dcgan-mnist" / "dcgan-mnist.png").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a genlab gallery"):
        publish(tmp_path / "report", mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not list(tmp_path.glob(".*staging*"))
    with pytest.raises(ConfigError, match="build the report first"):
        publish(tmp_path / "nothing", tmp_path / "docs2")


def test_jobs_make_the_same_figures_as_one_process(tmp_path):
    """Worker processes give the numbers and verdicts one process gives (the social-impact figures: no
    training, seconds each), and the page lists them in lecture order."""
    ids = ["causal-graphs", "prosecutors-fallacy", "decision-cost"]
    one = run_lecture(tmp_path / "one", only=ids, progress=False)
    two = run_lecture(tmp_path / "two", only=ids, progress=False, jobs=2, threads=1)
    assert [r.id for r in two] == [r.id for r in one] == ["prosecutors-fallacy", "decision-cost", "causal-graphs"]
    assert [(r.verdict, r.numbers) for r in two] == [(r.verdict, r.numbers) for r in one]
    saved = json.loads((tmp_path / "two" / "lecture.json").read_text())
    assert [f["id"] for f in saved["figures"]] == [r.id for r in one] and saved["header"]["jobs"] == 2
    assert all((tmp_path / "two" / r.id / "numbers.json").is_file() for r in two)
    # the build time counts the workers too: one call, its main process and at least one worker
    (call,) = saved["header"]["build"]["calls"]
    assert call["processes"] >= 2 and saved["header"]["build"]["cpu_s"] == call["cpu_s"] > 0


def test_build_time_adds_up_every_call_into_the_report(tmp_path):
    """A report built by two calls (the second resuming the first) records both calls' time, and a
    call with another budget in the same folder does not count."""
    ids = ["decision-cost"]
    run_lecture(tmp_path, only=ids, progress=False)
    first = json.loads((tmp_path / "lecture.json").read_text())["header"]["build"]
    run_lecture(tmp_path, only=ids, progress=False)
    second = json.loads((tmp_path / "lecture.json").read_text())["header"]["build"]
    assert len(first["calls"]) == 1 and len(second["calls"]) == 2
    assert second["calls"][0] == first["calls"][0]
    assert second["wall_s"] == pytest.approx(sum(c["wall_s"] for c in second["calls"]), abs=0.11)
    assert second["wall_s"] > first["wall_s"] > 0
    (tmp_path / "calls" / "20000101T000000Z-aaaaaa-1.json").write_text(json.dumps(
        {"call": "20000101T000000Z-aaaaaa", "pid": 1, "budget": "full", "seed": 0, "started": "2000-01-01 00:00:00 UTC",
         "wall_s": 9e5, "cpu_s": 9e5}))
    (tmp_path / "calls" / "20000101T000000Z-aaaaaa-2.json").write_text(json.dumps(
        {"call": "20000101T000000Z-aaaaaa", "pid": 2, "budget": "full", "seed": 0, "started": "2000-01-01 00:00:01 UTC",
         "wall_s": 1e5, "cpu_s": 1e5}))  # a worker of the same call: its wall time is within the call's, its CPU adds
    (tmp_path / "calls" / "torn.json").write_text('{"call": ')
    from genlab.lecture.clock import build_time

    assert build_time(tmp_path / "calls", budget="smoke", seed=0) == second
    full = build_time(tmp_path / "calls", budget="full", seed=0)
    assert (full["wall_s"], full["cpu_s"], full["calls"][0]["processes"]) == (9e5, 1e6, 2)
    page = (tmp_path / "index.html").read_text()
    assert "2 recorded calls of genlab lecture built it" in page


def test_a_killed_call_keeps_its_time_up_to_the_last_tick(tmp_path):
    """The clock writes while the process works, so a call killed before it stops keeps its time."""
    import time as clock_time

    from genlab.lecture.clock import build_time, start_clock

    stop = start_clock(tmp_path, "c1", budget="full", seed=3, every=0.05)
    t = clock_time.process_time()
    while clock_time.process_time() - t < 0.4:  # work, then "die" without stop()
        pass
    clock_time.sleep(0.2)
    (call,) = build_time(tmp_path, budget="full", seed=3)["calls"]
    assert call["cpu_s"] >= 0.3 and call["wall_s"] >= 0.5
    stop()


def _shared_in_another_process(runs, barrier, queue):
    from genlab.lecture import load_parts
    from genlab.lecture.core import Context

    load_parts()
    ctx = Context(budget="smoke", out=runs.parent, runs=runs)
    barrier.wait()  # both ask for the run at once
    model = ctx.shared("naive-ring")
    queue.put((ctx.trained, {k: v.tolist() for k, v in model.state_dict().items()}))


def test_two_processes_asking_for_one_shared_run_train_it_once(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_shared_in_another_process, args=(tmp_path / "runs", barrier, queue)) for _ in range(2)]
    for w in workers:
        w.start()
    got = [queue.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert sorted(len(trained) for trained, _ in got) == [0, 1]  # one trained it, the other waited and loaded it
    assert got[0][1] == got[1][1]


def test_jobs_hand_each_part_to_one_worker_in_lecture_order():
    from genlab.lecture.runner import by_part, ordered_figures

    figures = ordered_figures()
    groups = by_part(figures)
    assert sorted(f.id for g in groups for f in g) == sorted(f.id for f in figures)  # each figure once
    assert all(len({f.part for f in g}) == 1 for g in groups) and len(groups) == len({f.part for f in figures})
    order = [f.id for f in figures]
    assert all([order.index(f.id) for f in g] == sorted(order.index(f.id) for f in g) for g in groups)
    stylegan = next(g for g in groups if g[0].part == "stylegan")  # the figures that share the StyleGAN run
    # by first slide: the face figure (slides 42-44) after truncation (42), before style mixing (43)
    assert [f.id for f in stylegan] == ["truncation", "stylegan-faces", "style-mixing", "stylegan-noise"]


_ORPHAN_SCRIPT = """
import multiprocessing, pathlib, sys, time
from genlab.lecture.runner import _exit_with_parent

def child(ready):
    _exit_with_parent()
    pathlib.Path(ready).write_text("ready")
    time.sleep(120)

if __name__ == "__main__":
    p = multiprocessing.get_context("spawn").Process(target=child, args=(sys.argv[1],))
    p.start()
    print(p.pid, flush=True)
    time.sleep(120)
"""


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@needs_proc
def test_a_worker_ends_when_the_lecture_that_started_it_is_killed(tmp_path):
    """A killed ``genlab lecture`` must not leave its workers training on (they hold the runs' locks)."""
    import signal
    import subprocess
    import sys
    import time

    script, ready = tmp_path / "parent.py", tmp_path / "ready"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(ready)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists() and _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the worker outlived its parent"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@needs_proc
def test_stopping_the_workers_does_not_wait_for_what_they_are_running():
    """Interrupted, the lecture ends its workers at once; ProcessPoolExecutor's shutdown would wait for
    the running task (hours of training in a full build)."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from genlab.lecture.runner import stop_workers

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    running = pool.submit(time.sleep, 60)
    deadline = time.monotonic() + 120
    while not running.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [p.pid for p in pool._processes.values()]
    start = time.monotonic()
    stop_workers(pool)
    assert pids and time.monotonic() - start < 15
    deadline = time.monotonic() + 10  # read from /proc, not is_alive(): the process may be reaped elsewhere
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


@pytest.fixture
def judged_runs():
    """Two shared runs, a 3-attribute network and a feature-consistent VAE whose loss reads its maps."""
    from genlab.data import ArrayDataset
    from genlab.lecture.core import SHARED_RUNS

    g = torch.Generator().manual_seed(0)
    data = ArrayDataset((torch.rand(16, 3, 16, 16, generator=g), (torch.rand(16, 3, generator=g) < 0.5).float()),
                        {"name": "random-faces"})
    widths = {"value": [4, 8]}

    def judge(ctx):
        return ("attributes", {"image_shape": [3, 16, 16], "num_attributes": 3, "widths": widths["value"]}, data,
                {"max_steps": 2, "batch_size": 8})

    def feature_vae(ctx):
        return ("feature-vae", {"architecture": "mlp", "image_shape": [3, 16, 16], "latent_dim": 4, "hidden_dims": [16],
                                "feature_network": ctx.model_folder("zz-judge"), "feature_weight": 10.0},
                data, {"max_steps": 2, "batch_size": 8})

    SHARED_RUNS.register("zz-judge")(judge)
    SHARED_RUNS.register("zz-feature-vae")(feature_vae)
    yield widths
    SHARED_RUNS.pop("zz-judge")
    SHARED_RUNS.pop("zz-feature-vae")


def test_a_recipe_reading_another_runs_network_trains_that_run_first_and_is_fingerprinted_by_it(tmp_path, judged_runs,
                                                                                                monkeypatch):
    from genlab.models.feature_vae import FeatureVAE

    handed = []
    original = FeatureVAE.set_feature_network
    monkeypatch.setattr(FeatureVAE, "set_feature_network", lambda self, net: (handed.append(net), original(self, net)))
    ctx = Context(out=tmp_path, runs=tmp_path / "runs")
    ctx.shared("zz-feature-vae")  # training it raises if its loss finds no feature network
    assert ctx.trained == ["zz-judge", "zz-feature-vae"]  # the judge first, while the VAE's run was being built
    assert handed == [ctx.shared("zz-judge")]  # the judge's own trained model is the one its loss read
    assert (ctx.run_dir("zz-judge") / "model" / "config.json").is_file()
    # the fingerprint names the judge's run, not where the runs folder is ...
    moved = Context(out=tmp_path, runs=tmp_path / "elsewhere" / "runs")
    assert moved.run_dir("zz-feature-vae").name == ctx.run_dir("zz-feature-vae").name
    # ... and a changed judge recipe retrains the VAE as well
    judged_runs["value"] = [4, 16]
    changed = Context(out=tmp_path, runs=tmp_path / "runs")
    assert changed.run_dir("zz-judge").name != ctx.run_dir("zz-judge").name
    assert changed.run_dir("zz-feature-vae").name != ctx.run_dir("zz-feature-vae").name
