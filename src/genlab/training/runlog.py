"""What a training run shows while it runs: ``metrics.csv``, TensorBoard, the progress bar, ``curves.png``,
and the clock that the run's two time budgets read.

:class:`RunLog` is handed values (rows, steps, the history), never the Trainer. The clock is
``time.perf_counter`` less the seconds spent in callbacks (:meth:`RunLog.off_clock`), so a callback that
pauses the run (a benchmark interleaving runs, say) makes no extra work due. Two budgets read it:

* ``curves.png`` is redrawn during training only once 50x its last drawing time has passed (~2 %);
* the epoch-end extras (evaluation, preview, checkpoint, when their ``*_every`` is 0) skip epochs so that
  they take at most ``train.epoch_extras_budget`` of the time (never after the first epoch or the last step).
"""
from __future__ import annotations

import contextlib
import csv
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..checkpoint import atomic_write_text

log = logging.getLogger(__name__)


class RunLog:
    def __init__(self, out_dir: Path | None, *, is_main: bool, tensorboard: bool, progress: bool, extras_budget: float,
                 plot_curves: Callable[[list[dict[str, float]], Path], Any] | None = None) -> None:
        # only rank 0 writes; the other ranks keep the clock and the budgets (rank 0's decision is broadcast)
        self.out_dir = out_dir if is_main else None
        self.show_progress = progress and is_main
        self.tensorboard, self.extras_budget, self.plot_curves = tensorboard, extras_budget, plot_curves
        self._tb: Any = None
        self._bar: Any = None
        self._callbacks_cost = 0.0
        self._curves_drawn = -1  # len(history) when curves.png was last drawn
        self._curves_cost, self._curves_at = 0.0, -math.inf  # seconds the last curves.png took, and when (clock)
        self._extras_cost, self._extras_at = 0.0, -math.inf  # the same for the last epoch-end extras
        self._extras_skipped = 0  # epoch ends whose extras the budget skipped since they last ran
        self._extras_told = False  # the user was told once that extras skip epochs

    # ------------------------------------------------------------------ the training clock
    def clock(self) -> float:
        """Seconds on ``time.perf_counter`` less those spent in callbacks: the clock the budgets read."""
        return time.perf_counter() - self._callbacks_cost

    @contextlib.contextmanager
    def off_clock(self) -> Iterator[None]:
        """Time spent inside does not count as training time (callbacks)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._callbacks_cost += time.perf_counter() - start

    # ------------------------------------------------------------------ metrics.csv and TensorBoard
    def start_fresh(self) -> None:
        if self.out_dir is not None:
            (self.out_dir / "metrics.csv").unlink(missing_ok=True)

    def write(self, row: dict[str, float]) -> None:
        """Append ``row`` (a ``step`` and named values) in long format (step, name, value): rows of different
        kinds (train/eval) share one file."""
        if self.out_dir is None:
            return
        path = self.out_dir / "metrics.csv"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        step = int(row["step"])
        with path.open("a", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            if new:
                writer.writerow(["step", "name", "value"])
            writer.writerows([step, key, f"{value:.6g}"] for key, value in row.items() if key != "step")
        tb = self._tensorboard()
        if tb is not None:
            for key, value in row.items():
                if key != "step":
                    tb.add_scalar(key, value, step)

    def truncate(self, step: int) -> None:
        """Drop rows a killed run logged after its last checkpoint, so the log has no duplicates."""
        path = self.out_dir / "metrics.csv" if self.out_dir is not None else None
        if path is None or not path.exists():
            return
        with path.open() as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        atomic_write_text(path, "".join(",".join(r) + "\n" for r in kept))

    def _tensorboard(self) -> Any:
        if self._tb is None and self.tensorboard and self.out_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self._tb = False
            else:
                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
        return self._tb or None

    # ------------------------------------------------------------------ progress bar
    def open_bar(self, total: int, initial: int, desc: str) -> None:
        if self.show_progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                             mininterval=0.5)  # redrawn twice a second, not ten times: ~1 % of a CPU epoch less

    def advance(self, row: dict[str, float] | None = None) -> None:
        """One step done; ``row``, a logged window, shows its loss terms."""
        if self._bar is not None:
            self._bar.update(1)
            if row is not None:
                skip = ("step", "epoch", "samples_per_s", "lr")
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in skip})

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb:
            self._tb.flush()

    # ------------------------------------------------------------------ the two budgets
    def draw_curves(self, history: list[dict[str, float]], *, force: bool = False) -> None:
        """Redraw ``curves.png`` when the history has grown: when forced (the end), else only once 50x its
        last drawing time has passed since then, so a run spends at most ~2 % of its training time on it."""
        if self.plot_curves is None or self.out_dir is None or not history or self._curves_drawn == len(history):
            return
        now = self.clock()
        if not force and now - self._curves_at < 50 * self._curves_cost:
            return
        self.plot_curves(history, self.out_dir / "curves.png")
        self._curves_drawn = len(history)
        self._curves_at = self.clock()
        self._curves_cost = self._curves_at - now

    def extras_allowed(self, *, last_step: bool) -> bool:
        """Whether this epoch's end gets its extras: always at the last step, after the first epoch and with no
        budget; otherwise once the training time since they last ran is at least their last cost divided by the
        budget. The decision touches no training state, so a run's weights do not depend on it."""
        budget = self.extras_budget
        if not budget or last_step or self._extras_at == -math.inf:
            return True
        trained = self.clock() - self._extras_at
        if trained >= self._extras_cost / budget:
            self._extras_skipped = 0
            return True
        self._extras_skipped += 1
        if self._extras_skipped == 1 and not self._extras_told:
            self._extras_told = True
            log.info("epochs of %.2g s: evaluation, preview and checkpoint (%.2g s) now skip epochs to stay under "
                     "%g %% of the time (train.epoch_extras_budget=0 runs them after every epoch)",
                     trained, self._extras_cost, 100 * budget)
        return False

    def extras_ran(self, started: float) -> None:
        """The epoch-end extras that began at ``started`` (on :meth:`clock`) are done."""
        self._extras_at = self.clock()
        self._extras_cost = self._extras_at - started
