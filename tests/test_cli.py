from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import COMMANDS, build_parser, main
from genlab.data.base import ArrayDataset
from genlab.errors import DataError


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("train", "sample", "reconstruct", "evaluate", "plot-latent"):
        assert name in out


@pytest.mark.parametrize("name", sorted(build_parser() and COMMANDS))
def test_every_subcommand_has_complete_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def test_dry_run_resolves_builds_and_computes_one_loss(capsys, tmp_path):
    code = main(["train", "vae", "--dry-run", "--out", str(tmp_path / "r"), "--model.latent_dim", "2", "--data.limit=256"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["spec"]["model_config"]["latent_dim"] == 2
    assert summary["spec"]["model_config"]["image_shape"] == [1, 28, 28]  # filled from the data
    assert summary["train_examples"] == 256 and summary["test_examples"] == 1000
    assert summary["first_batch_loss"]["main"] > 0
    assert not (tmp_path / "r").exists()  # a dry run writes nothing


@pytest.mark.parametrize("argv, message", [
    (["train", "vea"], "unknown model 'vea'"),
    (["train", "vae", "--dry-run", "--train.lrr=1"], "unknown field 'train.lrr'"),
    (["train", "vae", "--dry-run", "--data", "/no/such/path"], "/no/such/path"),
    (["train", "vae", "--dry-run", "--model.latent_dim=0"], "latent_dim must be >= 1"),
    (["sample", "/no/such/run"], "no such model or run folder"),
])
def test_bad_input_is_one_line_error_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_train_then_inspect_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "vae", "--out", str(run), "--data.limit=256", "--model.hidden_dims=[64,32]",
                 "--train.max_steps=12", "--train.batch_size=64", "--train.progress=false",
                 "--train.eval_every=4", "--train.keep_best=loss"]) == 0
    for name in ("run.json", "metrics.csv", "metrics.json", "samples.png", "reconstructions.png", "latent.png",
                 "curves.png", "model/config.json", "model/model.safetensors", "best/model.safetensors"):
        assert (run / name).is_file(), name
    assert main(["train", "vae", "--out", str(run)]) == 2  # refuses to overwrite a run
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["evaluate", str(run), "-k", "5", "--limit", "50"]) == 0
    metrics = json.loads((run / "evaluation.json").read_text())
    assert metrics["examples"] == 50 and metrics["iwae_k"] == 5
    assert metrics["elbo"] == pytest.approx(-(metrics["recon_nll"] + metrics["kl"]), rel=1e-6)
    # five importance samples give a tighter bound than the ELBO (measured: 499.6 vs 505.1 nats; a
    # mean over the k weights instead of their log-mean-exp would sit within ~1 nat of -elbo)
    assert metrics["iwae_nll"] < -metrics["elbo"] - 2.0
    assert main(["evaluate", str(run / "best"), "--limit", "50"]) == 0  # finds the run's data from inside it
    assert main(["plot-latent", str(run), "-o", str(tmp_path / "z.png")]) == 0
    assert main(["reconstruct", str(run), "-o", str(tmp_path / "r.png")]) == 0
    assert all((tmp_path / f).is_file() for f in ("s.png", "z.png", "r.png"))


