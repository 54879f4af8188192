"""The composed config as a user reads it: YAML with each key's meaning, and the key reference.

:func:`render_config` prints what ``--cfg`` shows (valid YAML: the meanings are comments);
:func:`configuration_markdown` writes ``docs/configuration.md`` from the schema, so the document
cannot drift from the code (``tests/config/test_docs.py`` holds it to the schema)::

    python -m asymtune.config docs/configuration.md
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asymtune.config.schema import OPEN, describe_type, field_help, node_type, schema_for
from asymtune.paths import conf_dir

WIDTH = 100


def render_config(config: Mapping[str, Any], config_name: str) -> str:
    """``config`` (composed from ``conf/<config_name>.yaml``) as YAML, each key of the schema
    preceded by a comment saying what it does."""
    lines: list[str] = []
    _render(config, schema_for(config_name), 0, lines)
    return "\n".join(lines) + "\n"


def _render(node: Mapping[str, Any], section: Any, indent: int, lines: list[str]) -> None:
    """Mappings in block style (nested), values in flow style (``[0.0, 0.0]``), as conf/ writes them."""
    helps = field_help(section) if dataclasses.is_dataclass(section) else {}
    names = {f.name for f in dataclasses.fields(section)} if dataclasses.is_dataclass(section) else set()
    pad = " " * indent
    for key, value in node.items():
        if indent == 0 and lines:
            lines.append("")
        for line in textwrap.wrap(helps.get(key, ""), WIDTH - indent - 2):
            lines.append(f"{pad}# {line}")
        if isinstance(value, Mapping) and value:
            lines.append(f"{pad}{_flow(key)}:")
            child = node_type(section, key) if key in names else None
            _render(value, child if dataclasses.is_dataclass(child) else None, indent + 2, lines)
        else:
            lines.append(f"{pad}{_flow(key)}: {_flow(value)}")


def _flow(value: Any) -> str:
    """One value as YAML on one line."""
    import yaml

    text = str(yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)).strip()
    return text.removesuffix("...").strip()


def configuration_markdown() -> str:
    """``docs/configuration.md``: every key of ``asymtune tune`` and ``asymtune train``, its
    type, its default and its meaning, from the schema."""
    parts = [
        "# Configuration keys",
        "",
        "Generated from the schema (`asymtune/config/schema.py`) by",
        "`python -m asymtune.config docs/configuration.md`; do not edit by hand.",
        "",
        "Every key is a Hydra override: `asymtune tune train.device=cuda search.num_samples=20`.",
        "A key that is not listed here is refused, naming the closest key. `asymtune tune --cfg` and",
        "`asymtune train --cfg` print the composed config with these meanings as comments.",
        "`data` and `model` are open mappings: their keys are those of the chosen group option",
        "(`conf/data/<option>.yaml`, `conf/model/<option>.yaml`); a new key is added with `+key=value`.",
        "`asymtune train --config FILE` composes FILE (an exported config) over the `asymtune train`",
        "defaults like an experiment overlay, then the overrides: `model=dynunet` chooses the model",
        "group in place of the file's model, `train.epochs=1` changes a value.",
    ]
    titles = (("tune", "`asymtune tune` (`conf/tune.yaml`)"), ("train", "`asymtune train` (`conf/train.yaml`)"))
    for config_name, title in titles:
        schema = schema_for(config_name)
        parts += ["", f"## {title}", "", _summary(schema), ""]
        parts += ["| key | type | default | meaning |", "|---|---|---|---|"]
        parts += _rows(schema, schema(), "")
    groups = sorted(path.name for path in conf_dir().iterdir() if path.is_dir())
    parts += ["", "## Group options", "", "| group | options |", "|---|---|"]
    for group in groups:
        options = sorted(path.stem for path in (conf_dir() / group).glob("*.yaml"))
        parts.append(f"| `{group}` | {', '.join(f'`{option}`' for option in options)} |")
    return "\n".join(parts) + "\n"


def _summary(section: Any) -> str:
    doc = (section.__doc__ or "").split("\n\n")[0]
    return " ".join(doc.replace("``", "`").split())


def _rows(section: Any, instance: Any, prefix: str) -> list[str]:
    rows = []
    helps = field_help(section)
    for spec in dataclasses.fields(section):
        key = f"{prefix}{spec.name}"
        child = node_type(section, spec.name)
        value = getattr(instance, spec.name)
        if dataclasses.is_dataclass(child):
            rows.append(f"| `{key}` | section | | {_cell(helps.get(spec.name, ''))} |")
            rows += _rows(child, value, key + ".")
            continue
        kind = "mapping (group option)" if child is OPEN else describe_type(child)
        if child is OPEN and not value:
            shown = "from the group"
        else:
            shown = f"`{_flow(value)}`"
        rows.append(f"| `{key}` | {kind} | {shown} | {_cell(helps.get(spec.name, ''))} |")
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    """Write ``docs/configuration.md`` (the path given) or print it."""
    args = sys.argv[1:] if argv is None else argv
    text = configuration_markdown()
    if args:
        Path(args[0]).write_text(text)
    else:
        print(text, end="")
    return 0
