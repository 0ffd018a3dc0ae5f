"""Run lecture figures, check their claims, and write one self-contained HTML page.

Every figure runs in turn; an exception or a failed check is recorded as that figure's verdict and
never stops the others. Each figure's folder gets its PNGs and ``numbers.json``; the output folder
gets ``lecture.json`` (all verdicts and numbers) and ``index.html``: images inlined as base64, no
external CSS, fonts or scripts, readable offline.
"""
from __future__ import annotations

import atexit
import base64
import dataclasses
import datetime
import html
import importlib
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pkgutil
import platform
import signal
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from ..checkpoint import atomic_write_text
from ..errors import ConfigError
from .clock import build_time, describe, new_call, start_clock
from .core import FIGURES, Budget, Context, DataAbsent, Figure, default_data_root

log = logging.getLogger(__name__)

VERDICTS = ("pass", "fail", "error", "skipped")


@dataclasses.dataclass
class FigureResult:
    id: str
    slides: str
    claim: str
    part: str
    smoke_note: str
    verdict: str  # pass | fail (a check did not hold) | error (an exception) | skipped (data absent)
    seconds: float  # wall time
    conditions: list[tuple[str, bool]] = dataclasses.field(default_factory=list)
    numbers: dict[str, Any] = dataclasses.field(default_factory=dict)
    paths: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    cpu_seconds: float = 0.0  # CPU time of this process: the wall time on a quiet machine at one thread

    @property
    def failed(self) -> bool:
        return self.verdict in ("fail", "error")


def jsonable(value: Any) -> Any:
    """Numbers as plain JSON values: tensors and numpy scalars to floats/lists, non-finite to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def run_figure(figure: Figure, ctx: Context) -> FigureResult:
    """Make ``figure`` in ``ctx.out`` and check its numbers; never raises for the figure's own faults."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = FigureResult(figure.id, figure.slides, figure.claim, figure.part, figure.smoke_note, "error", 0.0)
    try:
        made = dict(figure.make(ctx))
        result.paths = [str(p) for p in made.pop("paths", [])]
        result.numbers = jsonable(made)
    except DataAbsent as exc:
        result.verdict, result.error = "skipped", f"data absent: {exc}"
    except Exception as exc:  # a broken figure is reported, the lecture goes on
        result.error = f"{type(exc).__name__}: {exc}"
        (ctx.out / "error.txt").write_text(traceback.format_exc())
        log.error("figure %s failed: %s", figure.id, result.error)
    else:
        try:
            result.conditions = [(str(text), bool(ok)) for text, ok in figure.check(result.numbers, ctx.budget)]
            result.verdict = "pass" if result.conditions and all(ok for _, ok in result.conditions) else "fail"
        except Exception as exc:
            result.error = f"the check could not run: {type(exc).__name__}: {exc}"
    result.seconds, result.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    atomic_write_text(ctx.out / "numbers.json", json.dumps(dataclasses.asdict(result), indent=2))
    return result


def select(figures: Sequence[Figure], only: Iterable[str] | None) -> list[Figure]:
    """The figures named in ``only`` (in lecture order), all when it is empty; unknown ids fail at once."""
    only = list(only or [])
    known = {f.id for f in figures}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise ConfigError(f"unknown lecture figure {', '.join(map(repr, unknown))}; valid: {', '.join(f.id for f in figures)}")
    return [f for f in figures if not only or f.id in only]


# modules of this package that hold machinery, not figures
_MACHINERY = {"core", "runner", "shared", "plots", "gallery", "clock"}