def test_report_skipped_in_training_is_drawn_later_and_its_cost_recorded(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["--data.limit=256", "--model.hidden_dims=[32]", "--train.batch_size=64", "--train.progress=false"]
    assert main(["train", "vae", "--out", str(run), "--train.max_steps=4", "--train.report=false", *base]) == 0
    assert not (run / "reconstructions.png").exists() and not (run / "latent.png").exists()
    trained = json.loads((run / "metrics.json").read_text())
    assert "report_seconds" not in trained
    assert main(["report", str(run)]) == 0
    assert (run / "reconstructions.png").is_file() and (run / "latent.png").is_file()
    merged = json.loads((run / "metrics.json").read_text())
    assert merged["report_seconds"] > 0 and merged["steps"] == trained["steps"] == 4  # training's numbers kept
    # the report is a resumable setting; a run that draws it logs its cost in metrics.json
    assert main(["train", "--resume", str(run), "--train.max_steps=6", "--train.report=true"]) == 0
    assert json.loads((run / "metrics.json").read_text())["report_seconds"] > 0
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no run.json" in capsys.readouterr().err


def test_evaluate_a_gan_in_the_features_of_a_classifier_run(tmp_path, capsys, monkeypatch):
    from genlab import api
    from genlab.errors import ConfigError

    monkeypatch.delenv("GENLAB_FEATURE_CLASSIFIER", raising=False)
    clf, gan = tmp_path / "clf", tmp_path / "gan"
    quick = ["--data.limit=128", "--train.batch_size=32", "--train.progress=false"]
    assert main(["train", "classifier", "--out", str(clf), "--model.channels=[4,8]", "--model.hidden_dim=16",
                 "--train.max_steps=2", *quick]) == 0
    assert main(["train", "gan", "--out", str(gan), "--model.latent_dim=4", "--model.generator_channels=4",
                 "--model.discriminator_channels=4", "--train.max_steps=2", *quick]) == 0
    with pytest.raises(ConfigError, match="needs path=RUN of a trained classifier"):
        model, spec = api.load_run(gan)
        api.evaluate(model, api.run_data(spec, None).head(8), extractor="classifier", extractor_path=None)
    assert main(["evaluate", str(gan), "--limit", "40", "--extractor-path", str(clf)]) == 0
    protocol = json.loads((gan / "evaluation.json").read_text())["protocol"]
    assert protocol["num_generated"] == 40 and str(clf) in protocol["extractor"] and protocol["feature_dim"] == 16
    assert main(["evaluate", str(gan), "--limit", "40", "--extractor", "pixels", "-o", str(tmp_path / "px.json")]) == 0
    assert json.loads((tmp_path / "px.json").read_text())["protocol"]["feature_dim"] == 28 * 28
    # the bias audit: the GAN's digit rates, as the classifier labels them, vs the training labels
    assert main(["audit", str(gan), "--classifier", str(clf), "-n", "64"]) == 0
    audit = json.loads((gan / "audit-class.json").read_text())
    train_labels = api.run_data(api.read_run(gan), None, "train").y
    data_rates = torch.bincount(train_labels, minlength=10).double() / len(train_labels)
    assert [row["class"] for row in audit["classes"]] == [str(d) for d in range(10)]
    assert [row["data_rate"] for row in audit["classes"]] == pytest.approx(data_rates.tolist())
    assert sum(row["generated_rate"] for row in audit["classes"]) == pytest.approx(1.0)
    assert audit["protocol"]["generated"] == 64 and audit["protocol"]["heldout"] == len(api.run_data(api.read_run(gan), None).y)
    # multi-attribute labels need a column name
    multi = ArrayDataset((torch.rand(8, 1, 28, 28), torch.zeros(8, 2, dtype=torch.long)), {"name": "faces", "attr_names": ["Smiling", "Male"]})
    model, _ = api.load_run(gan)
    classifier, _ = api.load_run(clf)
    with pytest.raises(DataError, match="name one with --attr \\(valid: Smiling, Male\\)"):
        api.audit(model, classifier, multi, num_samples=8)


def _model_names() -> list[str]:
    import genlab.models  # noqa: F401  (fills the registry)
    from genlab.registry import MODELS

    return sorted(MODELS)


@pytest.mark.parametrize("name", _model_names())
def test_train_model_help_lists_the_models_fields_with_defaults_and_help(name, capsys):
    """``genlab train MODEL --help`` documents MODEL's own fields (the family's default beside each, and the
    line its source writes for it), then the data and train fields, not only the generic options."""
    import dataclasses

    from genlab.config import field_help, merge
    from genlab.data.base import DataConfig
    from genlab.cli.train import _value
    from genlab.registry import MODELS
    from genlab.training.trainer import TrainConfig

    with pytest.raises(SystemExit) as info:
        main(["train", name, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    cls = MODELS.get(name)
    for section, config_class in (("model", cls.config_class), ("data", DataConfig), ("train", TrainConfig)):
        defaults = merge(config_class().to_dict(), getattr(cls, "defaults", {}).get(section, {}))
        helps = field_help(config_class)
        for field in dataclasses.fields(config_class):
            assert f"--{section}.{field.name}={_value(defaults[field.name])}\n" in out, (section, field.name)
            assert helps[field.name] in flat, (section, field.name)
    assert "--train.max_steps=none" in out and "when set, overrides epochs" in flat


def test_train_model_help_lists_a_configs_own_fields_before_inherited_ones(capsys):
    """cGAN's two fields come before the GAN fields it inherits, and every GAN family's shared
    augmentation fields after the family's own (FastGAN re-declares ``augment``: it stays with them)."""
    def model_lines(name: str) -> list[str]:
        with pytest.raises(SystemExit):
            main(["train", name, "--help"])
        out = capsys.readouterr().out
        return [line.split("=")[0].strip() for line in out.splitlines() if line.startswith("  --model.")]

    cgan = model_lines("cgan")
    assert cgan[:2] == ["--model.num_classes", "--model.label_dim"]
    assert cgan[-5:] == ["--model.augment", "--model.augment_p", "--model.augment_ramp_steps",
                         "--model.augment_target", "--model.augment_speed_kimg"]
    fastgan = model_lines("fastgan")
    assert fastgan[0] == "--model.latent_dim" and fastgan[-5] == "--model.augment"


def test_field_help_reads_metadata_then_the_comment_beside_then_the_block_above():
    import dataclasses

    from genlab.config import Config, field_help

    @dataclasses.dataclass
    class Example(Config):
        # the width of
        # every layer
        width: int = 4
        depth: int = 2  # how many layers
        rate: float = dataclasses.field(default=0.1, metadata={"help": "dropout rate"})  # not this one
        plain: int = 1

    assert field_help(Example) == {"width": "the width of every layer", "depth": "how many layers",
                                   "rate": "dropout rate", "plain": ""}
def test_figure_writes_under_runs_by_default_and_refuses_a_run_it_cannot_use(tmp_path, monkeypatch, capsys):
    """``genlab figure`` is the lecture runner on one id: its files go to the ignored runs/figures/ID
    (never ./figures), and --run reaches only the figures that take one."""
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    assert main(["figure", "random-generator", "--quick"]) == 0
    assert (tmp_path / "runs" / "figures" / "random-generator" / "random-generator.png").is_file()
    assert not (tmp_path / "figures").exists()
    out = capsys.readouterr().out
    assert "random-generator: pass" in out and "held: output |excess kurtosis|" in out
    assert "runs/" in (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()

    assert main(["figure", "random-generator", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "takes no trained run" in err and "robot-arm" in err and "adversarial" in err and len(err.strip().splitlines()) == 1


def test_figure_run_of_the_wrong_family_is_one_clear_error(tmp_path, capsys):
    from genlab import build_model

    build_model("naive", {"x_dim": 2, "latent_dim": 2}).save_pretrained(str(tmp_path / "naive"))
    assert main(["figure", "robot-arm", "--quick", "--run", str(tmp_path / "naive"), "-o", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "holds a 'naive' model; this figure takes a mdn run" in out and "robot-arm: error" in out
