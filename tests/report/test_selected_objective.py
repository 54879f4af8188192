"""The objective `asymtune tune` prints: the selected setting's, also when a rival without a sweep trial won."""

from __future__ import annotations

import math

from asymtune.confirm.stats import t_summary
from asymtune.method import baseline
from asymtune.pipeline import mean_selected_objective, selected_objective
from asymtune.report.render import DatasetReport
from asymtune.report.results import ConfirmedResults
from asymtune.results.trials import TrialRecord

METRIC = "val/mean_fg_dice"


def _report(name: str, selected: TrialRecord, confirmed: list[float] | None) -> DatasetReport:
    results = None
    if confirmed is not None:
        results = ConfirmedResults(seeds=list(range(len(confirmed))))
        results.summaries["selected"] = {METRIC: t_summary(confirmed, 0.95)}
    return DatasetReport(name=name, class_names=("background", "lesion"), metric=METRIC, trials=[selected],
                         expected_trials=1, sweep_choice=selected, baseline=None, selected=selected, results=results)


def test_a_rival_that_won_gives_its_confirmed_mean_not_nan() -> None:
    rival = TrialRecord(trial_id="rival-logit_offset", config={}, settings=baseline(2), status="RIVAL")
    assert math.isnan(rival.objective(METRIC)), "a rival's stand-in has no sweep history"
    report = _report("a", rival, [0.50, 0.60, 0.70])
    assert abs(selected_objective(report, METRIC) - 0.6) < 1e-12


def test_the_mean_over_datasets_uses_the_sweep_value_without_confirmation_and_skips_nan() -> None:
    swept = TrialRecord(trial_id="t1", config={}, settings=baseline(2), history=[{METRIC: 0.2}, {METRIC: 0.4}])
    unknown = TrialRecord(trial_id="rival-x", config={}, settings=baseline(2), status="RIVAL")
    reports = [_report("a", swept, None), _report("b", unknown, [0.8, 1.0]), _report("c", unknown, None)]
    assert abs(mean_selected_objective(reports, METRIC) - (0.4 + 0.9) / 2) < 1e-12
    assert math.isnan(mean_selected_objective([_report("c", unknown, None)], METRIC))
