"""Hydra composition of every config, and one clear error per bad input before any trial."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asymtune.cli import compose, main
from asymtune.data.loading import load_dataset
from asymtune.models import create_model
from asymtune.paths import conf_dir, search_spaces_dir
from asymtune.search.space import SearchSpace
from asymtune.train.config import TrainConfig

EXPERIMENTS = sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_every_tune_config_composes_and_builds(experiment: str | None) -> None:
    overrides = [f"experiment={experiment}"] if experiment else []
    cfg = compose("tune", overrides)
    TrainConfig.from_mapping(cfg["train"])
    for name, entry in cfg["data"]["sets"].items():
        spec = {**entry, "params": {**(cfg["data"]["common"] or {}), **entry["params"]}}
        dataset = load_dataset(spec, name)
        options = dict(cfg["model"])
        create_model(options.pop("name"), dataset.spatial_dims, dataset.in_channels, dataset.num_classes, **options)


@pytest.mark.parametrize("group", ["data", "model", "train", "search"])
def test_every_option_of_every_group_composes(group: str) -> None:
    for option in sorted(p.stem for p in (conf_dir() / group).glob("*.yaml")):
        cfg = compose("tune", [f"{group}={option}"])
        assert cfg[group], f"{group}={option} composed to an empty node"


@pytest.mark.parametrize("space", sorted(p.stem for p in search_spaces_dir().glob("*.yaml")))
def test_every_search_space_binds_to_every_builtin_dataset(space: str) -> None:
    parsed = SearchSpace.from_file(search_spaces_dir() / f"{space}.yaml")
    for source in ("synth_lesions", "synth_organs"):
        dataset = load_dataset({"source": source, "params": {"image_size": 32}})
        bound = parsed.bind(dataset.class_names, dataset.rare_classes)
        anchors = bound.anchor_points()
        assert bound.to_settings(anchors["baseline"]).is_baseline


def test_train_config_composes_and_cli_overrides_apply() -> None:
    cfg = compose("train", ["train.epochs=3", "model.base_channels=8"])
    assert cfg["train"]["epochs"] == 3 and cfg["model"]["base_channels"] == 8
    assert cfg["settings"]["margin"] == [0.0, 0.0]


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one error line, got {err}"
    return err[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("objective.metric=val/dice/tumour", "objective.metric='val/dice/tumour' is not reported"),
        ("objective.mode=best", "objective.mode='best': expected 'max' or 'min'"),
        ("search.space=nowhere", "search.space='nowhere'"),
        ("train.batch_size=0", "train.batch_size=0: expected an integer >= 1"),
        ("data.common.n_train=0", "data.sets.synth_lesions: n_train=0"),
        ("data.sets.synth_lesions.source=synth_tumours", "synth_tumours"),
        ("model.depth=9", "model does not fit dataset"),
        ("mlflow.tracking_uri=http://127.0.0.1:9", "mlflow.tracking_uri='http://127.0.0.1:9' cannot be used"),
        ("confirm.seeds=0", "confirm.seeds=0: expected an integer >= 1"),
        ("selection.constraint=best", "selection.constraint='best': expected null or one of"),
    ],
)
def test_bad_tune_values_fail_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    output_dir = tmp_path / "out"
    message = _fails(capsys, ["tune", "experiment=smoke", f"output_dir={output_dir}", override])
    assert expected in message
    assert not (output_dir / "ray_results").exists(), "no trial may start on a bad input"


def test_per_class_space_of_the_wrong_length_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = yaml.safe_load((search_spaces_dir() / "per_class.yaml").read_text())
    space["params"]["margin"]["high"] = [2.0, 2.0]  # synth_organs has 3 foreground classes
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    argv = ["tune", "experiment=smoke", "data=synth_organs", f"output_dir={tmp_path / 'out'}", f"search.space={path}"]
    message = _fails(capsys, argv)
    assert f"dataset 'synth_organs': {path}: params.margin.high has 2 values [2.0, 2.0]: expected 3" in message
    assert not (tmp_path / "out" / "ray_results").exists()


def test_resuming_with_a_different_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    cfg = compose("tune", ["experiment=smoke", f"output_dir={output_dir}"])
    cfg["train"]["epochs"] = 99
    (output_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    message = _fails(capsys, ["tune", "experiment=smoke", f"output_dir={output_dir}"])
    assert "different config (changed: train.epochs)" in message


def test_train_with_a_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _fails(capsys, ["train", "--config", str(tmp_path / "none.yaml")])
    assert "none.yaml: no such file" in message


def test_report_on_a_folder_without_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _fails(capsys, ["report", str(tmp_path)])
    assert "sweep.json does not exist" in message
