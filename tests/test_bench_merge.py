"""``benchmarks/diffaugment.py --merge``: the numbers of RESULTS.md's face tables are joined from one process per seed
(or recipe), so the join must refuse parts that are not seeds of one protocol and one recipe, and must average
the right finals. No training here: the parts are small hand-written result files."""
from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(script: str, tmp_path, monkeypatch):
    """A benchmark script as a module whose results folder is ``tmp_path/results``."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # diffaugment.py imports stylegan_quality beside it
    spec = importlib.util.spec_from_file_location(f"{script}_under_test", BENCHMARKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "HERE", tmp_path)
    (tmp_path / "results").mkdir(exist_ok=True)
    return module


@pytest.fixture
def bench(tmp_path, monkeypatch):
    return _load("diffaugment", tmp_path, monkeypatch)


def _part(tag: str, seed: int, finals: dict[str, tuple[float, float]], model: str = "dcgan", **args) -> dict:
    """A result file of one process: ``finals`` maps augment (off/on) to the last round's FD in each ruler."""
    base = {"data": "celeba:x", "image_size": 64, "subsets": ["all"], "budget_minutes": 10.0, "rounds": 2,
            "rulers": ["attributes", "ssl"], "num_samples": 100, "train_overrides": [], "policy": "color,translation,cutout",
            "augment_p": 1.0, "stylegan_overrides": [], "fastgan_overrides": [], "judge": None,
            "seeds": [seed], "models": [model], "augment": sorted(finals), "tag": tag}
    base.update(args)
    curves = {}
    for augment, (fd_a, fd_s) in finals.items():
        first = {"round": 1, "cpu_seconds": 300.0, "steps": 10, "attributes": {"fid": 99.0}, "ssl": {"fid": 9.0}}
        last = {"round": 2, "cpu_seconds": 600.0, "steps": 20, "attributes": {"fid": fd_a}, "ssl": {"fid": fd_s}}
        curves[f"{model}/all/{augment}/{seed}"] = [first, last]
    return {"args": base, "torch": "x", "clock": "cpu", "rulers": {}, "floor": {"attributes": {"fid": 2.0}, "ssl": {"fid": 0.1}},
            "curves": curves, "summary": {}}


def _write(bench, tag: str, part: dict) -> None:
    (bench.HERE / "results" / f"diffaugment-{tag}.json").write_text(json.dumps(part))


def test_merge_joins_seeds_and_averages_their_last_rounds(bench):
    _write(bench, "s0", _part("s0", 0, {"off": (10.0, 1.0), "on": (14.0, 0.5)}))
    _write(bench, "s1", _part("s1", 1, {"off": (20.0, 3.0), "on": (18.0, 1.5)}))
    assert bench.merge(["s0", "s1"], "both") == 0
    merged = json.loads((bench.HERE / "results" / "diffaugment-both.json").read_text())
    assert merged["args"]["seeds"] == [0, 1] and merged["args"]["merged_from"] == ["s0", "s1"]
    assert sorted(merged["curves"]) == ["dcgan/all/off/0", "dcgan/all/off/1", "dcgan/all/on/0", "dcgan/all/on/1"]
    cell = merged["summary"]["dcgan/all"]
    assert cell["attributes"]["off"]["final_fd_mean"] == pytest.approx(15.0)  # the last rounds, not the first (99)
    assert cell["attributes"]["off"]["final_fd_std"] == pytest.approx(statistics.pstdev([10.0, 20.0]))
    assert cell["attributes"]["on_minus_off"] == pytest.approx(16.0 - 15.0)
    assert cell["ssl"]["on_minus_off"] == pytest.approx(1.0 - 2.0)
    assert cell["rulers_agree"] is False  # attributes says worse, ssl says better: no verdict
    assert merged["recipes"]["dcgan"]["policy"] == "color,translation,cutout"


def test_merge_refuses_parts_that_are_not_seeds_of_one_recipe_and_protocol(bench, capsys):
    out = bench.HERE / "results" / "diffaugment-both.json"
    _write(bench, "s0", {**_part("s0", 0, {"off": (10.0, 1.0)}), "rulers": {"ssl": {"fingerprint": "f", "weights": "aaa"}}})
    cases = {
        "another clock": _part("s1", 1, {"off": (20.0, 3.0)}, budget_minutes=20.0),
        "another policy": _part("s1", 1, {"off": (20.0, 3.0)}, policy="color"),
        "the same run twice": _part("s1", 0, {"off": (20.0, 3.0)}),
        # another build of a ruler (same recipe, retrained elsewhere): its floor moved, or its weights differ
        "another ruler build (floor)": {**_part("s1", 1, {"off": (20.0, 3.0)}),
                                        "floor": {"attributes": {"fid": 2.6}, "ssl": {"fid": 0.1}}},
        "another ruler build (weights)": {**_part("s1", 1, {"off": (20.0, 3.0)}),
                                          "rulers": {"ssl": {"fingerprint": "f", "weights": "bbb"}}},
    }
    for what, part in cases.items():
        _write(bench, "s1", part)
        assert bench.merge(["s0", "s1"], "both") == 2, what
        assert not out.exists(), what
        assert "error:" in capsys.readouterr().out, what
    # another recipe (another model) under the same protocol joins
    _write(bench, "s1", _part("s1", 0, {"on": (20.0, 3.0)}, model="fastgan", policy="color,translation"))
    assert bench.merge(["s0", "s1"], "both") == 0
    merged = json.loads(out.read_text())
    assert merged["recipes"]["fastgan"]["policy"] == "color,translation" and merged["args"]["models"] == ["dcgan", "fastgan"]


