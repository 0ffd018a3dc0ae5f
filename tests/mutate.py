"""Mutation check: break a feature in memory and confirm that the tests guarding it fail.

A test suite can pass with the feature it guards broken (a resume that never resumes, a VAE trained
without its KL term, a metric fed its arguments the wrong way round). Each entry of :data:`MUTANTS`
is one such breakage — a function that patches genlab in memory — and the narrowest test ids that
must fail under it. The check runs each mutant's tests in a pytest session of their own, with the
patch applied before the test modules are imported and undone afterwards, and reports a mutant
under which any of its tests still passes as *survived*, and one whose patch no longer applies (a
refactor renamed what it patches) as *error*.

This is test tooling, not part of the installed package::

    python tests/mutate.py                              # every mutant; exit 1 if any survives
    python tests/mutate.py vae-loss-without-kl --verbose
    GENLAB_MUTANT=vae-loss-without-kl python -m pytest -p tests.mutate TEST_ID   # by hand, from the root

``tests/test_guards.py`` runs every mutant in the suite, so CI runs them all. A new family adds its
own entry beside the others, patching public methods (not line numbers) so a refactor of the family
keeps the mutant meaningful::

    @mutant("cyclegan-cycle-term-dropped",
            "tests/test_cyclegan.py::test_generator_loss_is_adversarial_plus_weighted_cycle_and_identity")
    def _cycle_dropped(patch: Patch) -> None:
        '''CycleGAN's generator loss leaves out the cycle-consistency terms.'''
        from genlab.models.cyclegan import CycleGAN
        patch(CycleGAN, "cycle_terms", ...)  # patch(obj, attribute, value): undone after the mutant's run

The suite runs every mutant each time: name the narrowest test ids (one parametrisation, not all).
Test ids are relative to the repository root (the folder holding ``tests/``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

ENV_VAR = "GENLAB_MUTANT"
ROOT = Path(__file__).resolve().parents[1]  # the repository root: tests/..


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    apply: Callable[[Patch], None]  # called with a patch(obj, attribute, value) that can be undone
    tests: tuple[str, ...]  # pytest node ids that must fail under the mutant
    description: str


MUTANTS: dict[str, Mutant] = {}


Patch = Callable[[Any, str, Any], None]


def mutant(name: str, *tests: str) -> Callable[[Callable[[Patch], None]], Callable[[Patch], None]]:
    """Register the decorated patch function as mutant ``name``, caught by ``tests``."""
    if not tests:
        raise ValueError(f"mutant {name!r} names no tests")

    def decorator(apply: Callable[[Patch], None]) -> Callable[[Patch], None]:
        if name in MUTANTS:
            raise ValueError(f"mutant {name!r} is already registered")
        MUTANTS[name] = Mutant(name, apply, tuple(tests), (apply.__doc__ or "").strip())
        return apply

    return decorator


def _patch_default(patch: Patch, fn: Callable[..., Any], keyword: str, value: Any) -> None:
    """Change the default of keyword-only argument ``keyword`` of ``fn`` (through decorators such as
    ``torch.no_grad()``): every module that imported ``fn`` by name sees the change."""
    inner = inspect.unwrap(fn)
    defaults = inner.__kwdefaults__ or {}
    if keyword not in defaults:
        raise ValueError(f"{fn.__qualname__} has no keyword-only default {keyword!r}")
    patch(inner, "__kwdefaults__", {**defaults, keyword: value})


# ---------------------------------------------------------------------- the mutants
RESUME_TESTS = (  # a single-phase family (vae) and a multi-phase one (the GAN's D and G)
    "tests/test_contract.py::test_resume_continues_from_the_checkpoint_to_the_uninterrupted_weights[vae]",
    "tests/test_gan.py::test_resume_mid_gan_training_is_bit_identical",
)


@mutant("trainer-resume-noop", *RESUME_TESTS)
def _resume_noop(patch: Patch) -> None:
    """Trainer._resume does nothing: a resumed run retrains from step 0."""
    from genlab.training.trainer import Trainer

    patch(Trainer, "_resume", lambda self: None)


@mutant("scheduler-state-not-restored", *RESUME_TESTS)
def _scheduler_not_restored(patch: Patch) -> None:
    """Learning-rate schedulers ignore the checkpoint's state: the schedule restarts on resume."""
    import torch

    patch(torch.optim.lr_scheduler.LambdaLR, "load_state_dict", lambda self, state: None)


