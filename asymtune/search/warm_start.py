"""Warm start: the best settings of an earlier sweep, enqueued as the first trials of a new one.

``search.warm_start`` names the earlier sweep: its ``output_dir`` (the folder that holds its
``sweep.json``), or one Optuna study as ``STORAGE_URL#STUDY_NAME``. For each dataset of the new
sweep, :func:`plan_warm_starts` picks the earlier study to learn from:

- the same dataset (same name and classes) when the earlier sweep tuned it;
- otherwise the earlier dataset whose class-frequency profile is closest (:func:`profile_distance`:
  the Wasserstein-1 distance between the two datasets' log10 class fractions of the training
  voxels), its classes matched to the new dataset's by frequency rank (:func:`match_classes`:
  background to background, rarest to rarest);
- a single study (``STORAGE_URL#STUDY_NAME``) seeds every dataset, classes matched by name.

From that study it takes the ``search.warm_start_top_k`` best completed trials (by the earlier
objective, among those that trained the most epochs first), maps each to the new search space
(:func:`map_point`: values clipped to the new bounds; a value the new space cannot hold is left
to the sampler) and returns them as Optuna points, which the sweep enqueues before its anchors.
Every refusal (no such folder, no sweep in it, no completed trial, too many points for
``search.num_samples``) is raised as :class:`~asymtune.config.ConfigError` before any trial starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from scipy.stats import wasserstein_distance

from asymtune.config import ConfigError
from asymtune.data.loading import load_dataset
from asymtune.results.layout import MANIFEST, RESOLVED_CONFIG
from asymtune.search.plan import DatasetPlan, dataset_entries
from asymtune.search.space import BoundSpace
from asymtune.search.storage import open_optuna_storage

EPOCHS_ATTR = "epochs"
"""Optuna user attribute: the epochs a trial trained (its last result's ``training_iteration``)."""
SMALLEST_FRACTION = 1e-6  # a class absent from the training voxels, on the log scale
KEY = "search.warm_start"


@dataclass(frozen=True)
class SourceDataset:
    """One dataset of the earlier sweep.

    Attributes:
        name: its name in the earlier sweep.
        study_name: its Optuna study.
        class_names: its classes, background first (empty when unknown: a study named alone).
        class_fractions: fraction of training voxels per class, ``(C,)`` (None when unknown).
    """

    name: str
    study_name: str
    class_names: tuple[str, ...]
    class_fractions: tuple[float, ...] | None


@dataclass(frozen=True)
class WarmStartSource:
    """The earlier sweep (or study) ``search.warm_start`` names.

    Attributes:
        location: the value of ``search.warm_start``.
        description: how the report names it (``sweep 1a2b3c in /runs/first``).
        storage_url: its Optuna storage.
        datasets: its datasets by name.
        single_study: True for ``STORAGE_URL#STUDY_NAME`` (seeds every dataset, classes by name).
    """

    location: str
    description: str
    storage_url: str
    datasets: dict[str, SourceDataset]
    single_study: bool = False


@dataclass(frozen=True)
class WarmStart:
    """The first trials of one dataset's sweep and where they come from.

    Attributes:
        dataset: the dataset of the new sweep.
        source: :attr:`WarmStartSource.description`.
        source_dataset: the earlier dataset whose study seeded it.
        study_name: that study.
        reason: why that dataset (``the same dataset``, or the profile distance).
        trial_numbers: the earlier trials' numbers in that study, best first.
        values: their objective values.
        points: Optuna parameter dicts of the new space, one per trial (a dimension the new space
            cannot take from the earlier trial is absent: the sampler chooses it).
    """

    dataset: str
    source: str
    source_dataset: str
    study_name: str
    reason: str
    trial_numbers: tuple[int, ...]
    values: tuple[float, ...]
    points: tuple[dict[str, Any], ...]

    def sentence(self) -> str:
        """One line for the report: which sweep and dataset seeded this sweep, and why."""
        trials = ", ".join(f"#{n} ({v:.4g})" for n, v in zip(self.trial_numbers, self.values))
        count = len(self.points)
        first = "the first trial repeats the best setting" if count == 1 else \
            f"the first {count} trials repeat the {count} best settings"
        return (
            f"warm start: {first} of {self.source}, dataset {self.source_dataset} ({self.reason}): "
            f"trial{'s' if count != 1 else ''} {trials} of study {self.study_name} (objective in brackets)."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "source_dataset": self.source_dataset, "study_name": self.study_name,
            "reason": self.reason, "trial_numbers": list(self.trial_numbers), "values": list(self.values),
            "points": [dict(p) for p in self.points], "sentence": self.sentence(),
        }


# ------------------------------------------------------------------------------ the earlier sweep
def open_source(location: str) -> WarmStartSource:
    """Read what ``search.warm_start=location`` names: an ``output_dir`` or ``STORAGE_URL#STUDY``.

    Raises:
        ConfigError: no such folder, no ``sweep.json`` in it, or no such study.
    """
    if "://" in location:
        return _study_source(location)
    folder = Path(location).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(
            f"{KEY}={location!r}: no such folder {folder}: expected the output_dir of an earlier 'asymtune tune' "
            "run, or STORAGE_URL#STUDY_NAME"
        )
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError(
            f"{KEY}={location!r}: {manifest_path} does not exist: expected the output_dir of an earlier "
            "'asymtune tune' run (it holds sweep.json)"
        )
    manifest = json.loads(manifest_path.read_text())
    entries = manifest.get("datasets") or {}
    if not entries or "optuna_storage" not in manifest:
        raise ConfigError(
            f"{KEY}={location!r}: {manifest_path} names no dataset study: the earlier sweep never started"
        )
    datasets = {
        name: SourceDataset(
            name=name, study_name=str(entry["study_name"]), class_names=tuple(entry.get("class_names") or ()),
            class_fractions=tuple(entry["class_fractions"]) if entry.get("class_fractions") else None,
        )
        for name, entry in entries.items()
    }
    return WarmStartSource(
        location=location, description=f"sweep {manifest.get('sweep_id', '?')} in {folder}",
        storage_url=str(manifest["optuna_storage"]), datasets=datasets,
    )


def _study_source(location: str) -> WarmStartSource:
    storage_url, _, study_name = location.partition("#")
    if not study_name:
        raise ConfigError(
            f"{KEY}={location!r}: a storage URL needs the study: expected STORAGE_URL#STUDY_NAME "
            "(e.g. sqlite:///runs/first/optuna.db#asymtune-1a2b3c-synth_lesions), or an output_dir"
        )
    names = _study_names(storage_url, location)
    if study_name not in names:
        raise ConfigError(
            f"{KEY}={location!r}: no study {study_name!r} in {storage_url}: expected one of {sorted(names)}"
        )
    dataset = study_name.split("-", 2)[2] if study_name.startswith("asymtune-") and study_name.count("-") >= 2 \
        else study_name
    return WarmStartSource(
        location=location, description=f"study {study_name} in {storage_url}", storage_url=storage_url,
        datasets={dataset: SourceDataset(dataset, study_name, (), None)}, single_study=True,
    )


def _study_names(storage_url: str, location: str) -> list[str]:
    try:
        storage = open_optuna_storage(storage_url)
        return [summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    except Exception as error:  # SQLAlchemy and Optuna raise many kinds
        raise ConfigError(
            f"{KEY}={location!r}: the Optuna storage {storage_url} cannot be read: {type(error).__name__}: "
            f"{str(error)[:200]}"
        ) from error


def source_fractions(source: WarmStartSource, folder: Path) -> WarmStartSource:
    """``source`` with every dataset's class fractions, recomputed from the earlier sweep's
    ``config.yaml`` for a manifest that does not record them (sweeps before warm starts)."""
    missing = [d for d in source.datasets.values() if d.class_fractions is None]
    if not missing:
        return source
    config_path = folder / RESOLVED_CONFIG
    if not config_path.is_file():
        raise ConfigError(f"{KEY}={source.location!r}: {config_path} does not exist: the earlier datasets' class "
                          "frequencies cannot be known")
    entries = dataset_entries(yaml.safe_load(config_path.read_text())["data"])
    datasets = dict(source.datasets)
    for dataset in missing:
        if dataset.name not in entries:
            raise ConfigError(f"{KEY}={source.location!r}: dataset {dataset.name} is not in {config_path}")
        fractions = load_dataset(entries[dataset.name], dataset.name).class_fractions()
        datasets[dataset.name] = SourceDataset(
            dataset.name, dataset.study_name, dataset.class_names, tuple(float(f) for f in fractions)
        )
    return WarmStartSource(source.location, source.description, source.storage_url, datasets, source.single_study)


# ----------------------------------------------------------------------- class-frequency profiles
def profile_distance(fractions_a: Sequence[float], fractions_b: Sequence[float]) -> float:
    """How far apart two datasets' class-frequency profiles are: the Wasserstein-1 distance
    between their classes' log10 fractions of the training voxels (background included; the class
    counts may differ). 0 for the same profile; 1 when every class is 10 times rarer.

    >>> round(profile_distance([0.9, 0.1], [0.9, 0.1]), 6), round(profile_distance([0.9, 0.1], [0.09, 0.01]), 6)
    (0.0, 1.0)
    """
    logs = [np.log10(np.clip(np.asarray(f, dtype=float), SMALLEST_FRACTION, 1.0)) for f in (fractions_a, fractions_b)]
    return float(wasserstein_distance(logs[0], logs[1]))


def match_classes(
    class_names: Sequence[str], fractions: Sequence[float],
    source_names: Sequence[str], source_fractions: Sequence[float],
) -> dict[str, str]:
    """Each class of a dataset -> the class of an earlier dataset that plays its part: background
    to background, foreground classes by frequency rank (the rarest to the rarest, the most
    frequent to the most frequent, in between by relative rank).

    >>> match_classes(["bg", "a", "b"], [0.9, 0.09, 0.01], ["bg", "x", "y", "z"], [0.8, 0.15, 0.001, 0.049])
    {'bg': 'bg', 'b': 'y', 'a': 'x'}
    """
    def by_rarity(names: Sequence[str], values: Sequence[float]) -> list[str]:
        return [names[i] for i in sorted(range(1, len(names)), key=lambda i: (values[i], i))]

    current, earlier = by_rarity(class_names, fractions), by_rarity(source_names, source_fractions)
    mapping = {class_names[0]: source_names[0]}
    for rank, name in enumerate(current):
        if not earlier:
            break
        position = 0 if len(current) == 1 else rank / (len(current) - 1)
        mapping[name] = earlier[round(position * (len(earlier) - 1))]
    return mapping


# ------------------------------------------------------------------------------ the best trials
def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's completed trials with a finite value, best first: those that trained the most
    epochs (user attribute :data:`EPOCHS_ATTR`, where recorded) before those ASHA stopped early,
    each group by value in the study's direction, ties by trial number."""
    done = [
        t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    most = max((int(t.user_attrs.get(EPOCHS_ATTR, 0)) for t in done), default=0)
    return sorted(done, key=lambda t: (int(t.user_attrs.get(EPOCHS_ATTR, 0)) < most, sign * float(t.value or 0.0),
                                       t.number))


def map_point(params: Mapping[str, Any], space: BoundSpace, class_map: Mapping[str, str]) -> dict[str, Any]:
    """An earlier trial's Optuna params as a point of ``space``: per-class keys (``margin.<class>``,
    ``rare.<class>``) read from the class ``class_map`` names; numbers clipped to the new bounds; a
    dimension the earlier params lack, or a choice the new space does not offer, is left out.

    >>> from asymtune.search.space import SearchSpace
    >>> space = SearchSpace.from_mapping({"params": {"margin": {"type": "float", "low": 0, "high": 1},
    ...     "rare": {"type": "rare_set"}}}).bind(["bg", "lesion"], [1])
    >>> map_point({"margin": 1.5, "rare.spot": True, "gamma": 2.0}, space, {"bg": "bg", "lesion": "spot"})
    {'margin': 1.0, 'rare.lesion': True}
    """
    point: dict[str, Any] = {}
    for dim in space.dimensions:
        name, dot, cls = dim.key.partition(".")
        key = f"{name}.{class_map.get(cls, cls)}" if dot else dim.key
        if key not in params:
            continue
        value = params[key]
        if dim.type in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            value = min(max(float(value), dim.low), dim.high)
            point[dim.key] = int(round(value)) if dim.type == "int" else value
        elif dim.type == "categorical":
            if value in dim.choices:
                point[dim.key] = value
        elif isinstance(value, bool):
            point[dim.key] = value
    return point


# ---------------------------------------------------------------------------- the plan per dataset
def plan_warm_starts(cfg: Mapping[str, Any], plans: Sequence[DatasetPlan]) -> dict[str, WarmStart]:
    """For every dataset of the new sweep, the earlier trials it starts from (empty when
    ``search.warm_start`` is null). Runs before anything is created.

    Raises:
        ConfigError: a source that cannot be read, a study without a completed trial, or more
            warm-start points plus anchors than ``search.num_samples``.
    """
    search = cfg["search"]
    location = search.get("warm_start")
    if location in (None, ""):
        return {}
    top_k = search["warm_start_top_k"]
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"search.warm_start_top_k={top_k!r}: expected an integer >= 1 (earlier trials to start from)")
    source = open_source(str(location))
    if not source.single_study and not all(_same_dataset(source.datasets.get(plan.name), plan) for plan in plans):
        source = source_fractions(source, Path(str(location)).expanduser().resolve())
    starts = {}
    for plan in plans:
        anchors = len(plan.space.space.anchors)
        if top_k + anchors > int(search["num_samples"]):
            raise ConfigError(
                f"search.warm_start_top_k={top_k} earlier trials plus the search space's {anchors} anchors are more "
                f"than search.num_samples={search['num_samples']}: expected warm_start_top_k <= "
                f"{int(search['num_samples']) - anchors}, so that the anchors (the baseline first) still run"
            )
        starts[plan.name] = _warm_start(source, plan, top_k)
    return starts


def _same_dataset(dataset: SourceDataset | None, plan: DatasetPlan) -> bool:
    """Whether the earlier sweep tuned ``plan``'s dataset: the same name and classes."""
    return dataset is not None and (not dataset.class_names or dataset.class_names == tuple(plan.dataset.class_names))


def _choose_dataset(source: WarmStartSource, plan: DatasetPlan) -> tuple[SourceDataset, str, dict[str, str]]:
    """The earlier dataset for ``plan``, why, and its class matching."""
    names = tuple(plan.dataset.class_names)
    if source.single_study:
        dataset = next(iter(source.datasets.values()))
        reason = "the same dataset" if dataset.name == plan.name else "the study named"
        return dataset, reason, {name: name for name in names}
    same = source.datasets.get(plan.name)
    if same is not None and _same_dataset(same, plan):
        return same, "the same dataset", {name: name for name in names}
    fractions = [float(f) for f in plan.dataset.class_fractions()]
    distances = {
        name: profile_distance(fractions, dataset.class_fractions)
        for name, dataset in source.datasets.items() if dataset.class_fractions is not None
    }
    closest = min(distances, key=lambda name: (distances[name], name))
    dataset = source.datasets[closest]
    assert dataset.class_fractions is not None
    others = ", ".join(f"{name} {d:.2f}" for name, d in sorted(distances.items()) if name != closest)
    reason = (f"closest class-frequency profile to {plan.name}: distance {distances[closest]:.2f}"
              + (f"; {others}" if others else ""))
    mapping = match_classes(names, fractions, dataset.class_names, dataset.class_fractions)
    return dataset, reason, mapping


def _warm_start(source: WarmStartSource, plan: DatasetPlan, top_k: int) -> WarmStart:
    dataset, reason, class_map = _choose_dataset(source, plan)
    try:
        study = optuna.load_study(study_name=dataset.study_name, storage=open_optuna_storage(source.storage_url))
    except Exception as error:  # a missing study (KeyError), an unreadable storage
        raise ConfigError(
            f"{KEY}={source.location!r}: study {dataset.study_name} cannot be read from {source.storage_url}: "
            f"{type(error).__name__}: {str(error)[:200]}"
        ) from error
    chosen: list[tuple[optuna.trial.FrozenTrial, dict[str, Any]]] = []
    for trial in best_trials(study):
        point = map_point(trial.params, plan.space, class_map)
        if point and all(point != earlier for _, earlier in chosen):
            chosen.append((trial, point))
        if len(chosen) == top_k:
            break
    if not chosen:
        raise ConfigError(
            f"{KEY}={source.location!r}: study {dataset.study_name} has no completed trial whose settings fit the "
            f"search space of {plan.name}: expected an earlier sweep that finished at least one trial"
        )
    return WarmStart(
        dataset=plan.name, source=source.description, source_dataset=dataset.name, study_name=dataset.study_name,
        reason=reason, trial_numbers=tuple(t.number for t, _ in chosen),
        values=tuple(float(t.value or 0.0) for t, _ in chosen), points=tuple(p for _, p in chosen),
    )
