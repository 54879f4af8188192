"""The progress line of a sweep (asymtune.search.progress): its text, its estimate of the time
left, when it prints, and what it counts from Ray Tune's own trial objects."""

from __future__ import annotations

import logging
import math
import os
import pickle

import optuna
import pytest
from ray import tune
from ray.tune.experiment import Trial

from asymtune.search.progress import (
    MAX_LINES,
    MIN_INTERVAL_S,
    ProgressLine,
    SweepProgress,
    estimate_left_s,
    format_duration,
    format_estimate,
    format_line,
    quiet_terminal,
    should_print,
    tune_verbosity,
)
from asymtune.side_by_side import run_side_by_side

METRIC = "val/mean_fg_dice"


def _progress(**changes: object) -> SweepProgress:
    values: dict[str, object] = dict(
        dataset="synth_lesions", total=8, done=5, running=2, stopped_early=1, failed=0, metric=METRIC,
        best=0.61234, best_trial="1a2b3c4d", elapsed_s=192.0, left_s=130.0,
    )
    values.update(changes)
    return SweepProgress(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- the text
@pytest.mark.parametrize(("changes", "prefix", "expected"), [
    ({}, True, "[synth_lesions] 5/8 done, 2 running, 1 stopped early | best val/mean_fg_dice 0.6123 "
               "(trial 1a2b3c4d) | 3m12s elapsed, ~3m left"),
    ({}, False, "5/8 done, 2 running, 1 stopped early | best val/mean_fg_dice 0.6123 (trial 1a2b3c4d) "
                "| 3m12s elapsed, ~3m left"),
    ({"done": 0, "stopped_early": 0, "best": None, "best_trial": None, "elapsed_s": 9.0, "left_s": None}, True,
     "[synth_lesions] 0/8 done, 2 running | no val/mean_fg_dice yet | 9s elapsed"),
    ({"done": 8, "running": 0, "failed": 2, "left_s": None, "elapsed_s": 7500.0}, True,
     "[synth_lesions] 8/8 done, 0 running, 1 stopped early, 2 failed | best val/mean_fg_dice 0.6123 "
     "(trial 1a2b3c4d) | 2h05m elapsed"),
    ({"best": 12.5, "best_trial": None, "left_s": 3.0}, False,
     "5/8 done, 2 running, 1 stopped early | best val/mean_fg_dice 12.5 | 3m12s elapsed, ~10s left"),
])
def test_line_text(changes: dict[str, object], prefix: bool, expected: str) -> None:
    assert format_line(_progress(**changes), prefix=prefix) == expected


@pytest.mark.parametrize(("seconds", "duration", "estimate"), [
    (0.0, "0s", "10s"), (9.9, "9s", "10s"), (41.0, "41s", "50s"), (50.0, "50s", "1m"), (59.0, "59s", "1m"),
    (60.0, "1m00s", "1m"), (61.0, "1m01s", "2m"), (3599.0, "59m59s", "60m"), (3600.0, "1h00m", "60m"),
    (3601.0, "1h00m", "1h01m"), (90061.0, "25h01m", "25h02m"), (-5.0, "0s", "10s"),
])
def test_durations_and_estimates(seconds: float, duration: str, estimate: str) -> None:
    assert format_duration(seconds) == duration
    assert format_estimate(seconds) == estimate


def test_the_line_fits_a_terminal_for_a_long_dataset_name() -> None:
    line = format_line(_progress(dataset="Dataset004_Hippocampus", total=128, done=100, running=4,
                                 stopped_early=61, failed=3, metric="val/dice/hippocampus_head"))
    assert len(line) <= 160, line


# ------------------------------------------------------------------------------ the estimate
@pytest.mark.parametrize(("mean", "not_started", "running", "concurrency", "expected"), [
    (60.0, 8, [30.0, 30.0], 2, 270.0),       # 30 s left of the running pair, then 4 rounds of 2
    (60.0, 8, [], 4, 120.0),                 # 2 rounds of 4
    (60.0, 0, [50.0], 4, 10.0),              # the last trial: its 10 s, whatever the concurrency
    (60.0, 0, [90.0], 2, 0.0),               # running longer than the mean: nothing left known
    (60.0, 0, [], 2, 0.0),                   # nothing left
    (60.0, 3, [10.0], 0, 230.0),             # concurrency at least 1
    (None, 3, [10.0], 2, None),              # no trial ended: no estimate
])
def test_estimate_of_the_time_left(
    mean: float | None, not_started: int, running: list[float], concurrency: int, expected: float | None
) -> None:
    left = estimate_left_s(mean, not_started, running, concurrency)
    assert left == (pytest.approx(expected) if expected is not None else None)


# ------------------------------------------------------------------------- when a line prints
def _simulate(total: int, seconds_between_ends: float, concurrency: int = 2) -> list[SweepProgress]:
    """The lines should_print lets through for a sweep whose trials end one every
    ``seconds_between_ends``, checked every second (as Ray Tune's steps would)."""
    printed: list[SweepProgress] = []
    last_at = 0.0
    ends = [(k + 1) * seconds_between_ends for k in range(total)]
    t = 0.0
    while True:
        t += 1.0
        done = sum(end <= t for end in ends)
        now = _progress(total=total, done=done, running=min(concurrency, total - done), elapsed_s=t)
        final = done == total
        if should_print(printed[-1] if printed else None, now, t - last_at, final=final):
            printed.append(now)
            last_at = t
        if final:
            return printed


@pytest.mark.parametrize(("total", "seconds_between_ends"), [(3, 4.0), (32, 30.0), (32, 0.5), (500, 20.0)])
def test_lines_per_sweep_stay_few_whatever_the_number_of_trials(total: int, seconds_between_ends: float) -> None:
    printed = _simulate(total, seconds_between_ends)
    assert printed[-1].done == total
    assert len(printed) <= MAX_LINES + 2, [p.done for p in printed]
    gaps = [b.elapsed_s - a.elapsed_s for a, b in zip(printed[:-1], printed[1:-1])]  # the last line is due
    assert all(gap >= MIN_INTERVAL_S for gap in gaps), gaps
    step = math.ceil(total / MAX_LINES)
    if step * seconds_between_ends >= MIN_INTERVAL_S:  # time for a line at every step: none is dropped
        assert len(printed) >= total // step, [p.done for p in printed]


def test_a_failed_trial_prints_without_a_milestone_and_a_quiet_sweep_prints_a_heartbeat() -> None:
    before = _progress(total=40, done=3)
    assert should_print(before, _progress(total=40, done=3, failed=1), MIN_INTERVAL_S)
    assert not should_print(before, before, 599.0)
    assert should_print(before, before, 600.0)


# ------------------------------------------------------------------- the callback, on real trials
class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _trial(trial_id: str, status: str, **result: float) -> Trial:
    trial = Trial("asymtune_progress_noop", trial_id=trial_id, stub=True)
    trial.set_status(status)
    if result:
        trial.run_metadata.last_result = dict(result)
    return trial


@pytest.fixture(scope="module", autouse=True)
def _noop_trainable() -> None:
    tune.register_trainable("asymtune_progress_noop", lambda config: None)


def test_the_callback_counts_ray_tune_trials_and_estimates_from_their_times(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    line = ProgressLine("synth_lesions", total=6, metric=METRIC, mode="max", epochs=4, clock=clock)
    line.setup()
    pending = [_trial(f"t{k}", Trial.PENDING) for k in range(6)]
    assert line.update(pending) is None  # nothing runs yet

    clock.now += 5
    trials = [_trial("t0", Trial.RUNNING), _trial("t1", Trial.RUNNING), *pending[2:]]
    assert line.update(trials) == "[synth_lesions] 0/6 done, 2 running | no val/mean_fg_dice yet | 5s elapsed"

    clock.now += 60  # t0 ran to its last epoch, t1 was stopped at epoch 2 (both seen for 60 s)
    trials = [
        _trial("t0", Trial.TERMINATED, training_iteration=4, **{METRIC: 0.5}, time_total_s=50.0),
        _trial("t1", Trial.TERMINATED, training_iteration=2, **{METRIC: 0.7}, time_total_s=20.0),
        _trial("t2", Trial.RUNNING, training_iteration=1, **{METRIC: 0.9}),
        _trial("t3", Trial.ERROR, training_iteration=1),
        *pending[4:],
    ]
    progress = line.progress(trials, clock.now)
    assert (progress.done, progress.running, progress.stopped_early, progress.failed) == (3, 1, 1, 1)
    assert (progress.best, progress.best_trial) == (0.9, "t2")
    # mean trial time 60 s (wall time seen for t0, t1); t3 not seen running: its training time is
    # unknown, so it does not count. Left: t2 (just seen) 60 s + 2 not started x 60 s, over 2 at once.
    assert progress.left_s == pytest.approx(90.0)
    assert progress.elapsed_s == pytest.approx(65.0)
    printed = line.update(trials)
    assert printed is not None and printed.startswith("[synth_lesions] 3/6 done, 1 running, 1 stopped early, 1 failed")

    final = line.update(trials, final=True)
    assert final is not None and "best val/mean_fg_dice 0.9 (trial t2)" in final
    assert capsys.readouterr().out.splitlines() == [
        "[synth_lesions] 0/6 done, 2 running | no val/mean_fg_dice yet | 5s elapsed", printed, final,
    ]


def test_min_mode_and_restored_trials_use_their_training_time() -> None:
    clock = _Clock()
    line = ProgressLine("d", total=3, metric="val/loss", mode="min", epochs=2, clock=clock)
    line.setup()
    trials = [  # a resumed sweep: two trials ended before the interruption
        _trial("a", Trial.TERMINATED, training_iteration=2, time_total_s=30.0, **{"val/loss": 0.4}),
        _trial("b", Trial.TERMINATED, training_iteration=2, time_total_s=50.0, **{"val/loss": math.nan}),
        _trial("c", Trial.PENDING),
    ]
    progress = line.progress(trials, clock.now)
    assert (progress.best, progress.best_trial) == (0.4, "a")
    assert progress.left_s == pytest.approx(40.0)


def test_the_callback_survives_pickling_and_starts_afresh_at_setup() -> None:
    clock = _Clock()
    line = ProgressLine("d", total=2, metric=METRIC, mode="max", epochs=2)
    line.update([_trial("a", Trial.RUNNING)])
    restored = pickle.loads(pickle.dumps(line))  # what Ray Tune stores with the experiment
    restored.clock = clock
    restored.setup()
    progress = restored.progress([_trial("a", Trial.RUNNING)], clock.now)
    assert progress.elapsed_s == 0.0 and progress.running == 1


def test_side_by_side_lines_name_their_dataset_once(capsys: pytest.CaptureFixture[str]) -> None:
    def sweep(name: str) -> str | None:
        line = ProgressLine(name, total=1, metric=METRIC, mode="max", epochs=1)
        line.setup()
        return line.update([_trial("x", Trial.RUNNING)])

    unprefixed = run_side_by_side([(name, lambda name=name: sweep(name)) for name in ("a", "b")], limit=2)
    assert unprefixed == ["0/1 done, 1 running | no val/mean_fg_dice yet | 0s elapsed"] * 2
    lines = sorted(capsys.readouterr().out.splitlines())
    assert lines == [f"[{name}] 0/1 done, 1 running | no val/mean_fg_dice yet | 0s elapsed" for name in ("a", "b")]


# --------------------------------------------------------------------------- the verbose levels
def test_tune_verbosity_keeps_ray_tune_quiet_at_the_default() -> None:
    assert [tune_verbosity(v) for v in (0, 1, 2, 3)] == [0, 0, 1, 2]


def test_quiet_terminal_silences_optuna_and_mlflow_info_only_below_verbose_2(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # a user's setting stands
    levels = {name: logging.getLogger(name).level for name in ("mlflow", "asymtune.search.scheduler")}
    verbosity = optuna.logging.get_verbosity()
    try:
        caplog.set_level(logging.DEBUG)
        optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's default
        quiet_terminal(2)
        optuna.create_study()
        assert "A new study created" in caplog.text
        caplog.clear()
        quiet_terminal(1)
        optuna.create_study()
        assert "A new study created" not in caplog.text
        assert logging.getLogger("mlflow.store.db.utils").getEffectiveLevel() == logging.WARNING
        assert not logging.getLogger("asymtune.search.scheduler").isEnabledFor(logging.INFO)
        assert logging.getLogger("asymtune.search.scheduler").isEnabledFor(logging.WARNING)
        token = logging.getLogger("ray._private.authentication.authentication_token_setup")
        notice = token.makeRecord(token.name, logging.WARNING, __file__, 1,
                                  "Token authentication is enabled for this Ray cluster. Set ...", (), None)
        warning = token.makeRecord(token.name, logging.WARNING, __file__, 1,
                                   "Token authentication is disabled for this Ray cluster.", (), None)
        assert not token.filter(notice) and token.filter(warning)
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "false"
    finally:
        optuna.logging.set_verbosity(verbosity)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        token = logging.getLogger("ray._private.authentication.authentication_token_setup")
        for added in [f for f in token.filters if type(f).__module__ == "asymtune.search.progress"]:
            token.removeFilter(added)
