"""Run one Optuna-through-Ray-Tune sweep per dataset, resumable from ``output_dir``.

For each dataset: a seeded TPE sampler (``OptunaSearch``) whose first points are the search
space's anchors (baseline, authors' defaults), ASHA on the validation objective whose rungs stop
trials only once measured to predict the end (:mod:`asymtune.search.scheduler`), checkpoints
every ``search.checkpoint_every`` epochs and at every epoch where a trial may end (ASHA's rungs,
the last epoch), the Optuna study in its storage (a database or a journal file), MLflow
logging from the driver. Running the same command on the same ``output_dir`` restores an interrupted sweep with
``Tuner.restore`` (finished trials are not rerun) and leaves a finished one as it is.
Trial results live under ``storage_path`` (a local path or an object-store URI, see
:mod:`asymtune.results.storage`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from asymtune.results.layout import FIXED_KEY
from asymtune.results.spec import TrialSpec
from asymtune.results.storage import join_location
from asymtune.search.history import trial_history_loggers
from asymtune.search.plan import DatasetPlan
from asymtune.search.progress import ProgressLine, tune_verbosity
from asymtune.search.scheduler import FidelityCheckedASHA, RungDecisionRecorder
from asymtune.search.space import BoundSpace
from asymtune.search.storage import open_optuna_storage
from asymtune.search.trainable import run_trial
from asymtune.search.warm_start import EPOCHS_ATTR

log = logging.getLogger(__name__)
_REGISTRY_LOCK = threading.Lock()  # see _registered_trainable

# At verbose >= 2, a trial table rather than a wall of logs: Ray's classic reporter honours our
# columns (at the default verbose=1, asymtune.search.progress prints one line). The
# snapshot warning is expected (checkpoints are kept to one per trial, which forces snapshots).
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


CONSTRAINT_PREFIX = "dice_below_baseline/"
"""Optuna constraint names: ``dice_below_baseline/<class>`` = the baseline's validation Dice minus
the trial's (<= 0: feasible)."""


