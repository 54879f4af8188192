"""Fidelity-checked ASHA: a rung stops trials only once the sweep's own trials show that its ranking
predicts the last epoch's; probe trials are never stopped; decisions reach the trials' stored
history and survive a resume. Rung values and rho are hand-computed."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from epoch_checkpoints import epoch_checkpoints
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from asymtune.config.errors import ConfigError
from asymtune.results.trials import one_row_per_epoch
from asymtune.search.scheduler import (
    DISABLED,
    KEPT,
    NOT_ENOUGH_PAIRS,
    PROBE,
    RUNG_ACTION,
    RUNG_PAIRS,
    RUNG_RHO,
    RUNG_STOPPED,
    FidelityCheckedASHA,
    RungDecision,
    RungDecisionRecorder,
    rung_action,
    spearman,
)

# max_t 4, grace period 2, reduction factor 2: ASHA's rungs are epochs 2 and 4; 4 is the last epoch,
# so epoch 2 is the one rung that can stop a trial (cutoff: the median of the values recorded there).
EPOCHS, GRACE, FACTOR = 4, 2, 2.0


def _scheduler(probe_trials: int = 3, min_pairs: int = 3, min_rho: float = 0.5,
               objective: bool = True) -> FidelityCheckedASHA:
    """``objective``: set the metric and mode here (driven by hand); a Tuner sets them itself."""
    scheduler = FidelityCheckedASHA(max_t=EPOCHS, grace_period=GRACE, reduction_factor=FACTOR,
                                    probe_trials=probe_trials, min_pairs=min_pairs, min_rho=min_rho)
    if objective:
        assert scheduler.set_search_properties("score", "max")
    return scheduler


def _curve(at_rung: float, last: float) -> list[float]:
    """Objective per epoch 1..4: the value at the rung (epoch 2) and at the last epoch are what matter."""
    return [at_rung / 2, at_rung, (at_rung + last) / 2, last]


def _run_one_after_another(scheduler: Any, curves: dict[str, list[float]]) -> dict[str, int]:
    """Each trial trains until its last epoch or until the scheduler stops it, then the next
    starts (one trial at a time); returns the epoch each trial ended at."""
    ended = {}
    for counter, (name, curve) in enumerate(curves.items()):
        trial = Trial("__fake", trial_id=name, experiment_tag=f"{counter}_{name}", stub=True)
        scheduler.on_trial_add(None, trial)
        for epoch, value in enumerate(curve, start=1):
            result = {"training_iteration": epoch, "score": value}
            if scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP:
                break
        scheduler.on_trial_complete(None, trial, result)
        ended[name] = epoch
    return ended


def _decision(scheduler: FidelityCheckedASHA, trial_id: str) -> RungDecision:
    (decision,) = [d for t, d in scheduler.decisions if t == trial_id]
    return decision


# Probes whose rung ranking is the last epoch's: rung values b 0.1 < c 0.2 < a 0.3, finals b 0.4 <
# c 0.5 < a 0.6: rho = 1 over 3 pairs.
PREDICTIVE_PROBES = {"a": _curve(0.3, 0.6), "b": _curve(0.1, 0.4), "c": _curve(0.2, 0.5)}
# The same rung values with the last epoch reversed (b best, a worst): rho = -1.
INVERTED_PROBES = {"a": _curve(0.3, 0.4), "b": _curve(0.1, 0.6), "c": _curve(0.2, 0.5)}


def test_spearman_and_the_rule_by_hand() -> None:
    # ranks [3, 1, 2, 4] against [4, 2, 3, 1]: d = (-1, -1, -1, 3), sum d^2 = 12, rho = 1 - 6 * 12 / (4 * 15) = -0.2
    assert spearman([0.3, 0.1, 0.2, 0.35], [0.6, 0.4, 0.5, 0.1]) == pytest.approx(-0.2)
    assert spearman([0.3, 0.1, 0.2], [0.6, 0.4, 0.5]) == 1.0 and spearman([0.3, 0.1, 0.2], [0.4, 0.6, 0.5]) == -1.0
    assert math.isnan(spearman([0.1, 0.2], [0.1, 0.2])), "fewer than 3 pairs"
    assert rung_action(1.0, 2, min_pairs=3, min_rho=0.5) == NOT_ENOUGH_PAIRS
    assert rung_action(0.4, 3, min_pairs=3, min_rho=0.5) == DISABLED
    assert rung_action(math.nan, 5, min_pairs=3, min_rho=-1.0) == DISABLED, "no ranking: nothing to trust"
    assert rung_action(0.5, 3, min_pairs=3, min_rho=0.5) == KEPT


def test_probe_trials_are_never_stopped_where_plain_asha_stops_them() -> None:
    plain = ASHAScheduler(time_attr="training_iteration", metric="score", mode="max", max_t=EPOCHS,
                          grace_period=GRACE, reduction_factor=FACTOR)
    # b's 0.1 is below the median of {a: 0.3} at the rung: plain ASHA stops it at epoch 2
    assert _run_one_after_another(plain, PREDICTIVE_PROBES) == {"a": 4, "b": 2, "c": 4}
    checked = _scheduler()
    assert _run_one_after_another(checked, PREDICTIVE_PROBES) == {"a": 4, "b": 4, "c": 4}
    assert [d.action for _, d in checked.decisions] == [PROBE, PROBE, PROBE]
    assert checked.fidelity(GRACE) == (1.0, 3)


def test_a_predictive_rung_is_kept_and_stops_like_asha() -> None:
    scheduler = _scheduler()
    ended = _run_one_after_another(scheduler, {**PREDICTIVE_PROBES, "d": _curve(0.15, 0.9), "e": _curve(0.35, 0.7)})
    # d's 0.15 is below the median of {0.3, 0.1, 0.2} = 0.2: stopped; e's 0.35 is above the median
    # of {0.3, 0.1, 0.2, 0.15} = 0.175: passes
    assert ended == {"a": 4, "b": 4, "c": 4, "d": 2, "e": 4}
    assert _decision(scheduler, "d") == RungDecision(epoch=2, action=KEPT, rho=1.0, pairs=3, stopped=True)
    assert _decision(scheduler, "e") == RungDecision(epoch=2, action=KEPT, rho=1.0, pairs=3, stopped=False)


def test_a_rung_that_does_not_predict_is_disabled() -> None:
    scheduler = _scheduler()
    ended = _run_one_after_another(scheduler, {**INVERTED_PROBES, "d": _curve(0.05, 0.9)})
    assert ended["d"] == 4, "the worst trial at the rung trains to the end: the rung ranks inversely"
    assert _decision(scheduler, "d") == RungDecision(epoch=2, action=DISABLED, rho=-1.0, pairs=3, stopped=False)


def test_a_rung_is_disabled_once_new_pairs_show_it_stopped_predicting() -> None:
    scheduler = _scheduler()
    # d passes the kept rung as its best trial and ends worst: with it, rho = -0.2 (hand-computed above)
    curves = {**PREDICTIVE_PROBES, "d": _curve(0.35, 0.1), "e": _curve(0.05, 0.8)}
    ended = _run_one_after_another(scheduler, curves)
    assert _decision(scheduler, "d").action == KEPT and ended["e"] == 4
    decision = _decision(scheduler, "e")
    assert (decision.action, decision.pairs, decision.stopped) == (DISABLED, 4, False)
    assert decision.rho == pytest.approx(-0.2)


def test_an_unmeasured_rung_stops_nothing() -> None:
    scheduler = _scheduler(probe_trials=1, min_pairs=3)
    ended = _run_one_after_another(scheduler, {"a": _curve(0.3, 0.6), "b": _curve(0.1, 0.4)})
    assert ended == {"a": 4, "b": 4}
    decision = _decision(scheduler, "b")  # b's 0.1 is below a's 0.3, and only a's pair exists
    assert (decision.action, decision.pairs, decision.stopped) == (NOT_ENOUGH_PAIRS, 1, False)
    assert math.isnan(decision.rho)


def test_a_rerun_epoch_replaces_the_first_runs_value_at_the_rung_and_at_the_end() -> None:
    """A resume from an earlier checkpoint trains epochs again: the rerun's value is the one the
    scheduler keeps (as the report does), and a rerun rung epoch is decided again."""
    scheduler = _scheduler()
    _run_one_after_another(scheduler, PREDICTIVE_PROBES)
    assert scheduler.fidelity(GRACE) == (1.0, 3)
    a = Trial("__fake", trial_id="a", experiment_tag="0_a", stub=True)
    scheduler.on_trial_result(None, a, {"training_iteration": EPOCHS, "score": 0.3})  # a's last epoch, rerun
    # rung values b 0.1 < c 0.2 < a 0.3 against finals a 0.3 < b 0.4 < c 0.5: d = (2, -1, -1), rho = 1 - 6 * 6 / 24
    assert scheduler.fidelity(GRACE) == (pytest.approx(-0.5), 3)

    scheduler = _scheduler()
    _run_one_after_another(scheduler, PREDICTIVE_PROBES)
    d = Trial("__fake", trial_id="d", experiment_tag="3_d", stub=True)
    scheduler.on_trial_add(None, d)
    assert scheduler.on_trial_result(None, d, {"training_iteration": 1, "score": 0.1}) == TrialScheduler.CONTINUE
    # 0.35 is above the median of {0.3, 0.1, 0.2}: passes; its rerun's 0.15 is below it: stopped
    assert scheduler.on_trial_result(None, d, {"training_iteration": GRACE, "score": 0.35}) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, d, {"training_iteration": GRACE, "score": 0.15}) == TrialScheduler.STOP
    assert scheduler.pop_decision("d", GRACE) == RungDecision(epoch=GRACE, action=KEPT, rho=1.0, pairs=3, stopped=True)
    assert dict(scheduler._rungs)[GRACE]["d"] == 0.15, "the rung holds the rerun's value, once"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("probe_trials", -1, "search.scheduler.probe_trials=-1: expected an integer >= 0"),
     ("min_pairs", 2, "search.scheduler.min_pairs=2: expected an integer >= 3"),
     ("min_rho", 1.5, "search.scheduler.min_rho=1.5: expected a number in [-1, 1]")],
)
def test_bad_settings_name_their_key(key: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FidelityCheckedASHA(max_t=EPOCHS, grace_period=GRACE, reduction_factor=FACTOR, **{key: value})


# ------------------------------------------------------------------------------------ real Tuner
def _trainable(fail_flag: Path) -> Callable[[dict[str, Any]], None]:
    """A function trainable that reports ``config["curve"]`` epoch by epoch; a trial with
    ``config["fails"]`` raises before its first epoch while ``fail_flag`` exists. (A closure, so
    Ray ships it by value to its workers.)"""
    def curve_trainable(config: dict[str, Any]) -> None:
        if config["fails"] and fail_flag.exists():
            raise RuntimeError("injected failure")
        for epoch, value in enumerate(config["curve"], start=1):
            tune.report({"score": value, "epoch": epoch})

    return curve_trainable


def _fit(tmp_path: Path, curves: dict[str, list[float]], failing: str | None = None) -> tune.ResultGrid:
    scheduler = _scheduler(objective=False)
    tuner = tune.Tuner(
        _trainable(tmp_path / "fail"),
        param_space={"name": tune.grid_search(list(curves)),
                     "curve": tune.sample_from(lambda spec: curves[spec.config["name"]]),
                     "fails": tune.sample_from(lambda spec: spec.config["name"] == failing)},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler, max_concurrent_trials=1),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "storage"), verbose=0,
                                  callbacks=[RungDecisionRecorder(scheduler)],
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    return tuner.fit()


def _histories(grid: tune.ResultGrid) -> dict[str, list[dict[str, Any]]]:
    return {result.config["name"]: result.metrics_dataframe.to_dict("records") for result in grid}


def _rung_row(history: list[dict[str, Any]]) -> dict[str, Any]:
    (row,) = [r for r in history if r["training_iteration"] == GRACE]
    return row


@pytest.mark.e2e
def test_decisions_reach_the_stored_history(local_ray: None, tmp_path: Path) -> None:
    grid = _fit(tmp_path, {**PREDICTIVE_PROBES, "d": _curve(0.15, 0.9)})
    histories = _histories(grid)
    assert {name: len(h) for name, h in histories.items()} == {"a": 4, "b": 4, "c": 4, "d": 2}
    assert [_rung_row(histories[n])[RUNG_ACTION] for n in "abc"] == [PROBE] * 3
    row = _rung_row(histories["d"])
    assert (row[RUNG_ACTION], row[RUNG_RHO], row[RUNG_PAIRS], row[RUNG_STOPPED]) == (KEPT, 1.0, 3, True)
    assert all(isinstance(r.get(RUNG_ACTION), float) for r in histories["a"] if r["training_iteration"] != GRACE), \
        "only the rung's epoch carries a decision (NaN elsewhere)"


@pytest.mark.e2e
def test_a_resumed_sweep_rebuilds_its_rungs_from_the_stored_histories(local_ray: None, tmp_path: Path) -> None:
    """d fails before its first epoch; the sweep is resumed with a scheduler as Ray Tune restores it
    (as it was created, empty): it must still know the probes' 3 pairs and rung values to stop d."""
    (tmp_path / "fail").touch()
    curves = {**PREDICTIVE_PROBES, "d": _curve(0.15, 0.9)}
    first = _fit(tmp_path, curves, failing="d")
    assert sum(result.error is not None for result in first) == 1
    (tmp_path / "fail").unlink()
    path = str(tmp_path / "storage" / "exp")
    resumed = tune.Tuner.restore(path, trainable=_trainable(tmp_path / "fail"), resume_errored=True).fit()
    histories = _histories(resumed)
    row = _rung_row(histories["d"])
    assert (row[RUNG_ACTION], row[RUNG_PAIRS], row[RUNG_STOPPED]) == (KEPT, 3, True)
    assert len(histories["d"]) == 2, "stopped at the rung, against the probes' recorded values"


