"""The decision after the smoke sweep: confirmed numbers, selection without test data, export,
model registry, and the HTML report in a real browser."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import matplotlib.image
import mlflow
import numpy as np
import pytest
import torch
import yaml
from chromium_page import check_page, find_chromium
from mlflow.tracking import MlflowClient
from scipy import stats

from asymtune.cli import compose
from asymtune.confirm.executors import LocalExecutor, RayExecutor
from asymtune.confirm.options import ConfirmOptions, DecisionOptions
from asymtune.confirm.race import race_stop
from asymtune.confirm.retrain import confirm_dataset
from asymtune.data.base import SegmentationDataset, Split
from asymtune.data.loading import load_dataset
from asymtune.models import create_model
from asymtune.paths import conf_dir
from asymtune.versions import cpu_model

pytestmark = pytest.mark.e2e
DATASETS = {"synth_lesions": ("lesion",), "synth_organs": ("organ", "organ_lesion", "duct")}
METRICS = (("dice", "Dice"), ("sensitivity", "sensitivity"), ("precision", "precision"), ("hd95", "HD95 (mm)"))


def _manifest(output_dir: Path) -> dict:
    return json.loads((output_dir / "sweep.json").read_text())


def _confirmation_runs(client: MlflowClient, parent: str) -> dict[tuple[str, int], object]:
    experiment_id = client.get_run(parent).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'confirmation'"
    runs = client.search_runs([experiment_id], filter_string=query)
    return {(r.data.tags["asymtune.trial_id"], int(r.data.tags["asymtune.seed"])): r for r in runs}


def _cell(values: list[float]) -> str:
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    return f"{mean:.3f} ± {sd:.3f}"


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_report_numbers_equal_the_confirmation_runs_in_mlflow(smoke_sweep: Path, dataset: str) -> None:
    manifest = _manifest(smoke_sweep)
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    numbers = json.loads((smoke_sweep / "report.json").read_text())["datasets"][dataset]
    report_md = (smoke_sweep / "report.md").read_text()
    assert numbers["confirmed"]
    runs = _confirmation_runs(client, manifest["datasets"][dataset]["parent_run_id"])
    selected, baseline, seeds = numbers["selected"], numbers["baseline"], numbers["results"]["seeds"]
    assert seeds == [0, 1]
    rivals = {r["trial_id"] for r in numbers["decision"]["rivals"] if r["name"] != "baseline"}
    tested = {selected, baseline} | rivals
    for (trial, _), run in runs.items():
        has_test = any(key.startswith("test/") for key in run.data.metrics)
        assert has_test == (trial in tested), f"only the selected setting, the rivals and the baseline: {trial}"
    for cls in (*DATASETS[dataset], None):
        for metric, title in METRICS:
            key = f"test/mean_fg_{metric}" if cls is None else f"test/{metric}/{cls}"
            ours = [runs[(selected, seed)].data.metrics[key] for seed in seeds]
            theirs = [runs[(baseline, seed)].data.metrics[key] for seed in seeds]
            stored = numbers["results"]["test"]["selected"][key]
            assert stored["values"] == ours and numbers["results"]["test"]["baseline"][key]["values"] == theirs
            assert stored["mean"] == pytest.approx(np.mean(ours), abs=1e-12)
            differences = np.subtract(ours, theirs)
            half = stats.t.ppf(0.975, len(seeds) - 1) * np.std(differences, ddof=1) / math.sqrt(len(seeds))
            difference = numbers["results"]["difference"][key]
            assert difference["mean"] == pytest.approx(differences.mean(), abs=1e-12)
            assert (difference["low"], difference["high"]) == pytest.approx(
                (differences.mean() - half, differences.mean() + half), abs=1e-12)
            row = (f"| {cls or 'mean (foreground)'} | {title} | {_cell(ours)} | {_cell(theirs)} | "
                   f"{differences.mean():+.3f} | [{differences.mean() - half:.3f}, {differences.mean() + half:.3f}] |")
            assert row in report_md, f"missing row {row}"


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_verdict_and_fidelity_follow_the_numbers(smoke_sweep: Path, dataset: str) -> None:
    numbers = json.loads((smoke_sweep / "report.json").read_text())["datasets"][dataset]
    decision = numbers["decision"]
    difference = numbers["results"]["difference"][decision["metric"]]
    assert decision["metric"] == "test/mean_fg_dice"
    assert decision["seeds_per_setting"] == len(numbers["results"]["seeds"])
    assert decision["interval"]["low"] == difference["low"] and decision["interval"]["high"] == difference["high"]
    exported = decision["rivals"][-1]["is"]
    assert decision["significant"] == (difference["low"] is not None and difference["low"] > 0
                                       and exported != "baseline")
    manifest = _manifest(smoke_sweep)
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    runs = _confirmation_runs(client, manifest["datasets"][dataset]["parent_run_id"])
    sentence = decision["verdict"]
    if not decision["significant"]:  # nothing claims a gain inside the noise
        assert not sentence.startswith("Better")
    for text in ((smoke_sweep / "report.md").read_text(), (smoke_sweep / "report.html").read_text()):
        assert sentence in text.replace("&#x27;", "'")
    provenance = json.loads((smoke_sweep / "configs" / f"{dataset}.provenance.json").read_text())
    assert provenance["verdict"] == sentence and provenance["decision"]["significant"] == decision["significant"]
    assert f"# verdict: {sentence}" in (smoke_sweep / "configs" / f"{dataset}.yaml").read_text()
    cases = decision["over_cases"]  # the interval over test cases, next to the one over seeds
    assert (cases["cases"], cases["seeds"]) == (8, len(numbers["results"]["seeds"]))
    assert cases["low"] <= cases["mean"] <= cases["high"]
    assert f"gain {cases['mean']:+.3f}" in (smoke_sweep / "report.md").read_text()
    names = [rival["name"] for rival in decision["rivals"]]
    named = {"authors_margin", "authors_focal", "authors_mixup", "authors_combined", "logit_offset"}
    export = decision["rivals"][-1]
    assert names[0] == "baseline" and names[-1] == "export"
    assert set(names[1:-1]) == named - {export["is"]}, "every rival but the export itself"
    best = max(decision["rivals"][:-1], key=lambda r: r["test"]["mean"])
    assert decision["best_rival"] == best["name"]
    for rival in decision["rivals"][1:-1]:  # tested with the same seeds, paired
        values = [runs[(rival["trial_id"], seed)].data.metrics[decision["metric"]]
                  for seed in numbers["results"]["seeds"]]
        assert rival["values"] == pytest.approx(values)
        assert rival["vs_baseline"]["mean"] == pytest.approx(
            sum(values) / len(values) - decision["rivals"][0]["test"]["mean"])
    line = f"# rivals: {provenance['rivals']}"
    assert provenance["rivals"].startswith("the export (") and line in (
        smoke_sweep / "configs" / f"{dataset}.yaml").read_text()
    offset = next(r for r in decision["rivals"] if "logit_offset" in (r["name"], r.get("is")))
    for seed in numbers["results"]["seeds"]:  # the baseline's own models, not trained again
        derived = runs[(offset["trial_id"], seed)].data
        assert derived.tags["asymtune.derived_from_run"] == runs[(numbers["baseline"], seed)].info.run_id
        assert derived.params["epochs"] == runs[(numbers["baseline"], seed)].data.params["epochs"]
        assert [offset["offsets"][c][numbers["results"]["seeds"].index(seed)] for c in DATASETS[dataset]] == [
            derived.metrics[f"offset/{c}"] for c in DATASETS[dataset]]
    assert set(offset["offsets"]) == set(DATASETS[dataset])
    (entry,) = numbers["fidelity"]  # the smoke sweep's one rung before its last epoch (2 epochs, grace period 1)
    assert entry["epoch"] == 1 and entry["pairs"] >= 1 and set(entry["per_class"]) == set(DATASETS[dataset])


def test_selection_does_not_change_when_the_test_labels_change(smoke_sweep: Path, tmp_path: Path) -> None:
    """The confirmation of synth_organs run twice in this process, once with the test labels
    replaced by other classes: same choice, same validation numbers, different test numbers. Then
    the first one is interrupted and resumed: only what is missing is trained again."""
    manifest = _manifest(smoke_sweep)
    entry = manifest["datasets"]["synth_organs"]
    config = yaml.safe_load((smoke_sweep / "configs" / "synth_organs.yaml").read_text())
    dataset = load_dataset(config["data"], "synth_organs")
    labels = np.asarray(dataset.test.labels)
    changed = dataclasses.replace(dataset, test=Split(dataset.test.images, (labels + 1) % dataset.num_classes))
    options = DecisionOptions(
        metric="val/mean_fg_dice", mode="max",
        confirm=ConfirmOptions(top_k=2, seeds=2, max_seeds=2, reuse_trials=False,
                               rivals=["authors_focal", "logit_offset"]),
        register_model=False,
    )
    outcomes = []
    for label, data in (("original", dataset), ("changed", changed)):
        uri = f"sqlite:///{tmp_path / label}.db"
        client = MlflowClient(tracking_uri=uri)
        experiment = client.create_experiment("decision", artifact_location=(tmp_path / label).as_uri())
        parent = client.create_run(experiment).info.run_id
        outcome = confirm_dataset(
            "synth_organs", {**entry, "parent_run_id": parent}, "test", uri, options, LocalExecutor(data)
        )
        assert not isinstance(outcome, str), outcome
        outcomes.append(outcome)
    original, modified = outcomes
    assert len(original.candidates) == 2, "two candidates, a rival and the baseline were retrained"
    assert list(original.rivals) == ["authors_focal", "logit_offset"]
    assert original.rivals["authors_focal"].trial_id == "rival-authors_focal", "no sweep trial trained it"
    baseline_runs = {r.seed: r.run_id for r in original.runs_of(original.baseline)}
    derived = original.runs_of("rival-logit_offset")
    assert [r.tags["asymtune.derived_from_run"] for r in derived] == [baseline_runs[0], baseline_runs[1]]
    assert sum(r.trained_here for r in original.runs) == 8, "the logit-offset rival trains nothing"
    assert (original.selected, original.candidates, original.sweep_choice) == (
        modified.selected, modified.candidates, modified.sweep_choice)
    validation = [{(r.trial_id, r.seed): {k: v for k, v in r.metrics.items() if k.startswith("val/")} for r in o.runs}
                  for o in outcomes]
    assert validation[0] == validation[1] and len(validation[0]) == 10
    test = [{(r.trial_id, r.seed): r.metrics["test/dice/organ"] for r in o.runs if r.tested} for o in outcomes]
    assert test[0].keys() == test[1].keys() and test[0] != test[1], "the test labels did change the test numbers"

    # Resume after an interruption: one model never logged, one run cut off while being written.
    uri = f"sqlite:///{tmp_path / 'original'}.db"
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(original.runs[0].run_id).data.tags["mlflow.parentRunId"]
    lost = next(r for r in original.runs if not r.tested)
    client.delete_run(lost.run_id)
    cut = client.create_run(client.get_run(parent).info.experiment_id, tags={
        "mlflow.parentRunId": parent, "asymtune.role": "confirmation", "asymtune.trial_id": lost.trial_id,
        "asymtune.seed": str(lost.seed)})
    again = confirm_dataset("synth_organs", {**entry, "parent_run_id": parent}, "test", uri, options,
                            LocalExecutor(dataset))
    assert not isinstance(again, str) and again.selected == original.selected
    assert client.get_run(cut.info.run_id).info.lifecycle_stage == "deleted", "the cut-off run is discarded"
    runs = {(r.trial_id, r.seed): r.run_id for r in again.runs}
    assert len(runs) == 10 and runs[(lost.trial_id, lost.seed)] != lost.run_id, "only the lost model is retrained"
    assert {k: v for k, v in runs.items() if k != (lost.trial_id, lost.seed)} == {
        (r.trial_id, r.seed): r.run_id for r in original.runs if r is not lost}


def _check_race(outcome: object, confidence: float, verdict_seeds: int) -> None:
    """What every finished race must show: the stop its numbers give, every seed of every round for
    every setting, the verdict's seeds for a better leader and the baseline only, tests of the
    tested settings only."""
    assert not isinstance(outcome, str), outcome
    race = outcome.race
    assert race is not None and race.seeds == len(outcome.seeds) and 2 <= race.seeds <= 4
    assert outcome.seeds == list(range(race.seeds)), "consecutive seeds from train.seed"
    gain = race.gain
    if race.reason == "baseline_leads":
        assert outcome.selected == outcome.baseline
    elif race.reason == "better":
        assert gain is not None and gain.low > 0
    elif race.reason == "no_useful_gain":
        assert gain is not None and gain.high < 0.001
    else:
        assert race.reason == "budget" and race.seeds == 4
    extra = list(range(race.seeds, verdict_seeds)) if race.reason == "better" else []
    assert outcome.verdict_seeds == extra and race.to_dict()["verdict_seeds"] == race.seeds + len(extra)
    for trial_id in outcome.trained:
        more = extra if trial_id in (outcome.selected, outcome.baseline) else []
        assert [run.seed for run in outcome.runs_of(trial_id)] == outcome.seeds + more, trial_id
        assert [run.seed for run in outcome.runs_of(trial_id, race_only=True)] == outcome.seeds
        assert all(run.tested == (trial_id in outcome.tested) for run in outcome.runs_of(trial_id)), trial_id
    leader = {r.seed: r.metrics["val/mean_fg_dice"] for r in outcome.runs_of(outcome.selected, race_only=True)}
    base = {r.seed: r.metrics["val/mean_fg_dice"] for r in outcome.runs_of(outcome.baseline, race_only=True)}
    if race.reason in ("better", "no_useful_gain"):
        diffs = [leader[s] - base[s] for s in outcome.seeds]
        assert gain is not None and gain.mean == pytest.approx(float(np.mean(diffs)))
    if race.seeds > 2 and race.reason != "baseline_leads":  # the round before it did not decide
        earlier = outcome.seeds[:-1]
        assert race_stop([leader[s] for s in earlier], [base[s] for s in earlier], leader_is_baseline=False,
                         seeds=len(earlier), mode="max", confidence=confidence, min_gain=0.001, max_seeds=4) is None


def _lesions_confirmation_inputs(smoke_sweep: Path, tmp_path: Path,
                                 name: str) -> tuple[dict[str, Any], SegmentationDataset, str, MlflowClient, str]:
    """What a confirmation of the smoke sweep's synth_lesions needs, with a fresh MLflow store:
    its manifest entry, its dataset, the store's URI, a client and an experiment ``name`` in it."""
    entry = _manifest(smoke_sweep)["datasets"]["synth_lesions"]
    config = yaml.safe_load((smoke_sweep / "configs" / "synth_lesions.yaml").read_text())
    dataset = load_dataset(config["data"], "synth_lesions")
    uri = f"sqlite:///{tmp_path / name}.db"
    client = MlflowClient(tracking_uri=uri)
    return entry, dataset, uri, client, client.create_experiment(name, artifact_location=tmp_path.as_uri())


