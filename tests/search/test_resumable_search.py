"""A resumed sweep whose Optuna study is newer than Ray Tune's snapshot goes on (issue: a kill right
after a trial was told to Optuna made the rerun stop with UpdateFinishedTrialError)."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from asymtune.search.sweep import ResumableOptunaSearch

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
