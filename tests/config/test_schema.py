"""The schema is the one source of every key: its default, its type, its meaning."""

from __future__ import annotations

import dataclasses

import pytest

from asymtune.config import compose
from asymtune.config.schema import (
    ConfirmSection,
    ExportSection,
    TrainSection,
    field_help,
    keys_of,
    node_type,
    schema_defaults,
    schema_for,
)
from asymtune.confirm.options import ConfirmOptions, DecisionOptions
from asymtune.method.settings import AsymmetrySettings
from asymtune.train.config import TrainConfig


def _sections(section: type) -> list[type]:
    found = [section]
    for spec in dataclasses.fields(section):
        child = node_type(section, spec.name)
        if dataclasses.is_dataclass(child):
            found += _sections(child)
    return found


@pytest.mark.parametrize("config_name", ["tune", "train"])
def test_every_key_has_a_meaning(config_name: str) -> None:
    for section in _sections(schema_for(config_name)):
        helps = field_help(section)
        undocumented = [spec.name for spec in dataclasses.fields(section) if not helps.get(spec.name)]
        assert not undocumented, f"{section.__name__}: no Attributes entry for {undocumented}"


def test_train_section_is_train_config() -> None:
    """TrainConfig holds the defaults; the schema copies them (no second default anywhere)."""
    schema = {spec.name: spec for spec in dataclasses.fields(TrainSection)}
    assert list(schema) == [spec.name for spec in dataclasses.fields(TrainConfig)]
    instance = TrainSection()
    for spec in dataclasses.fields(TrainConfig):
        assert getattr(instance, spec.name) == spec.default, spec.name
    assert TrainConfig.from_mapping(dataclasses.asdict(instance)) == TrainConfig()


def test_composed_train_defaults_are_train_config_defaults() -> None:
    for config_name in ("tune", "train"):
        composed = compose(config_name)["train"]
        assert TrainConfig.from_mapping(composed) == TrainConfig(), config_name


def test_settings_section_is_asymmetry_settings() -> None:
    settings = compose("train")["settings"]
    assert list(settings) == [spec.name for spec in dataclasses.fields(AsymmetrySettings)]
    assert AsymmetrySettings.from_dict(settings).to_dict() == settings
    assert AsymmetrySettings.from_dict(settings).is_baseline


def test_decision_defaults_agree_with_the_schema() -> None:
    """confirm/export defaults of the decision code (used for older sweeps' config.yaml) are the schema's."""
    assert dataclasses.asdict(ConfirmOptions()) == dataclasses.asdict(ConfirmSection())
    options = DecisionOptions.from_config(compose("tune"))
    assert options.confirm == ConfirmOptions()
    assert options.register_model == ExportSection().register_model
    assert options.model_name_prefix == ExportSection().registered_model_prefix
    bare = DecisionOptions.from_config({"objective": {"metric": "m", "mode": "max"}})
    assert (bare.register_model, bare.model_name_prefix) == (options.register_model, options.model_name_prefix)


def test_knobs_that_used_to_hide_are_keys() -> None:
    keys = keys_of(schema_for("tune"))
    for key in ("train.device", "train.mixed_precision", "train.channels_last", "search.reuse_actors",
                "search.checkpoint_every", "search.checkpoints_to_keep", "resources.wait_for_resources"):
        assert key in keys
    assert not [key for key in keys if key.startswith("faults")], "test hooks are not configuration"
    assert "faults" not in compose("tune")


def test_schema_defaults_are_the_composed_typed_values() -> None:
    defaults, composed = schema_defaults("tune"), compose("tune")
    for section in ("objective", "ray", "resources", "mlflow", "train", "search", "confirm", "export", "report"):
        assert defaults[section] == composed[section], section