def test_the_race_trains_rounds_of_seeds_until_validation_decides(smoke_sweep: Path, tmp_path: Path) -> None:
    """The confirmation of synth_lesions with a race of up to 4 seeds and 5 verdict seeds, first at
    50% confidence (on the smoke sweep's numbers its leader beats the baseline at once: the leader
    and the baseline get the verdict's seeds), then at 95% on the same runs, as a rerun with
    another level would: the race replays its rounds from the runs, trains only what they lack, and
    stops for the reason its numbers give. Reading either back (a resume) finds the same seeds and
    the same stop, and trains nothing."""
    entry, dataset, uri, client, experiment = _lesions_confirmation_inputs(smoke_sweep, tmp_path, "race")
    parent = client.create_run(experiment).info.run_id
    previous: dict[tuple[str, int], str] = {}
    for confidence in (0.5, 0.95):
        options = DecisionOptions(metric="val/mean_fg_dice", mode="max", register_model=False,
                                  confirm=ConfirmOptions(seeds=2, max_seeds=4, min_gain=0.001, reuse_trials=False,
                                                         rivals=["authors_focal"], verdict_seeds=5,
                                                         confidence=confidence))
        outcome = confirm_dataset("synth_lesions", {**entry, "parent_run_id": parent}, "test", uri, options,
                                  LocalExecutor(dataset))
        _check_race(outcome, confidence, 5)
        race = outcome.race
        print(f"race at {confidence}: {race.reason} at {race.seeds} seeds, verdict seeds {outcome.verdict_seeds}")
        if confidence == 0.5:
            assert race.reason == "better" and outcome.verdict_seeds, "the path under test: the verdict's seeds"
        runs = {(r.trial_id, r.seed): r.run_id for r in outcome.runs}
        assert {k: runs[k] for k in previous if k in runs} == previous, "the earlier runs are kept, not retrained"
        previous = runs
        again = confirm_dataset("synth_lesions", {**entry, "parent_run_id": parent}, "test", uri, options,
                                LocalExecutor(dataset))
        assert not isinstance(again, str) and again.seeds == outcome.seeds and again.race == race
        assert again.verdict_seeds == outcome.verdict_seeds and again.selected == outcome.selected
        assert {r.run_id for r in again.runs} == {r.run_id for r in outcome.runs}, "nothing trained again"


