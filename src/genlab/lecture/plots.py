"""The drawing primitives the lecture's parts use (titled image panels, curves, 2-D code maps,
scatters), re-exported from :mod:`genlab.viz`, where they live beside the others: they take
tensors and arrays and run no model. A family's own pictures come from ``genlab.reports``."""
from __future__ import annotations

from ..viz import curves, grouped_bars, image_panels, latent_map, plot_samples_vs_data, scatter_panels

__all__ = ["curves", "grouped_bars", "image_panels", "latent_map", "plot_samples_vs_data", "scatter_panels"]
