"""The interval over test cases, read back from a real MLflow store: each tested run's per-case
Dice series, averaged over foreground classes, paired by seed and case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from asymtune.confirm.stats import paired_bootstrap
from asymtune.report.cases import case_bootstrap, case_sentence
from asymtune.report.results import ConfirmedResults
from asymtune.results.layout import CASE_SERIES
from asymtune.tracking.confirmation import ConfirmationRun, log_tested, metric_series

CLASSES = ("background", "organ", "lesion")


def _tested_run(client: MlflowClient, experiment: str, organ: list[float], lesion: list[float] | None) -> str:
    run_id = client.create_run(experiment).info.run_id
    run = ConfirmationRun(run_id, "t", 0, "candidate", "trained")
    series = {f"{CASE_SERIES}/organ": organ, **({f"{CASE_SERIES}/lesion": lesion} if lesion is not None else {})}
    log_tested(client, run, {"test/mean_fg_dice": 0.5}, None, series)
    assert run.tested
    return run_id


def test_case_bootstrap_reads_the_series_of_every_seed(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    experiment = client.create_experiment("cases", artifact_location=tmp_path.as_uri())
    selected = [([0.8, 0.6, 0.9], [0.4, 0.2, 0.1]), ([0.7, 0.7, 0.8], [0.5, 0.1, 0.3])]
    baseline = [([0.7, 0.6, 0.8], [0.2, 0.2, 0.0]), ([0.7, 0.5, 0.9], [0.3, 0.1, 0.1])]
    results = ConfirmedResults(seeds=[0, 1], run_ids={
        "selected": [_tested_run(client, experiment, *pair) for pair in selected],
        "baseline": [_tested_run(client, experiment, *pair) for pair in baseline],
    })
    assert metric_series(client, results.run_ids["selected"][1], f"{CASE_SERIES}/lesion") == pytest.approx(
        [0.5, 0.1, 0.3]), "in case order"
    entry = case_bootstrap(client, results, CLASSES, 0.95)
    expected = paired_bootstrap(np.array([np.mean(pair, axis=0) for pair in selected]),
                                np.array([np.mean(pair, axis=0) for pair in baseline]))
    assert entry is not None and (entry["cases"], entry["seeds"]) == (3, 2)
    assert (entry["mean"], entry["low"], entry["high"]) == pytest.approx((expected.mean, expected.low, expected.high))
    # the hand-computed mean: per case, mean over classes and seeds of selected - baseline
    by_case = [0.1 + 0.2 + 0.0 + 0.2, 0.0 + 0.0 + 0.2 + 0.0, 0.1 + 0.1 - 0.1 + 0.2]  # 2 classes x 2 seeds each
    assert entry["mean"] == pytest.approx(np.mean(by_case) / 4)
    assert case_sentence(entry).startswith("Over test cases (paired bootstrap of the 3 test cases, 2000 resamples")


def test_runs_without_per_case_series_give_no_interval(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    experiment = client.create_experiment("cases", artifact_location=tmp_path.as_uri())
    results = ConfirmedResults(seeds=[0], run_ids={
        "selected": [_tested_run(client, experiment, [0.5, 0.6], None)],  # a class without its series
        "baseline": [_tested_run(client, experiment, [0.5, 0.6], [0.1, 0.2])],
    })
    assert case_bootstrap(client, results, CLASSES, 0.95) is None
