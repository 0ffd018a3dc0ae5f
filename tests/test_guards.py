"""The suite guards its features: each guard mutant of ``genlab.devtools.mutate`` (a resume that
never resumes, schedulers not restored, a VAE trained without its KL, a GAN or pix2pix discriminator
scoring real as fake, an MDN ignoring its mixture weights, compare_features with its arguments
swapped) must make every test it names fail. A new family adds its mutant to that module's table."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.devtools.mutate import MUTANTS, main

ROOT = Path(__file__).resolve().parents[1]
GUARDS = sorted(name for name, m in MUTANTS.items() if m.guard)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    """One fresh process runs every guard mutant (torch is imported once, not once per mutant)."""
    out = tmp_path_factory.mktemp("mutants") / "outcomes.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "genlab.devtools.mutate", "--guard", "--root", str(ROOT), "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.is_file(), proc.stdout + proc.stderr
    return {o["name"]: o for o in json.loads(out.read_text())}


@pytest.mark.parametrize("name", GUARDS)
def test_every_test_named_by_the_mutant_fails_under_it(name, outcomes):
    outcome = outcomes[name]
    assert outcome["status"] == "killed", f"{name}: {MUTANTS[name].description} -- passed anyway: {outcome['passed']}"
    assert len(outcome["failed"]) >= len(MUTANTS[name].tests)


def test_the_guard_covers_resume_schedules_objectives_and_metric_wiring():
    assert {"trainer-resume-noop", "scheduler-state-not-restored", "vae-loss-without-kl",
            "compare-features-arguments-swapped"} <= set(GUARDS)
    for name in GUARDS:
        for test in MUTANTS[name].tests:
            path, _, function = test.partition("::")
            assert (ROOT / path).is_file() and f"def {function.split('[')[0]}(" in (ROOT / path).read_text(), test


def test_unknown_mutant_is_one_line_error(capsys):
    assert main(["no-such-mutant"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown mutant(s) no-such-mutant; valid:" in err and len(err.splitlines()) == 1
