"""Build a dataset from its config entry, once per process.

A config entry is ``{"source": <registered name>, "params": {...}}``, optionally with ``root``,
``data_dir`` and ``fingerprint`` (an exported config's portable form, :mod:`asymtune.data.locate`:
the root is found on this machine and the data refused when its fingerprint differs). Trials of
one sweep that land in the same worker process reuse the arrays instead of regenerating them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from asymtune.data.base import SegmentationDataset
from asymtune.data.locate import check_fingerprint, resolve_entry


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
        spec: ``{"source": str, "params": dict}``, optionally with ``root``, ``data_dir`` and
            ``fingerprint`` (:func:`~asymtune.data.locate.resolve_entry`).
        name: the entry's name in the sweep, used in error messages.

    Raises:
        ValueError: a bad entry or parameter; :class:`~asymtune.data.locate.DataMismatchError`
            when ``fingerprint`` is set and the data found hashes differently (checked before
            the data is prepared).
        FileNotFoundError: a root that is not found.
    """
    where = f"data.sets.{name}" if name else "data"
    resolved = resolve_entry(spec, where)
    if spec.get("fingerprint") not in (None, ""):
        check_fingerprint(str(spec["fingerprint"]), resolved, where)
    try:
        return _load(_key(resolved))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error
