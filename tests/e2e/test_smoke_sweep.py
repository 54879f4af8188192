"""The smoke sweep end to end: Ray Tune trials, Optuna studies, MLflow runs, report, configs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.e2e
DATASETS = {"synth_lesions": ("lesion",), "synth_organs": ("organ", "organ_lesion", "duct")}
EPOCHS, TRIALS = 2, 3


def _manifest(output_dir: Path) -> dict:
    return json.loads((output_dir / "sweep.json").read_text())


def test_mlflow_has_parent_and_nested_trial_runs_with_per_class_metrics(smoke_sweep: Path) -> None:
    manifest = _manifest(smoke_sweep)
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name("asymtune")
    assert experiment is not None
    for dataset, classes in DATASETS.items():
        parents = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`asymtune.dataset` = '{dataset}' and tags.`asymtune.role` = 'sweep'",
        )
        assert len(parents) == 1, f"{dataset}: expected one parent run, found {len(parents)}"
        parent = parents[0]
        assert parent.info.run_id == manifest["datasets"][dataset]["parent_run_id"]
        assert parent.data.tags["asymtune.sweep_id"] == manifest["sweep_id"]
        assert "asymtune.code_version" in parent.data.tags
        artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert "config.yaml" in artifacts and "report" in artifacts
        query = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`asymtune.role` = 'trial'"
        children = client.search_runs([experiment.experiment_id], filter_string=query)
        assert len(children) == TRIALS
        assert len({c.data.tags["asymtune.trial_id"] for c in children}) == TRIALS
        for child in children:
            for cls in ("background", *classes):
                assert f"margin.{cls}" in child.data.params and f"gamma.{cls}" in child.data.params
            for cls in classes:
                for metric in ("dice", "sensitivity", "precision"):
                    history = client.get_metric_history(child.info.run_id, f"val/{metric}/{cls}")
                    steps = sorted(m.step for m in history)
                    assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= EPOCHS
                    assert all(0.0 <= m.value <= 1.0 for m in history)
            diagnostics = {a.path for a in client.list_artifacts(child.info.run_id, "diagnostics")}
            assert diagnostics == {"diagnostics/logit_shift.png", "diagnostics/diagnostics.npz"}
            for cls in classes:
                for key in ("median_train", "median_val", "shift", "frac_negative_val", "wasserstein"):
                    assert f"diag/{key}/{cls}" in child.data.metrics
        baseline = [c for c in children if c.data.params["is_baseline"] == "True"]
        assert len(baseline) == 1, "the baseline anchor must be one of the trials"


def test_optuna_study_is_persisted_and_reopens(smoke_sweep: Path) -> None:
    manifest = _manifest(smoke_sweep)
    for dataset in DATASETS:
        study = optuna.load_study(
            study_name=manifest["datasets"][dataset]["study_name"], storage=manifest["optuna_storage"]
        )
        finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(finished) == TRIALS
        first = study.trials[0].params
        assert first["margin"] == 0.0 and first["gamma"] == 0.0, "the baseline anchor is evaluated first"
        second = study.trials[1].params
        assert (second["margin"], second["gamma"], second["mixup_alpha"]) == (1.0, 4.0, 0.2)


def test_the_local_stores_run_in_wal_mode(smoke_sweep: Path) -> None:
    # asymtune.results.sqlite: the driver commits at every result; on a local disk the stores log ahead
    for name in ("mlflow.db", "optuna.db"):
        with sqlite3.connect(smoke_sweep / name) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal", name


def test_report_and_exported_configs(smoke_sweep: Path) -> None:
    report_md = (smoke_sweep / "report.md").read_text()
    report_html = (smoke_sweep / "report.html").read_text()
    for dataset, classes in DATASETS.items():
        assert f"## {dataset}" in report_md
        for cls in classes:
            assert f"| {cls} |" in report_md
        config = yaml.safe_load((smoke_sweep / "configs" / f"{dataset}.yaml").read_text())
        assert config["dataset_name"] == dataset
        assert len(config["settings"]["margin"]) == len(classes) + 1
        assert (smoke_sweep / "plots" / f"{dataset}_test_metrics.png").stat().st_size > 1000
        assert (smoke_sweep / "configs" / "experiment" / f"{dataset}.yaml").is_file()
        assert (smoke_sweep / "configs" / f"{dataset}.provenance.json").is_file()
    assert report_html.count("data:image/png;base64,") >= 4
    assert "http://" not in report_html and "https://" not in report_html


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_exported_config_retrains_to_the_confirmed_test_metrics(smoke_sweep: Path, cli, dataset: str) -> None:
    path = smoke_sweep / "configs" / f"{dataset}.yaml"
    config = yaml.safe_load(path.read_text())
    result = cli("train", "--config", str(path), "--quiet")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, "train prints its test metrics as one JSON line"
    metrics = json.loads(lines[0])
    assert metrics["dataset"] == dataset and metrics["epochs"] == config["train"]["epochs"] == EPOCHS
    assert config["provenance"]["confirmed"] and config["provenance"]["test_metrics"]
    for key, value in config["provenance"]["test_metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key  # the same training as the first seed's
    confirmed = json.loads((smoke_sweep / "configs" / f"{dataset}.provenance.json").read_text())["confirmed_metrics"]
    for cls in DATASETS[dataset]:
        seeds = confirmed["test"]["selected"][f"test/dice/{cls}"]["values"]
        assert min(seeds) - 1e-6 <= metrics[f"test/dice/{cls}"] <= max(seeds) + 1e-6, "within the seed spread"


def test_report_command_rebuilds_the_report(smoke_sweep: Path, cli) -> None:
    (smoke_sweep / "report.md").unlink()
    cli("report", str(smoke_sweep), "--no-mlflow")
    assert "## synth_organs" in (smoke_sweep / "report.md").read_text()


def test_rerun_of_a_finished_sweep_runs_no_new_trial(smoke_sweep: Path, cli) -> None:
    manifest = _manifest(smoke_sweep)
    before = sorted(p.name for p in (smoke_sweep / "ray_results" / "synth_lesions").glob("trial_*"))
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    parent = manifest["datasets"]["synth_lesions"]["parent_run_id"]
    experiment = client.get_experiment_by_name("asymtune")
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'confirmation'"
    runs = client.search_runs([experiment.experiment_id], filter_string=query)
    confirmations = len(runs)
    seeds: dict[str, set[str]] = {}
    for run in runs:
        seeds.setdefault(run.data.tags["asymtune.trial_id"], set()).add(run.data.tags["asymtune.seed"])
    rivals = {run.data.params["rival"] for run in runs if "rival" in run.data.params}
    assert rivals == {"authors_margin", "authors_focal", "authors_mixup", "authors_combined", "logit_offset"}
    assert all(len(s) == 2 for s in seeds.values()), "every setting with the same 2 seeds"
    assert 6 <= len(seeds) <= 7, "the baseline, the best trial and 5 rivals (the best trial may be one of them)"
    cli("tune", "experiment=smoke", f"output_dir={smoke_sweep}")
    after = sorted(p.name for p in (smoke_sweep / "ray_results" / "synth_lesions").glob("trial_*"))
    assert before == after
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'trial'"
    children = client.search_runs([experiment.experiment_id], filter_string=query)
    assert len(children) == TRIALS
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'confirmation'"
    assert len(client.search_runs([experiment.experiment_id], filter_string=query)) == confirmations
    assert len(client.search_model_versions("name = 'asymtune-synth_lesions'")) == 1, "no second registration"