def test_round_tables_give_each_rounds_mean_and_spread_over_seeds_with_each_seed_in_order(bench):
    """RESULTS.md's per-round tables: the mean ± population sd over the seeds of one recipe, per ruler and round."""
    curves = {**_part("s1", 1, {"off": (20.0, 3.0)})["curves"], **_part("s0", 0, {"off": (10.0, 1.0)})["curves"]}
    for rows in curves.values():
        for row in rows:
            row["attributes"].update(precision=0.5, recall=0.25)
    curves["dcgan/all/off/1"][1]["steps"] = 24
    lines = bench.round_tables(curves, ["attributes", "ssl"]).splitlines()
    assert lines[0] == "dcgan/all/off, seeds 0, 1:"
    assert lines[4] == "| 1 | 5.0 | 10 | 99 ± 0 (99 / 99) | 9 ± 0 (9 / 9) | 0.50 / 0.25 |"
    assert lines[5] == "| 2 | 10.0 | 20-24 | 15 ± 5 (10 / 20) | 2 ± 1 (1 / 3) | 0.50 / 0.25 |"


@pytest.fixture
def quality(tmp_path, monkeypatch):
    return _load("stylegan_quality", tmp_path, monkeypatch)


def test_stylegan_seed_table_pairs_each_seed_with_the_first_groups_same_seed(quality, tmp_path):
    """The lazy-R1 tables of RESULTS.md: per round, mean ± population sd over seeds, and B/A per seed in order."""
    def write(tag, fds, steps=(10, 20)):
        rows = [{"round": i + 1, "steps": s, "fid": fd} for i, (s, fd) in enumerate(zip(steps, fds))]
        (tmp_path / "results" / f"stylegan_quality-{tag}.json").write_text(json.dumps({"curves": {"stylegan": rows}}))
    write("a0", (8.0, 4.0))
    write("a1", (10.0, 2.0), steps=(12, 22))
    write("b0", (8.0, 6.0))
    write("b1", (5.0, 1.0))
    lines = quality.seed_table(["A=a0,a1", "B=b0,b1"]).splitlines()
    assert lines[2] == "| 1 | 10-12 | 9.00 ± 1.00 (8.00 / 10.00) | 10 | 6.50 ± 1.50 (8.00 / 5.00) | 1.00 / 0.50 (0.75) |"
    assert lines[3] == "| 2 | 20-22 | 3.00 ± 1.00 (4.00 / 2.00) | 20 | 3.50 ± 2.50 (6.00 / 1.00) | 1.50 / 0.50 (1.00) |"


@pytest.fixture
def smoke_seeds(tmp_path, monkeypatch):
    return _load("stylegan_smoke_seeds", tmp_path, monkeypatch)


def test_smoke_seed_variants_parse_their_settings_and_train_apart(smoke_seeds, tmp_path):
    """A variant's settings reach the shared run's model config, so its run folder (named by the recipe's
    fingerprint) differs from the shipped recipe's: otherwise every variant would reuse one trained model."""
    from genlab.lecture import core

    name, settings = smoke_seeds.parse_variant(["g", "model.r1_gamma=0.35", "lazy_optimizer=own", "channels_last=true"])
    assert (name, settings) == ("g", {"r1_gamma": 0.35, "lazy_optimizer": "own", "channels_last": True})
    with pytest.raises(SystemExit, match="not KEY=VALUE"):
        smoke_seeds.parse_variant(["g", "r1_gamma"])

    class Data:
        info, x = {"name": "toy"}, torch.zeros(4, 1, 8, 8)

        def __len__(self):
            return 4

    def recipe(ctx):
        return "stylegan", {"latent_dim": 8, "r1_gamma": 0.05}, Data(), {"max_steps": 10}

    def folder(r):  # where the lecture would train the shared run whose recipe is r
        return core.Context(runs=tmp_path, _recipes={"x": r(None)}).run_dir("x")

    patched = smoke_seeds.with_model_settings(recipe, settings)
    assert patched(None)[1] == {"latent_dim": 8, "r1_gamma": 0.35, "lazy_optimizer": "own", "channels_last": True}
    assert folder(patched) != folder(recipe)
    assert folder(smoke_seeds.with_model_settings(recipe, {})) == folder(recipe)
