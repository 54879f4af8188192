"""Confirm the sweep's choice: retrain the top-k settings and the baseline with several seeds,
choose again on validation, then test the chosen setting and the baseline once.

Order matters for honesty: every model is trained and validated first; the choice is made from
the mean validation objective over seeds (:func:`asymtune.confirm.select.select_confirmed`); only
then are the chosen setting and the baseline evaluated on the test split. The other candidates
are never tested. Each model is one MLflow run under the dataset's parent run
(:mod:`asymtune.tracking.confirmation`); a rerun finds the runs again and trains only what is
missing. Trainings run as Ray tasks or in this process (:mod:`asymtune.confirm.executors`); with Ray
tasks, trainings that a later round of the race may need also run ahead on free slots
(:mod:`asymtune.confirm.ahead`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from asymtune.confirm.ahead import RoundTrainings
from asymtune.confirm.executors import Executor
from asymtune.confirm.jobs import Job, evaluate_job, offset_job, state_bytes, train_job
from asymtune.confirm.options import DecisionOptions
from asymtune.confirm.race import RaceStop, race_stop, verdict_seed_count
from asymtune.confirm.rivals import RIVALS, rival_trials
from asymtune.confirm.select import find_baseline, rank_trials, select_confirmed
from asymtune.data.loading import load_dataset
from asymtune.results.layout import STATE_FILE
from asymtune.results.storage import is_directory
from asymtune.results.trials import TrialRecord, load_trials
from asymtune.tracking.confirmation import (
    STATE_ARTIFACT,
    TAG_REGISTERED,
    ConfirmationRun,
    discard_incomplete,
    download,
    list_confirmation_runs,
    log_tested,
    log_trained,
    register_model,
)

log = logging.getLogger(__name__)
TAG_SWEEP_CHOICE = "asymtune.sweep_choice"
TAG_CONFIRMED = "asymtune.confirmed_trial"


# --------------------------------------------------------------------------- confirmation
@dataclass
class Confirmation:
    """What the confirmation of one dataset decided.

    Attributes:
        sweep_choice: the trial the sweep ranked first on validation.
        baseline: the baseline trial.
        candidates: the retrained trials besides the baseline, in the sweep's ranking order.
        selected: the trial chosen from the mean validation objective over seeds.
        seeds: the race's seeds, every setting trained with each (``confirm.seeds``, then the race's rounds).
        runs: the confirmation runs, every (trial, seed) once.
        registered_model: ``"<name>/<version>"`` of the selected model in the MLflow registry.
        race: why the race stopped (None: it has not finished, e.g. an interrupted confirmation).
        rivals: ``{rival name: trial}`` of the trained rivals (``confirm.rivals``,
            :mod:`asymtune.confirm.rivals`): a sweep trial with the rival's setting, or a stand-in
            record that no sweep trained.
        verdict_seeds: the further seeds of the selected setting and the baseline only, for the
            test (``confirm.verdict_seeds`` after a leader better on validation; :mod:`asymtune.confirm.race`).
        ahead: trainings run ahead of the race (:mod:`asymtune.confirm.ahead`) that a round used, and
            that none did (dropped): ``(used, dropped)``.
    """

    sweep_choice: str
    baseline: str
    candidates: list[str]
    selected: str
    seeds: list[int]
    runs: list[ConfirmationRun] = field(default_factory=list)
    registered_model: str | None = None
    race: RaceStop | None = None
    rivals: dict[str, TrialRecord] = field(default_factory=dict)
    verdict_seeds: list[int] = field(default_factory=list)
    ahead: tuple[int, int] = (0, 0)

    @property
    def trained(self) -> list[str]:
        """Every setting the confirmation trains, each once: the baseline first (a setting must
        beat it, not tie it), the candidates in the sweep's order, then the rivals."""
        ids = [self.baseline, *self.candidates, *(trial.trial_id for trial in self.rivals.values())]
        return list(dict.fromkeys(ids))

    @property
    def tested(self) -> list[str]:
        """The settings tested once the choice is made: the selected one, the baseline, the rivals."""
        ids = [self.selected, self.baseline, *(trial.trial_id for trial in self.rivals.values())]
        return list(dict.fromkeys(ids))

    @property
    def derived(self) -> list[str]:
        """The settings whose runs are made from the baseline's models of the same seed instead of
        trained (the logit-offset rival)."""
        return [trial.trial_id for name, trial in self.rivals.items() if RIVALS[name].offsets]

    def rival_of(self, trial_id: str) -> str | None:
        """The rival's name when ``trial_id`` trains one."""
        return next((name for name, trial in self.rivals.items() if trial.trial_id == trial_id), None)

    def seeds_of(self, trial_id: str, race_only: bool = False) -> list[int]:
        """The seeds one setting is trained with: the race's, and the verdict's for the selected
        setting and the baseline (not with ``race_only``)."""
        extra = not race_only and trial_id in (self.selected, self.baseline)
        return [*self.seeds, *(self.verdict_seeds if extra else [])]

    def wanted(self) -> list[tuple[str, int]]:
        """Every ``(trial id, seed)`` the confirmation needs a run of."""
        return [(trial_id, seed) for trial_id in self.trained for seed in self.seeds_of(trial_id)]

    def runs_of(self, trial_id: str, race_only: bool = False) -> list[ConfirmationRun]:
        """The runs of one setting, in seed order (only its :meth:`seeds_of`)."""
        by_seed = {run.seed: run for run in self.runs if run.trial_id == trial_id}
        return [by_seed[seed] for seed in self.seeds_of(trial_id, race_only) if seed in by_seed]


