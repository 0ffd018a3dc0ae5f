"""The wall and CPU time a report took to build, summed over every call that worked on it.

A full report trains for hours and may be built by several calls of ``genlab lecture`` (one killed, the
next resuming its shared runs). A figure's own ``seconds`` only count the call that finished it, so they
miss the training a killed call did. Here every process of a call (the main one and each worker) keeps a
small file ``OUT/calls/<call>-<pid>.json`` up to date: its wall and CPU time so far, rewritten every
``every`` seconds by a daemon thread and once more when it stops. A kill loses at most ``every`` seconds
of a process's time. :func:`build_time` adds the files up: per call the wall time of its longest-lived
process and the CPU time of all of them; over calls, both summed.
"""
from __future__ import annotations

import datetime
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from ..checkpoint import atomic_write_text

EVERY_S = 30.0


def new_call() -> str:
    """An id for one call: its UTC start time to the microsecond (so calls sort in order) and a random suffix."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]


def start_clock(folder: str | Path, call: str, *, budget: str, seed: int, every: float = EVERY_S) -> Callable[[], None]:
    """Start keeping this process's time for ``call`` in ``folder``; returns ``stop``, which writes the last
    entry and ends the thread (also safe to never call: the thread is a daemon)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{call}-{os.getpid()}.json"
    started = time.time()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    done = threading.Event()

    def write() -> None:
        entry = {"call": call, "pid": os.getpid(), "budget": budget, "seed": seed,
                 "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                 "wall_s": round(time.perf_counter() - wall0, 1), "cpu_s": round(time.process_time() - cpu0, 1)}
        atomic_write_text(path, json.dumps(entry))

    def keep() -> None:
        while not done.wait(every):
            try:
                write()
            except OSError:  # a full or vanished disk must not kill the build; the next tick tries again
                pass

    write()
    thread = threading.Thread(target=keep, name="genlab-lecture-clock", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join()
        write()

    return stop


def build_time(folder: str | Path, *, budget: str, seed: int) -> dict[str, Any]:
    """The calls recorded in ``folder`` for this budget and seed, oldest first, and their totals:
    ``{"calls": [{"call", "started", "wall_s", "cpu_s", "processes"}], "wall_s", "cpu_s"}``."""
    calls: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
            if entry["budget"] != budget or entry["seed"] != seed:
                continue
            call = calls.setdefault(entry["call"], {"call": entry["call"], "started": entry["started"],
                                                    "wall_s": 0.0, "cpu_s": 0.0, "processes": 0})
            call["started"] = min(call["started"], entry["started"])
            call["wall_s"] = max(call["wall_s"], float(entry["wall_s"]))
            call["cpu_s"] = round(call["cpu_s"] + float(entry["cpu_s"]), 1)
            call["processes"] += 1
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or cut short: the clock's files are a record, not an input to trust blindly
    ordered = sorted(calls.values(), key=lambda c: c["call"])
    return {"calls": ordered, "wall_s": round(sum(c["wall_s"] for c in ordered), 1),
            "cpu_s": round(sum(c["cpu_s"] for c in ordered), 1)}


def describe(build: dict[str, Any] | None) -> str:
    """One line for a report's header: how many recorded calls built it and what they took together."""
    if not build or not build.get("calls"):
        return "build time not recorded"
    n = len(build["calls"])
    # "recorded": a call of a genlab older than this record, or one killed before its first tick, is not in it
    return (f"{n} recorded call{'s' if n != 1 else ''} of genlab lecture built it: {build['wall_s'] / 3600:.2f} h wall, "
            f"{build['cpu_s'] / 3600:.2f} h CPU over all their processes, training included")
