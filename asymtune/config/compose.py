"""Composing ``conf/<name>.yaml`` with Hydra: one grammar for every command, one sentence per error.

Every ``key=value`` (``+key=value``, ``~key``, ``group=option``) is a Hydra override. A config
file (``asymtune train --config FILE``) takes part as an experiment overlay: its content is
written as a ``# @package _global_`` file into a temporary folder on Hydra's search path and
selected as ``experiment``, exactly like an exported ``configs/experiment/<dataset>.yaml`` copied
to ``conf/experiment/``; the overrides apply on top of it. A group the command line selects
(``model=dynunet``) replaces the file's block of that group.

Override keys are checked against the schema (:mod:`asymtune.config.schema`) before Hydra runs,
so an unknown key is refused with its name, the keys expected there and the closest one.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from asymtune.config.errors import ConfigError
from asymtune.config.schema import OPEN, describe_type, node_type, register_schema
from asymtune.paths import conf_dir

OVERLAY = "_config_file"
"""The option name (in group ``experiment``) of a config file's overlay."""

FILE_RECORD_KEYS = ("provenance",)
"""Keys of an exported config that record where it came from and configure nothing: dropped."""


def compose(
    config_name: str, overrides: Sequence[str] = (), config_file: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The resolved config ``conf/<config_name>.yaml`` with Hydra ``overrides``.

    Args:
        config_name: ``tune`` or ``train``.
        overrides: Hydra overrides (``key=value``, ``+key=value``, ``~key``, ``group=option``).
        config_file: the content of a config file (an exported config), composed as an
            experiment overlay before the overrides.
        source: the file's name, for messages.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, an unknown group option, a
            malformed override, in one sentence.
    """
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = register_schema(config_name)
    overrides = list(overrides)
    parsed = _parse(overrides)
    groups = _group_names()
    selected = {o.key_or_group for o in parsed if _is_group(o, groups)}
    for override in parsed:
        if not _is_group(override, groups) and override.key_or_group.split(".")[0] != "hydra":
            _check_key(schema, override)
    where = {f"experiment/{OVERLAY}": source or "--config"}
    with tempfile.TemporaryDirectory(prefix="asymtune-config-") as folder:
        if config_file is not None:
            if "experiment" in selected:
                raise ConfigError(
                    f"--config {source or 'FILE'} and experiment={_value_of(parsed, 'experiment')} both choose the "
                    "experiment overlay: expected one of them"
                )
            (Path(folder) / "experiment").mkdir()
            (Path(folder) / "experiment" / f"{OVERLAY}.yaml").write_text(overlay_text(config_file, selected))
            overrides += [f"experiment={OVERLAY}", f"hydra.searchpath=['file://{folder}']"]
        try:
            config = _hydra_compose(config_name, overrides)
        except (HydraException, OmegaConfBaseException) as error:
            # the groups alone (and the file), to name the keys that exist where the error is
            groups_only = [line for line, o in zip(overrides, parsed) if _is_group(o, groups)] + overrides[len(parsed):]

            def existing(parent: str) -> list[str] | None:
                try:
                    node = OmegaConf.select(_hydra_compose(config_name, groups_only), parent) if parent else None
                except (HydraException, OmegaConfBaseException):
                    return None
                return [str(key) for key in node] if node is not None and OmegaConf.is_dict(node) else None

            raise ConfigError(_one_sentence(error, schema, parsed, where, existing, config_name)) from error
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


def _hydra_compose(config_name: str, overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name=f"asymtune_{config_name}"):
        return hydra_compose(config_name=config_name, overrides=overrides)


def overlay_text(content: Mapping[str, Any], selected_groups: set[str] | frozenset[str] = frozenset()) -> str:
    """A config file's content as a ``# @package _global_`` experiment overlay.

    A file without a ``defaults`` list selects the model group of its ``model.name`` (as an
    exported ``configs/experiment/<dataset>.yaml`` does), or none when ``conf/model/`` has no such
    option, so that the file's model options are the model's. A group in ``selected_groups`` (chosen
    on the command line) drops the file's block and defaults entry for it.
    """
    import yaml

    body = {str(key): value for key, value in content.items() if key not in FILE_RECORD_KEYS}
    defaults: list[Any] | None = body.pop("defaults", None)
    if defaults is None:
        model = body.get("model")
        defaults = []
        if isinstance(model, Mapping) and "name" in model:
            name = str(model["name"])
            defaults = [{"override /model": name if (conf_dir() / "model" / f"{name}.yaml").is_file() else None}]
    for group in selected_groups:
        body.pop(group, None)
        defaults = [entry for entry in defaults if not _entry_selects(entry, group)]
    document = {"defaults": list(defaults), **body} if defaults else body
    return "# @package _global_\n" + str(yaml.safe_dump(document, sort_keys=False))


def _entry_selects(entry: Any, group: str) -> bool:
    if not isinstance(entry, Mapping):
        return False
    return any(str(key).split()[-1].strip("/").split("@")[0] == group for key in entry)


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        try:
            parsed.extend(parser.parse_overrides([line]))
        except OverrideParseException as error:
            reason = str(error).splitlines()[0]
            raise ConfigError(
                f"override {line!r} cannot be read ({reason}): expected key=value, +key=value, ~key or group=option "
                "(lists as [1,2], quotes around values with spaces or special characters)"
            ) from error
    return parsed


def _group_names() -> set[str]:
    return {path.name for path in conf_dir().iterdir() if path.is_dir()}


def _is_group(override: Any, groups: set[str]) -> bool:
    return override.key_or_group in groups or override.package is not None


def _value_of(parsed: list[Any], key: str) -> str:
    return next((str(o.value()) for o in parsed if o.key_or_group == key), "")


def _check_key(schema: type, override: Any) -> None:
    """Refuse an override whose key is not in the schema (keys under an open mapping such as
    ``data`` or ``model`` are Hydra's to check), or that deletes a key of the schema."""
    key = override.key_or_group
    node: Any = schema
    path: list[str] = []
    for part in key.split("."):
        if node is OPEN:
            return
        if not dataclasses.is_dataclass(node):
            raise ConfigError(f"{key} is not a key of the config: {'.'.join(path)} holds a value, not keys")
        names = [spec.name for spec in dataclasses.fields(node)]
        if part not in names:
            raise ConfigError(unknown_key_message(key, ".".join(path), names))
        node = node_type(node, part)
        path.append(part)
    if override.is_delete():
        raise ConfigError(f"~{key}: {key} is a key of the config and cannot be removed: expected a value ({key}=...)")


def unknown_key_message(key: str, parent: str, names: Sequence[str], what: str = "the config") -> str:
    """``<key> is not a key of <what>: expected one of <the keys of its parent> (did you mean ...?)``."""
    expected = ", ".join(f"{parent}.{name}" if parent else name for name in names)
    message = f"{key} is not a key of {what}: expected one of {expected}"
    depth = len(parent.split(".")) if parent else 0
    parts = key.split(".")
    guess = difflib.get_close_matches(parts[depth], list(names), n=1, cutoff=0.6)
    guess = guess or [name for name in names if name.startswith(parts[depth])][:1]
    if guess:
        message += f" (did you mean {'.'.join([*parts[:depth], guess[0], *parts[depth + 1:]])}?)"
    return message


def _one_sentence(
    error: Exception, schema: type, parsed: list[Any], where: Mapping[str, str],
    existing: Callable[[str], list[str] | None] = lambda parent: None, config_name: str = "",
) -> str:
    """Hydra's and OmegaConf's errors (several lines, internals) as one sentence naming the key."""
    from hydra.errors import MissingConfigException

    cause = error.__cause__ if error.__cause__ is not None else error
    text = str(error) + "\n" + (str(cause) if cause is not error else "")
    origin = re.search(r"In '([^']+)'", text)
    prefix = ""
    if origin and origin.group(1) not in ("tune", "train"):
        name = origin.group(1)
        prefix = f"{where.get(name, f'conf/{name}.yaml')}: "
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        if group:
            options = ", ".join(error.options or []) or "none"
            return f"{prefix}{group}={option}: conf/{group}/ has no option {option!r}: expected one of {options}"
    not_a_group = re.search(r"Could not override '([^']+)'\. No match in the defaults list", text)
    if not_a_group and config_name:
        group = not_a_group.group(1)
        return (
            f"{group}={_value_of(parsed, group)}: {group} is not a group of conf/{config_name}.yaml: expected one of "
            f"{', '.join(_groups_of(config_name))}"
        )
    key_match = re.search(r"full_key: (\S+)", text)
    key = key_match.group(1) if key_match else None
    kind = type(cause).__name__
    raised = re.search(r"(\w+) raised while composing config", text)
    kind = raised.group(1) if raised else kind
    if key and kind == "ValidationError":
        value = re.search(r"Value '(.*)' of type", text)
        shown = value.group(1) if value else _value_of(parsed, key)
        return f"{prefix}{key}={shown!r}: expected {_expected_type(schema, key)}"
    if key and kind in ("ConfigKeyError", "ConfigAttributeError"):
        parent, _, _ = key.rpartition(".")
        suffix = ""
        if text.find("Could not override") >= 0:
            suffix = f" (a new key under an open mapping is added with +{key}=...)"
        names = _names_at(schema, parent)
        if names is not None:
            return prefix + unknown_key_message(key, parent, names)
        names = existing(parent)
        if names:
            message = unknown_key_message(key, parent, names, "the composed config")
            return prefix + message + ("" if message.endswith("?)") else suffix)
        return f"{prefix}{key} is not a key of the composed config{suffix}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("Config search path", "provider=", "See https://"))]
    return prefix + " ".join(dict.fromkeys(kept))


def _groups_of(config_name: str) -> list[str]:
    """The groups in the defaults list of ``conf/<config_name>.yaml``."""
    import yaml

    defaults = yaml.safe_load((conf_dir() / f"{config_name}.yaml").read_text()).get("defaults", [])
    return [str(key) for entry in defaults if isinstance(entry, dict) for key in entry]


def _names_at(schema: type, dotted: str) -> list[str] | None:
    node: Any = schema
    for part in [p for p in dotted.split(".") if p]:
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            return None
        node = node_type(node, part)
    return [f.name for f in dataclasses.fields(node)] if dataclasses.is_dataclass(node) else None


def _expected_type(schema: type, key: str) -> str:
    node: Any = schema
    parts = key.split(".")
    for index, part in enumerate(parts):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            return "a value of the key's type"
        node = node_type(node, part)
        if node is OPEN and index < len(parts) - 1:
            return "a value of the key's type"
    return describe_type(node)
