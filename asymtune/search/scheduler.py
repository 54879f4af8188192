"""Fidelity-checked ASHA: a rung stops trials only once the sweep's own trials show that its
ranking predicts the final one.

ASHA stops a trial at a rung (an epoch, ``grace_period * reduction_factor**k``) when its objective
is below the rung's best ``1 / reduction_factor``. That is only as good as the rung's ranking: with
few, noisy validation images and a rare class that is learned late, an early Dice can rank trials
no better than chance, and then ASHA stops good settings blindly. This scheduler measures the
ranking before trusting it:

- The first ``probe_trials`` trials (in creation order: the space's anchors, baseline first) are
  never stopped, so each gives a (rung value, final value) pair at every rung; every other trial
  that reaches the last epoch adds one more.
- When a trial reaches a rung, the rung's Spearman rho between the objective at the rung and at the
  last epoch is computed over the trials that reached both (its *pairs*), and :func:`rung_action`
  decides: fewer than ``min_pairs`` pairs: ``"not enough pairs"``, the trial passes (an unmeasured
  rung is not trusted); rho below ``min_rho``: ``"disabled"``, the trial passes; otherwise
  ``"kept"``: ASHA's own rule stops it or not. The rho is recomputed at every decision, so a
  rung that stops predicting as pairs arrive is disabled from then on, and one shown to predict
  starts stopping. Every trial's value at a rung enters the rung's cutoff, whatever the action.
- Each decision is written into the trial's result at that epoch (:data:`RUNG_KEYS`, by
  :class:`RungDecisionRecorder`), so it lives in the trial's stored history (``result.json``)
  beside the metrics and survives a resume; the report reads it back from there.

Ray Tune does not save a scheduler's state with the experiment: a restored sweep gets the
scheduler as it was created (Ray issue 30838: ASHA's rungs start empty again). This one rebuilds
its rung values and pairs from each restored trial's stored history when Ray Tune adds the trial
back (:meth:`FidelityCheckedASHA.on_trial_add`).

An epoch can be reported twice: a driver killed after a trial's result was written but before Ray
Tune's snapshot of the experiment resumes that trial from its last checkpoint, and it trains the
epochs after it again. The rerun is what the trial goes on from, and the stored history's reader
keeps the rerun's row (:func:`asymtune.results.trials.one_row_per_epoch`), so the scheduler does
the same: a rerun epoch replaces its final value, and a rerun rung epoch is decided again (its
first value leaves the rung), so the decision that governs the trial is in the row the report reads.

Spearman's rho over 4 pairs is a coarse check (a random ranking reaches 0.6 one time in five): it
catches rungs that rank no better than chance or inversely, it does not prove a good one.

A free slot starts the newest waiting trial, not the oldest (:mod:`asymtune.search.start_order`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs
from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler
from scipy import stats

from asymtune.config.errors import ConfigError
from asymtune.results.trials import one_row_per_epoch
from asymtune.search.start_order import trial_to_start

log = logging.getLogger(__name__)

MIN_SPEARMAN_PAIRS = 3
"""Spearman's rho of fewer pairs is not computed (NaN)."""

PROBE = "probe"
NOT_ENOUGH_PAIRS = "not enough pairs"
DISABLED = "disabled"
KEPT = "kept"
ACTIONS = (PROBE, NOT_ENOUGH_PAIRS, DISABLED, KEPT)
"""What a rung did with a trial: let a probe trial pass; let it pass because the rung is not yet
measured, or because it does not predict; or judge it by ASHA's rule (``kept``)."""

RUNG_ACTION, RUNG_RHO, RUNG_PAIRS, RUNG_STOPPED = "rung/action", "rung/rho", "rung/pairs", "rung/stopped"
RUNG_KEYS = (RUNG_ACTION, RUNG_RHO, RUNG_PAIRS, RUNG_STOPPED)
"""Keys of a trial's result at an epoch where a rung decided about it: the action, the rung's rho
and number of pairs when it decided, and whether it stopped the trial."""


