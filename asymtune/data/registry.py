"""Dataset names and the factories behind them.

A factory is a function with keyword-only parameters that returns a
:class:`~asymtune.data.base.SegmentationDataset`. It registers itself under a name with
:func:`register_dataset`; everything else reaches it through :func:`create_dataset`, which refuses
unknown names and unknown parameters before the factory runs; factories check their values with
:func:`check_int`, :func:`check_number` and :func:`check_range`, so that every bad value stops
with one sentence naming the parameter, the value and what was expected. :func:`describe`
summarises what a factory built (sizes and class fractions per split), for logs and run folders.

Example:
    >>> from asymtune.data import create_dataset, describe
    >>> dataset = create_dataset("synth_lesions", n_train=4, n_val=2, n_test=2)
    >>> describe(dataset)["class_fractions"]["train"]["lesion"] < 0.02
    True
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np

from asymtune.data.base import SegmentationDataset, Split

DatasetFactory = Callable[..., SegmentationDataset]
_Factory = TypeVar("_Factory", bound=DatasetFactory)

_REGISTRY: dict[str, DatasetFactory] = {}


def register_dataset(name: str) -> Callable[[_Factory], _Factory]:
    """Register a dataset factory under ``name`` (decorator).

    Args:
        name: the name :func:`create_dataset` will accept.

    Raises:
        ValueError: when another factory already holds the name.
    """

    def decorator(factory: _Factory) -> _Factory:
        known = _REGISTRY.get(name)
        # Re-registering the same function (a module reloaded) is harmless; a clash is a bug.
        if known is not None and _qualified_name(known) != _qualified_name(factory):
            raise ValueError(
                f"dataset name {name!r} is already registered by {_qualified_name(known)}: "
                f"expected a new name for {_qualified_name(factory)}"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_datasets() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(_REGISTRY)


def create_dataset(name: str, **params: Any) -> SegmentationDataset:
    """Build the dataset registered under ``name``.

    Args:
        name: a name from :func:`list_datasets`.
        **params: the factory's keyword parameters; omitted ones take the factory's defaults.

    Raises:
        ValueError: for an unknown name, an unknown parameter, or a parameter value the factory
            rejects (the message names the parameter, the value and what was expected).
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(list_datasets())}")
    accepted = _parameter_names(factory)
    if accepted is not None:
        for key, value in params.items():
            if key not in accepted:
                raise ValueError(
                    f"dataset {name!r} has no parameter {key!r} (got {key}={value!r}): "
                    f"expected one of {', '.join(accepted)}"
                )
    missing = [name_ for name_ in _required_names(factory) if name_ not in params]
    if missing:
        raise ValueError(f"dataset {name!r} needs the parameters {missing}: expected e.g. {missing[0]}=...")
    return factory(**params)


def describe(dataset: SegmentationDataset) -> dict[str, Any]:
    """A JSON-ready summary of a dataset: sizes, classes and per-split class statistics.

    Returns:
        ``name``, ``class_names``, ``rare_classes``, ``spatial_dims``, ``spatial_shape``,
        ``in_channels``, ``num_cases`` (per split), ``class_fractions`` (per split, per class name:
        fraction of voxels) and ``cases_with_class`` (per split, per class name: fraction of cases
        that contain at least one voxel of the class).
    """
    splits = {"train": dataset.train, "val": dataset.val, "test": dataset.test}
    return {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "rare_classes": list(dataset.rare_classes),
        "spatial_dims": dataset.spatial_dims,
        "spatial_shape": list(dataset.train.labels[0].shape),  # of the first case when sizes differ
        "in_channels": dataset.in_channels,
        "num_cases": {split_name: len(split) for split_name, split in splits.items()},
        "class_fractions": {
            split_name: _per_class(dataset.class_names, _voxel_fractions(split, dataset.num_classes))
            for split_name, split in splits.items()
        },
        "cases_with_class": {
            split_name: _per_class(dataset.class_names, _case_fractions(split, dataset.num_classes))
            for split_name, split in splits.items()
        },
    }


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int, or a ValueError such as ``"n_train=0: expected an integer >= 1"``."""
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    if (
        isinstance(value, bool)
        or not isinstance(value, Integral)
        or value < minimum
        or (maximum is not None and int(value) > maximum)  # int() of an Integral is exact
    ):
        raise ValueError(f"{name}={value!r}: expected {expected}")
    return int(value)


def check_number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``), or a ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value < low
        or (low_open and value == low)
        or not value <= high  # numbers.Real declares only < and <= (value is finite here)
    ):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name}={value!r}: expected a number in {bracket}{low}, {high}]")
    return float(value)


def check_range(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """``value`` as ``(a, b)`` with ``low < a <= b <= high``, or a ValueError."""
    expected = f"two numbers (low, high) with {low} < low <= high <= {high}"
    try:
        bounds = tuple(value)
    except TypeError:
        raise ValueError(f"{name}={value!r}: expected {expected}") from None
    if (
        len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, Real) or not math.isfinite(b) for b in bounds)
        or not low < bounds[0] <= bounds[1] <= high
    ):
        raise ValueError(f"{name}={value!r}: expected {expected}")
    return float(bounds[0]), float(bounds[1])


def _voxel_fractions(split: Split, num_classes: int) -> np.ndarray:
    counts = split.voxel_counts(num_classes)
    return counts / max(int(counts.sum()), 1)


def _case_fractions(split: Split, num_classes: int) -> np.ndarray:
    present = np.zeros(num_classes)
    for _, labels in split.cases():
        present += np.bincount(np.asarray(labels).ravel(), minlength=num_classes)[:num_classes] > 0
    return present / max(len(split), 1)


def _per_class(class_names: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {class_name: float(value) for class_name, value in zip(class_names, values)}


def _parameter_names(factory: DatasetFactory) -> list[str] | None:
    """The keyword names a factory accepts, or None when it takes ``**kwargs``."""
    parameters = inspect.signature(factory).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return [
        parameter.name
        for parameter in parameters
        if parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


def _required_names(factory: DatasetFactory) -> list[str]:
    """Keyword parameters without a default."""
    return [
        parameter.name
        for parameter in inspect.signature(factory).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is inspect.Parameter.empty
    ]


def _qualified_name(factory: DatasetFactory) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"