def test_registered_model_loads_and_predicts(smoke_sweep: Path, tmp_path: Path) -> None:
    manifest = _manifest(smoke_sweep)
    uri = manifest["mlflow"]["tracking_uri"]
    client = MlflowClient(tracking_uri=uri)
    record = json.loads((smoke_sweep / "configs" / "synth_organs.provenance.json").read_text())
    name, version = record["registered_model"].split("/")
    assert name == "asymtune-synth_organs"
    model_version = client.get_model_version(name, version)
    assert model_version.run_id == record["mlflow_run_id"]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pytorch.load_model(f"models:/{name}/{version}")
    finally:
        mlflow.set_tracking_uri(previous)
    config = yaml.safe_load((smoke_sweep / "configs" / "synth_organs.yaml").read_text())
    dataset = load_dataset(config["data"], "synth_organs")
    images = torch.from_numpy(dataset.test.images)
    with torch.no_grad():
        logits = model.eval()(images)
    assert logits.shape == (len(images), 4, *images.shape[2:])
    state = client.download_artifacts(record["mlflow_run_id"], "weights/state.pt", str(tmp_path))
    options = dict(config["model"])
    reference = create_model(options.pop("name"), 2, 1, 4, **options)
    reference.load_state_dict(torch.load(state, weights_only=True))
    with torch.no_grad():
        assert torch.equal(reference.eval()(images).argmax(1), logits.argmax(1))


