from __future__ import annotations

import json

import pytest

from genlab.api import resolve
from genlab.config import apply_overrides, load_config_file, parse_override
from genlab.data import DataConfig
from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.models.vae import VAEConfig
from genlab.registry import MODELS
from genlab.training import TrainConfig


def test_configs_validate_on_construction_with_readable_errors():
    with pytest.raises(ConfigError, match="latent_dim must be >= 1"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="must be one of"):
        VAEConfig.from_dict({"likelihood": "poisson"})
    with pytest.raises(ConfigError, match="must be an integer"):
        VAEConfig.from_dict({"latent_dim": 2.5})
    with pytest.raises(ConfigError, match="unknown field.*latent_size.*valid:.*latent_dim"):
        VAEConfig.from_dict({"latent_size": 2})


def test_json_roundtrip_and_typed_coercion():
    config = VAEConfig.from_dict({"image_shape": [3, 32, 32], "hidden_dims": "64,32", "beta": "0.5"})
    assert config.image_shape == (3, 32, 32) and config.hidden_dims == (64, 32) and config.beta == 0.5
    assert VAEConfig.from_dict(json.loads(config.to_json())) == config


def test_overrides_are_typed_and_checked_against_fields():
    assert parse_override("--model.latent_dim=2") == (["model", "latent_dim"], 2)
    assert parse_override("train.grad_clip=null") == (["train", "grad_clip"], None)
    schema = {"model": VAEConfig, "train": TrainConfig, "data": DataConfig}
    out = apply_overrides({}, ["model.latent_dim=2", "train.betas=[0.5,0.99]", "data.options.radius=2"], schema)
    assert out == {"model": {"latent_dim": 2}, "train": {"betas": [0.5, 0.99]}, "data": {"options": {"radius": 2}}}
    with pytest.raises(ConfigError, match="unknown field 'train.lrr'.*lr"):
        apply_overrides({}, ["train.lrr=1"], schema)
    with pytest.raises(ConfigError, match="unknown config section 'modle'"):
        apply_overrides({}, ["modle.latent_dim=1"], schema)


def test_config_file_layers_under_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nlatent_dim = 4\narchitecture = "conv"\n[train]\nepochs = 3\nlr = 0.01\n')
    spec, explicit = resolve("vae", config_file=path, overrides=["train.lr=0.002"])
    assert spec.model_config["latent_dim"] == 4 and spec.train.epochs == 3 and spec.train.lr == 0.002
    assert spec.data.binarize == "dynamic"  # the VAE family's default
    assert {"latent_dim", "architecture"} <= explicit
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config_file(bad)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        build_model("vea")
    assert "unknown model 'vea'" in str(info.value)
    assert all(name in str(info.value) for name in MODELS)


# every preset shipped in configs/, with the model it is written for
SHIPPED_CONFIGS = {"ae_celeba64": "autoencoder", "vae_celeba64": "vae", "dcgan_mnist": "gan",
                   "gan_ring8": "gan", "gan_grid25": "gan",
                   "cyclegan_celeba_eyeglasses": "cyclegan", "cyclegan_facades": "cyclegan",
                   "cyclegan_mnist_usps": "cyclegan", "cyclegan_mnist_usps_cycada": "cyclegan",
                   "cyclegan_mnist_usps_cycada_d3": "cyclegan", "stylegan_celeba32": "stylegan", "stylegan_mnist32": "stylegan",
                   "fastgan_celeba64": "fastgan"}


def test_shipped_configs_validate_and_toy_presets_build(tmp_path):
    from pathlib import Path

    from genlab import api

    folder = Path(__file__).resolve().parents[1] / "configs"
    files = {p.stem: p for p in folder.glob("*.toml")}
    assert set(files) == set(SHIPPED_CONFIGS), "add new presets in configs/ to SHIPPED_CONFIGS"
    for stem, path in files.items():
        spec, _ = resolve(SHIPPED_CONFIGS[stem], config_file=path)
        if spec.data.name in ("ring8", "grid25"):  # toy data needs no files: build it and take one batch
            summary = api.train(SHIPPED_CONFIGS[stem], config_file=path, out=tmp_path / stem, dry_run=True,
                                overrides=["data.size=2048"])
            assert summary["dry_run"] and all(v == v for v in summary["first_batch_loss"].values())


