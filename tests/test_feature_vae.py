"""The feature-consistent VAE: its loss is the VAE's plus a weighted feature distance computed by a frozen
network on a second draw of z; the network is loaded by the caller, never trained or saved."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab import build_model, load
from genlab.errors import ConfigError
from genlab.models.vae import VAE
from genlab.runtime import batch_randn

SHAPE = [3, 16, 16]


def _vae(**kw):
    torch.manual_seed(0)
    return build_model("feature-vae", {"image_shape": SHAPE, "channels": [4, 8], "latent_dim": 3, **kw})


def _attributes():
    torch.manual_seed(1)
    return build_model("attributes", {"image_shape": SHAPE, "num_attributes": 2, "widths": [4, 8], "stem_stride": 1})


class Pooling(nn.Module):
    """A stand-in judge: the image itself and its 4x4 average pool."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def feature_maps(self, x):
        return [self.scale * x, self.scale * nn.functional.avg_pool2d(x, 4)]


def _batch():
    return (torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(2)),)


def test_loss_is_the_vaes_plus_the_weighted_feature_distance_of_the_same_draw():
    model, judge = _vae(feature_weight=2.5), Pooling()
    model.set_feature_network(judge)
    (x,) = _batch()
    torch.manual_seed(7)
    out = model.loss((x,))
    torch.manual_seed(7)
    plain = VAE.loss(model, (x,))  # the VAE's own terms, on the same draw of z
    torch.manual_seed(7)
    mu, logvar = model.posterior(x)
    z = mu + batch_randn(mu.shape) * torch.exp(0.5 * logvar)
    x_hat = model.likelihood(z).mean.clamp(0, 1)  # the reconstruction the pixel term scored
    by_hand = ((x_hat - x).square().flatten(1).mean(1)
               + (nn.functional.avg_pool2d(x_hat, 4) - nn.functional.avg_pool2d(x, 4)).square().flatten(1).mean(1)).mean()
    assert torch.allclose(out.terms["features"], by_hand) and torch.equal(out.terms["recon"], plain.terms["recon"])
    assert torch.equal(out.terms["kl"], plain.terms["kl"])
    assert torch.allclose(out.total, plain.total + 2.5 * by_hand)
    out.total.backward()
    assert judge.scale.grad is None  # frozen: the judge is never trained
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert not any(k.startswith("_network") for k in model.state_dict())


def test_feature_layers_pick_maps_and_weight_zero_is_the_plain_vae():
    model = _vae(feature_layers=[1])
    model.set_feature_network(Pooling())
    (x,) = _batch()
    full = model.feature_distance(x, x.flip(0))
    assert torch.allclose(full, (nn.functional.avg_pool2d(x, 4) - nn.functional.avg_pool2d(x.flip(0), 4)).square().flatten(1).mean(1))
    off = _vae(feature_weight=0.0)  # no network needed
    torch.manual_seed(3)
    a = off.loss((x,)).total
    torch.manual_seed(3)
    assert torch.equal(a, VAE.loss(off, (x,)).total)


def test_a_missing_network_is_one_clear_error_and_the_saved_model_is_a_vae_without_it(tmp_path):
    model = _vae()
    with pytest.raises(ConfigError, match="needs a feature network"):
        model.loss(_batch())
    model.set_feature_network(_attributes())
    model.loss(_batch()).total.backward()
    model.save_pretrained(str(tmp_path / "m"))
    again = load(tmp_path / "m")
    assert type(again).__name__ == "FeatureVAE" and torch.equal(again.sample(2, generator=torch.Generator().manual_seed(0)),
                                                              model.eval().sample(2, generator=torch.Generator().manual_seed(0)))


def test_attribute_feature_maps_go_fine_to_coarse():
    maps = _attributes().feature_maps(torch.rand(2, *SHAPE))
    assert [tuple(m.shape[1:]) for m in maps] == [(4, 16, 16), (4, 16, 16), (8, 8, 8)]


def test_genlab_train_loads_the_network_and_refuses_one_without_feature_maps(tmp_path):
    from genlab import api
    from genlab.latent.protocols import MissingCapability

    judge = tmp_path / "judge"
    _attributes().save_pretrained(str(judge))
    images = torch.rand(32, *SHAPE, generator=torch.Generator().manual_seed(4))
    folder = tmp_path / "faces"
    folder.mkdir()
    from PIL import Image
    for i, img in enumerate(images):
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).astype("uint8")).save(folder / f"{i:03d}.png")
    common = ["train.max_steps=2", "train.batch_size=8", "train.progress=false", "train.report=false", "model.channels=[4,8]",
              "model.latent_dim=3", "data.image_size=16"]
    summary = api.train("feature-vae", data=f"folder:{folder}", out=tmp_path / "run", overrides=[*common, f"model.feature_network={judge}"])
    assert summary["steps"] == 2
    clf = tmp_path / "clf"
    build_model("classifier", {"image_shape": SHAPE, "num_classes": 2}).save_pretrained(str(clf))
    with pytest.raises(MissingCapability, match="feature_maps"):
        api.train("feature-vae", data=f"folder:{folder}", out=tmp_path / "run2", overrides=[*common, f"model.feature_network={clf}"])
