"""Build a dataset from its config entry, once per process.

A config entry is ``{"source": <registered name>, "params": {...}}``. Trials of one sweep that
land in the same worker process reuse the arrays instead of regenerating them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from asymtune.data.base import SegmentationDataset


def _key(spec: Mapping[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


@lru_cache(maxsize=4)
def _load(key: str) -> SegmentationDataset:
    from asymtune.data.registry import create_dataset

    spec = json.loads(key)
    return create_dataset(spec["source"], **spec.get("params", {}))


def load_dataset(spec: Mapping[str, Any], name: str | None = None) -> SegmentationDataset:
    """The dataset a config entry describes.

    Args:
        spec: ``{"source": str, "params": dict}``.
        name: the entry's name in the sweep, used in error messages.
    """
    where = f"data.sets.{name}" if name else "data"
    if not isinstance(spec, Mapping) or "source" not in spec:
        raise ValueError(f"{where}: expected a mapping with 'source' (a registered dataset) and 'params'")
    unknown = sorted(set(spec) - {"source", "params"})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}: expected 'source' and 'params'")
    try:
        return _load(_key({"source": spec["source"], "params": dict(spec.get("params") or {})}))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error