def plan_confirmation(
    trials: Sequence[TrialRecord], options: DecisionOptions
) -> tuple[TrialRecord, TrialRecord, list[TrialRecord], dict[str, TrialRecord]] | str:
    """``(sweep choice, baseline, candidates, rivals)`` or the reason nothing can be confirmed."""
    baseline = find_baseline(trials)
    if baseline is None:
        return "no baseline trial (no asymmetry) has a result, so nothing can be confirmed against it"
    ranked = rank_trials(trials, options.metric, options.mode, options.constraint, baseline)  # the baseline is in it
    candidates = [t for t in ranked if t is not baseline][: options.confirm.top_k]
    return ranked[0], baseline, candidates, rival_trials(options.confirm.rivals, baseline, trials)


def _reuse(trial: TrialRecord, seed: int) -> dict[str, Any] | None:
    """The trial as the confirmation's training with ``seed``: its weights after the last epoch and
    its last metrics, when it trained every epoch with that seed and that checkpoint is kept."""
    epochs = trial.spec.epochs
    if trial.error is not None or trial.checkpoint is None or trial.spec.seed != seed or trial.epochs != epochs:
        return None
    with trial.checkpoint.as_directory() as directory:  # local, or fetched from an object store
        path = Path(directory) / STATE_FILE
        state = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    if state is None or int(state["epoch"]) != epochs:
        return None
    metrics = {
        k: float(v) for k, v in trial.last.items() if k.startswith(("train/", "val/")) and isinstance(v, (int, float))
    }
    return {"metrics": metrics, "epochs": epochs, "state": state_bytes(state["model"])}


def _validation(result: Confirmation, settings: Sequence[str]) -> dict[str, list[dict[str, float]]]:
    """The validation metrics of the race's runs (the verdict's extra seeds play no part in the choice)."""
    return {
        trial_id: [{k: v for k, v in run.metrics.items() if k.startswith("val/")}
                   for run in result.runs_of(trial_id, race_only=True)]
        for trial_id in settings
    }


def read_confirmation(
    trials: Sequence[TrialRecord], parent_run_id: str, class_names: Sequence[str], client: Any, options: DecisionOptions
) -> Confirmation | str:
    """The confirmation as MLflow stores it (no training): its runs and the choice they imply,
    or the reason there is none."""
    planned = plan_confirmation(trials, options)
    if isinstance(planned, str):
        return planned
    choice, baseline, candidates, rivals = planned
    runs = list_confirmation_runs(client, parent_run_id)
    result = Confirmation(
        sweep_choice=choice.trial_id, baseline=baseline.trial_id, candidates=[t.trial_id for t in candidates],
        selected=baseline.trial_id, seeds=options.confirm.seed_values(baseline.spec.seed), runs=runs, rivals=rivals,
    )
    _replay(result, options, class_names)
    return result


