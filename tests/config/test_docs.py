"""docs/configuration.md is generated from the schema and must be up to date."""

from __future__ import annotations

from pathlib import Path

from asymtune.config import compose, configuration_markdown
from asymtune.config.schema import keys_of, schema_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_md_is_generated_from_the_schema() -> None:
    assert DOC.read_text() == configuration_markdown(), (
        "docs/configuration.md is out of date: run .venv/bin/python -m asymtune.config docs/configuration.md"
    )


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    for config_name in ("tune", "train"):
        for key in keys_of(schema_for(config_name)):
            assert f"| `{key}` |" in text, key


def test_readme_names_the_device_keys() -> None:
    readme = (DOC.parents[1] / "README.md").read_text()
    for key in ("train.device", "train.mixed_precision", "train.channels_last", "docs/configuration.md"):
        assert key in readme, key
    assert compose("tune")["train"]["device"] == "auto"
