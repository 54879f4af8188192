"""The plan of a sweep: every dataset loaded and checked against the search space, the model and
the objective, before any trial starts (a bad value fails in seconds with one clear sentence).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from asymtune.config import ConfigError
from asymtune.data.base import SegmentationDataset
from asymtune.data.loading import load_dataset
from asymtune.data.locate import resolve_entry, resolve_root
from asymtune.models import create_model
from asymtune.paths import resolve_search_space
from asymtune.search.space import BoundSpace, SearchSpace
from asymtune.train.config import TrainConfig
from asymtune.train.trainer import Trainer


@dataclass(frozen=True)
class DatasetPlan:
    """Everything checked before a dataset's sweep starts.

    Attributes:
        name: the dataset's name in the sweep (``data.sets.<name>``).
        spec: its config entry (``source`` and ``params``).
        dataset: the loaded dataset (class names, sizes).
        space: the search space bound to its classes.
    """

    name: str
    spec: dict[str, Any]
    dataset: SegmentationDataset
    space: BoundSpace


def metric_names(class_names: tuple[str, ...]) -> list[str]:
    """The validation metrics every trial reports (valid objectives)."""
    names = [f"val/mean_fg_{m}" for m in ("dice", "sensitivity", "precision")]
    names += [f"val/{m}/{c}" for m in ("dice", "sensitivity", "precision") for c in class_names[1:]]
    return names


def dataset_entries(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``data.sets`` (each with ``data.common`` under its own params) plus one entry per folder of
    ``data.root`` (named after the folder, with ``data.params`` and an absolute path, so that
    trials in other working folders find it; a relative root is looked up in ``$ASYMTUNE_DATA_DIR``,
    then the current folder)."""
    common = dict(data.get("common") or {})
    sets = {
        name: {**dict(entry), "params": {**common, **dict(entry.get("params") or {})}}
        for name, entry in (data.get("sets") or {}).items()
    }
    if "root" not in data:
        return sets
    roots = data["root"]
    if roots is None:
        raise ConfigError("data.root is not set: expected the folder of a dataset (data=nnunet data.root=PATH)")
    for root in [roots] if isinstance(roots, (str, os.PathLike)) else list(roots):
        try:  # a relative root: in $ASYMTUNE_DATA_DIR, then the current folder
            path = resolve_root(str(root)).resolve()
        except FileNotFoundError as error:
            raise ConfigError(str(error)) from error
        if path.name in sets:
            raise ConfigError(f"data.root: two datasets are named {path.name!r}: expected folders with different names")
        params = dict(data.get("params") or {})
        sets[path.name] = {"source": data.get("source", "nnunet"), "params": {**params, "root": str(path)}}
    return sets


def plan_datasets(cfg: Mapping[str, Any]) -> list[DatasetPlan]:
    """Load and check every dataset, the search space, the model and the objective."""
    sets = dataset_entries(cfg["data"])
    if not sets:
        raise ConfigError("data.sets is empty: expected at least one dataset to tune (or data.root=PATH)")
    train_config = TrainConfig.from_mapping(cfg["train"])
    objective = cfg["objective"]
    if objective["mode"] not in ("max", "min"):
        raise ConfigError(f"objective.mode={objective['mode']!r}: expected 'max' or 'min'")
    space_path = resolve_search_space(str(cfg["search"]["space"]))
    space = SearchSpace.from_file(space_path)
    searched = {spec.name for spec in space.params} | set(space.fixed)
    if "aug_p_bg" in searched and not cfg["train"]["augment"]:
        raise ConfigError(
            f"search space {space_path} sets aug_p_bg but train.augment=false: set train.augment=true "
            "(and train.patch_size) or use a space without aug_p_bg"
        )
    plans = []
    for name, spec in sets.items():
        dataset = load_dataset(spec, name)
        valid = metric_names(dataset.class_names)
        if objective["metric"] not in valid:
            raise ConfigError(
                f"objective.metric={objective['metric']!r} is not reported for dataset {name!r}: "
                f"expected one of {valid}"
            )
        try:
            bound = space.bind(dataset.class_names, dataset.rare_classes)
        except ValueError as error:
            raise ConfigError(f"search space does not fit dataset {name!r}: {error}") from error
        _check_model(cfg["model"], dataset, name, train_config)
        # trials run in other working folders: the entry they get names its folder absolutely
        plans.append(DatasetPlan(name=name, spec=resolve_entry(spec, f"data.sets.{name}"), dataset=dataset,
                                 space=bound))
    return plans


def _check_model(model_cfg: Mapping[str, Any], dataset: Any, name: str, train_config: TrainConfig) -> None:
    """Build the model and run it on one training input (a patch, or a whole image)."""
    options = dict(model_cfg)
    model = create_model(
        str(options.pop("name")), dataset.spatial_dims, dataset.in_channels, dataset.num_classes, **options
    )
    try:
        patch = Trainer.patch_size_for(dataset, train_config)
        shape = patch if patch is not None else dataset.train.labels.shape[1:]
        with torch.no_grad():
            model(torch.zeros(1, dataset.in_channels, *shape))
    except (ValueError, RuntimeError) as error:
        raise ConfigError(f"model does not fit dataset {name!r}: {error}") from error