def _race(result: Confirmation, options: DecisionOptions) -> RaceStop | None:
    """Why the race stops with the runs so far (None: one more seed)."""
    def objective(trial_id: str) -> dict[int, float]:
        runs = result.runs_of(trial_id, race_only=True)
        return {run.seed: float(run.metrics.get(options.metric, math.nan)) for run in runs}

    leader, base = objective(result.selected), objective(result.baseline)
    paired = [seed for seed in result.seeds if seed in leader and seed in base]
    stop = race_stop(
        [leader[s] for s in paired], [base[s] for s in paired], leader_is_baseline=result.selected == result.baseline,
        seeds=len(result.seeds), mode=options.mode, confidence=options.confirm.confidence,
        min_gain=options.confirm.min_gain, max_seeds=options.confirm.seed_budget,
    )
    if stop is None:
        return None
    return dataclasses.replace(stop, verdict_seeds=verdict_seed_count(stop, options.confirm.verdict_seeds))


def later_trainings(result: Confirmation, options: DecisionOptions) -> list[tuple[str, int]]:
    """The ``(trial id, seed)`` trainings that a later round may need if the race goes on after the
    round of its seeds so far, the likeliest first: seed by seed, the leader's and the baseline's,
    then the other trained settings' (up to ``confirm.max_seeds``); the leader's and the baseline's
    also up to ``confirm.verdict_seeds`` (the verdict's). None of the derived settings (made from the
    baseline's models, not trained).

    Example: a race of seeds 0 and 1 so far, budget 4 seeds, verdict 5 seeds, leader ``b``:
    ``[(b, 2), (base, 2), (c, 2), (b, 3), (base, 3), (c, 3), (b, 4), (base, 4)]``.
    """
    confirm = options.confirm
    first, following = result.seeds[0], result.seeds[-1] + 1
    pair = list(dict.fromkeys([result.selected, result.baseline]))
    others = [trial_id for trial_id in result.trained if trial_id not in pair and trial_id not in result.derived]
    later = []
    for seed in range(following, first + max(confirm.seed_budget, confirm.verdict_seeds)):
        in_race = seed < first + confirm.seed_budget
        later += [(trial_id, seed) for trial_id in [*pair, *(others if in_race else [])]]
    return later


def _verdict_seeds(result: Confirmation) -> list[int]:
    """The seeds after the race's that the verdict needs of the selected setting and the baseline."""
    if result.race is None:
        return []
    return [result.seeds[-1] + 1 + i for i in range(result.race.verdict_seeds - len(result.seeds))]


def _replay(result: Confirmation, options: DecisionOptions, class_names: Sequence[str]) -> None:
    """The race as the runs so far decide it (an earlier, interrupted or finished, confirmation):
    its rounds while the baseline has the next seed, its choice, its stop, and the verdict's seeds."""
    present = {run.seed for run in result.runs if run.trial_id == result.baseline}
    while True:
        _choose(result, options, class_names)
        result.race = _race(result, options)
        if result.race is not None or result.seeds[-1] + 1 not in present:
            break
        result.seeds.append(result.seeds[-1] + 1)
    result.verdict_seeds = _verdict_seeds(result)


def _choose(result: Confirmation, options: DecisionOptions, class_names: Sequence[str]) -> None:
    result.selected = select_confirmed(
        _validation(result, result.trained), result.baseline, options.metric, options.mode, options.constraint,
        class_names,
    )