@mutant("ema-state-not-restored", *RESUME_TESTS)
def _ema_not_restored(patch: Patch) -> None:
    """The EMA ignores the checkpoint's averaged weights: it restarts from the live weights."""
    from genlab.training.ema import EMA

    patch(EMA, "load_state_dict", lambda self, state: None)


@mutant("vae-loss-without-kl", "tests/test_vae.py::test_training_loss_is_recon_plus_beta_kl_on_the_elbos_draw")
def _vae_without_kl(patch: Patch) -> None:
    """VAE.loss trains on the reconstruction term alone (the KL is still logged)."""
    from genlab.models.base import LossOutput
    from genlab.models.vae import VAE

    original = VAE.loss

    def loss(self, batch, phase="main"):  # type: ignore[no-untyped-def]
        out = original(self, batch, phase)
        return LossOutput(out.terms["recon"], out.terms)

    patch(VAE, "loss", loss)


@mutant("vae-kl-warmup-ignored", "tests/test_vae.py::test_kl_warmup_weights_the_kl_in_the_training_loss")
def _vae_warmup_ignored(patch: Patch) -> None:
    """The KL warm-up weight is logged but the loss uses the full beta from the first step."""
    from genlab.models.base import LossOutput
    from genlab.models.vae import VAE

    original = VAE.loss

    def loss(self, batch, phase="main"):  # type: ignore[no-untyped-def]
        out = original(self, batch, phase)
        if "beta" not in out.terms:
            return out
        return LossOutput(out.terms["recon"] + self.config.beta * out.terms["kl"], out.terms)

    patch(VAE, "loss", loss)


@mutant("gan-real-and-fake-swapped", "tests/test_gan.py::test_model_losses_on_known_critic_scores[hinge]")
def _gan_swapped(patch: Patch) -> None:
    """GAN.loss hands its discriminator objective the fake scores as real and the real as fake (the
    objectives themselves stay right)."""
    from genlab.models import gan

    original = gan.GAN._discriminator_loss
    table = gan.DISCRIMINATOR_LOSSES
    swapped = {k: (lambda f: lambda real, fake: f(fake, real))(v) for k, v in table.items()}

    def discriminator_loss(self, x, y, z):  # type: ignore[no-untyped-def]
        gan.DISCRIMINATOR_LOSSES = swapped
        try:
            return original(self, x, y, z)
        finally:
            gan.DISCRIMINATOR_LOSSES = table

    patch(gan.GAN, "_discriminator_loss", discriminator_loss)


@mutant("pix2pix-discriminator-targets-swapped",
        "tests/test_pix2pix.py::test_discriminator_loss_scores_real_pairs_as_real_and_generated_pairs_as_fake[vanilla]")
def _pix2pix_swapped(patch: Patch) -> None:
    """pix2pix's discriminator phase labels real pairs fake and generated pairs real."""
    from genlab.models.base import LossOutput
    from genlab.models.pix2pix import Pix2Pix

    original = Pix2Pix.loss

    def loss(self, batch, phase="generator"):  # type: ignore[no-untyped-def]
        if phase != "discriminator":
            return original(self, batch, phase)
        gan_loss = self._gan_loss
        self._gan_loss = lambda logits, real: gan_loss(logits, not real)
        try:
            out = original(self, batch, phase)
        finally:
            del self._gan_loss
        return LossOutput(out.total, out.terms)

    patch(Pix2Pix, "loss", loss)


@mutant("mdn-scale-read-as-variance", "tests/test_mdn.py::test_nll_of_known_mixture_parameters_against_the_formula")
def _mdn_variance(patch: Patch) -> None:
    """The mixture head takes the square root of its scales (reads sigma as a variance)."""
    from genlab.distributions.heads import MixtureHead

    original = MixtureHead._split

    def split(self, raw):  # type: ignore[no-untyped-def]
        logits, loc, scale = original(self, raw)
        return logits, loc, scale.sqrt()

    patch(MixtureHead, "_split", split)


@mutant("compare-features-arguments-swapped",
        "tests/test_metrics.py::test_compare_features_passes_generated_and_reference_the_right_way_round")
