"""The lecture, reproduced: every figure by one command (``genlab lecture``).

One module per part of the lecture (``heads``, ``generators``, ``gans``, ``translation``, ``latent``,
``vaes``, ``social``, and any module added beside them) registers its figures with
:func:`lecture_figure`: an id, the slides, the claim, a ``make`` function and a ``check`` that fails
when the claim does not hold. :func:`run_lecture` makes them, checks them and writes one
self-contained HTML page. Adding a figure is one decorated function in the module of its part.
"""
from __future__ import annotations

from .core import BUDGETS, FIGURES, Context, DataAbsent, Figure, lecture_figure, shared_run
from .runner import FigureResult, load_parts, ordered_figures, run_figure, run_lecture, write_page

__all__ = ["BUDGETS", "FIGURES", "Context", "DataAbsent", "Figure", "lecture_figure", "shared_run", "load_parts",
           "ordered_figures", "FigureResult", "run_figure", "run_lecture", "write_page"]
