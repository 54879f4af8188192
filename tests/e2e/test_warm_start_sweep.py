"""A warm-started smoke sweep: ``search.warm_start=<the session's smoke sweep>`` runs the earlier
sweep's best setting of each dataset as its first trial, then the anchors, and the report says
which sweep and dataset seeded it."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.e2e
ANCHORS = ({"margin": 0.0, "gamma": 0.0}, {"margin": 1.0, "gamma": 4.0})  # baseline, authors' default


def _study(manifest: dict, dataset: str) -> optuna.Study:
    return optuna.load_study(study_name=manifest["datasets"][dataset]["study_name"], storage=manifest["optuna_storage"])


def _best_full_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    most = max(t.user_attrs["epochs"] for t in done)
    return max((t for t in done if t.user_attrs["epochs"] == most), key=lambda t: (t.value, -t.number))


def test_the_earlier_best_settings_run_first(smoke_sweep: Path, tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "warm"
    cli("tune", "experiment=smoke", f"search.warm_start={smoke_sweep}", "search.warm_start_top_k=1",
        "confirm.enabled=false", f"output_dir={output_dir}")
    earlier = json.loads((smoke_sweep / "sweep.json").read_text())
    manifest = json.loads((output_dir / "sweep.json").read_text())
    report = json.loads((output_dir / "report.json").read_text())
    report_md = (output_dir / "report.md").read_text()
    for dataset in ("synth_lesions", "synth_organs"):
        best = _best_full_trial(_study(earlier, dataset))
        trials = _study(manifest, dataset).trials
        assert len(trials) == 3
        assert trials[0].params == best.params, "the earlier best setting is the first trial"
        assert trials[0].system_attrs["fixed_params"] == best.params  # enqueued, not sampled
        rest = [{k: t.params[k] for k in ("margin", "gamma")} for t in trials[1:]]
        expected = [a for a in ANCHORS if a != {k: best.params[k] for k in ("margin", "gamma")}]
        assert rest[:len(expected)] == expected, "then the anchors, the baseline first"
        warm = manifest["datasets"][dataset]["warm_start"]
        assert warm["source_dataset"] == dataset and warm["reason"] == "the same dataset"
        assert warm["trial_numbers"] == [best.number] and warm["study_name"] == earlier["datasets"][dataset][
            "study_name"]
        assert report["datasets"][dataset]["warm_start"]["sentence"] == warm["sentence"]
        assert f"Note: {warm['sentence']}" in report_md
        assert f"sweep {earlier['sweep_id']} in {smoke_sweep}" in warm["sentence"]
        assert len(manifest["datasets"][dataset]["class_fractions"]) == len(manifest["datasets"][dataset][
            "class_names"])
