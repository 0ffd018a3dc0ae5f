"""Feature extractors for sample-quality metrics, by name (``genlab.registry.FEATURE_EXTRACTORS``).

* ``classifier`` (default): the penultimate features of a trained genlab ``classifier`` run — the
  offline, dataset-specific extractor (for MNIST-like data it separates digits far better than
  Inception, and needs no download). ``path`` names its run or model folder.
* ``inception``: Inception-v3 pool features through torch-fidelity, only from a local weights file
  (``path``); genlab never downloads weights at run time.
* ``pixels``: the flattened images — a weak baseline, and handy in tests.

An extractor maps images (N, C, H, W) in [0, 1] to features (N, F) in batches, without gradients,
and carries a ``description`` that goes into every metric's protocol.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from ..batching import map_batches
from ..errors import ConfigError, DataError
from ..registry import FEATURE_EXTRACTORS, register_feature_extractor


@dataclasses.dataclass
class FeatureExtractor:
    name: str
    fn: Callable[[Tensor], Tensor]
    description: str
    batch_size: int = 500
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    def __call__(self, images: Tensor) -> Tensor:
        if images.dim() != 4:
            raise DataError(f"feature extractor {self.name!r} expects images (N, C, H, W), got shape {tuple(images.shape)}")
        return map_batches(lambda x: self.fn(x).flatten(1).float(), images, batch_size=self.batch_size, device=self.device)


def get_extractor(name: str = "classifier", **options: Any) -> FeatureExtractor:
    """Build the registered extractor ``name`` (options: ``path``, ``device``, ``batch_size``)."""
    return FEATURE_EXTRACTORS.get(name)(**options)


@register_feature_extractor("pixels")
def pixels(*, device: str = "cpu", batch_size: int = 500, **_: Any) -> FeatureExtractor:
    return FeatureExtractor("pixels", lambda x: x.flatten(1), "pixels (flattened, [0,1])", batch_size, torch.device(device))


@register_feature_extractor("classifier")
def classifier(*, path: str | Path | None = None, device: str = "cpu", batch_size: int = 500, **_: Any) -> FeatureExtractor:
    if path is None:
        raise ConfigError(
            "the classifier feature extractor needs path=RUN of a trained classifier (train one with "
            "genlab train classifier --data mnist --out RUN, then genlab evaluate GAN_RUN --extractor-path RUN "
            "or set $GENLAB_FEATURE_CLASSIFIER=RUN)"
        )
    from ..checkpoint import load

    from ..latent.protocols import require

    model = require(load(path, device=device), "features", purpose=f"the classifier feature extractor ({path})")
    model.eval()
    return FeatureExtractor("classifier", model.features, f"classifier penultimate features ({Path(path)})",
                            batch_size, torch.device(device))


@register_feature_extractor("inception")
def inception(*, path: str | Path | None = None, device: str = "cpu", batch_size: int = 100, **_: Any) -> FeatureExtractor:
    if path is None or not Path(path).is_file():
        raise ConfigError("the inception extractor needs path=FILE, a local Inception-v3 weights file "
                          "(torch-fidelity's pt_inception-2015-12-05); genlab never downloads weights")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise ConfigError("the inception extractor needs the optional package torch-fidelity (pip install torch-fidelity)") from None
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)).to(device).eval()

    def fn(x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB
        return net((x.clamp(0, 1) * 255).round().to(torch.uint8))[0]

    return FeatureExtractor("inception", fn, f"inception-v3-compat pool3 2048 ({Path(path).name})", batch_size, torch.device(device))
