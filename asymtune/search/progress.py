"""What ``asymtune tune`` shows in the terminal: one progress line per dataset, quiet libraries.

At the default ``verbose=1`` each dataset's sweep prints a short line when its trials start, as
trials end (at most about :data:`MAX_LINES` lines for any number of trials) and when it ends,
one line each (folded here)::

    [synth_lesions] 5/8 done, 2 running, 1 stopped early | best val/mean_fg_dice 0.612
        (trial 1a2b3c4d) | 3m12s elapsed, ~2m left

and the INFO chatter is off (Optuna's "A new study created", MLflow's database set-up and
"View run ... at" links, Ray's token notice, the scheduler's line per rung decision, which the
report shows); warnings and errors stay (:func:`quiet_terminal`).
``verbose=2`` shows Ray Tune's trial table and those INFO logs instead, ``verbose=3``
also Ray Tune's line per trial result, ``verbose=0`` neither the line nor the table
(:func:`tune_verbosity`).

Datasets run side by side in threads of the driver (:mod:`asymtune.side_by_side`), which prefixes
the lines of each dataset's thread with ``[<dataset>] ``; the line carries the prefix itself only
when its thread is not already prefixed, so that every line names its dataset exactly once.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

from asymtune.side_by_side import current_unit

MAX_LINES = 20
"""About the most lines a sweep prints as its trials end (one every ``ceil(trials / MAX_LINES)``
trials), besides its first and last line."""

MIN_INTERVAL_S = 10.0
"""The least time between two lines of one sweep (but for its first and last line)."""

HEARTBEAT_S = 600.0
"""A line after this long without one, so that a sweep of long trials shows it is alive."""

_RAY_NOTICES = ("Token authentication is enabled for this Ray cluster",)  # informational, at WARNING


def tune_verbosity(verbose: int) -> int:
    """Ray Tune's ``verbose`` for asymtune's ``verbose`` (0 to 3).

    0 and 1: Tune prints nothing (1 has :class:`ProgressLine` instead); 2: Tune's trial table;
    3: the table and a line per trial result.

    >>> [tune_verbosity(v) for v in (0, 1, 2, 3)]
    [0, 0, 1, 2]
    """
    return max(0, verbose - 1)


def quiet_terminal(verbose: int) -> None:
    """Below ``verbose=2``, turn off the INFO output of this process that the progress line
    replaces: Optuna's logs (``A new study created``), MLflow's (database set-up) and its
    ``View run ... at`` links to a tracking server, Ray's notice that token authentication is on,
    and the scheduler's line per rung decision (:mod:`asymtune.search.scheduler`; the report
    shows the decisions). Warnings and errors stay. Call it before Ray starts; at
    ``verbose >= 2`` it changes nothing."""
    if verbose >= 2:
        return
    import mlflow  # noqa: F401  (its import configures the "mlflow" logger, which we then adjust)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "asymtune.search.scheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a user's choice stands
    token_logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _DropNotices) for f in token_logger.filters):
        token_logger.addFilter(_DropNotices(_RAY_NOTICES))


class _DropNotices(logging.Filter):
    """Drops the records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


# ------------------------------------------------------------------------------------ the line
@dataclass(frozen=True)
class SweepProgress:
    """Where one dataset's sweep stands.

    Attributes:
        dataset: the dataset's name.
        total: the sweep's trials (``search.num_samples``).
        done: trials that ended (by their last epoch, stopped early by ASHA, or failed).
        running: trials running now.
        stopped_early: of ``done``, those ASHA stopped before the last epoch.
        failed: of ``done``, those that failed.
        metric: the objective's name.
        best: the best objective among the trials' latest results (None before any).
        best_trial: the trial with ``best``.
        elapsed_s: seconds since this run of the sweep started.
        left_s: estimated seconds until the sweep ends (None: not known yet, or ended).
    """

    dataset: str
    total: int
    done: int
    running: int
    stopped_early: int
    failed: int
    metric: str
    best: float | None
    best_trial: str | None
    elapsed_s: float
    left_s: float | None


