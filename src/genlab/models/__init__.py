"""Model families. Importing this package registers every family in :data:`genlab.MODELS`."""
from importlib import import_module

from .base import GenerativeModel, LossOutput, Phase, build_model

# One module per family; each registers itself with @register_model on import.
_FAMILIES: list[str] = ["autoencoder", "vae", "feature_vae", "gan", "classifier", "pix2pix", "cyclegan", "mdn", "naive", "stylegan", "fastgan", "sentence_vae", "attributes", "contrastive"]
for _name in _FAMILIES:
    import_module(f"{__name__}.{_name}")

__all__ = ["GenerativeModel", "LossOutput", "Phase", "build_model"]