def _compare_swapped(patch: Patch) -> None:
    """compare_features hands every metric (reference, generated): precision and recall swap."""
    import genlab.metrics
    from genlab.registry import Registry

    swapped: Registry[Any] = Registry("metric")
    for name, fn in genlab.metrics.METRICS.items():
        swapped[name] = (lambda f: lambda generated, reference, **kw: f(reference, generated, **kw))(fn)
    patch(genlab.metrics, "METRICS", swapped)


@mutant("mode-threshold-loosened", "tests/test_metrics.py::test_high_quality_means_within_three_sigma_of_a_centre",
        "tests/test_gan.py::test_mode_evaluator_on_ring_data_reports_its_protocol")
def _mode_threshold(patch: Patch) -> None:
    """count_modes calls a sample high quality within 4 sigma (not 3)."""
    from genlab.metrics import modes

    _patch_default(patch, modes.count_modes, "threshold", 4.0)


@mutant("bias-correction-unclipped", "tests/test_bias.py::test_correction_clips_an_impossible_rate_to_zero")
def _bias_unclipped(patch: Patch) -> None:
    """The confusion correction returns the exact solve, negative rates included."""
    import torch

    from genlab.metrics import bias

    patch(bias, "corrected_rates", lambda observed, confusion: torch.linalg.lstsq(
        confusion.T.double(), torch.as_tensor(observed, dtype=torch.float64)[:, None]).solution[:, 0])


@mutant("audit-heldout-misaligned",
        "tests/test_bias.py::test_api_audit_pairs_each_heldout_label_with_the_classifiers_prediction_for_that_image")
def _audit_misaligned(patch: Patch) -> None:
    """api.audit pairs each held-out label with the prediction for the next image."""
    import torch

    from genlab.metrics import bias

    original = bias.bias_audit

    def audit(generated, data_labels, *, heldout_predictions=None, **kw):  # type: ignore[no-untyped-def]
        if heldout_predictions is not None:
            heldout_predictions = torch.roll(heldout_predictions, 1)
        return original(generated, data_labels, heldout_predictions=heldout_predictions, **kw)

    patch(bias, "bias_audit", audit)


@mutant("reach-rate-tolerance-loosened", "tests/test_mdn.py::test_mse_regressor_and_arm_success")
def _reach_loose(patch: Patch) -> None:
    """The conditional evaluator counts a target reached within 0.5 (not 0.05)."""
    from genlab.reports import mdn

    _patch_default(patch, mdn.evaluate_conditional, "tolerance", 0.5)


@mutant("naive-generator-not-trained", "tests/test_naive.py::test_naive_training_collapses_the_ring_to_its_mean")
def _naive_untrained(patch: Patch) -> None:
    """Training a naive generator leaves its weights as they were (every step's update is undone)."""
    from genlab.models.naive import NaiveGenerator
    from genlab.models.base import LossOutput

    original = NaiveGenerator.loss

    def loss(self, batch, phase="main"):  # type: ignore[no-untyped-def]
        out = original(self, batch, phase)
        return LossOutput(out.total * 0, out.terms)

    patch(NaiveGenerator, "loss", loss)


@mutant("iwae-mean-of-weights", "tests/test_vae.py::test_iwae_bound_tightens_with_k_towards_the_exact_likelihood[bernoulli]")
def _iwae_mean(patch: Patch) -> None:
    """VAE.iwae_nll averages the k single-sample bounds instead of taking the log-mean-exp."""
    import torch

    from genlab.models.vae import VAE

    @torch.no_grad()
    def iwae_nll(self, x, k=1000, **_):  # type: ignore[no-untyped-def]
        return torch.stack([-self.elbo(x) for _ in range(k)]).mean(0)

    patch(VAE, "iwae_nll", iwae_nll)


@mutant("vae-sample-detached", "tests/test_vae.py::test_reconstruction_gradient_reaches_the_encoder_through_the_sample")
def _vae_detached(patch: Patch) -> None:
    """The VAE's decoder gets its code detached from the graph: no gradient through the
    reparametrisation, so the encoder learns from the KL term alone."""
    from genlab.models.vae import VAE

    original = VAE.loss

    def loss(self, batch, phase="main"):  # type: ignore[no-untyped-def]
        handle = self.decoder.register_forward_pre_hook(lambda module, args: tuple(a.detach() for a in args))
        try:
            return original(self, batch, phase)
        finally:
            handle.remove()

    patch(VAE, "loss", loss)


