"""Publish a built lecture report as a gallery: its pictures as files, pages that show them, its numbers.

``genlab lecture --out REPORT --publish DEST`` turns what ``genlab lecture`` wrote in REPORT into a
folder meant for a repository or a web server:

* ``ID/NAME.png`` — each figure's pictures, copied;
* ``index.html`` — the report's page, with the pictures as files beside it instead of inlined;
* ``README.md`` — the same in Markdown, which a code host renders as the folder's page;
* ``gallery.json`` — the header, verdicts, checks and numbers of every figure.

A figure registered as ``restricted`` (real photographs whose terms forbid redistribution, e.g.
CelebA's) keeps its verdict, checks and numbers in the gallery but not its pictures, except those it
names ``public`` (generated images only); so does a figure this genlab no longer registers, whose
pictures nobody vouched for.

DEST is replaced as a whole (built beside it, then swapped in), so pictures of dropped figures do not
linger and an interrupted call leaves the old gallery as it was. A DEST that holds anything but an
earlier gallery is refused, never overwritten.
"""
from __future__ import annotations

import dataclasses
import html
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_text
from ..errors import ConfigError
from .clock import describe
from .runner import VERDICTS, FigureResult, load_parts, ordered_figures, read_report, write_page

MARKER = "gallery.json"


@dataclasses.dataclass
class Gallery:
    path: Path
    figures: int
    pictures: int
    withheld: dict[str, str]  # figure id -> why some or all of its pictures are not in the gallery
    unbuilt: list[str]  # figures of this genlab's lecture that the report does not hold (yet)


def load_report(folder: str | Path) -> tuple[dict[str, Any], list[FigureResult]]:
    """The header and figure results that ``genlab lecture`` wrote to ``folder/lecture.json``."""
    path = Path(folder) / "lecture.json"
    try:
        return read_report(path)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: build the report first (genlab lecture --out {folder})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a lecture report genlab can read ({type(exc).__name__}: {exc})") from None


def _picture(report: Path, result: FigureResult, path: str) -> Path | None:
    """Where a figure's PNG is now: as recorded, else in the report's folder for that figure."""
    for candidate in (Path(path), report / result.id / Path(path).name):
        if candidate.is_file():
            return candidate
    return None


def publish(report: str | Path, dest: str | Path) -> Gallery:
    """Copy the report built in ``report`` into the gallery folder ``dest`` (see the module's docstring)."""
    report, dest = Path(report), Path(dest)
    header, results = load_report(report)
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / MARKER).is_file())):
        raise ConfigError(f"{dest} exists and is not a genlab gallery (it has no {MARKER}); "
                          "publish into a new or empty folder, nothing was written")
    registry = load_parts()
    staging = dest.parent / f".{dest.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        published, withheld, pictures = [], {}, 0
        for result in results:
            figure = registry.get(result.id) if result.id in registry else None
            allowed = set() if figure is None else None if not figure.restricted else set(figure.public)
            kept, missing = [], []
            for path in result.paths:
                name = Path(path).name
                if allowed is not None and name not in allowed:
                    continue
                source = _picture(report, result, path)
                if source is None:
                    missing.append(name)
                    continue
                target = staging / result.id / name
                target.parent.mkdir(exist_ok=True)
                shutil.copyfile(source, target)
                kept.append(f"{result.id}/{name}")
            pictures += len(kept)
            notes = []
            if figure is None:
                notes.append("pictures not published: this figure is not in this genlab's registry")
            elif figure.restricted and len(kept) < len(result.paths):
                notes.append(f"{len(result.paths) - len(kept)} of its {len(result.paths)} pictures not published: "
                             f"{figure.restricted}")
            if missing:
                notes.append(f"missing from the report: {', '.join(missing)}")
            if notes:
                withheld[result.id] = "; ".join(notes)
            published.append(dataclasses.replace(result, paths=kept))
        unbuilt = [f.id for f in ordered_figures() if f.id not in {r.id for r in results}]
        write_page(published, staging / "index.html", header=header, source=lambda p: p, withheld=withheld)
        atomic_write_text(staging / "README.md", markdown(published, header, withheld, unbuilt))
        atomic_write_text(staging / MARKER, json.dumps({"header": header, "withheld": withheld, "unbuilt": unbuilt,
                                                        "figures": [dataclasses.asdict(r) for r in published]}, indent=2))
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        if dest.exists():
            os.replace(dest, old)
        os.replace(staging, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Gallery(dest, len(published), pictures, withheld, unbuilt)


def markdown(results: list[FigureResult], header: dict[str, Any], withheld: dict[str, str], unbuilt: list[str]) -> str:
    """The gallery's ``README.md``: a summary table, then each figure's claim, checks and pictures."""
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    versions = ", ".join(f"{k} {v}" for k, v in header["versions"].items())
    lines = ["# The lecture, reproduced by genlab", "",
             f"Budget **{header['budget']}**, seed {header['seed']}; {versions}; {header['machine']}, "
             f"{header.get('jobs', 1)} process(es) × {header['torch_threads']} torch threads; written {header['written']}; "
             f"{header['seconds'] / 3600:.2f} h over the figures ({header.get('cpu_seconds', 0) / 3600:.2f} h CPU, "
             f"shared runs trained by earlier calls not included); {describe(header.get('build'))}.", "",
             f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, {counts['skipped']} skipped "
             f"of {len(results)} figures. Built by `genlab lecture --budget {header['budget']}`, published by "
             "`genlab lecture --publish`; the same page as HTML: [index.html](index.html).", ""]
    if unbuilt:
        lines += [f"**Not in this report (yet): {len(unbuilt)} of the lecture's figures** — "
                  + ", ".join(f"`{i}`" for i in unbuilt) + ".", ""]
    lines += ["| figure | slides | verdict | claim |", "|---|---|---|---|"]
    lines += [f"| [{r.id}](#{r.id}) | {r.slides} | {r.verdict} | {_cell(r.claim)} |" for r in results]
    for r in results:
        lines += ["", f'<a id="{r.id}"></a>', f"## {r.id} (slides {r.slides}): {r.verdict}", "", f"**Claim.** {r.claim}", ""]
        lines += [f"- {'✓' if ok else '✗'} {text}" for text, ok in r.conditions]
        if r.error:
            lines += ["", f"Error: `{r.error}`"]
        if r.smoke_note and header["budget"] == "smoke":
            lines += ["", f"*{r.smoke_note}*"]
        if r.id in withheld:
            lines += ["", f"*{withheld[r.id]}.*"]
        lines += [item for p in r.paths for item in ("", f"![{r.id}: {Path(p).name}]({p})")]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
