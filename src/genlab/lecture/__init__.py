"""The lecture, reproduced: every figure by one command (``genlab lecture``).

One module per part of the lecture (``heads``, ``generators``, ``gans``, ``translation``, ``latent``,
``vaes``, ``social``, and any module added beside them) registers its figures with
:func:`lecture_figure`: an id, the slides, the claim, a ``make`` function and a ``check`` that fails
when the claim does not hold. :func:`run_lecture` makes them, checks them and writes one
self-contained HTML page. Adding a figure is one decorated function in the module of its part.
"""
from __future__ import annotations

import importlib
import pkgutil

from .core import BUDGETS, FIGURES, Context, DataAbsent, Figure, lecture_figure, shared_run

# modules of this package that hold machinery, not figures
_MACHINERY = {"core", "runner", "shared", "plots"}


def load_parts() -> dict[str, Figure]:
    """Import every part module of the lecture (which registers its figures); returns the registry."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _MACHINERY and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return FIGURES


def ordered_figures() -> list[Figure]:
    """All figures in lecture order: by first slide, then in the order their part declares them."""
    figures = list(load_parts().values())
    return sorted(figures, key=lambda f: (f.first_slide, figures.index(f)))


from .runner import FigureResult, run_figure, run_lecture, write_page  # noqa: E402

__all__ = ["BUDGETS", "FIGURES", "Context", "DataAbsent", "Figure", "lecture_figure", "shared_run", "load_parts",
           "ordered_figures", "FigureResult", "run_figure", "run_lecture", "write_page"]