def test_exported_experiment_file_composes_to_the_exported_config(
    smoke_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir(), conf)
    shutil.copy(smoke_sweep / "configs" / "experiment" / "synth_organs.yaml", conf / "experiment" / "synth_organs.yaml")
    monkeypatch.setenv("ASYMTUNE_CONF_DIR", str(conf))
    composed = compose("train", ["experiment=synth_organs"])
    exported = yaml.safe_load((smoke_sweep / "configs" / "synth_organs.yaml").read_text())
    for key in ("dataset_name", "data", "model", "train", "settings"):
        assert composed[key] == exported[key], key


def test_provenance_record_beside_each_config(smoke_sweep: Path) -> None:
    manifest = _manifest(smoke_sweep)
    for dataset in DATASETS:
        record = json.loads((smoke_sweep / "configs" / f"{dataset}.provenance.json").read_text())
        assert record["sweep_id"] == manifest["sweep_id"] and record["confirmed"]
        assert record["trial_id"] and record["baseline_trial_id"] and record["mlflow_run_id"]
        assert record["mlflow"]["parent_run_id"] == manifest["datasets"][dataset]["parent_run_id"]
        assert record["dataset_fingerprint"].startswith("spec-sha256:"), "synthetic data: a hash of its spec"
        assert record["code_version"] and {"torch", "ray", "optuna", "mlflow"} <= set(record["libraries"])
        # the confirmed runs of the export and the baseline trained here, on this CPU (seed 0 may be a sweep trial)
        assert f"cpu: {cpu_model()}" in record["trained_on"], record["trained_on"]
        assert set(record["trained_on"]) <= {f"cpu: {cpu_model()}", "not recorded (a sweep trial)"}
        difference = record["confirmed_metrics"]["difference"]["test/mean_fg_dice"]
        assert difference["low"] <= difference["mean"] <= difference["high"]
        assert record["selection"] == {"split": "val", "objective": "val/mean_fg_dice", "mode": "max",
                                       "constraint": None, "top_k": 1}