def format_line(progress: SweepProgress, prefix: bool = True) -> str:
    """The progress line; ``prefix`` starts it with ``[<dataset>] ``.

    >>> print(format_line(SweepProgress("synth_lesions", 8, 5, 2, 1, 0, "val/dice/lesion", 0.61234,
    ...                                 "1a2b3c4d", 192.0, 130.0)))  # doctest: +NORMALIZE_WHITESPACE
    [synth_lesions] 5/8 done, 2 running, 1 stopped early | best val/dice/lesion 0.6123 (trial 1a2b3c4d)
    | 3m12s elapsed, ~3m left
    """
    counts = f"{progress.done}/{progress.total} done, {progress.running} running"
    if progress.stopped_early:
        counts += f", {progress.stopped_early} stopped early"
    if progress.failed:
        counts += f", {progress.failed} failed"
    if progress.best is None:
        best = f"no {progress.metric} yet"
    else:
        best = f"best {progress.metric} {progress.best:.4g}"
        if progress.best_trial:
            best += f" (trial {progress.best_trial})"
    times = f"{format_duration(progress.elapsed_s)} elapsed"
    if progress.left_s is not None:
        times += f", ~{format_estimate(progress.left_s)} left"
    line = f"{counts} | {best} | {times}"
    return f"[{progress.dataset}] {line}" if prefix else line


def format_duration(seconds: float) -> str:
    """``42s``, ``3m12s``, ``2h05m``.

    >>> [format_duration(s) for s in (0.4, 42, 192, 7500)]
    ['0s', '42s', '3m12s', '2h05m']
    """
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_estimate(seconds: float) -> str:
    """An estimate, rounded up to what it is worth: ``10s`` steps under 50 seconds, whole minutes
    up to an hour, then ``1h05m``.

    >>> [format_estimate(s) for s in (3, 41, 61, 130, 3599, 3900)]
    ['10s', '50s', '2m', '3m', '60m', '1h05m']
    """
    seconds = max(0.0, seconds)
    if seconds < 50:
        return f"{max(10, math.ceil(seconds / 10) * 10)}s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes}m" if minutes <= 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def estimate_left_s(
    mean_trial_s: float | None, not_started: int, running_elapsed_s: Sequence[float], concurrency: int
) -> float | None:
    """Seconds until the sweep ends: the work left (``mean_trial_s`` per trial not started, what
    remains of it for each running trial) shared by the trials that can run at once.

    Args:
        mean_trial_s: the mean time of the trials that ended (stopped early ones included, so the
            estimate counts on ASHA stopping as many); None before any ended.
        not_started: trials not started yet (pending or not yet created).
        running_elapsed_s: for each running trial, the seconds since it started.
        concurrency: trials that run at once (the most seen running so far; at least 1).

    Returns:
        the estimate, 0 when nothing is left, None when no trial has ended yet.

    >>> estimate_left_s(60.0, 8, [30.0, 30.0], 2)  # 30 s, then 4 rounds of 2 trials
    270.0
    >>> estimate_left_s(60.0, 0, [50.0], 4)  # the last trial's 10 s
    10.0
    >>> estimate_left_s(None, 3, [5.0], 1) is None
    True
    """
    if mean_trial_s is None:
        return None
    work = not_started * mean_trial_s + sum(max(mean_trial_s - elapsed, 0.0) for elapsed in running_elapsed_s)
    slots = min(max(1, concurrency), not_started + len(running_elapsed_s))
    return work / slots if slots else 0.0


def should_print(
    last: SweepProgress | None, now: SweepProgress, seconds_since_last: float, final: bool = False
) -> bool:
    """Whether ``now`` is worth a line after ``last`` (the last one printed; None: none yet).

    A line: the sweep's last one (``final``, always), the first once a trial runs or ended, then one each
    time ``ceil(total / MAX_LINES)`` more trials ended, at least :data:`MIN_INTERVAL_S` after the
    previous line, and a heartbeat after :data:`HEARTBEAT_S` without one.

    >>> start = SweepProgress("d", 40, 0, 2, 0, 0, "m", None, None, 5.0, None)
    >>> should_print(None, start, 0.0)
    True
    >>> one, two = (SweepProgress("d", 40, k, 2, 0, 0, "m", 0.5, "t", 60.0, 600.0) for k in (1, 2))
    >>> should_print(start, one, 60.0), should_print(start, two, 60.0), should_print(start, two, 1.0)
    (False, True, False)
    """
    if final:
        return True
    if last is None:
        return now.running + now.done > 0
    step = max(1, math.ceil(now.total / MAX_LINES))
    milestone = now.done // step > last.done // step or (now.done == now.total and last.done < now.total)
    if milestone or now.failed > last.failed:
        return seconds_since_last >= MIN_INTERVAL_S
    return seconds_since_last >= HEARTBEAT_S


