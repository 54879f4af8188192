"""Portable exports: ``configs/`` names its data by source, params, fingerprint and a root relative
to the data directory, never the sweep machine's paths; ``asymtune train --config`` finds the data
on another machine (``data.root=``, ``data.data_dir=``, ``$ASYMTUNE_DATA_DIR``) and refuses data
whose fingerprint differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from asymtune.cli import main
from asymtune.data import create_dataset
from asymtune.data.locate import DataMismatchError, data_fingerprint, files_fingerprint, resolve_entry
from asymtune.data.writers import write_nnunet
from asymtune.paths import search_spaces_dir
from asymtune.report.export import portable_location, write_export
from asymtune.train.command import locate_data

REPO = Path(__file__).resolve().parents[2]
NAME = "Dataset100_Tiny"
TRAIN = {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 4, "patch_size": [16, 16], "seed": 0,
         "device": "cpu", "num_threads": 1}
SETTINGS = {"margin": [0.0, 1.0], "gamma": [2.0, 0.0], "rare": [False, True]}


def _write_dataset(root: Path) -> Path:
    """Eight 2-D cases (24 x 24) of the lesion generator in the nnU-Net layout."""
    data = create_dataset("synth_lesions", seed=0, image_size=24, n_train=8, n_val=1, n_test=1)
    cases = [(f"case_{i:03d}", image.astype(np.float32), label.astype(np.uint8))
             for i, (image, label) in enumerate(data.train.cases())]
    return write_nnunet(root, cases, ("T2",), ("background", "lesion"), spacing=(1.0, 1.0))


def _copy(source: Path, target: Path) -> Path:
    """A copy as another machine gets it: same bytes, new modification times."""
    return Path(shutil.copytree(source, target, copy_function=shutil.copyfile))


@pytest.fixture()
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An export of a dataset on disk as a sweep on this machine writes it (absolute paths in)."""
    data_dir = tmp_path / "sweep_machine" / "datasets"
    root = _write_dataset(data_dir / NAME)
    output_dir = tmp_path / "sweep_machine" / "out"
    monkeypatch.setenv("ASYMTUNE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ASYMTUNE_CACHE", str(tmp_path / "cache"))
    config = {
        "dataset_name": NAME,
        "data": {"source": "nnunet", "params": {"seed": 0, "val_fraction": 0.25, "test_fraction": 0.25,
                                                "root": str(root), "cache_dir": str(tmp_path / "cache")}},
        "model": {"name": "unet", "base_channels": 4, "depth": 2}, "train": TRAIN, "settings": SETTINGS,
    }
    provenance = {
        "sweep_id": "s1", "trial_id": "t1", "confirmed": False, "dataset": NAME,
        "mlflow": {"tracking_uri": f"sqlite:///{output_dir / 'mlflow.db'}", "experiment": "asymtune"},
        "optuna": {"storage": f"sqlite:///{output_dir / 'optuna.db'}", "study": "asymtune-s1-tiny"},
        "search_space": str(search_spaces_dir() / "paper.yaml"),
        "note": f"written in {output_dir}",
    }
    exported = write_export(config, provenance, output_dir / "configs")
    monkeypatch.delenv("ASYMTUNE_DATA_DIR")
    return {"root": root, "output_dir": output_dir, "config": exported, "tmp": tmp_path}


def test_configs_hold_no_absolute_path_of_the_sweep_machine(sweep: dict[str, Path]) -> None:
    files = [path for path in (sweep["output_dir"] / "configs").rglob("*") if path.is_file()]
    assert len(files) == 3, "config, provenance record, experiment overlay"
    for path in files:
        text = path.read_text()
        for forbidden in (str(sweep["tmp"]), str(REPO)):
            assert forbidden not in text, f"{path.name} holds {forbidden}"
    data = yaml.safe_load(sweep["config"].read_text())["data"]
    assert data["root"] == NAME, "relative to $ASYMTUNE_DATA_DIR of the sweep"
    assert "root" not in data["params"] and "cache_dir" not in data["params"]
    assert data["fingerprint"] == files_fingerprint(sweep["root"]) and data["fingerprint"].startswith("files-sha256:")
    overlay = yaml.safe_load((sweep["output_dir"] / "configs" / "experiment" / f"{NAME}.yaml").read_text())
    assert overlay["data"] == data
    record = json.loads((sweep["output_dir"] / "configs" / f"{NAME}.provenance.json").read_text())
    assert record["mlflow"]["tracking_uri"] == "sqlite:///mlflow.db"
    assert record["optuna"]["storage"] == "sqlite:///optuna.db"
    assert record["search_space"] == "search_spaces/paper.yaml"
    assert record["note"] == "written in ."
    assert record["dataset_fingerprint"] == data["fingerprint"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sqlite:///{out}/mlflow.db", "sqlite:///mlflow.db"),
        ("journal:///{out}/optuna.log", "journal:///optuna.log"),
        ("{out}/ray_results/a", "ray_results/a"),
        ("sqlite:////elsewhere/shared/optuna.db", "optuna.db"),
        ("/elsewhere/spaces/mine.yaml", "mine.yaml"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("postgresql://user@db.host/optuna", "postgresql://user@db.host/optuna"),
        ("relative/space.yaml", "relative/space.yaml"),
    ],
)
def test_locations_are_written_relative_or_by_name(tmp_path: Path, value: str, expected: str) -> None:
    assert portable_location(value.format(out=tmp_path), tmp_path) == expected