def _checkpointing_trainable(fail_flag: Path) -> Callable[[dict[str, Any]], None]:
    """Reports ``config["curve"]``, with a checkpoint at epoch 1 only; while ``fail_flag`` exists, a
    trial with ``config["fails"]`` raises after its rung epoch (its result written, no checkpoint
    of it), so a restore from epoch 1's checkpoint trains the rung epoch again, with
    ``config["rerun"]`` as its value."""
    last_epoch, report_with_checkpoint = epoch_checkpoints()

    def trainable(config: dict[str, Any]) -> None:
        start = last_epoch()
        for epoch in range(start + 1, len(config["curve"]) + 1):
            value = config["rerun"] if start and epoch == GRACE else config["curve"][epoch - 1]
            if epoch == 1:
                report_with_checkpoint({"score": value}, epoch)
            else:
                tune.report({"score": value})
            if epoch == GRACE and config["fails"] and fail_flag.exists():
                raise RuntimeError("injected failure after the rung epoch")

    return trainable


@pytest.mark.e2e
def test_a_restore_that_trains_the_rung_epoch_again_decides_it_again(local_ray: None, tmp_path: Path) -> None:
    """d passes the rung with 0.35 and fails before a checkpoint of that epoch; restored from epoch
    1's checkpoint, it reports 0.15 there (the result file then holds epoch 2 twice), below the
    rung's cutoff 0.2: it is stopped, and the decision is in the row the report reads."""
    (tmp_path / "fail").touch()
    curves = {**PREDICTIVE_PROBES, "d": _curve(0.35, 0.9)}
    scheduler = _scheduler(objective=False)
    tuner = tune.Tuner(
        _checkpointing_trainable(tmp_path / "fail"),
        param_space={"name": tune.grid_search(list(curves)),
                     "curve": tune.sample_from(lambda spec: curves[spec.config["name"]]),
                     "rerun": 0.15, "fails": tune.sample_from(lambda spec: spec.config["name"] == "d")},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler, max_concurrent_trials=1),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "storage"), verbose=0,
                                  callbacks=[RungDecisionRecorder(scheduler)],
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    first = _histories(tuner.fit())
    assert [(r["training_iteration"], r["score"], r[RUNG_STOPPED]) for r in first["d"]] == [
        (1, 0.175, pytest.approx(math.nan, nan_ok=True)), (GRACE, 0.35, False)]
    (tmp_path / "fail").unlink()
    path = str(tmp_path / "storage" / "exp")
    resumed = tune.Tuner.restore(path, trainable=_checkpointing_trainable(tmp_path / "fail"), resume_errored=True).fit()
    raw = _histories(resumed)["d"]
    assert [r["training_iteration"] for r in raw] == [1, GRACE, GRACE], "the rung epoch trained twice"
    (row,) = [r for r in one_row_per_epoch(raw) if r["training_iteration"] == GRACE]
    assert (row["score"], row[RUNG_ACTION], row[RUNG_PAIRS], row[RUNG_STOPPED]) == (0.15, KEPT, 3, True)


