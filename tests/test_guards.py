"""The suite guards its features: every mutant of ``tests/mutate.py`` (a resume that never resumes,
schedulers or the EMA not restored, a VAE trained without its KL or with its sample detached, a GAN,
pix2pix or CycleGAN discriminator scoring real as fake, CycleGAN's generators judged by the wrong
discriminator or trained without the cycle term, StyleGAN truncating towards 0 or training without
style mixing, an MDN reading sigma as a variance, metrics wired the wrong way round) must make every
test it names fail. A new family adds its mutant to that module's table; CI runs them all here."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mutate import MUTANTS, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    """One fresh process runs every mutant (torch is imported once, not once per mutant)."""
    out = tmp_path_factory.mktemp("mutants") / "outcomes.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "mutate.py"), "--root", str(ROOT), "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.is_file(), proc.stdout + proc.stderr
    return {o["name"]: o for o in json.loads(out.read_text())}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_test_named_by_the_mutant_fails_under_it(name, outcomes):
    outcome = outcomes[name]
    assert outcome["status"] == "killed", (f"{name}: {MUTANTS[name].description} -- {outcome['status']}: "
                                           f"{outcome['error'] or 'passed anyway: ' + str(outcome['passed'])}")
    assert len(outcome["failed"]) >= len(MUTANTS[name].tests)


def test_the_mutants_cover_resume_objectives_and_metric_wiring_and_name_real_tests():
    assert {"trainer-resume-noop", "scheduler-state-not-restored", "vae-loss-without-kl", "vae-sample-detached",
            "compare-features-arguments-swapped", "cyclegan-discriminator-real-and-fake-swapped",
            "cyclegan-generators-judged-by-the-wrong-discriminator", "cyclegan-cycle-term-dropped",
            "stylegan-truncation-towards-zero", "stylegan-style-mixing-off"} <= set(MUTANTS)
    for name, m in MUTANTS.items():
        assert m.description, name
        for test in m.tests:
            path, _, function = test.partition("::")
            assert (ROOT / path).is_file() and f"def {function.split('[')[0]}(" in (ROOT / path).read_text(), test


def test_the_mutation_tooling_is_not_shipped_in_the_package():
    assert importlib.util.find_spec("genlab.devtools") is None


def test_unknown_mutant_is_one_line_error(capsys):
    assert main(["no-such-mutant"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown mutant(s) no-such-mutant; valid:" in err and len(err.splitlines()) == 1