def test_a_copy_elsewhere_is_found_through_the_data_directory(
    sweep: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = sweep["tmp"] / "teammate"
    copy = _copy(sweep["root"], other / "data" / NAME)
    data = yaml.safe_load(sweep["config"].read_text())["data"]
    monkeypatch.chdir(sweep["tmp"])
    with pytest.raises(FileNotFoundError, match=rf"data.root='{NAME}': no such folder.*ASYMTUNE_DATA_DIR"):
        locate_data(data)
    monkeypatch.setenv("ASYMTUNE_DATA_DIR", str(other / "data"))
    assert locate_data(data)["params"]["root"] == str(copy), "new modification times, the same fingerprint"
    monkeypatch.delenv("ASYMTUNE_DATA_DIR")
    assert locate_data({**data, "data_dir": str(other / "data")})["params"]["root"] == str(copy)
    assert locate_data({**data, "root": str(copy)})["params"]["root"] == str(copy)
    monkeypatch.chdir(other / "data")
    assert locate_data(data)["params"]["root"] == str(copy), "then the current folder"


def test_train_from_a_copied_config_in_another_folder(
    sweep: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = sweep["tmp"] / "teammate"
    copy = _copy(sweep["root"], other / "data" / NAME)
    config = Path(shutil.copy(sweep["config"], other / "tiny.yaml"))
    shutil.rmtree(sweep["tmp"] / "sweep_machine")
    monkeypatch.chdir(other)
    monkeypatch.setenv("ASYMTUNE_CACHE", str(other / "cache"))
    assert main(["train", "--config", str(config), f"data.data_dir={copy.parent}", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == NAME and result["epochs"] == 1 and 0.0 <= result["test/dice/lesion"] <= 1.0


def test_data_whose_fingerprint_differs_is_refused(
    sweep: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = sweep["tmp"] / "teammate"
    copy = _copy(sweep["root"], other / NAME)
    label = copy / "labelsTr" / "case_003.nii.gz"
    import nibabel as nib

    image = nib.load(str(label))
    array = np.asarray(image.dataobj).copy()
    array.flat[0] = 1 - array.flat[0]  # one voxel of one label
    nib.save(nib.Nifti1Image(array, image.affine), str(label))
    expected = yaml.safe_load(sweep["config"].read_text())["data"]["fingerprint"]
    found = files_fingerprint(copy)
    assert found != expected
    code = main(["train", "--config", str(sweep["config"]), f"data.root={copy}", "--quiet"])
    message = capsys.readouterr().err
    assert code == 2 and "Traceback" not in message
    assert f"data.fingerprint: the data at {copy} has fingerprint {found}, expected {expected}" in message
    assert "data.fingerprint=null" in message, "names the way to train on this data anyway"
    prepared = [path.name for path in (sweep["tmp"] / "cache").iterdir() if path.name != "fingerprints"]
    assert prepared == [], "refused before the data is prepared"
    data = yaml.safe_load(sweep["config"].read_text())["data"]
    assert locate_data({**data, "root": str(copy), "fingerprint": None})["params"]["root"] == str(copy)


def test_generated_data_is_fingerprinted_by_its_entry() -> None:
    entry = {"source": "synth_lesions", "params": {"seed": 0, "image_size": 32}}
    fingerprint = data_fingerprint(entry)
    assert fingerprint.startswith("spec-sha256:") and data_fingerprint(resolve_entry(entry)) == fingerprint
    assert locate_data({**entry, "fingerprint": fingerprint}) == entry
    with pytest.raises(DataMismatchError, match=r"dataset 'synth_lesions' with params .*\"image_size\": 48.* expected"):
        locate_data({"source": "synth_lesions", "params": {"seed": 0, "image_size": 48}, "fingerprint": fingerprint})


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "bench" / "tuned").glob("*.yaml")))
def test_bench_tuned_configs_still_compose_and_locate(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copies in bench/tuned/ (older exports: ``params.root`` relative to the checkout, no
    fingerprint) compose and find their data as before."""
    path = REPO / "bench" / "tuned" / f"{name}.yaml"
    assert main(["train", "--config", str(path), "--cfg"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    root = data["params"].get("root")
    if root is None:
        assert locate_data(data) == {"source": data["source"], "params": data["params"]}
        return
    _write_dataset(tmp_path / root)  # `asymtune data prepare` needs atlas packages: a stand-in folder
    monkeypatch.chdir(tmp_path)
    assert locate_data(data)["params"]["root"] == str(tmp_path / root)