def spearman(early: Sequence[float], final: Sequence[float]) -> float:
    """Spearman's rho of paired values; NaN for fewer than :data:`MIN_SPEARMAN_PAIRS` pairs or a
    constant side (no ranking).

    >>> round(spearman([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3]), 3)
    0.6
    """
    if len(early) != len(final):
        raise ValueError(f"spearman: {len(early)} early values but {len(final)} final values; expected pairs")
    if len(early) < MIN_SPEARMAN_PAIRS or len(set(early)) < 2 or len(set(final)) < 2:
        return math.nan
    rho = stats.spearmanr(np.asarray(early, dtype=float), np.asarray(final, dtype=float)).statistic
    return float(rho)


def rung_action(rho: float, pairs: int, min_pairs: int, min_rho: float) -> str:
    """What a measured rung does with a trial that is not a probe.

    >>> rung_action(0.8, 3, min_pairs=4, min_rho=0.5), rung_action(0.2, 5, 4, 0.5), rung_action(0.6, 4, 4, 0.5)
    ('not enough pairs', 'disabled', 'kept')
    """
    if pairs < min_pairs:
        return NOT_ENOUGH_PAIRS
    if not math.isfinite(rho) or rho < min_rho:
        return DISABLED
    return KEPT


@dataclass(frozen=True)
class RungDecision:
    """One decision of a rung about one trial.

    Attributes:
        epoch: the epoch of the result it was made on (the first epoch at or past the rung).
        action: one of :data:`ACTIONS`.
        rho: the rung's Spearman rho when it decided (NaN: not computable).
        pairs: the trials that had reached the rung and the last epoch then.
        stopped: the trial was stopped here.
    """

    epoch: int
    action: str
    rho: float
    pairs: int
    stopped: bool

    def as_result(self) -> dict[str, Any]:
        """The :data:`RUNG_KEYS` entries of the trial's result."""
        return {RUNG_ACTION: self.action, RUNG_RHO: self.rho, RUNG_PAIRS: self.pairs, RUNG_STOPPED: self.stopped}


