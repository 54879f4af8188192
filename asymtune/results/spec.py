"""The trial contract: what every trial of a dataset sweep shares, typed.

A Ray Tune trial's config is a plain dict (it crosses process and node boundaries):
``{"asymtune": TrialSpec.to_dict(), "settings": AsymmetrySettings.to_dict(), **Optuna's values}``.
On either side of that boundary the code reads it through :func:`trial_spec` and
:func:`trial_settings`, never by raw keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from asymtune.method.settings import AsymmetrySettings
from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY


@dataclass(frozen=True)
class TrialSpec:
    """The part of every trial's config that Optuna does not choose.

    Attributes:
        dataset_name: the dataset's name in the sweep.
        dataset: its entry, ``{"source": ..., "params": {...}}`` (:func:`asymtune.data.loading.load_dataset`).
        class_names: class names, background first.
        rare: indices of the dataset's rare classes (the 2% rule, or its ``rare_classes``).
        model: model options, ``{"name": ..., **options}``.
        train: the ``train`` config (:class:`asymtune.train.config.TrainConfig` as a mapping).
        space: the search space as a mapping (:meth:`asymtune.search.space.SearchSpace.from_mapping`),
            kept for the report's importance analysis; reading a trial's setting does not need it.
        space_path: the file the space came from.
        decision_epochs: epochs where the trial may end (ASHA's rungs, the last epoch): it
            diagnoses and checkpoints there.
        checkpoint_every: epochs between other checkpoints.
        system_metrics: report the trial's CPU, memory and GPU with every epoch's result
            (``mlflow.system_metrics``).
    """

    dataset_name: str
    dataset: dict[str, Any]
    class_names: tuple[str, ...]
    rare: tuple[int, ...]
    model: dict[str, Any]
    train: dict[str, Any]
    space: dict[str, Any] = field(default_factory=dict)
    space_path: str = ""
    decision_epochs: tuple[int, ...] = ()
    checkpoint_every: int = 1
    system_metrics: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for the trial config (lists, not tuples)."""
        data = asdict(self)
        for key in ("class_names", "rare", "decision_epochs"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialSpec:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"trial spec: unknown keys {unknown}: expected a subset of {sorted(cls.__dataclass_fields__)}"
            )
        values = dict(data)
        for key in ("class_names", "rare", "decision_epochs"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    @property
    def seed(self) -> int:
        return int(self.train["seed"])

    @property
    def epochs(self) -> int:
        return int(self.train["epochs"])

    def run_config(self, settings: AsymmetrySettings, seed: int | None = None) -> dict[str, Any]:
        """The ``asymtune train`` config of this trial's setting (what a confirmation trains and an
        export writes), optionally with another ``train.seed``."""
        train = dict(self.train) if seed is None else {**self.train, "seed": int(seed)}
        return {
            "dataset_name": self.dataset_name, "data": dict(self.dataset), "model": dict(self.model),
            "train": train, "settings": settings.to_dict(),
        }


def trial_spec(config: Mapping[str, Any]) -> TrialSpec:
    """The fixed part of a trial config."""
    return TrialSpec.from_dict(config[FIXED_KEY])


def trial_settings(config: Mapping[str, Any]) -> AsymmetrySettings:
    """The per-class setting a trial trains with (resolved when Optuna proposed it)."""
    return AsymmetrySettings.from_dict(config[SETTINGS_KEY])
