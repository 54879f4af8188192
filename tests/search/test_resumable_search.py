"""The sweep's Optuna searcher: a resumed sweep whose Optuna study is newer than Ray Tune's snapshot goes
on (a kill right after a trial was told to Optuna made the rerun stop with UpdateFinishedTrialError); each
class's validation Dice is a user attribute; the selection constraint reaches the sampler."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from asymtune.search.sweep import CONSTRAINT_PREFIX, ResumableOptunaSearch

METRIC = "val/mean_fg_dice"


def _searcher(cls: type[OptunaSearch]) -> OptunaSearch:
    def space(trial: optuna.Trial) -> None:
        trial.suggest_float("margin", 0.0, 2.0)

    searcher = cls(space=space, metric=METRIC, mode="max", sampler=optuna.samplers.RandomSampler(seed=0),
                   storage=optuna.storages.InMemoryStorage())
    return searcher


def _finish_behind_rays_back(searcher: OptunaSearch, trial_id: str) -> None:
    """What a killed driver leaves: the study has the trial finished, Ray's restored state does not."""
    ot_trial = searcher._ot_trials[trial_id]
    searcher._ot_study.tell(ot_trial, 0.5)


@pytest.mark.parametrize("cls", [OptunaSearch, ResumableOptunaSearch])
def test_a_result_for_a_trial_optuna_already_finished(cls: type[OptunaSearch]) -> None:
    searcher = _searcher(cls)
    searcher.suggest("t1")
    _finish_behind_rays_back(searcher, "t1")
    result = {METRIC: 0.6, "training_iteration": 1}
    if cls is OptunaSearch:  # Ray's own searcher stops the sweep here
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            searcher.on_trial_result("t1", result)
        return
    searcher.on_trial_result("t1", result)
    searcher.on_trial_complete("t1", result)
    (trial,) = searcher._ot_study.get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.5, "the study keeps its value"
    assert searcher.suggest("t2") is not None, "the search goes on"


def _constrained_searcher() -> ResumableOptunaSearch:
    def space(trial: optuna.Trial) -> None:
        trial.suggest_float("margin", 0.0, 2.0)

    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=1)
    return ResumableOptunaSearch(
        space=space, metric=METRIC, mode="max", sampler=sampler, storage=optuna.storages.InMemoryStorage(),
        class_names=("background", "organ", "duct"), constraint="no_class_below_baseline",
    )


def _result(organ: float, duct: float, is_baseline: bool) -> dict[str, object]:
    return {METRIC: (organ + duct) / 2, "val/dice/organ": organ, "val/dice/duct": duct, "training_iteration": 3,
            "is_baseline": is_baseline}


def test_each_class_dice_is_a_user_attribute_and_the_constraint_reaches_the_sampler() -> None:
    searcher = _constrained_searcher()
    for trial_id, result in (("base", _result(0.5, 0.4, True)), ("worse_duct", _result(0.6, 0.3, False)),
                             ("better", _result(0.55, 0.45, False))):
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, result)
    base, worse_duct, better = searcher._ot_study.get_trials()
    assert base.user_attrs["val/dice/organ"] == 0.5 and worse_duct.user_attrs["val/dice/duct"] == 0.3
    organ, duct = f"{CONSTRAINT_PREFIX}organ", f"{CONSTRAINT_PREFIX}duct"
    assert worse_duct.constraints == pytest.approx({organ: -0.1, duct: 0.1})  # duct below the baseline
    assert max(better.constraints.values()) <= 0 and max(base.constraints.values()) <= 0
    feasible = optuna.study._constrained_optimization._get_feasible_trials(searcher._ot_study.get_trials())
    assert [t.number for t in feasible] == [base.number, better.number], "what TPE treats as feasible"
    assert searcher.suggest("next") is not None


def test_without_a_constraint_no_constraint_is_recorded() -> None:
    searcher = _searcher(ResumableOptunaSearch)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {METRIC: 0.5, "training_iteration": 1})
    (trial,) = searcher._ot_study.get_trials()
    assert trial.constraints == {} and "val/dice/organ" not in trial.user_attrs


def _define_by_run(trial: optuna.Trial) -> None:
    trial.suggest_float("margin", 0.0, 2.0)


@pytest.mark.parametrize("space", [
    {"margin": optuna.distributions.FloatDistribution(0.0, 2.0)},  # distributions
    _define_by_run,  # a function, as the sweep's BoundSpace
], ids=["distributions", "define_by_run"])
def test_a_trial_asked_before_the_kill_is_taken_over_not_left_running(tmp_path, space) -> None:
    """A driver killed after Optuna handed out a trial but before Tune's snapshot recorded it: the resumed
    searcher (a fresh one on the same study, as after a restore) gives that trial's values to the next Tune
    trial instead of asking for one more, so no trial stays RUNNING and the study has no extra trial."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"

    def searcher() -> ResumableOptunaSearch:
        return ResumableOptunaSearch(space=space, metric=METRIC, mode="max", study_name="s",
                                     storage=optuna.storages.RDBStorage(storage),
                                     sampler=optuna.samplers.RandomSampler(seed=0))

    killed = searcher()
    killed.suggest("t1")
    killed.on_trial_complete("t1", {METRIC: 0.4, "training_iteration": 1})
    asked = killed.suggest("t2")  # asked, then the driver dies before Tune records t2

    resumed = searcher()  # the restored state knows t1 only
    resumed._ot_trials = {"t1": killed._ot_trials["t1"]}
    assert resumed.suggest("t2-new") == asked, "the orphan's values go to the new trial"
    resumed.on_trial_complete("t2-new", {METRIC: 0.5, "training_iteration": 1})
    states = [trial.state for trial in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2
    assert resumed.suggest("t3") != asked and len(optuna.load_study(study_name="s", storage=storage).trials) == 3


def test_a_restored_searcher_looks_for_orphans_again_though_the_saved_one_had_stopped_looking(tmp_path) -> None:
    """The searcher reads the study for orphans only until it finds none (each read costs a query of every
    RUNNING trial). The flag must not survive a snapshot: a searcher restored from a snapshot taken when it
    had stopped looking (Tune's ``save``/``restore``, or a pickle round trip) still takes the orphan over."""
    import pickle

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"

    def searcher() -> ResumableOptunaSearch:
        return ResumableOptunaSearch(space={"margin": optuna.distributions.FloatDistribution(0.0, 2.0)},
                                     metric=METRIC, mode="max", study_name="s",
                                     storage=optuna.storages.RDBStorage(storage),
                                     sampler=optuna.samplers.RandomSampler(seed=0))

    killed = searcher()
    killed.suggest("t1")
    killed.on_trial_complete("t1", {METRIC: 0.4, "training_iteration": 1})
    assert killed._no_orphans, "after a look that found none, the searcher stops reading the study"
    snapshot = tmp_path / "searcher.pkl"
    killed.save(str(snapshot))  # Tune's experiment snapshot, taken before t2 was asked
    pickled = pickle.dumps(killed)
    asked = killed.suggest("t2")  # asked, then the driver dies

    restored = searcher()
    restored.restore(str(snapshot))
    assert restored.suggest("t2-new") == asked
    unpickled = pickle.loads(pickled)
    assert not unpickled._no_orphans
