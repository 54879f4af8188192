"""One grammar: Hydra overrides checked against the schema, one sentence per refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asymtune.cli import main
from asymtune.config import compose, render_config
from asymtune.paths import conf_dir

EXPERIMENTS = sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``asymtune ARGV``: exit code 2 and exactly one line on stderr, returned."""
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert not captured.out
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tune", "train.devcie=cpu"],
         "error: train.devcie is not a key of the config: expected one of train.epochs, "),
        (["tune", "+train.devcie=cpu"], "train.devcie is not a key of the config"),
        (["tune", "++train.devcie=cpu"], "train.devcie is not a key of the config"),
        (["train", "train.devcie=cpu"], "asymtune train: error: train.devcie is not a key of the config"),
        (["tune", "trian.epochs=1"], "trian.epochs is not a key of the config: expected one of output_dir, "),
        (["tune", "outptu_dir=x"], "outptu_dir is not a key of the config"),
        (["tune", "faults.raise_at_epoch=1"], "faults.raise_at_epoch is not a key of the config"),
        (["train", "settings.mixup_alpa=0.2"], "settings.mixup_alpa is not a key of the config"),
    ],
)
def test_unknown_key_is_refused_naming_it(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    message = refused(capsys, argv)
    assert expected in message
    key = next(a for a in argv[1:]).lstrip("+").split("=")[0]
    assert message.startswith(f"asymtune {argv[0]}: error: {key} is not a key")


def test_the_closest_key_is_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    assert refused(capsys, ["tune", "train.devcie=cpu"]).endswith("(did you mean train.device?)")
    assert refused(capsys, ["tune", "trian.epochs=1"]).endswith("(did you mean train.epochs?)")
    message = refused(capsys, ["tune", "search.scheduler.grace=1"])
    assert message.endswith("(did you mean search.scheduler.grace_period?)")
    assert refused(capsys, ["tune", "model.dpth=1"]).endswith(
        "model.dpth is not a key of the composed config: expected one of model.name, model.base_channels, "
        "model.depth, model.norm (did you mean model.depth?)"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epochs=abc", "train.epochs='abc': expected an integer"),
        ("train.patch_size=abc", "train.patch_size='abc': expected a list of integers or null"),
        ("resources.gpu=one", "resources.gpu='one': expected a number"),
        ("model=unet3d", "model=unet3d: conf/model/ has no option 'unet3d': expected one of dynunet, unet"),
        ("experiment=smok", "experiment=smok: conf/experiment/ has no option 'smok': expected one of"),
        ("train.epochs=[1", "override 'train.epochs=[1' cannot be read"),
        ("~train.epochs", "~train.epochs: train.epochs is a key of the config and cannot be removed"),
        ("model.foo=1", "model.foo is not a key of the composed config: expected one of model.name"),
        ("train.epochs.max=1", "train.epochs.max is not a key of the config: train.epochs holds a value, not keys"),
        ("data.root=/x", "data.root is not a key of the composed config: expected one of data.sets, data.common"),
    ],
)
def test_bad_override_is_one_sentence(capsys: pytest.CaptureFixture[str], override: str, expected: str) -> None:
    assert expected in refused(capsys, ["tune", override, "--cfg"])


def test_a_group_the_command_does_not_have(capsys: pytest.CaptureFixture[str]) -> None:
    assert refused(capsys, ["train", "data=builtin", "--cfg"]) == (
        "asymtune train: error: data=builtin: data is not a group of conf/train.yaml: expected one of model, train, "
        "experiment"
    )


def test_overrides_use_hydra_value_parsing() -> None:
    cfg = compose("tune", ["train.device=cuda", "train.patch_size=[32,32]", "resources.gpu=0.25",
                           "+model.dropout=0.1", "data=synth_organs", "ray.address=auto"])
    assert cfg["train"]["device"] == "cuda" and cfg["train"]["patch_size"] == [32, 32]
    assert cfg["resources"]["gpu"] == 0.25 and cfg["model"]["dropout"] == 0.1
    assert list(cfg["data"]["sets"]) == ["synth_organs"] and cfg["ray"]["address"] == "auto"


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_cfg_prints_valid_yaml_with_each_key_explained(
    capsys: pytest.CaptureFixture[str], experiment: str | None
) -> None:
    argv = ["tune", "--cfg"] + ([f"experiment={experiment}"] if experiment else [])
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed) == compose("tune", argv[2:])
    assert "# `\"auto\"` (CUDA when a GPU is visible" in printed
    assert "\n  device: auto\n" in printed and "\n  mixed_precision: true\n" in printed


def test_train_cfg_prints_valid_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--cfg", "train.epochs=3"]) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed) == compose("train", ["train.epochs=3"])
    assert "channels_last: true" in printed


def test_render_keeps_open_mappings_and_lists() -> None:
    cfg = compose("tune", ["data=nnunet", "data.root=[/a,/b]"])
    text = render_config(cfg, "tune")
    assert yaml.safe_load(text) == cfg
    assert "  root: [/a, /b]\n" in text


def test_a_group_file_with_an_unknown_key_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf"
    import shutil

    shutil.copytree(conf_dir(), conf)
    (conf / "experiment" / "typo.yaml").write_text("# @package _global_\ntrain:\n  epoch: 3\n")
    monkeypatch.setenv("ASYMTUNE_CONF_DIR", str(conf))
    message = refused(capsys, ["tune", "experiment=typo", "--cfg"])
    assert message == (
        "asymtune tune: error: conf/experiment/typo.yaml: train.epoch is not a key of the config: expected one of "
        + ", ".join(f"train.{k}" for k in compose("tune")["train"])
        + " (did you mean train.epochs?)"
    )
