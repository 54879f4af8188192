"""The preprocessed, memory-mapped form of a dataset on disk that training reads.

:func:`prepare_dataset` checks a dataset (:func:`~asymtune.data.check.check_dataset`), normalises
its intensities as nnU-Net does and writes one ``.npy`` per image and label into a cache folder;
later calls (from any process) only stat the source files to compute the fingerprint and open the
cached arrays with ``np.load(mmap_mode="r")``, so concurrent trials on one node share one copy
through the page cache.

Normalisation, per channel, chosen from the channel name (case-insensitive, as nnU-Net does):

- ``CT``: clip to the 0.5 and 99.5 percentiles of the foreground (label > 0) intensities pooled
  over the dataset, then subtract the foreground mean and divide by the foreground standard
  deviation (both of the unclipped foreground intensities, as in nnU-Net's ``CTNormalization``).
  Pooling is exact up to ``10**7`` foreground voxels; beyond that each case contributes an equal,
  seeded random sample (nnU-Net's fingerprint rule).
- ``noNorm``: unchanged.
- anything else (MR contrasts, microscopy): z-score per case over the whole image.

Cache layout: ``<cache_dir>/<name>-<fingerprint[:12]>/`` holding ``<case>_image.npy`` (float32
``(C, *spatial)``), ``<case>_label.npy`` (uint8, or int16 above 255 classes, ``(*spatial)``) and
``meta.json``. The folder is written under a temporary name and renamed, so another process sees
either nothing or the complete folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asymtune.data.check import CaseArrays, check_dataset, read_case, singleton_axis
from asymtune.data.layouts import CaseFiles, DatasetError, DatasetLayout, scan_layout

PREPARATION_VERSION = 1
FOREGROUND_SAMPLES = 10**7
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedCase:
    """One preprocessed case.

    Attributes:
        case_id: the case's id in the source dataset.
        image: ``(C, *spatial)`` float32, normalised, memory-mapped read-only.
        label: ``(*spatial)`` uint8 (int16 above 255 classes), class indices ``0..K-1``: the
            declared label values mapped to consecutive indices in sorted order.
        spacing: voxel size per spatial axis (array axis order), from the header.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, ...]


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset on disk after :func:`prepare_dataset`.

    Attributes:
        name: ``dataset.json`` ``name`` (else the folder name).
        layout: ``"nnunet"`` or ``"decathlon"``.
        root: the source dataset folder.
        class_names: one per class index, background first.
        channel_names: one per image channel.
        spatial_dims: 2 or 3; 2-D cases are stored squeezed: image ``(C, H, W)``, label ``(H, W)``.
        cases: sorted by ``case_id``.
        fingerprint: hash of the layout, file names, sizes, modification times, ``dataset.json``
            and the preprocessing version.
        cache_path: the folder holding the arrays.
        ct_statistics: per CT channel index, the dataset's foreground statistics its
            normalisation used (``lower``, ``upper``, ``mean``, ``std``); new images of the same
            modality are normalised with them (:func:`normalise_image`).
    """

    name: str
    layout: str
    root: Path
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    spatial_dims: int
    cases: tuple[PreparedCase, ...]
    fingerprint: str
    cache_path: Path
    ct_statistics: dict[int, dict[str, float]] = field(default_factory=dict)


def default_cache_dir() -> Path:
    """``$ASYMTUNE_CACHE`` when set, else ``~/.cache/asymtune/prepared``."""
    configured = os.environ.get("ASYMTUNE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "asymtune" / "prepared"


def dataset_fingerprint(layout: DatasetLayout) -> str:
    """SHA-256 (hex) of what the prepared arrays depend on; reads only ``dataset.json``, stats the rest."""
    files = []
    for case in layout.cases:
        for path in (*case.images, case.label):
            stat = path.stat()
            files.append([layout.relative(path), stat.st_size, stat.st_mtime_ns])
    record = {
        "version": PREPARATION_VERSION,
        "layout": layout.layout,
        "dataset.json": hashlib.sha256((layout.root / "dataset.json").read_bytes()).hexdigest(),
        "files": files,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def prepare_dataset(root: str | Path, layout: str = "auto", cache_dir: str | Path | None = None) -> PreparedDataset:
    """Check, normalise and cache a dataset on disk; reuse the cache when the files have not changed.

    Args:
        root: the dataset folder (nnU-Net v2 raw or Decathlon layout).
        layout: ``"auto"``, ``"nnunet"`` or ``"decathlon"``.
        cache_dir: where prepared datasets live (default :func:`default_cache_dir`).

    Raises:
        DatasetError: listing every defect of the dataset; nothing is written then.
    """
    found = scan_layout(root, layout)
    fingerprint = dataset_fingerprint(found)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_root / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', found.name)}-{fingerprint[:12]}"
    if not (folder / "meta.json").is_file():
        summary = check_dataset(found)
        cache_root.mkdir(parents=True, exist_ok=True)
        temporary = cache_root / f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        temporary.mkdir()
        try:
            _write(found, summary.spatial_dims, fingerprint, temporary)
            os.rename(temporary, folder)
            _LOG.info("prepared %s (%d cases) into %s", found.name, len(found.cases), folder)
        except OSError:
            if not (folder / "meta.json").is_file():
                raise
            # Another process renamed its copy first: use that one.
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return _open(folder, found.root)


def _write(found: DatasetLayout, spatial_dims: int, fingerprint: str, folder: Path) -> None:
    statistics = _ct_statistics(found)
    dtype = np.uint8 if len(found.label_values) <= 255 else np.int16
    values = np.asarray(found.label_values)
    cases = []
    for case in found.cases:
        arrays = _read(found, case)
        image = normalise_image(arrays.image, found.channel_names, statistics)
        label = np.searchsorted(values, arrays.label).astype(dtype)  # declared values -> 0..K-1
        spacing = arrays.spacing
        axis = singleton_axis(label.shape)
        if spatial_dims == 2 and axis is not None and axis >= 0:
            image, label = np.squeeze(image, axis=axis + 1), np.squeeze(label, axis=axis)  # (C, H, W), (H, W)
            spacing = spacing[:axis] + spacing[axis + 1 :]
        np.save(folder / f"{case.case_id}_image.npy", image.astype(np.float32))
        np.save(folder / f"{case.case_id}_label.npy", label)
        cases.append({"case_id": case.case_id, "spacing": list(spacing)})
    meta = {
        "version": PREPARATION_VERSION,
        "name": found.name,
        "layout": found.layout,
        "root": str(found.root),
        "fingerprint": fingerprint,
        "class_names": list(found.class_names),
        "channel_names": list(found.channel_names),
        "spatial_dims": spatial_dims,
        "ct_statistics": {found.channel_names[c]: s for c, s in statistics.items()},
        "cases": cases,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def _read(found: DatasetLayout, case: CaseFiles) -> CaseArrays:
    arrays, defects = read_case(found, case)
    if arrays is None:  # the files changed since check_dataset read them
        raise DatasetError(found.root, defects)
    return arrays


def _ct_statistics(found: DatasetLayout) -> dict[int, dict[str, float]]:
    """Per CT channel: 0.5/99.5 foreground percentiles and foreground mean/std, pooled over cases."""
    ct_channels = [c for c, name in enumerate(found.channel_names) if name.casefold() == "ct"]
    if not ct_channels:
        return {}
    per_case = max(1, FOREGROUND_SAMPLES // len(found.cases))
    rng = np.random.default_rng(1234)
    samples: dict[int, list[np.ndarray]] = {c: [] for c in ct_channels}
    for case in found.cases:
        arrays = _read(found, case)
        foreground = arrays.label > 0
        for channel in ct_channels:
            values = arrays.image[channel][foreground]
            if values.size > per_case:
                values = rng.choice(values, per_case, replace=False)
            samples[channel].append(values.astype(np.float64))
    statistics = {}
    for channel, parts in samples.items():
        pooled = np.concatenate(parts)
        if pooled.size == 0:
            raise DatasetError(
                found.root,
                [
                    (
                        f"dataset.json: channel {channel} is '{found.channel_names[channel]}' but no case has "
                        "foreground (label > 0): CT normalisation needs foreground intensities"
                    )
                ],
            )
        lower, upper = np.percentile(pooled, [0.5, 99.5])
        statistics[channel] = {
            "lower": float(lower),
            "upper": float(upper),
            "mean": float(pooled.mean()),
            "std": float(pooled.std()),
        }
    return statistics


def normalise_image(
    image: np.ndarray, channel_names: Sequence[str], ct_statistics: Mapping[int, Mapping[str, float]]
) -> np.ndarray:
    """An image normalised as the prepared arrays are (module docstring), channel by channel.

    Args:
        image: ``(C, *spatial)`` intensities as stored.
        channel_names: ``C`` names; each selects its channel's rule (``CT``, ``noNorm``, else z-score).
        ct_statistics: per CT channel index, the dataset's statistics
            (:attr:`PreparedDataset.ct_statistics`).

    Returns:
        ``(C, *spatial)`` float32.

    Example:
        >>> image = np.array([[[1.0, 3.0]], [[5.0, 7.0]]])  # (2, 1, 2)
        >>> normalise_image(image, ["T1", "noNorm"], {}).tolist()
        [[[-1.0, 1.0]], [[5.0, 7.0]]]
    """
    if len(image) != len(channel_names):
        raise ValueError(
            f"image has {len(image)} channels: expected {len(channel_names)} ({', '.join(channel_names)})"
        )
    channels = [_normalise(image[c], channel_names[c], ct_statistics.get(c)) for c in range(len(image))]
    return np.stack(channels).astype(np.float32)


def _normalise(channel: np.ndarray, name: str, statistics: Mapping[str, float] | None) -> np.ndarray:
    """One channel ``(*spatial)`` normalised by the rule its name selects (module docstring)."""
    scheme = name.casefold()
    data = channel.astype(np.float64)
    if scheme == "nonorm":
        return data
    if scheme == "ct":
        assert statistics is not None
        clipped = np.clip(data, statistics["lower"], statistics["upper"])
        return (clipped - statistics["mean"]) / max(statistics["std"], 1e-8)
    normalised: np.ndarray = (data - data.mean()) / max(float(data.std()), 1e-8)
    return normalised


def _open(folder: Path, root: Path) -> PreparedDataset:
    meta = json.loads((folder / "meta.json").read_text())
    cases = tuple(
        PreparedCase(
            case_id=item["case_id"],
            image=np.load(folder / f"{item['case_id']}_image.npy", mmap_mode="r"),
            label=np.load(folder / f"{item['case_id']}_label.npy", mmap_mode="r"),
            spacing=tuple(float(s) for s in item["spacing"]),
        )
        for item in meta["cases"]
    )
    return PreparedDataset(
        name=meta["name"],
        layout=meta["layout"],
        root=root,
        class_names=tuple(meta["class_names"]),
        channel_names=tuple(meta["channel_names"]),
        spatial_dims=int(meta["spatial_dims"]),
        cases=cases,
        fingerprint=meta["fingerprint"],
        cache_path=folder,
        ct_statistics={  # stored by name: two CT channels of one name would get the last one's
            c: dict(meta["ct_statistics"][name])
            for c, name in enumerate(meta["channel_names"])
            if name in meta.get("ct_statistics", {})
        },
    )