CYCLEGAN_ADVERSARIAL = "tests/test_cyclegan.py::test_adversarial_terms_on_known_scores_of_two_distinct_discriminators[least-squares]"


@mutant("cyclegan-cycle-term-dropped",
        "tests/test_cyclegan.py::test_generator_loss_is_adversarial_plus_weighted_cycle_and_identity", CYCLEGAN_ADVERSARIAL)
def _cycle_dropped(patch: Patch) -> None:
    """CycleGAN's generator loss leaves out the cycle-consistency terms (both are zero)."""
    from genlab.models.cyclegan import CycleGAN

    original = CycleGAN.cycle_terms

    def cycle_terms(self, a, b):  # type: ignore[no-untyped-def]
        out = original(self, a, b)
        return {**out, "cycle_a": out["cycle_a"] * 0, "cycle_b": out["cycle_b"] * 0}

    patch(CycleGAN, "cycle_terms", cycle_terms)


@mutant("cyclegan-discriminator-real-and-fake-swapped", CYCLEGAN_ADVERSARIAL)
def _cyclegan_swapped(patch: Patch) -> None:
    """CycleGAN's discriminators are trained with real images as fake and translations as real."""
    from genlab.models import cyclegan

    table = cyclegan.DISCRIMINATOR_LOSSES  # the objectives stay right; their arguments swap
    patch(cyclegan, "DISCRIMINATOR_LOSSES", {k: (lambda f: lambda real, fake: f(fake, real))(v) for k, v in table.items()})


@mutant("cyclegan-generators-judged-by-the-wrong-discriminator", CYCLEGAN_ADVERSARIAL)
def _cyclegan_wrong_judge(patch: Patch) -> None:
    """CycleGAN's generator phase scores G(a) with D_A and F(b) with D_B (each should be judged by
    the discriminator of the domain it translates into)."""
    from genlab.models.cyclegan import CycleGAN

    original = CycleGAN.loss

    def loss(self, batch, phase="generators"):  # type: ignore[no-untyped-def]
        if phase != "generators":
            return original(self, batch, phase)
        d_a, d_b = self.discriminator_a, self.discriminator_b
        self.discriminator_a, self.discriminator_b = d_b, d_a
        try:
            return original(self, batch, phase)
        finally:
            self.discriminator_a, self.discriminator_b = d_a, d_b

    patch(CycleGAN, "loss", loss)


@mutant("stylegan-truncation-towards-zero", "tests/test_stylegan.py::test_truncation_pulls_towards_w_avg_and_psi_zero_draws_the_w_avg_image")
def _truncation_to_zero(patch: Patch) -> None:
    """StyleGAN's truncation pulls w towards 0 (psi * w) instead of towards the mean style w_avg."""
    from genlab.models.stylegan import StyleGAN

    mapping, truncate = StyleGAN.mapping, StyleGAN.truncate

    def truncated_mapping(self, z, *, truncation=1.0):  # type: ignore[no-untyped-def]
        return mapping(self, z) * truncation

    def truncated(self, w, truncation=1.0, truncation_cutoff=None):  # type: ignore[no-untyped-def]
        ws = truncate(self, w)  # psi = 1: every style as it is
        psi = ws.new_ones(ws.shape[1], 1)
        psi[: ws.shape[1] if truncation_cutoff is None else int(truncation_cutoff)] = truncation
        return ws * psi

    patch(StyleGAN, "mapping", truncated_mapping)
    patch(StyleGAN, "truncate", truncated)


@mutant("stylegan-style-mixing-off", "tests/test_stylegan.py::test_training_fakes_mix_two_styles_at_a_random_layer")
def _mixing_off(patch: Patch) -> None:
    """StyleGAN trains without style-mixing regularisation (model.style_mixing_prob is ignored)."""
    from genlab.models.stylegan import StyleGAN

    original = StyleGAN.loss

    def loss(self, batch, phase="generator"):  # type: ignore[no-untyped-def]
        prob = self.config.style_mixing_prob
        self.config.style_mixing_prob = 0.0
        try:
            return original(self, batch, phase)
        finally:
            self.config.style_mixing_prob = prob

    patch(StyleGAN, "loss", loss)


