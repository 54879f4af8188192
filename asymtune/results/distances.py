"""The stored boundary distances (method.md section 4) of a trial's or a confirmation's model.

One compressed ``.npz`` with one array per split and class, ``"<split>/<class>"`` (``split`` is
``train`` and a held-out split, ``val`` for sweep trials and ``test`` for confirmations).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

MAX_VALUES = 50_000  # per class and split in a stored file (a seeded subsample beyond that)


def distances_arrays(
    splits: Mapping[str, Mapping[str, np.ndarray]], seed: int = 0
) -> dict[str, np.ndarray]:
    """``{"<split>/<class>": (K,) float32}``, each at most :data:`MAX_VALUES` long (a seeded subsample)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, distances in splits.items():
        for name, values in distances.items():
            if values.size > MAX_VALUES:
                values = rng.choice(values, MAX_VALUES, replace=False)
            arrays[f"{split}/{name}"] = np.asarray(values, dtype=np.float32)
    return arrays


def save_distances(splits: Mapping[str, Mapping[str, np.ndarray]], path: Path, seed: int = 0) -> Path:
    """Store ``{split: {class: distances}}`` as a compressed ``.npz`` at ``path``."""
    np.savez_compressed(path, **distances_arrays(splits, seed))  # type: ignore[arg-type]
    return path


def load_distances(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of :func:`save_distances`: ``{split: {class: values}}``, the training split first."""
    result: dict[str, dict[str, np.ndarray]] = {"train": {}}
    with np.load(path) as data:
        for key in data.files:
            split, name = key.split("/", 1)
            result.setdefault(split, {})[name] = data[key]
    return result