def _check(key: str, value: Any, ok: bool, expected: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
        raise ConfigError(f"search.scheduler.{key}={value!r}: expected {expected}")


class FidelityCheckedASHA(AsyncHyperBandScheduler):
    """Ray Tune's ASHA (one bracket) whose rungs stop trials only once measured to predict the end.

    The objective and its mode come from ``tune.TuneConfig`` (``set_search_properties``), as for
    Ray's own schedulers. See the module's docstring for the rule.

    Args:
        max_t: epochs of a trial (``train.epochs``).
        grace_period: ``search.scheduler.grace_period``.
        reduction_factor: ``search.scheduler.reduction_factor``.
        probe_trials: ``search.scheduler.probe_trials``: the first trials, never stopped.
        min_pairs: ``search.scheduler.min_pairs``: pairs a rung needs before it may stop a trial.
        min_rho: ``search.scheduler.min_rho``: a measured rung with a lower rho is disabled.
        time_attr: the result key that counts epochs.

    Raises:
        ConfigError: a value out of range, naming its ``search.scheduler`` key.
    """

    def __init__(
        self,
        max_t: int,
        grace_period: int,
        reduction_factor: float,
        probe_trials: int = 4,
        min_pairs: int = 4,
        min_rho: float = 0.5,
        time_attr: str = "training_iteration",
    ) -> None:
        _check("probe_trials", probe_trials, isinstance(probe_trials, int) and probe_trials >= 0,
               "an integer >= 0 (first trials never stopped)")
        _check("min_pairs", min_pairs, isinstance(min_pairs, int) and min_pairs >= MIN_SPEARMAN_PAIRS,
               f"an integer >= {MIN_SPEARMAN_PAIRS} (Spearman's rho needs {MIN_SPEARMAN_PAIRS} pairs)")
        _check("min_rho", min_rho, -1 <= min_rho <= 1, "a number in [-1, 1] (a Spearman rho)")
        super().__init__(
            time_attr=time_attr, max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor,
            brackets=1,
        )
        self.probe_trials, self.min_pairs, self.min_rho = probe_trials, min_pairs, float(min_rho)
        self._creation: dict[str, tuple[int, int]] = {}  # trial id -> (creation counter, add order)
        self._rung_values: dict[str, dict[float, float]] = {}  # trial id -> {milestone: signed objective}
        self._rung_epochs: dict[str, dict[float, float]] = {}  # trial id -> {milestone: epoch decided at}
        self._final: dict[str, float] = {}  # trial id -> signed objective at max_t
        self._pending: dict[str, RungDecision] = {}  # for RungDecisionRecorder
        self.decisions: list[tuple[str, RungDecision]] = []  # this process's decisions, in order

    # ------------------------------------------------------------------------------ state
    @property
    def _rungs(self) -> list[tuple[float, dict[str, float]]]:
        """ASHA's rungs, highest first: (milestone, {trial id: signed objective recorded there})."""
        rungs: list[tuple[float, dict[str, float]]] = self._brackets[0]._rungs
        return rungs

    @property
    def rung_milestones(self) -> list[float]:
        """The rungs' milestones in epochs, lowest first (a rung is decided at the first epoch at or past it)."""
        return sorted(milestone for milestone, _ in self._rungs)

    def is_probe(self, trial_id: str) -> bool:
        """Among the first ``probe_trials`` trials created (Ray Tune's experiment tag counts them;
        the order in which they were added when it does not)."""
        if trial_id not in self._creation:
            return False
        order = sorted(self._creation, key=self._creation.__getitem__)
        return order.index(trial_id) < self.probe_trials

    def fidelity(self, milestone: float) -> tuple[float, int]:
        """The rung's Spearman rho between the objective there and at the last epoch, and its number of pairs."""
        pairs = [(values[milestone], self._final[trial_id]) for trial_id, values in self._rung_values.items()
                 if milestone in values and trial_id in self._final]
        pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        return spearman([a for a, _ in pairs], [b for _, b in pairs]), len(pairs)

    def pop_decision(self, trial_id: str, epoch: int) -> RungDecision | None:
        """The decision made on the trial's result of ``epoch``, once (for :class:`RungDecisionRecorder`)."""
        decision = self._pending.get(trial_id)
        if decision is None or decision.epoch != epoch:
            return None
        del self._pending[trial_id]
        return decision

    def _due_rung(self, trial_id: str, epoch: float) -> int | None:
        """The index in :attr:`_rungs` of the rung a result at ``epoch`` decides, as ASHA's bracket
        finds it: the highest milestone reached that has no value of the trial yet."""
        for index, (milestone, recorded) in enumerate(self._rungs):
            if epoch >= milestone and trial_id not in recorded:
                return index
        return None

    def _observe(self, trial_id: str, result: dict[str, Any]) -> tuple[int | None, float] | None:
        """Note a result's objective as a final value or a rung value; None without one. Returns
        the index of the rung it is due at (None: no rung) and the signed objective."""
        epoch, value = result.get(self._time_attr), result.get(self._metric) if self._metric else None
        if not isinstance(epoch, (int, float)) or not isinstance(value, (int, float)) or self._metric_op is None:
            return None
        signed = self._metric_op * float(value)
        if epoch >= self._max_t:
            self._final[trial_id] = signed  # a rerun of the last epoch replaces the first run's value
            return None, signed
        return self._due_rung(trial_id, epoch), signed

    def _record(self, trial_id: str, milestone: float, epoch: float, signed: float) -> None:
        self._rung_values.setdefault(trial_id, {})[milestone] = signed
        self._rung_epochs.setdefault(trial_id, {})[milestone] = epoch

    def _forget_rerun(self, trial_id: str, epoch: float) -> None:
        """A result for an epoch at which a rung already decided about the trial is a rerun of
        that epoch (a resume from an earlier checkpoint): its first value leaves the rung, so the
        rerun is decided again."""
        for milestone, decided_at in list(self._rung_epochs.get(trial_id, {}).items()):
            if decided_at == epoch:
                del self._rung_epochs[trial_id][milestone]
                self._rung_values[trial_id].pop(milestone, None)
                for rung_milestone, recorded in self._rungs:
                    if rung_milestone == milestone:
                        recorded.pop(trial_id, None)

    # -------------------------------------------------------------------------- Ray hooks
    def choose_trial_to_run(self, tune_controller: Any) -> Any | None:
        """The newest waiting trial (:func:`asymtune.search.start_order.trial_to_start`), not
        FIFO's oldest: a finished trial's actor goes to a trial that has none yet."""
        return trial_to_start(tune_controller.get_trials())

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        trial_id = str(trial.trial_id)
        if trial_id not in self._creation:
            tag = str(getattr(trial, "experiment_tag", "") or "")
            counter = int(tag.split("_", 1)[0]) if tag.split("_", 1)[0].isdigit() else len(self._creation)
            self._creation[trial_id] = (counter, len(self._creation))
        for row in _stored_history(trial):  # a restored trial: rebuild what the scheduler knew
            due = self._observe(trial_id, row)
            if due is not None and due[0] is not None:
                milestone, recorded = self._rungs[due[0]]
                recorded[trial_id] = due[1]
                self._record(trial_id, milestone, row[self._time_attr], due[1])

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        trial_id = str(trial.trial_id)
        if isinstance(result.get(self._time_attr), (int, float)):
            self._forget_rerun(trial_id, result[self._time_attr])
        due = self._observe(trial_id, result)
        if due is None:
            return TrialScheduler.CONTINUE
        index, signed = due
        if index is None:
            return super().on_trial_result(tune_controller, trial, result)  # the last epoch, or no rung due
        milestone, recorded = self._rungs[index]
        rho, pairs = self.fidelity(milestone)
        action = PROBE if self.is_probe(trial_id) else rung_action(rho, pairs, self.min_pairs, self.min_rho)
        if action == KEPT:
            decision = super().on_trial_result(tune_controller, trial, result)  # ASHA records and judges
        else:
            recorded[trial_id] = signed  # in the cutoff of later trials, as ASHA would
            decision = TrialScheduler.CONTINUE
        self._record(trial_id, milestone, result[self._time_attr], signed)
        record = RungDecision(int(result[self._time_attr]), action, rho, pairs, decision == TrialScheduler.STOP)
        self._pending[trial_id] = record
        self.decisions.append((trial_id, record))
        log.log(logging.DEBUG if action == PROBE else logging.INFO, "rung %g, trial %s: %s (rho %.2f over %d pairs)%s",
                milestone, trial_id, action, rho, pairs, ", stopped" if record.stopped else "")
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._pending.pop(str(trial.trial_id), None)
        super().on_trial_complete(tune_controller, trial, result)

    def debug_string(self) -> str:
        rungs = ", ".join(
            "{:g}: rho {:.2f} over {} pairs".format(m, *self.fidelity(m)) for m in self.rung_milestones
        )
        return f"{super().debug_string()}\nFidelity check (probes {self.probe_trials}): {rungs}"


def _stored_history(trial: Any) -> list[dict[str, Any]]:
    """The results a trial reported before a restore, read from its ``result.json`` on the sweep's
    storage, one row per epoch (the last, as the report reads them: :func:`one_row_per_epoch`);
    empty for a new trial (or one without stored results)."""
    storage = getattr(trial, "storage", None)
    if storage is None or not getattr(trial, "run_metadata", None) or not trial.run_metadata.last_result:
        return []
    try:
        path = Path(storage.trial_fs_path, "result.json").as_posix()
        filesystem = storage.storage_filesystem
        if filesystem.get_file_info(path).type != pyarrow.fs.FileType.File:
            return []
        with filesystem.open_input_stream(path) as stream:
            text = stream.readall().decode("utf-8")
    except (OSError, ValueError, AttributeError) as error:  # a missing history only weakens the check
        log.warning("trial %s: stored results not read (%s); its rung values start empty", trial.trial_id, error)
        return []
    return one_row_per_epoch([json.loads(line) for line in text.splitlines() if line.strip()])


class RungDecisionRecorder(tune.Callback):
    """Writes each rung decision of ``scheduler`` into the trial's result (Ray Tune lets callbacks
    change a result in place), so that Ray Tune's loggers store it in the trial's history.

    Must come before the loggers in ``RunConfig.callbacks`` (Ray Tune appends its own loggers last).
    """

    def __init__(self, scheduler: FidelityCheckedASHA) -> None:
        self.scheduler = scheduler

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        epoch = result.get(self.scheduler._time_attr)
        if isinstance(epoch, (int, float)):
            decision = self.scheduler.pop_decision(str(trial.trial_id), int(epoch))
            if decision is not None:
                result.update(decision.as_result())