def confirm_dataset(
    name: str,
    entry: Mapping[str, Any],
    sweep_id: str,
    tracking_uri: str,
    options: DecisionOptions,
    executor: Executor,
) -> Confirmation | str:
    """Train what is missing, choose on validation, test the choice and the baseline, register the
    chosen model; returns the outcome, or the reason nothing was confirmed."""
    from mlflow.tracking import MlflowClient

    trials = load_trials(entry["experiment_dir"]) if is_directory(str(entry["experiment_dir"])) else []
    parent = entry["parent_run_id"]
    client = MlflowClient(tracking_uri=tracking_uri)
    if discard_incomplete(client, parent):
        log.info("%s: deleted confirmation runs interrupted while being written", name)
    class_names = tuple(entry["class_names"])
    result = read_confirmation(trials, parent, class_names, client, options)
    if isinstance(result, str):
        return result
    by_id = {t.trial_id: t for t in [*trials, *result.rivals.values()]}
    baseline = by_id[result.baseline]
    identity = {"sweep_id": sweep_id, "dataset": name}

    def record(trial: TrialRecord, seed: int, trained: dict[str, Any], reused: bool, derived_from: str | None = None,
               ) -> None:
        rival = result.rival_of(trial.trial_id)
        params = {**trial.settings.flat_params(class_names), "seed": seed, "epochs": trained["epochs"],
                  "is_baseline": trial is baseline, "loss": trial.spec.train["loss"],
                  **({"logit_offsets": True} if trial.spec.train.get("logit_offsets") else {}),
                  **({"rival": rival} if rival else {})}
        role = "baseline" if trial is baseline else "candidate" if trial.trial_id in result.candidates else "rival"
        result.runs.append(log_trained(
            client, parent, identity, trial.trial_id, seed, role, params, trained["metrics"], trained["epochs"],
            trained["state"], reused, derived_from, trained.get("machine"),
        ))

    _run_race(result, by_id, options, class_names, executor, client, record, name)
    assert result.race is not None  # the race ends only once it has stopped
    log.info("%s: %s", name, result.race.sentence)
    client.set_tag(parent, TAG_SWEEP_CHOICE, result.sweep_choice)
    client.set_tag(parent, TAG_CONFIRMED, result.selected)

    # Only now, after the choice, does any model see the test split.
    calls, targets = [], []
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        for trial_id in result.tested:
            for position, run in enumerate(result.runs_of(trial_id)):
                if run.tested:
                    continue
                path = download(client, run.run_id, STATE_ARTIFACT, directory / run.run_id)
                if path is None:
                    raise FileNotFoundError(
                        f"confirmation run {run.run_id} has no {STATE_ARTIFACT}: delete the run and rerun"
                    )
                diagnosed = position == 0 and trial_id in (result.selected, result.baseline)
                calls.append((Job.of(by_id[trial_id], run.seed), path.read_bytes(), diagnosed))
                targets.append(run)
        for index, evaluated in executor.run(evaluate_job, calls):
            if isinstance(evaluated, Exception):
                log.warning("%s: test of confirmation run %s failed: %s", name, targets[index].run_id, evaluated)
            else:
                log_tested(client, targets[index], evaluated["metrics"], evaluated["distances"], evaluated["cases"])
        if options.register_model:
            chosen = by_id[result.selected]  # a sweep trial, or a rival's stand-in
            result.registered_model = _register(client, tracking_uri, result, chosen, options, name, directory)
    return result