def _condition_dropped(patch: Patch, figure_id: str, words: str) -> None:
    """Figure ``figure_id``'s check with the condition whose sentence contains ``words`` always held:
    the registry hands out a copy of the figure whose check no longer tests it."""
    from genlab.lecture import load_parts
    from genlab.registry import Registry

    figures = load_parts()
    figure = figures[figure_id]

    def check(numbers, budget):  # type: ignore[no-untyped-def]
        return [(text, ok or words in text) for text, ok in figure.check(numbers, budget)]

    cut = dataclasses.replace(figure, check=check)
    getitem = Registry.__getitem__

    def lookup(self, name):  # type: ignore[no-untyped-def]
        return cut if self is figures and name == figure_id else getitem(self, name)

    patch(Registry, "__getitem__", lookup)


LECTURE_CHECK = "tests/test_lecture.py::test_check_fails_on_the_condition_that_is_broken_and_only_there"


@mutant("lecture-cyclegan-check-without-cycle-l1", f"{LECTURE_CHECK}[cyclegan-digits-full-2]")
def _cyclegan_check_cut(patch: Patch) -> None:
    """The cyclegan-digits check no longer requires a -> b -> a to come back (its cycle-L1 condition)."""
    _condition_dropped(patch, "cyclegan-digits", "comes back")


@mutant("lecture-cyclegan-check-without-saturation", f"{LECTURE_CHECK}[cyclegan-digits-full-3]")
def _cyclegan_saturation_cut(patch: Patch) -> None:
    """The cyclegan-digits check no longer requires G(a) to be in domain B (its ink-saturation condition)."""
    _condition_dropped(patch, "cyclegan-digits", "ink saturation")


@mutant("lecture-truncation-check-without-pixel-monotonicity", f"{LECTURE_CHECK}[truncation-full-0]")
def _truncation_pixels_cut(patch: Patch) -> None:
    """The truncation check no longer requires pixel diversity to fall at every psi."""
    _condition_dropped(patch, "truncation", "pixel diversity")


@mutant("lecture-truncation-check-without-psi-zero-floor", f"{LECTURE_CHECK}[truncation-full-2]")
def _truncation_floor_cut(patch: Patch) -> None:
    """The truncation check no longer requires psi = 0 to leave (almost) no diversity."""
    _condition_dropped(patch, "truncation", "psi = 0 keeps")


@mutant("lecture-truncation-check-without-class-guard", f"{LECTURE_CHECK}[truncation-full-3]")
def _truncation_classes_cut(patch: Patch) -> None:
    """The truncation check no longer requires untruncated samples to cover the classes."""
    _condition_dropped(patch, "truncation", "diverse to begin with")


@mutant("lecture-naive-collapse-without-mean-offset", f"{LECTURE_CHECK}[naive-collapse-full-0]",
        "tests/test_lecture.py::test_naive_collapse_fails_for_untrained_generators")
def _naive_mean_cut(patch: Patch) -> None:
    """The naive-collapse check no longer requires the samples to sit at the data mean (an untrained
    generator's narrow samples then pass for collapse)."""
    _condition_dropped(patch, "naive-collapse", "sit at the data mean")


@mutant("explorer-uploads-never-evicted", "tests/test_explore.py::test_uploads_beyond_the_bound_evict_the_oldest")
def _uploads_kept(patch: Patch) -> None:
    """The explorer keeps every uploaded image: its bound on uploads is lifted after construction."""
    from genlab.explore.render import Explorer

    original = Explorer.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        self.max_uploads = 10**9

    patch(Explorer, "__init__", init)


@mutant("checksums-skipped-by-default",
        "tests/test_faults.py::test_checksums_fail_closed_naming_the_file_unless_verify_is_false")
def _checksums_open(patch: Patch) -> None:
    """Loading weights and training state skips the checksum unless asked (verify defaults to False)."""
    from genlab import checkpoint

    _patch_default(patch, checkpoint.load_tensors, "verify", False)
    _patch_default(patch, checkpoint.load_training_state, "verify", False)


