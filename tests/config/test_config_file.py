"""``asymtune train --config FILE key=value``: FILE is an experiment overlay, then Hydra overrides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from asymtune.cli import compose as cli_compose
from asymtune.cli import main
from asymtune.config import compose
from asymtune.paths import conf_dir
from asymtune.report.export import TRAIN_KEYS, write_export

EXPORTED = {
    "dataset_name": "synth_organs",
    "data": {"source": "synth_organs", "params": {"seed": 0, "image_size": 32, "n_train": 4, "n_val": 4, "n_test": 4}},
    "model": {"name": "unet", "base_channels": 4, "depth": 2, "norm": "instance"},
    "train": {
        "epochs": 2, "iterations_per_epoch": 2, "batch_size": 4, "learning_rate": 0.002, "weight_decay": 0.0,
        "seed": 0, "num_threads": 1, "augment": False, "loss": "asymmetric", "patch_size": None,
        "oversample_foreground": 0.33, "ce_weight": 1.0, "dice_weight": 1.0, "eval_batch_size": 32,
    },
    "settings": {
        "margin": [0.0, 1.0, 1.0, 0.0], "gamma": [4.0, 0.0, 0.0, 4.0], "rare": [False, True, True, False],
        "mixup_alpha": 0.2, "mixup_margin": 0.2, "mixup_symmetric": False, "adv_eps": 0.0, "adv_xi": 1e-05,
        "aug_p_bg": 1.0, "schedule": "separate",
    },
}


@pytest.fixture()
def exported(tmp_path: Path) -> Path:
    """A config as ``asymtune tune`` exports it (with its provenance block and record)."""
    provenance = {"sweep_id": "s1", "trial_id": "t1", "confirmed": True, "test_metrics": {"test/mean_fg_dice": 0.5}}
    return write_export(EXPORTED, provenance, tmp_path / "configs")


def _cfg(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main([*argv, "--cfg"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_exported_config_composes_to_itself(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(capsys, ["train", "--config", str(exported)])
    for key in TRAIN_KEYS:
        assert {k: cfg[key][k] for k in EXPORTED[key]} == EXPORTED[key] if isinstance(EXPORTED[key], dict) \
            else cfg[key] == EXPORTED[key], key
    assert cfg["train"]["device"] == "auto", "keys the file lacks get their defaults"
    assert "provenance" not in cfg, "the provenance block is a record, not configuration"


def test_exported_experiment_file_composes_like_the_config(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from_config = _cfg(capsys, ["train", "--config", str(exported)])
    from_experiment = _cfg(capsys, ["train", "--config", str(exported.parent / "experiment" / exported.name)])
    assert from_config == from_experiment


def test_experiment_file_in_conf_composes_like_config_file(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same overlay as the one the export tells users to copy into conf/experiment/."""
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir(), conf)
    shutil.copy(exported.parent / "experiment" / exported.name, conf / "experiment" / exported.name)
    monkeypatch.setenv("ASYMTUNE_CONF_DIR", str(conf))
    overlay = compose("train", ["experiment=synth_organs", "train.epochs=1"])
    content = yaml.safe_load(exported.read_text())
    assert overlay == compose("train", ["train.epochs=1"], config_file=content)
    assert overlay == cli_compose("train", ["train.epochs=1"], base=content)


def test_overrides_apply_with_hydra_value_parsing(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(capsys, ["train", "--config", str(exported), "train.epochs=1", "train.device=cpu",
                        "train.patch_size=[16,16]", "settings.mixup_alpha=0"])
    assert cfg["train"]["epochs"] == 1 and cfg["train"]["device"] == "cpu"
    assert cfg["train"]["patch_size"] == [16, 16] and cfg["settings"]["mixup_alpha"] == 0.0
    assert cfg["train"]["iterations_per_epoch"] == 2, "the file's values stay"


def test_model_selects_the_group_instead_of_the_files_model(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(capsys, ["train", "--config", str(exported), "model=dynunet", "model.depth=3"])
    group = yaml.safe_load((conf_dir() / "model" / "dynunet.yaml").read_text())
    assert cfg["model"] == {**group, "depth": 3}
    assert cfg["settings"] == EXPORTED["settings"], "the rest of the file stays"


def test_a_model_without_a_group_file_is_the_files_model(tmp_path: Path) -> None:
    content = {**EXPORTED, "model": {"name": "custom_net", "width": 3}}
    assert compose("train", [], config_file=content)["model"] == {"name": "custom_net", "width": 3}


def test_unknown_key_in_the_file_is_refused_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({**EXPORTED, "train": {**EXPORTED["train"], "devcie": "cpu"}}))
    assert main(["train", "--config", str(path), "--cfg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"asymtune train: error: {path}: train.devcie is not a key of the config: expected one of")
    assert err[0].endswith("(did you mean train.device?)")


def test_config_file_and_experiment_together_are_refused(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(exported), "experiment=smoke"]) == 2
    assert "both choose the experiment overlay: expected one of them" in capsys.readouterr().err


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    assert main(["train", "--config", str(path)]) == 2
    assert f"--config {path}: holds list: expected a YAML mapping" in capsys.readouterr().err


def test_diagnose_reads_its_config_the_same_way(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["diagnose", "--config", str(exported), "--weights", str(tmp_path / "none.pt"), "train.devcie=cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.devcie is not a key of the config" in err[0]


def test_exported_config_trains(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["train", "--config", str(exported), "train.epochs=1", "train.device=cpu", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == "synth_organs" and result["epochs"] == 1
