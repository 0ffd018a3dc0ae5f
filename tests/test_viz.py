"""The pictures a new user reads first say what they show: curves.png has step axes and draws a few
evaluations as points (no line that reads as a trend), rows and colours are labelled
(reconstructions.png, cycle.png, modes.png, samples.png captions), interpolate.png is readable."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genlab.viz
from genlab import build_model
from genlab.grids import save_image_grid


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures genlab.viz saves, kept open for inspection."""
    kept = []

    def keep(fig, path, *args, **kw):
        kept.append(fig)
        fig.savefig(path)
        return path

    monkeypatch.setattr(genlab.viz, "save_figure", keep)
    yield kept
    for fig in kept:
        genlab.viz._pyplot().close(fig)


def test_curves_have_step_axes_and_few_points_are_markers(tmp_path, figures):
    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 41)] + [{"step": 20, "eval/loss": 0.5}, {"step": 40, "eval/loss": 0.3}]
    genlab.viz.plot_history(history, tmp_path / "curves.png")
    (fig,) = figures
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert {ax.get_xlabel() for ax in axes.values()} == {"step"}
    (eval_line,) = axes["eval/loss"].get_lines()
    assert eval_line.get_linestyle() == "None" and eval_line.get_marker() == "o"  # two evaluations: two points
    (loss_line,) = axes["loss"].get_lines()
    assert loss_line.get_linestyle() == "-"  # forty log steps: a curve


def test_samples_vs_data_has_a_legend(tmp_path, figures):
    genlab.viz.plot_samples_vs_data(torch.randn(50, 2), torch.randn(60, 2), tmp_path / "modes.png", mark_mean=False)
    (fig,) = figures
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["data", "samples"]


def test_image_rows_labels_each_row(tmp_path, figures):
    rows = [("original", torch.rand(8, 1, 10, 10)), ("reconstruction", torch.rand(8, 1, 10, 10)), ("short", torch.rand(3, 3, 10, 10))]
    genlab.viz.image_rows(rows, tmp_path / "rows.png")
    (fig,) = figures
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["original", "reconstruction", "short"]


def test_reconstructions_alternate_labelled_rows(tmp_path, monkeypatch):
    from genlab.data.base import ArrayDataset
    from genlab.reports.autoencoder import reconstruction_figure

    drawn = []
    monkeypatch.setattr(genlab.viz, "image_rows", lambda rows, path, **kw: drawn.append(rows) or path)
    model = build_model("vae", {"image_shape": [1, 8, 8], "latent_dim": 2, "hidden_dims": [8]}).eval()
    reconstruction_figure(model, ArrayDataset((torch.rand(16, 1, 8, 8),)), tmp_path / "r.png")
    (rows,) = drawn
    assert [label for label, _ in rows] == ["original", "reconstruction"] * 2 and rows[0][1].shape == (8, 1, 8, 8)


def test_caption_above_a_grid(tmp_path):
    images = torch.zeros(4, 3, 8, 8) + 0.5
    plain = Image.open(save_image_grid(images, tmp_path / "plain.png"))
    captioned = Image.open(save_image_grid(images, tmp_path / "captioned.png", caption="each cell: input, output"))
    assert captioned.width >= 240 and captioned.height > plain.height
    strip = np.asarray(captioned.convert("L"))[: captioned.height - plain.height]
    assert strip.min() < 100 and strip.max() == 255  # dark text on white


def test_preview_captions_name_what_the_cells_show():
    cycle = build_model("cyclegan", {"image_shape": [1, 8, 8], "num_filters": 2, "discriminator_filters": 2, "residual_blocks": 1})
    assert "G(a)" in cycle.preview_caption and "F(b)" in cycle.preview_caption
    assert "red" in build_model("gan", {"x_dim": 2, "latent_dim": 2}).preview_caption
    assert build_model("gan", {"image_shape": [1, 28, 28], "latent_dim": 8}).preview_caption is None
    assert "class k" in build_model("cgan", {"image_shape": [1, 28, 28], "latent_dim": 8, "num_classes": 10}).preview_caption


def test_interpolate_strip_is_readable(tmp_path, capsys):
    from genlab.cli import main

    build_model("vae", {"image_shape": [1, 28, 28], "latent_dim": 2, "hidden_dims": [8]}).save_pretrained(str(tmp_path / "vae"))
    assert main(["interpolate", str(tmp_path / "vae"), "-o", str(tmp_path / "i.png")]) == 0
    width, height = Image.open(tmp_path / "i.png").size
    assert height >= 112 and width >= 10 * 112  # 10 images of at least 112 px, not 300 x 30


def test_image_panels_rows_fit_wide_grids(tmp_path):
    """Rows are as tall as their grids: four 10x3 grids in two columns make a wide page, not one with a blank
    band under each row (as when every row was as tall as a square panel)."""
    from PIL import Image

    from genlab.viz import image_panels

    panels = [(f"panel {i}", torch.rand(30, 1, 8, 8), 10) for i in range(4)]
    path = image_panels(panels, tmp_path / "p.png", panel_width=5.5, columns=2)
    width, height = Image.open(path).size
    assert height / width < 0.5, (width, height)  # grids of aspect 0.3 each, two rows: about 0.36 with titles


def test_image_panels_native_keeps_every_sample_pixel(tmp_path):
    """native=True widens the panels until each grid gets a figure pixel per image pixel: eight 128-px images in a
    row are 1,042 px of grid, which the default 4.5-inch panel (540 px) would halve."""
    from PIL import Image

    from genlab.viz import image_panels

    panels = [("wide", torch.rand(8, 3, 128, 128), 8)]
    shrunk = Image.open(image_panels(panels, tmp_path / "a.png")).size[0]
    native = Image.open(image_panels(panels, tmp_path / "b.png", native=True)).size[0]
    assert shrunk < 8 * 128 <= native, (shrunk, native)
    small = [("small", torch.rand(4, 1, 8, 8), 4)]  # a narrow grid keeps the default width: native never narrows
    assert (Image.open(image_panels(small, tmp_path / "c.png", native=True)).size
            == Image.open(image_panels(small, tmp_path / "d.png")).size)