# -------------------------------------------------------------------------------- the callback
class ProgressLine(tune.Callback):
    """A Ray Tune callback that prints one dataset's progress line (:func:`format_line`) to
    stdout when :func:`should_print` says so, and once more when the sweep ends.

    It is pickled with the experiment (a resumed sweep gets it back) and starts afresh at
    :meth:`setup`; trials restored as ended count as done, their times as the mean's.

    Args:
        dataset: the dataset's name.
        total: the sweep's trials (``search.num_samples``).
        metric: the objective's name.
        mode: ``max`` or ``min``.
        epochs: a trial's epochs (a trial that ended before them was stopped early).
        clock: seconds, for elapsed times (tests pass their own).
    """

    def __init__(
        self, dataset: str, total: int, metric: str, mode: str, epochs: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dataset, self.total, self.metric, self.mode, self.epochs = dataset, total, metric, mode, epochs
        self.clock = clock
        self._reset()

    def _reset(self) -> None:
        self._started = self.clock()
        self._last: SweepProgress | None = None
        self._last_at = self._started
        self._running_since: dict[str, float] = {}
        self._wall_s: dict[str, float] = {}  # trials seen to start and end in this run: their wall time
        self._peak_running = 0

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        self._reset()

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.update(trials)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.update(trials, final=True)

    def update(self, trials: Sequence[Trial], final: bool = False) -> str | None:
        """Print the line when it is due (``final``: the sweep ended); returns what was printed."""
        now = self.clock()
        progress = self.progress(trials, now)
        if not should_print(self._last, progress, now - self._last_at, final=final):
            return None
        line = format_line(progress, prefix=current_unit() != self.dataset)  # side by side: prefixed already
        print(line, flush=True)
        self._last, self._last_at = progress, now
        return line

    def progress(self, trials: Sequence[Trial], now: float) -> SweepProgress:
        """Where the sweep stands, from Ray Tune's trials at ``now`` (a time of ``clock``)."""
        ended, running = [], []
        for trial in trials:
            if trial.status in (Trial.TERMINATED, Trial.ERROR):
                ended.append(trial)
                if trial.trial_id in self._running_since:
                    self._wall_s[trial.trial_id] = now - self._running_since.pop(trial.trial_id)
            elif trial.status == Trial.RUNNING:
                running.append(trial)
                self._running_since.setdefault(trial.trial_id, now)
        self._peak_running = max(self._peak_running, len(running))
        times = [seconds for seconds in map(self._trial_seconds, ended) if seconds is not None]
        not_started = max(0, self.total - len(ended) - len(running))
        left = None
        if len(ended) < self.total:
            left = estimate_left_s(
                sum(times) / len(times) if times else None, not_started,
                [now - self._running_since[t.trial_id] for t in running], self._peak_running,
            )
        best, best_trial = self._best(trials)
        return SweepProgress(
            dataset=self.dataset, total=self.total, done=len(ended), running=len(running),
            stopped_early=sum(t.status == Trial.TERMINATED and _stopped_early(t, self.epochs) for t in ended),
            failed=sum(t.status == Trial.ERROR for t in ended), metric=self.metric, best=best,
            best_trial=best_trial, elapsed_s=now - self._started, left_s=left,
        )

    def _trial_seconds(self, trial: Trial) -> float | None:
        """An ended trial's time: its wall time when this run saw it start (with what Ray Tune
        spends around the training: starting it, checkpoints), else its training time."""
        if trial.trial_id in self._wall_s:
            return self._wall_s[trial.trial_id]
        seconds: Any = trial.last_result.get("time_total_s")
        return float(seconds) if _finite(seconds) else None

    def _best(self, trials: Sequence[Trial]) -> tuple[float | None, str | None]:
        values = [(float(t.last_result[self.metric]), t.trial_id) for t in trials
                  if _finite(t.last_result.get(self.metric))]
        if not values:
            return None, None
        value, trial_id = max(values) if self.mode == "max" else min(values)
        return value, trial_id


def _stopped_early(trial: Trial, epochs: int) -> bool:
    reached = trial.last_result.get("training_iteration")
    return isinstance(reached, int) and reached < epochs


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