def _run_race(
    result: Confirmation, by_id: Mapping[str, TrialRecord], options: DecisionOptions, class_names: Sequence[str],
    executor: Executor, client: Any, record: Callable[..., None], name: str,
) -> None:
    """The race (:mod:`asymtune.confirm.race`): rounds of seeds until validation decides, then the
    verdict's seeds; each round reuses what it can, trains the rest (and, on free Ray slots, what a
    later round may need: :mod:`asymtune.confirm.ahead`), logs every run and chooses again."""
    rounds = RoundTrainings(executor, ahead=options.confirm.train_ahead)
    try:
        while True:
            done = {(run.trial_id, run.seed) for run in result.runs}
            missing = [
                (by_id[trial_id], seed) for trial_id, seed in result.wanted()
                if (trial_id, seed) not in done and trial_id not in result.derived
            ]
            to_train = []
            for trial, seed in missing:
                reused = _reuse(trial, seed) if options.confirm.reuse_trials else None
                if reused is not None:
                    record(trial, seed, reused, reused=True)
                else:
                    to_train.append((trial, seed))
            if to_train:
                log.info("%s: the confirmation trains %d models (seeds %s)", name, len(to_train),
                         sorted({seed for _, seed in to_train}))
            # a round of the race's seeds may not decide; the verdict's round (or nothing to train) does
            racing = any(seed in result.seeds for _, seed in to_train)
            later = [Job.of(by_id[t], seed) for t, seed in later_trainings(result, options)] if racing else []
            jobs = [Job.of(trial, seed) for trial, seed in to_train]
            for index, trained in rounds.run(train_job, jobs, later, key=lambda job: (job.trial_id, job.seed)):
                if isinstance(trained, Exception):
                    trial, seed = to_train[index]
                    log.warning("%s: confirmation training of trial %s, seed %d failed: %s", name, trial.trial_id,
                                seed, trained)
                else:
                    record(*to_train[index], trained, reused=False)
            _derive(result, by_id, client, executor, record, name)
            _choose(result, options, class_names)
            result.race = _race(result, options)
            if result.race is None:
                result.seeds.append(result.seeds[-1] + 1)
                continue
            verdict_seeds = _verdict_seeds(result)
            if verdict_seeds == result.verdict_seeds:
                break  # and their runs were made above
            result.verdict_seeds = verdict_seeds
    finally:  # what no round used is dropped, also when the race fails
        result.ahead = (rounds.used, rounds.close())
    if rounds.ahead:
        log.info("%s: trainings ahead of the race: %d used, %d dropped", name, *result.ahead)


def _derive(
    result: Confirmation, by_id: Mapping[str, TrialRecord], client: Any, executor: Executor,
    record: Callable[[TrialRecord, int, dict[str, Any], bool, str | None], None], name: str,
) -> None:
    """Make the runs of the derived settings (:attr:`Confirmation.derived`) that are missing from the
    baseline's runs of the same seeds (:func:`asymtune.confirm.jobs.offset_job`)."""
    done = {(run.trial_id, run.seed) for run in result.runs}
    baseline_runs = {run.seed: run for run in result.runs_of(result.baseline)}
    wanted = [(trial_id, seed) for trial_id, seed in result.wanted()
              if trial_id in result.derived and (trial_id, seed) not in done and seed in baseline_runs]
    if not wanted:
        return
    with tempfile.TemporaryDirectory() as scratch:
        calls = []
        for trial_id, seed in wanted:
            run = baseline_runs[seed]
            path = download(client, run.run_id, STATE_ARTIFACT, Path(scratch) / run.run_id)
            if path is None:
                raise FileNotFoundError(
                    f"confirmation run {run.run_id} has no {STATE_ARTIFACT}: delete the run and rerun"
                )
            calls.append((Job.of(by_id[trial_id], seed), path.read_bytes()))
        for index, derived in executor.run(offset_job, calls):
            trial_id, seed = wanted[index]
            if isinstance(derived, Exception):
                log.warning("%s: logit offsets of seed %d failed: %s", name, seed, derived)
            else:
                record(by_id[trial_id], seed, derived, False, baseline_runs[seed].run_id)


def _register(
    client: Any, tracking_uri: str, result: Confirmation, trial: TrialRecord, options: DecisionOptions, name: str,
    directory: Path,
) -> str | None:
    """Log the selected setting's first-seed model to the registry as ``<prefix><dataset>``."""
    from asymtune.models import create_model

    runs = result.runs_of(trial.trial_id)
    if not runs:
        return None
    run = runs[0]
    if TAG_REGISTERED in run.tags:
        return run.tags[TAG_REGISTERED]
    path = download(client, run.run_id, STATE_ARTIFACT, directory / f"register-{run.run_id}")
    if path is None:
        return None
    spec = trial.spec
    dataset = load_dataset(spec.dataset, spec.dataset_name)
    options_model = dict(spec.model)
    model = create_model(str(options_model.pop("name")), dataset.spatial_dims, dataset.in_channels, dataset.num_classes,
                         **options_model)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return register_model(tracking_uri, run, model, f"{options.model_name_prefix}{name}")