def load_parts() -> dict[str, Figure]:
    """Import every part module of the lecture (which registers its figures); returns the registry."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in _MACHINERY and not module.name.startswith("_"):
            importlib.import_module(f"{__package__}.{module.name}")
    return FIGURES


def ordered_figures() -> list[Figure]:
    """All figures in lecture order: by first slide, then in the order their part declares them."""
    figures = list(load_parts().values())
    return sorted(figures, key=lambda f: (f.first_slide, figures.index(f)))


def run_lecture(out: str | Path = "runs/lecture", *, budget: Budget = "smoke", only: Iterable[str] | None = None,
                seed: int = 0, runs: str | Path | None = None, data_root: str | Path | None = None,
                progress: bool = True, flat: bool = False, run: str | Path | None = None,
                jobs: int = 1, threads: int | None = None) -> list[FigureResult]:
    """Make, check and report the figures (all, or those in ``only``). Trained runs shared by several
    figures live in ``runs`` (default ``OUT/runs``) and are reused by later calls. ``flat`` writes a
    single figure's files straight into ``out`` (``genlab figure ID``). ``run`` is a trained run
    folder that the figures which accept one (``Figure.run``) use instead of their shared run.
    ``jobs`` > 1 makes the figures in that many worker processes (``threads`` torch threads each,
    default the machine's cores over ``jobs``); a shared run two of them need is trained once, by the
    first, while the other waits for it (:func:`genlab.lecture.core.run_lock`)."""
    out = Path(out)
    order = [f.id for f in ordered_figures()]
    figures = select(ordered_figures(), only)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    if run is not None:
        refusing = [f.id for f in figures if not f.run]
        if refusing:
            takers = ", ".join(f"{f.id} ({f.run})" for f in ordered_figures() if f.run)
            raise ConfigError(f"figure {', '.join(refusing)} takes no trained run; these do: {takers}")
    base = Context(seed=seed, budget=budget, out=out, runs=Path(runs) if runs is not None else out / "runs",
                   data_root=Path(data_root) if data_root is not None else default_data_root(),
                   run=Path(run) if run is not None else None)
    earlier = {} if flat else _earlier_results(out / "lecture.json", base)
    results: list[FigureResult] = []
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (taskset-aware)
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    threads = threads or (max(1, cores // jobs) if jobs > 1 else torch.get_num_threads())
    start = time.perf_counter()
    # every process of this call keeps its time in OUT/calls, so the report knows what all calls together cost
    clock = None if flat else (out / "calls", new_call())
    stop_clock = start_clock(*clock, budget=budget, seed=seed) if clock else None

    def write_report() -> None:
        # figures made by an earlier call into this folder (same budget and seed) stay on the page
        page = sorted([*results, *earlier.values()], key=lambda r: order.index(r.id) if r.id in order else len(order))
        header = page_header(base, sum(r.seconds for r in page), sum(r.cpu_seconds for r in page), jobs=jobs, threads=threads,
                             elapsed=time.perf_counter() - start,
                             build=build_time(clock[0], budget=budget, seed=seed) if clock else None)
        atomic_write_text(out / "lecture.json", json.dumps({"header": header, "figures": [dataclasses.asdict(r) for r in page]}, indent=2))
        write_page(page, out / "index.html", header=header)

    def record(result: FigureResult) -> None:
        results.append(result)
        earlier.pop(result.id, None)
        write_report()

    def folder(figure: Figure) -> Path:
        return out if flat else out / figure.id

    bar = _progress(len(figures), progress)
    try:
        if jobs == 1:
            for figure in figures:
                bar.set_postfix_str(figure.id)
                record(run_figure(figure, dataclasses.replace(base, out=folder(figure))))  # shares the loaded models
                bar.update()
        else:
            _run_in_workers(figures, base, folder, record, bar, jobs=jobs, threads=threads, clock=clock)
    finally:  # also when interrupted: this call's time so far is kept
        bar.close()
        if stop_clock is not None:
            stop_clock()
            if results:
                write_report()  # the header's build time now includes this call's last seconds
    return sorted(results, key=lambda r: order.index(r.id))


def _run_in_workers(figures: Sequence[Figure], base: Context, folder: Callable[[Figure], Path],
                    record: Callable[[FigureResult], None], bar: Any, *, jobs: int, threads: int,
                    clock: tuple[Path, str] | None) -> None:
    """Make ``figures`` in ``jobs`` worker processes, one part per task, recording each result as it comes.
    Interrupted (Ctrl-C, or any error here), the workers are ended at once rather than left to finish
    hours of training: the runs they were training resume from their checkpoints on the next call."""
    # spawned, not forked: a fork of a process that has run torch's thread pools can hang
    context = multiprocessing.get_context("spawn")
    fields = {"seed": base.seed, "budget": base.budget, "runs": base.runs, "data_root": base.data_root, "run": base.run}
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                               initargs=(fields, threads, logging.getLogger().level, clock))
    try:
        pending = {pool.submit(_work, [(f.id, folder(f)) for f in group]): group for group in by_part(figures)}
        for future in as_completed(pending):
            group = pending[future]
            try:
                done = future.result()
            except Exception as exc:  # the worker died (killed, out of memory): the part's figures are errors
                done = [FigureResult(f.id, f.slides, f.claim, f.part, f.smoke_note, "error", 0.0,
                                     error=f"its worker process failed: {type(exc).__name__}: {exc}") for f in group]
            for result in done:
                record(result)
                bar.set_postfix_str(result.id)
                bar.update()
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown()


def stop_workers(pool: ProcessPoolExecutor, timeout: float = 10.0) -> None:
    """End ``pool``'s workers now, cancelling what they are running (``shutdown`` alone waits for it)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout)


def _end_worker(code: int) -> None:
    """End this worker now, its time kept (no other cleanup to wait for: checkpoints and reports are
    written atomically)."""
    stop = _WORKER.get("stop_clock")
    if stop is not None:
        stop()
    os._exit(code)


def _exit_with_parent() -> None:
    """In a worker: end this process as soon as the process that started it is gone. A killed
    ``genlab lecture`` would otherwise leave its workers training on for hours, unseen, holding the
    runs' locks (found so: two calls' workers running side by side)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable when the parent has exited
        _end_worker(1)

    threading.Thread(target=watch, name="genlab-lecture-parent-watch", daemon=True).start()


def by_part(figures: Sequence[Figure]) -> list[list[Figure]]:
    """The figures grouped by part (in order of first appearance, each group in lecture order): with
    ``jobs`` > 1 each group is one worker's task, because a part's figures mostly share its runs, and
    a second worker would otherwise sit waiting for a run the first is training (in one smoke timing
    style mixing waited 3 of its 16 minutes for the StyleGAN that truncation was training). The cost:
    a part's figures reach the page when the whole part is done, and a worker that dies takes its
    part's figures with it (each is reported as an error; their folders keep what was written)."""
    parts: dict[str, list[Figure]] = {}
    for figure in figures:
        parts.setdefault(figure.part, []).append(figure)
    return list(parts.values())


_WORKER: dict[str, Any] = {}  # in a worker process: its Context, whose loaded data and models its figures share


def _start_worker(fields: dict[str, Any], threads: int, log_level: int, clock: tuple[Path, str] | None = None) -> None:
    logging.basicConfig(level=log_level, format="%(message)s")
    torch.set_num_threads(threads)
    if clock is not None:
        stop = _WORKER["stop_clock"] = start_clock(*clock, budget=fields["budget"], seed=fields["seed"])
        atexit.register(stop)

        # ended by the lecture (interrupted): keep the time so far
        signal.signal(signal.SIGTERM, lambda signum, frame: _end_worker(128 + signum))
    _exit_with_parent()
    load_parts()
    _WORKER["context"] = Context(**fields)


def _work(figures: list[tuple[str, Path]]) -> list[FigureResult]:
    """Make figures (id, output folder) one after the other in this worker."""
    return [run_figure(FIGURES.get(figure_id), dataclasses.replace(_WORKER["context"], out=out)) for figure_id, out in figures]


def read_report(path: Path) -> tuple[dict[str, Any], list[FigureResult]]:
    """The header and figure results of a ``lecture.json``; raises OSError, ValueError, KeyError or TypeError
    when the file is missing or not such a report."""
    saved = json.loads(path.read_text())
    return saved["header"], [FigureResult(**{**r, "conditions": [tuple(c) for c in r["conditions"]]}) for r in saved["figures"]]


def _earlier_results(path: Path, ctx: Context) -> dict[str, FigureResult]:
    """Results of an earlier call into the same folder with the same budget and seed, by id."""
    try:
        header, results = read_report(path)
        if header["budget"] != ctx.budget or header["seed"] != ctx.seed:
            return {}
        return {r.id: r for r in results}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


class _NoBar:
    """What :func:`_progress` gives when there is no bar: the same calls, doing nothing."""

    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, text: str) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar over ``total`` figures, or a :class:`_NoBar` when disabled or tqdm is missing."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, desc="lecture", unit="figure")
        except ImportError:
            pass
    return _NoBar()