class ResumableOptunaSearch(OptunaSearch):
    """Ray Tune's ``OptunaSearch`` that survives a resume from a stale snapshot, records each
    class's validation Dice in the study, and feeds the selection constraint to the sampler.

    - The experiment state Ray Tune restores can be older than the Optuna study in the RDB: a trial
      that finished (and was told to Optuna) just before the driver was killed is restored as
      running, runs again and reports again. Optuna refuses a report to a finished trial
      (``UpdateFinishedTrialError``), which used to stop the resumed sweep; here the study keeps
      the value it already has and the sweep goes on. (``on_trial_complete`` already tolerates a
      second ``tell``.) A trial asked from Optuna but never recorded by Tune is taken over by the
      next trial Tune asks for (:meth:`_orphan_trial`).
    - Each completed trial gets user attributes ``val/dice/<class>`` (what optuna-dashboard shows
      beside the objective) and ``epochs``, the epochs it trained (a warm start prefers full trials).
    - With ``constraint="no_class_below_baseline"``, each trial also gets Optuna constraints
      (:data:`CONSTRAINT_PREFIX` ``<class>``: the baseline's Dice minus its own; trials that end
      before the baseline count as feasible). Optuna's TPE reads them (``Trial.set_constraint``), so
      it learns to avoid settings the selection would discard instead of proposing them again.

    Args:
        class_names: the dataset's classes, background first.
        constraint: ``selection.constraint`` (None or ``no_class_below_baseline``).
        *args, **kwargs: :class:`ray.tune.search.optuna.OptunaSearch`'s.
    """

    def __init__(self, *args: Any, class_names: tuple[str, ...] = (), constraint: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._class_names = tuple(class_names)
        self._constraint = constraint
        self._baseline_dice: dict[str, float] | None = None
        self._no_orphans = False  # no orphan left: only a restored searcher can meet one

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self._no_orphans = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._no_orphans = False

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if result and trial_id in self._ot_trials and trial_id not in self._completed_trials:
            try:
                self._annotate(self._ot_trials[trial_id], result)
            except optuna.exceptions.UpdateFinishedTrialError:  # told before an interruption
                pass
        super().on_trial_complete(trial_id, result, error)

    def _annotate(self, ot_trial: optuna.Trial, result: dict[str, Any]) -> None:
        if isinstance(result.get("training_iteration"), int):
            ot_trial.set_user_attr(EPOCHS_ATTR, int(result["training_iteration"]))
        dice = {}
        for name in self._class_names[1:]:
            value = result.get(f"val/dice/{name}")
            if isinstance(value, (int, float)) and math.isfinite(value):
                dice[name] = float(value)
                ot_trial.set_user_attr(f"val/dice/{name}", float(value))
        if self._constraint != "no_class_below_baseline":
            return
        if result.get("is_baseline"):
            self._baseline_dice = dice
        reference = self._baseline_dice or {}
        for name in self._class_names[1:]:
            shortfall = reference[name] - dice[name] if name in reference and name in dice else 0.0
            ot_trial.set_constraint(f"{CONSTRAINT_PREFIX}{name}", shortfall)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and not self._no_orphans:
            orphan = self._orphan_trial()
            if orphan is not None:
                log.info("trial %s takes over Optuna trial %d, asked before the interruption and never run",
                         trial_id, orphan.number)
                self._ot_trials[trial_id] = orphan
            else:  # every trial asked from now on is held by this searcher: no need to read the study again
                self._no_orphans = True
        return super().suggest(trial_id)

    def _orphan_trial(self) -> optuna.Trial | None:
        """A RUNNING trial of the study that no Tune trial of this searcher holds: asked by a driver that
        was killed before Tune's experiment state recorded it. Resuming asks Tune for a new trial in
        its place; it takes the orphan (and its sampled values) instead of asking Optuna for one more,
        so a resumed study holds as many trials as an uninterrupted one and none stays RUNNING."""
        study, space = self._ot_study, self._space
        if study is None:
            return None
        names = set(space) if isinstance(space, dict) else None  # a define-by-run space re-asks its values
        held = {ot_trial.number for ot_trial in self._ot_trials.values()}
        for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if frozen.number not in held and (names is None or set(frozen.distributions) == names):
                return optuna.Trial(study, frozen._trial_id)
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        try:
            super().on_trial_result(trial_id, result)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.info("trial %s: its Optuna trial finished before the interruption; result not reported again",
                     trial_id)


def trial_name(trial: tune.experiment.Trial) -> str:
    """Short trial names (the default embeds the whole config)."""
    return f"trial_{trial.trial_id}"


def experiment_path(storage_path: str, dataset_name: str) -> str:
    """Where Ray Tune keeps a dataset sweep's state: a local path or a URI under ``storage_path``."""
    return join_location(storage_path, dataset_name)


def decision_epochs(epochs: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The epochs after which a trial may end: each rung of ASHA, where it may stop the trial,
    and the last epoch.

    Mirrors the rungs of Ray Tune's ASHA bracket (``min_t * rf**k`` for
    ``k < int(log(max_t / min_t) / log(rf) + 1)``); a rung between two epochs is decided at the
    first epoch past it. The trials compute their logit-shift diagnostics and always checkpoint
    at these epochs, so that every trial's last result and checkpoint carry them.

    >>> decision_epochs(30, 6, 3)
    [6, 18, 30]
    """
    rungs = int(np.log(epochs / grace_period) / np.log(reduction_factor) + 1) if grace_period <= epochs else 0
    ends = {math.ceil(grace_period * reduction_factor**k) for k in range(rungs)} | {epochs}
    return sorted(epoch for epoch in ends if 1 <= epoch <= epochs)


def trial_spec_of(plan: DatasetPlan, cfg: Mapping[str, Any]) -> TrialSpec:
    """The part of every trial's config that Optuna does not choose."""
    scheduler = cfg["search"]["scheduler"]
    epochs = int(cfg["train"]["epochs"])
    return TrialSpec(
        dataset_name=plan.name,
        dataset=dict(plan.spec),
        class_names=tuple(plan.dataset.class_names),
        rare=tuple(plan.dataset.rare_classes),
        model=dict(cfg["model"]),
        train=dict(cfg["train"]),
        space=_space_mapping(plan.space),
        space_path=plan.space.space.path,
        decision_epochs=tuple(decision_epochs(
            epochs, int(scheduler["grace_period"]), float(scheduler["reduction_factor"])
        )),
        checkpoint_every=int(cfg["search"]["checkpoint_every"]),
        system_metrics=bool(cfg["mlflow"]["system_metrics"]),
    )


def _space_mapping(space: BoundSpace) -> dict[str, Any]:
    raw = space.space
    params: dict[str, Any] = {}
    for spec in raw.params:
        entry: dict[str, Any] = {"type": spec.type}
        if spec.type in ("float", "int"):
            entry.update(low=spec.low, high=spec.high, log=spec.log)
        if spec.type == "categorical":
            entry["choices"] = list(spec.choices)
        if spec.per_class is not None:
            entry["per_class"] = spec.per_class
        params[spec.name] = entry
    return {"form": raw.form, "params": params, "fixed": dict(raw.fixed), "anchors": raw.anchors}


def run_dataset_sweep(
    plan: DatasetPlan,
    cfg: Mapping[str, Any],
    storage_path: str,
    optuna_storage_url: str,
    study_name: str,
    callbacks: list[tune.Callback],
    warm_points: Sequence[Mapping[str, Any]] = (),
) -> tuple[tune.ResultGrid, bool]:
    """Run (or resume) the sweep of one dataset; returns its results and whether it was resumed.

    ``callbacks`` (the MLflow tracker) receive every trial event. ``warm_points`` (Optuna points
    of :mod:`asymtune.search.warm_start`) run first, then the space's anchors that are not among them.
    """
    search = cfg["search"]
    resources = {"cpu": float(cfg["resources"]["cpu"]), "gpu": float(cfg["resources"]["gpu"])}
    trainable = _registered_trainable(resources)
    path = experiment_path(storage_path, plan.name)
    if tune.Tuner.can_restore(path):
        log.info("resuming the sweep of %s from %s", plan.name, path)
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
        if tuner._local_tuner is not None:  # None with Ray Client (ray://): the stored output settings stay
            _show_progress(tuner._local_tuner.get_run_config(), plan, cfg)  # verbose may change on a resume
        return tuner.fit(), True

    objective = cfg["objective"]
    warm = [dict(point) for point in warm_points]
    anchors = [*warm, *(point for point in plan.space.anchor_points().values() if point not in warm)]
    searcher = ResumableOptunaSearch(
        space=plan.space,
        metric=objective["metric"],
        mode=objective["mode"],
        points_to_evaluate=anchors,
        sampler=optuna.samplers.TPESampler(seed=int(search["seed"]), n_startup_trials=int(search["n_startup_trials"])),
        class_names=tuple(plan.dataset.class_names),
        constraint=cfg["selection"]["constraint"],
        study_name=study_name,
        storage=open_optuna_storage(optuna_storage_url),
    )
    scheduler = FidelityCheckedASHA(
        max_t=int(cfg["train"]["epochs"]),
        grace_period=int(search["scheduler"]["grace_period"]),
        reduction_factor=float(search["scheduler"]["reduction_factor"]),
        probe_trials=int(search["scheduler"]["probe_trials"]),
        min_pairs=int(search["scheduler"]["min_pairs"]),
        min_rho=float(search["scheduler"]["min_rho"]),
    )
    tuner = tune.Tuner(
        trainable,
        param_space={FIXED_KEY: trial_spec_of(plan, cfg).to_dict()},
        tune_config=tune.TuneConfig(
            metric=objective["metric"],
            mode=objective["mode"],
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=int(search["num_samples"]),
            max_concurrent_trials=int(search["max_concurrent_trials"]),
            reuse_actors=bool(search["reuse_actors"]),
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=_show_progress(tune.RunConfig(
            name=plan.name,
            storage_path=storage_path,
            # RungDecisionRecorder first: the loggers store its keys; the JSON and CSV loggers keep a
            # retried trial's history (asymtune.search.history)
            callbacks=[RungDecisionRecorder(scheduler), *callbacks, *trial_history_loggers()],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=int(search["checkpoints_to_keep"])),
            failure_config=tune.FailureConfig(max_failures=int(search["max_failures"])),
        ), plan, cfg),
    )
    return tuner.fit(), False


def _registered_trainable(resources: Mapping[str, float]) -> str:
    """``run_trial`` with the trials' resources, registered in Ray Tune's trainable registry under
    its own name (what ``Tuner`` registered before, so old sweeps resume). Tuners get the name, so
    they register nothing: datasets side by side (threads) would register at once, and Ray Tune's
    registry is not thread-safe (``dictionary changed size during iteration``)."""
    with _REGISTRY_LOCK:
        tune.register_trainable(run_trial.__name__, tune.with_resources(run_trial, dict(resources)))
    return run_trial.__name__


def _show_progress(run_config: tune.RunConfig, plan: DatasetPlan, cfg: Mapping[str, Any]) -> tune.RunConfig:
    """Set what the sweep shows in the terminal for ``verbose`` (:mod:`asymtune.search.progress`)
    on ``run_config`` and return it: at 1, one progress line (a :class:`ProgressLine` callback, last);
    at 2 and 3, Ray Tune's trial table; at 0, neither. A restored sweep's settings are replaced."""
    verbose = int(cfg["verbose"])
    objective = cfg["objective"]
    callbacks = [callback for callback in run_config.callbacks or [] if not isinstance(callback, ProgressLine)]
    if verbose == 1:
        callbacks.append(ProgressLine(
            plan.name, int(cfg["search"]["num_samples"]), str(objective["metric"]), str(objective["mode"]),
            int(cfg["train"]["epochs"]),
        ))
    run_config.callbacks = callbacks
    run_config.progress_reporter = _progress_reporter(plan, objective["metric"]) if verbose >= 2 else None
    run_config.verbose = tune_verbosity(verbose)
    return run_config


def _progress_reporter(plan: DatasetPlan, objective: str) -> tune.CLIReporter:
    """A compact trial table: the objective, each foreground class's Dice, the searched values."""
    metric_columns = {"training_iteration": "epoch", objective: "objective"}
    for name in plan.dataset.class_names[1:]:
        metric_columns[f"val/dice/{name}"] = f"dice {name}"
    parameter_columns = {key: key for key in plan.space.keys if not key.startswith("rare.")}
    return tune.CLIReporter(
        metric_columns=metric_columns,
        parameter_columns=parameter_columns,
        max_report_frequency=15,
        print_intermediate_tables=True,
        sort_by_metric=True,
    )