def test_html_report_renders_offline_in_chromium(smoke_sweep: Path, tmp_path: Path) -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found: make setup installs Debian's chromium")
        pytest.skip("chromium not installed (make setup installs it)")
    page = check_page(smoke_sweep / "report.html")
    (tmp_path / "report.png").write_bytes(page.screenshot)
    report_md = (smoke_sweep / "report.md").read_text()
    figures = report_md.count("](plots/")
    assert figures >= 12, "per dataset: test metrics, logit shift, history, importance, marginals, parallel coordinates"
    assert len(page.images) == figures and not page.broken_images
    assert page.tables == report_md.count("\n|---|") >= 2 + 2 * 5
    assert page.console == [], "no console messages or uncaught errors"
    assert [entry for entry in page.log if entry[0] in ("error", "warning")] == []
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests
    picture = matplotlib.image.imread(tmp_path / "report.png")
    assert picture.shape[0] > 3000 and picture.shape[1] == 1280 and picture.std() > 0.05
    for caption in ("parameter importance per class", "parallel coordinates", "logit shift", "Pareto front"):
        assert caption in report_md


@pytest.mark.slow  # about 50 s here; tests/confirm/test_ahead.py checks on a Ray runtime that trainings ahead reach
# their round without running twice and are dropped at the end (not that runs and decision stay the same)
def test_trainings_ahead_on_free_ray_slots_change_no_run_and_no_decision(smoke_sweep: Path, tmp_path: Path) -> None:
    """The confirmation of synth_lesions as Ray tasks with trainings ahead (``confirm.train_ahead``) on
    9 slots, a race that cannot stop early (confidence 0.9999, min_gain 0: it runs to its 3 seeds, the
    smoke sweep's leader being ahead of the baseline after 2: the race test above), against the same
    confirmation in this process (no trainings ahead): the same seeds, stop, choice and runs with the
    same validation numbers; the third seed of every setting came from its training ahead."""
    import ray

    entry, dataset, uri, client, experiment = _lesions_confirmation_inputs(smoke_sweep, tmp_path, "ahead")
    options = DecisionOptions(metric="val/mean_fg_dice", mode="max", register_model=False,
                              confirm=ConfirmOptions(seeds=2, max_seeds=3, verdict_seeds=3, min_gain=0.0,
                                                     confidence=0.9999, reuse_trials=False,
                                                     rivals=["authors_focal"]))
    outcomes = {}
    ray.init(num_cpus=9, include_dashboard=False, log_to_driver=False)
    try:  # 6 trainings in the first round, 3 slots free: the 3 settings' third seeds run ahead
        outcomes["ahead"] = confirm_dataset("synth_lesions", {**entry, "parent_run_id": client.create_run(
            experiment).info.run_id}, "test", uri, options, RayExecutor({"cpu": 1, "gpu": 0}))
    finally:
        ray.shutdown()
    outcomes["local"] = confirm_dataset("synth_lesions", {**entry, "parent_run_id": client.create_run(
        experiment).info.run_id}, "test", uri, options, LocalExecutor(dataset))
    ahead, local = outcomes["ahead"], outcomes["local"]
    assert not isinstance(ahead, str) and not isinstance(local, str)
    assert ahead.race is not None and ahead.race.reason == "budget", "the race went on to its third seed"
    assert ahead.ahead == (3, 0), "the third seed of each of the 3 settings: trained ahead, used, none dropped"
    assert local.ahead == (0, 0)
    assert (ahead.seeds, ahead.race.reason, ahead.selected, ahead.verdict_seeds) == (
        local.seeds, local.race.reason, local.selected, local.verdict_seeds)

    def validation(outcome: object) -> dict[tuple[str, int], dict[str, float]]:
        return {(r.trial_id, r.seed): {k: v for k, v in r.metrics.items() if k.startswith("val/")}
                for r in outcome.runs}

    assert len(validation(ahead)) == 9 and validation(ahead).keys() == validation(local).keys()
    for key, metrics in validation(ahead).items():
        assert metrics == pytest.approx(validation(local)[key], rel=1e-6), key