def page_header(ctx: Context, seconds: float, cpu_seconds: float = 0.0, *, jobs: int = 1,
                threads: int | None = None, elapsed: float | None = None,
                build: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page's header: versions, seed, budget, machine; ``seconds`` and ``cpu_seconds`` summed over the
    figures on the page, ``elapsed`` the wall time of the call that wrote it (less than the sum with jobs > 1),
    ``build`` the wall and CPU time of every call that built the report (:func:`genlab.lecture.clock.build_time`)."""
    from .._version import __version__

    versions = {"genlab": __version__, "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for name in ("matplotlib", "sklearn", "scipy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return {"versions": versions, "seed": ctx.seed, "budget": ctx.budget, "runs": str(ctx.runs),
            "data_root": str(ctx.data_root) if ctx.data_root else None,
            "torch_threads": threads or torch.get_num_threads(), "jobs": jobs,
            "call_elapsed_s": None if elapsed is None else round(elapsed, 1),
            "machine": f"{platform.machine()}, {platform.system()}", "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
            "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "build": build}


# ----------------------------------------------------------------------------------------------- the page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{margin-top:2.2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f4f4f4} .claim{font-size:1.08em;margin:.4em 0 .8em} .meta{color:#555;font-size:.9em}
.v{display:inline-block;padding:.05em .6em;border-radius:.8em;font-weight:600;font-size:.85em;color:#fff}
.pass{background:#2e7d32} .fail{background:#c62828} .error{background:#6a1b9a} .skipped{background:#757575}
img{max-width:100%;border:1px solid #eee;margin:.4em 0} .ok{color:#2e7d32} .no{color:#c62828}
.note{color:#8a6d00;font-size:.9em} code{background:#f4f4f4;padding:0 .2em} pre{white-space:pre-wrap;font-size:.85em}
"""


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > 24:
            value = value[:24] + ["..."]
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    return "—" if value is None else str(value)


def inline_image(path: str) -> str:
    """An image's ``src`` that carries the PNG itself, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _image(path: str, source: Callable[[str], str]) -> str:
    return f'<img alt="{html.escape(Path(path).name)}" src="{html.escape(source(path))}">'


def _section(r: FigureResult, source: Callable[[str], str] = inline_image, withheld: str = "") -> str:
    e = html.escape
    parts = [f'<h2 id="{e(r.id)}">{e(r.id)} <span class="meta">— slides {e(r.slides)}</span></h2>',
             f'<p class="claim"><b>Claim.</b> {e(r.claim)}</p>',
             f'<p class="meta">verdict <span class="v {r.verdict}">{r.verdict}</span> &nbsp; {r.seconds:.1f} s '
             f'({r.cpu_seconds:.1f} s CPU) &nbsp; '
             f'part <code>{e(r.part)}</code></p>']
    if r.error:
        parts.append(f"<pre>{e(r.error)}</pre>")
    if r.conditions:
        items = "".join(f'<li class="{"ok" if ok else "no"}">{"&#10003;" if ok else "&#10007;"} {e(text)}</li>'
                        for text, ok in r.conditions)
        parts.append(f"<p><b>Check.</b></p><ul>{items}</ul>")
    if r.smoke_note:
        parts.append(f'<p class="note">{e(r.smoke_note)}</p>')
    if withheld:
        parts.append(f'<p class="note">{e(withheld)}</p>')
    parts.extend(_image(p, source) for p in r.paths if source is not inline_image or Path(p).is_file())
    if r.numbers:
        rows = "".join(f"<tr><td><code>{e(k)}</code></td><td>{e(_format(v))}</td></tr>" for k, v in r.numbers.items())
        parts.append(f"<details open><summary>numbers</summary><table>{rows}</table></details>")
    return "\n".join(parts)


def write_page(results: Sequence[FigureResult], path: str | Path, *, header: dict[str, Any],
               source: Callable[[str], str] = inline_image, withheld: dict[str, str] | None = None) -> Path:
    """``index.html``: the header (versions, seed, budget), a summary table and one section per figure.
    ``source`` gives each PNG's ``src`` (inlined by default: one self-contained file); ``withheld`` notes,
    by figure id, why some of its pictures are not on the page."""
    withheld = withheld or {}
    e = html.escape
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    summary = "".join(
        f'<tr><td><a href="#{e(r.id)}">{e(r.id)}</a></td><td>{e(r.slides)}</td><td>{e(r.claim)}</td>'
        f'<td><span class="v {r.verdict}">{r.verdict}</span></td><td>{r.seconds:.1f}</td><td>{r.cpu_seconds:.1f}</td></tr>'
        for r in results)
    versions = ", ".join(f"{k} {v}" for k, v in header["versions"].items())
    body = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>genlab lecture ({e(header['budget'])})</title><style>{_CSS}</style></head><body>",
        "<h1>The lecture, reproduced</h1>",
        f'<p class="meta">budget <b>{e(header["budget"])}</b> · seed {header["seed"]} · {e(versions)} · '
        f'{e(header["machine"])}, {header.get("jobs", 1)} process(es) × {header["torch_threads"]} torch threads · '
        f'written {e(header["written"])} · '
        f'{header["seconds"]:.0f} s over the figures ({header.get("cpu_seconds", 0):.0f} s CPU) · {e(describe(header.get("build")))} · '
        f'data root {e(str(header["data_root"]))}</p>',
        f'<p>{counts["pass"]} passed, {counts["fail"]} failed, {counts["error"]} errors, {counts["skipped"]} skipped '
        f'of {len(results)} figures. Each figure redoes the experiment of its slides on real data and checks the '
        "number that proves its claim.</p>",
        "<table><tr><th>figure</th><th>slides</th><th>claim</th><th>verdict</th><th>wall s</th><th>CPU s</th></tr>", summary, "</table>",
        *(_section(r, source, withheld.get(r.id, "")) for r in results), "</body></html>",
    ]
    return _write(path, "\n".join(body))


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
