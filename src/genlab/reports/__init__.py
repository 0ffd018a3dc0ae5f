"""Evaluators and end-of-training reporters, one module per family, found by registry.

An evaluator (``genlab evaluate``) is ``fn(model, test_data, **options) -> dict``; a reporter
(``genlab train`` at the end) is ``fn(model, run_dir, train_data, test_data) -> dict`` and writes the
family's figures into the run folder. Each module registers its functions on import; importing this
package registers them all. Models never import this package: reports sit above them.
"""
from importlib import import_module

from .autoencoder import encode_dataset, latent_figure, reconstruction_figure

# One module per family; each registers its evaluator and reporter with the registry on import.
_FAMILIES: list[str] = ["autoencoder", "vae", "gan", "stylegan", "cyclegan", "naive", "mdn", "pix2pix", "classifier",
                       "fastgan"]
for _name in _FAMILIES:
    import_module(f"{__name__}.{_name}")

__all__ = ["encode_dataset", "latent_figure", "reconstruction_figure"]