# ---------------------------------------------------------------------- running them
@contextlib.contextmanager
def applied(name: str) -> Iterator[None]:
    """Mutant ``name`` patched in for the duration of the block, then undone."""
    undo: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, attribute: str, value: Any) -> None:
        own = vars(obj) if isinstance(obj, type) or inspect.ismodule(obj) else None
        # a class or module: its own entry, or none (the attribute was inherited: delete the override);
        # anything else (a function's __kwdefaults__, an instance): the value itself, set back after
        previous = own.get(attribute, _MISSING) if own is not None else getattr(obj, attribute)
        undo.append((obj, attribute, previous))
        setattr(obj, attribute, value)

    try:
        MUTANTS[name].apply(patch)
        yield
    finally:
        for obj, attribute, value in reversed(undo):
            if value is _MISSING:
                delattr(obj, attribute)
            else:
                setattr(obj, attribute, value)


_MISSING = object()


def pytest_configure(config: Any) -> None:
    """pytest plugin hook (``-p genlab.devtools.mutate``): apply the mutant named in $GENLAB_MUTANT
    for the whole session."""
    name = os.environ.get(ENV_VAR)
    if name:
        if name not in MUTANTS:
            raise ValueError(f"unknown mutant {name!r}; valid: {', '.join(sorted(MUTANTS))}")
        MUTANTS[name].apply(lambda obj, attribute, value: setattr(obj, attribute, value))


@dataclasses.dataclass
class Outcome:
    name: str
    status: str  # "killed" (every named test failed), "survived" (one or more passed) or "error"
    # (the patch no longer applies, or no test ran: nothing was checked)
    passed: list[str]
    failed: list[str]
    seconds: float
    error: str = ""


class _Recorder:
    """pytest plugin object: which tests passed and failed in one session."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            self.failed.append(report.nodeid)
        elif report.passed and report.when == "call":
            self.passed.append(report.nodeid)


def run_mutant(name: str, root: str | Path = ".", *, quiet: bool = True) -> Outcome:
    """Run mutant ``name``'s tests in this process with the mutant applied, then undo it.

    Test modules (and the tests' conftest) are imported afresh for each mutant, so names they import
    from genlab at module level see the mutant; they are dropped from ``sys.modules`` afterwards.
    """
    import pytest

    before = set(sys.modules)
    recorder = _Recorder()
    args = ["-p", "no:cacheprovider", "-p", "no:randomly", "--no-header", "-q" if quiet else "-v",
            "--rootdir", str(root), *(str(Path(root) / t) for t in MUTANTS[name].tests)]
    start = time.perf_counter()
    code, error = None, ""
    try:
        with applied(name), contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            code = pytest.main(args, plugins=[recorder])
    except Exception as exc:  # noqa: BLE001  (a patch that no longer applies: report it, run the others)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        tests_dir = (Path(root) / "tests").resolve()
        for module in set(sys.modules) - before:
            path = getattr(sys.modules[module], "__file__", None)
            if path and Path(path).resolve().is_relative_to(tests_dir):
                del sys.modules[module]
    seconds = time.perf_counter() - start
    if error or int(code) not in (0, 1) or not (recorder.passed or recorder.failed):  # type: ignore[arg-type]
        status = "error"  # a patch that no longer applies, a usage or collection problem, or no test ran
        error = error or f"pytest exit code {int(code)}: {len(recorder.passed) + len(recorder.failed)} tests ran"  # type: ignore[arg-type]
    else:
        status = "killed" if not recorder.passed else "survived"
    return Outcome(name, status, recorder.passed, recorder.failed, seconds, error)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/mutate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="mutants to run (default: all)")
    p.add_argument("--root", default=str(ROOT), help="repository root (the folder holding tests/)")
    p.add_argument("--list", action="store_true", help="list the mutants and their tests")
    p.add_argument("--json", help="also write the outcomes to this JSON file")
    p.add_argument("--verbose", action="store_true", help="show pytest's output")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in MUTANTS]
    if unknown:
        print(f"unknown mutant(s) {', '.join(unknown)}; valid: {', '.join(sorted(MUTANTS))}", file=sys.stderr)
        return 2
    names = args.names or list(MUTANTS)
    if args.list:
        for n in names:
            print(f"{n}: {MUTANTS[n].description}")
            for t in MUTANTS[n].tests:
                print(f"    {t}")
        return 0
    outcomes = []
    for n in names:
        out = run_mutant(n, args.root, quiet=not args.verbose)
        outcomes.append(out)
        print(f"{out.status:>8}  {n}  ({out.seconds:.1f} s)" + (f"\n          {out.error}" if out.error else "")
              + "".join(f"\n          passed anyway: {t}" for t in out.passed), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=2))
    return 0 if all(o.status == "killed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
