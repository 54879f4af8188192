"""The options of the post-sweep decision, read from the sweep's resolved ``config.yaml``.

``selection`` (how the sweep's trials are ranked), ``confirm`` (how the choice is retrained and
tested) and ``export`` (what is written and registered); defaults apply to keys an older sweep
does not have, so ``asymtune report`` works on any output_dir.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asymtune.config.schema import ConfirmSection, ExportSection, SelectionSection
from asymtune.confirm.rivals import check_rivals
from asymtune.confirm.select import check_constraint
from asymtune.results.layout import RESOLVED_CONFIG

# The one place of every default is the config schema (``asymtune tune --cfg`` shows it); the
# defaults below apply to keys that the config of an older sweep does not have.
_EXPORT, _SELECTION = ExportSection(), SelectionSection()


@dataclass
class ConfirmOptions(ConfirmSection):
    """``confirm`` in ``conf/tune.yaml``: the keys, defaults and meanings of
    :class:`asymtune.config.schema.ConfirmSection`, checked, with what the confirmation derives."""

    def __post_init__(self) -> None:
        if self.executor not in ("ray", "local"):
            raise ValueError(f"confirm.executor={self.executor!r}: expected 'ray' or 'local'")
        for name in ("top_k", "seeds", "max_seeds", "verdict_seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"confirm.{name}={value!r}: expected an integer >= 1")
        if not self.min_gain >= 0:
            raise ValueError(f"confirm.min_gain={self.min_gain}: expected a value >= 0")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confirm.confidence={self.confidence}: expected a value in (0, 1)")
        check_rivals(self.rivals)
        self.rivals = list(self.rivals)

    @property
    def seed_budget(self) -> int:
        """The most seeds per setting the race may train (never fewer than it starts with)."""
        return max(self.max_seeds, self.seeds)

    def seed_values(self, base_seed: int) -> list[int]:
        """The seeds of the confirmation, first the sweep's own ``train.seed``."""
        return [int(base_seed) + offset for offset in range(self.seeds)]


@dataclass(frozen=True)
class DecisionOptions:
    """Everything after the sweep: selection, confirmation, export.

    Attributes:
        metric, mode: the objective (``objective`` in ``conf/tune.yaml``).
        constraint: ``selection.constraint`` (:data:`asymtune.confirm.select.CONSTRAINTS` or None).
        confirm: the confirmation.
        register_model: log the selected model to the MLflow model registry.
        model_name_prefix: registered model name = prefix + dataset name.
    """

    metric: str
    mode: str
    constraint: str | None = _SELECTION.constraint
    confirm: ConfirmOptions = field(default_factory=ConfirmOptions)
    register_model: bool = _EXPORT.register_model
    model_name_prefix: str = _EXPORT.registered_model_prefix

    def __post_init__(self) -> None:
        check_constraint(self.constraint)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> DecisionOptions:
        """From a resolved ``conf/tune.yaml``; unknown keys of ``confirm`` are refused."""
        confirm = dict(cfg.get("confirm") or {})
        if confirm and "rivals" not in confirm:  # a sweep made before trained rivals existed
            confirm["rivals"] = []
        known = set(ConfirmOptions.__dataclass_fields__)
        unknown = sorted(set(confirm) - known)
        if unknown:
            raise ValueError(f"confirm: unknown keys {unknown}: expected a subset of {sorted(known)}")
        export = dict(cfg.get("export") or {})
        return cls(
            metric=str(cfg["objective"]["metric"]),
            mode=str(cfg["objective"]["mode"]),
            constraint=(cfg.get("selection") or {}).get("constraint"),
            confirm=ConfirmOptions(**confirm),
            register_model=bool(export.get("register_model", _EXPORT.register_model)),
            model_name_prefix=str(export.get("registered_model_prefix", _EXPORT.registered_model_prefix)),
        )

    @classmethod
    def from_output_dir(cls, output_dir: Path, manifest: Mapping[str, Any]) -> DecisionOptions:
        """From ``output_dir/config.yaml``; a sweep without one gets the defaults and no confirmation."""
        path = Path(output_dir) / RESOLVED_CONFIG
        if path.is_file():
            return cls.from_config(yaml.safe_load(path.read_text()))
        return cls(metric=manifest["objective"]["metric"], mode=manifest["objective"]["mode"],
                   confirm=ConfirmOptions(enabled=False))