# A free slot starts the newest waiting trial (asymtune.search.start_order), not FIFO's oldest
def _with_statuses(*statuses: str) -> list[Trial]:
    trials = []
    for index, status in enumerate(statuses):
        trial = Trial("__fake", trial_id=f"t{index}", stub=True)
        trial.status = status
        trials.append(trial)
    return trials


def test_a_free_slot_starts_the_newest_waiting_trial_where_fifo_starts_the_oldest() -> None:
    trials = _with_statuses(Trial.TERMINATED, Trial.PENDING, Trial.RUNNING, Trial.PENDING, Trial.PENDING, Trial.RUNNING)
    controller = SimpleNamespace(get_trials=lambda: trials)
    scheduler = _scheduler()
    assert scheduler.choose_trial_to_run(controller).trial_id == "t4"
    assert ASHAScheduler(max_t=4).choose_trial_to_run(controller).trial_id == "t1"  # Ray Tune's FIFO rule
    assert scheduler.choose_trial_to_run(controller).trial_id == "t4"  # idempotent, as Ray Tune requires


def test_paused_trials_come_after_waiting_ones_oldest_first() -> None:
    scheduler = _scheduler()
    paused = _with_statuses(Trial.PAUSED, Trial.RUNNING, Trial.PAUSED)
    assert scheduler.choose_trial_to_run(SimpleNamespace(get_trials=lambda: paused)).trial_id == "t0"
    running = _with_statuses(Trial.RUNNING, Trial.TERMINATED)
    assert scheduler.choose_trial_to_run(SimpleNamespace(get_trials=lambda: running)) is None