def test_none_is_a_value_where_documented_and_none_where_optional():
    """``none`` is a value of data.binarize and model.norm, and means None for optional fields."""
    spec, _ = resolve("vae", overrides=["--data.binarize=none", "--model.norm=none", "--train.max_steps=none",
                                        "--train.grad_clip=None", "--train.keep_best=none"])
    assert spec.data.binarize == "none" and spec.model_config["norm"] == "none"
    assert spec.train.max_steps is None and spec.train.grad_clip is None and spec.train.keep_best is None
    spec, _ = resolve("pix2pix", overrides=["--model.norm=none"])
    assert spec.model_config["norm"] == "none"
    with pytest.raises(ConfigError, match="latent_dim must be an integer"):
        resolve("vae", overrides=["--model.latent_dim=none"])


@pytest.mark.parametrize("override, message", [
    ("--model.hidden_dims=[512,-3]", "hidden_dims entries must be >= 1"),
    ("--model.channels=[0]", "channels entries must be >= 1"),
    ("--train.lr=inf", "lr must be a finite number"),
    ("--train.lr=nan", "lr must be"),
    ("--train.grad_clip=inf", "grad_clip must be a finite number"),
    ("--model.beta=-inf", "beta must be"),
    ("--train.weight_decay=-1", "weight_decay must be >= 0"),
    ("--train.min_lr_ratio=2", "min_lr_ratio must be in"),
])
def test_every_field_is_range_checked_before_anything_runs(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve("vae", overrides=[override])
    assert "\n" not in str(info.value)


def test_a_misspelt_dataset_lists_the_names_and_a_missing_metric_fails_the_dry_run(tmp_path):
    from genlab import api
    from genlab.data.base import data_config_from_spec
    from genlab.errors import DataError

    with pytest.raises(DataError, match="unknown dataset 'mnsit'.*mnist-embedded"):
        data_config_from_spec("mnsit")
    assert data_config_from_spec(str(tmp_path)).path == str(tmp_path)  # an existing path is a path
    with pytest.raises(ConfigError, match="keep_best='accuracy' is not among the evaluation metrics: .*elbo"):
        api.train("vae", out=tmp_path / "r", dry_run=True, overrides=["--data.limit=64", "--train.keep_best=accuracy"])
    assert not (tmp_path / "r").exists()


def _strings(value, where: str):
    """Every string inside a parsed config value, with where it sits."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def test_shipped_configs_hold_no_machine_or_checkout_paths_and_validate():
    """A preset names its data (a registered dataset, found through $GENLAB_DATA) or leaves the path to
    the command line (--data NAME:PATH, --data.options.b=npz:PATH): a path in a config would hold only on
    the machine, or in the checkout layout, it was written on (``../shared/data/...``)."""
    from pathlib import Path

    from genlab.config import load_config_file
    from genlab.registry import DATASETS

    folder = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(folder.iterdir())
    assert files
    for path in files:
        assert path.suffix in (".toml", ".json"), f"{path.name}: configs/ holds config files only"
        raw = load_config_file(path)
        assert raw.get("data", {}).get("path") is None, f"{path.name}: data.path belongs on the command line"
        for where, text in _strings(raw.get("data", {}), "data"):
            name, _, rest = text.partition(":")
            for part in (text, rest) if name in DATASETS else (text,):
                assert not ("/" in part or "\\" in part or part.startswith((".", "~"))), \
                    f"{path.name}: {where} = {text!r} is a path; name a dataset or pass the path on the command line"
        stem = path.stem
        assert stem in SHIPPED_CONFIGS, "add new presets in configs/ to SHIPPED_CONFIGS"
        spec, _ = resolve(SHIPPED_CONFIGS[stem], config_file=path)  # every section validates
        assert spec.model == SHIPPED_CONFIGS[stem]
