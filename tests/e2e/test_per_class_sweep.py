"""A sweep over the per-class search space on synth_organs: each rare class has its own values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.e2e


def test_per_class_sweep_logs_separate_params_per_class(tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    # the trials' runs are what is checked: no confirmation, no report
    cli("tune", "experiment=smoke", "data=synth_organs", "search.space=per_class", "confirm.enabled=false",
        "report.enabled=false", f"output_dir={output_dir}")
    manifest = json.loads((output_dir / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    parent = manifest["datasets"]["synth_organs"]["parent_run_id"]
    experiment_id = client.get_run(parent).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'trial'"
    children = client.search_runs([experiment_id], filter_string=query)
    assert len(children) == 3
    searched = [c for c in children
                if c.data.params["is_baseline"] == "False" and "search.margin.duct" in c.data.params]
    assert searched
    for child in searched:
        params = child.data.params
        for cls in ("organ_lesion", "duct"):
            assert f"search.margin.{cls}" in params and f"search.gamma.{cls}" in params
            assert params[f"margin.{cls}"] == params[f"search.margin.{cls}"]
            assert params[f"gamma.{cls}"] == params[f"search.gamma.{cls}"]
    # the TPE/random proposal gives the two rare classes different margins
    proposed = [c for c in searched if c.data.params["search.margin.duct"] not in ("0", "1")]
    assert any(c.data.params["margin.duct"] != c.data.params["margin.organ_lesion"] for c in proposed)
