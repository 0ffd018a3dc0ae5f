"""``genlab explore``: a latent-space explorer in the browser, served from localhost.

One page (no build step, no external assets) drives any model that decodes a latent code:
a sample grid, lerp/slerp between seeds or uploaded images, attribute vectors, the decoded plane
of a 2-D latent space and, for StyleGAN, truncation and style mixing. Every control change fetches
one PNG that :func:`render` draws with genlab's latent tools, so the page and Python agree pixel
for pixel. ``open_run`` loads a run folder (weights from safetensors, never code).
"""
from .render import BadParameter, Explorer, Stopping, View, is_stylegan, png_bytes, read_upload, render, seed_codes
from .server import ExploreServer, serve

__all__ = ["BadParameter", "Explorer", "ExploreServer", "Stopping", "View", "is_stylegan", "open_run", "png_bytes",
           "read_upload", "render", "seed_codes", "serve"]


def open_run(run: str, *, data: str | None = None, labels: list[str] | None = None, device: str = "cpu",
             ema: bool = True, **options) -> Explorer:
    """An :class:`Explorer` for a run folder (or a model folder). Attribute vectors come from the
    run's training data (or ``data``) when it has labels; ``labels`` picks which ones the page offers.
    Attribute vectors are cached in ``explore-cache/`` of the run folder (of the model folder when it
    belongs to no run), so a restarted explorer does not project the labelled images again."""
    import logging
    from pathlib import Path

    from .. import api
    from ..errors import GenlabError

    model, spec = api.load_run(run, ema=ema, device=device)
    labelled = None
    if data is not None or spec is not None:
        try:
            labelled = api.run_data(spec, data, "train")
        except GenlabError as exc:
            if labels or data is not None:
                raise
            logging.getLogger(__name__).warning("no attribute slider: the run's data cannot be loaded (%s)", exc)
    folders = (Path(run), *Path(run).parents[:2])
    root = next((folder for folder in folders if (folder / api.RUN_FILE).is_file()), Path(run))
    options.setdefault("cache_dir", root / "explore-cache")
    return Explorer(model, labelled=labelled, attributes=labels, name=getattr(model, "registry_name", ""), **options)
