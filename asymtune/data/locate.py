"""Find a config's data on this machine, and refuse data that is not the data the config names.

A sweep exports each dataset's ``data`` entry without the sweep machine's paths, so that
``asymtune train --config`` works on another machine or checkout unchanged::

    data:
      source: nnunet                # the registered dataset: synth_lesions, nnunet, decathlon, ...
      params: {seed: 0, ...}        # the factory's parameters, without ``root``
      root: Dataset004_Hippocampus  # data on disk: a folder relative to the data directory (or absolute)
      data_dir: null                # the data directory; null: $ASYMTUNE_DATA_DIR
      fingerprint: files-sha256:... # what the data must hash to; null: not checked

A relative root (``data.root``, or the older ``data.params.root``) is looked up in the data
directory, then in the current folder. The fingerprint of data on disk hashes ``dataset.json`` and
every image and label file's path inside the folder, size and bytes, not its modification time or
the folder's own path, so a copy on another machine matches; the generated datasets (no files)
are fingerprinted by their entry, ``spec-sha256:`` of ``source`` and ``params``.

Example:
    >>> entry = {"source": "synth_lesions", "params": {"seed": 0}}
    >>> resolve_entry(entry) == entry
    True
    >>> data_fingerprint(entry).startswith("spec-sha256:")
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "ASYMTUNE_DATA_DIR"
"""The environment variable naming the data directory when ``data.data_dir`` is null."""

ENTRY_KEYS = ("source", "params", "root", "data_dir", "fingerprint")
"""The keys of a ``data`` entry; only ``source`` is required."""

SPEC_PREFIX = "spec-sha256:"
FILES_PREFIX = "files-sha256:"


class DataMismatchError(ValueError):
    """The data found is not the data the config names (its fingerprint differs)."""


def data_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where a relative root is looked up, in order: ``data_dir`` (else ``$ASYMTUNE_DATA_DIR``,
    when set), then the current folder."""
    configured = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    folders = [Path(str(configured)).expanduser().absolute()] if configured is not None else []
    cwd = Path.cwd()
    return folders + ([cwd] if cwd not in folders else [])


def resolve_root(
    root: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None, where: str = "data.root"
) -> Path:
    """The absolute folder ``root`` names: itself when absolute, else the first of
    :func:`data_dirs` that holds it.

    Raises:
        FileNotFoundError: naming ``where``, the value and every folder looked in.
    """
    path = Path(str(root)).expanduser()
    candidates = [path] if path.is_absolute() else [folder / path for folder in data_dirs(data_dir)]
    for candidate in candidates:
        if candidate.is_dir():
            return Path(os.path.abspath(candidate))
    looked = ", ".join(str(candidate) for candidate in candidates)
    hint = "" if path.is_absolute() else (
        f" (a relative root: data.data_dir or ${DATA_DIR_ENV}, then the current folder)"
    )
    raise FileNotFoundError(
        f"{where}={str(root)!r}: no such folder: looked in {looked}{hint}; expected the dataset's folder: "
        f"give data.root=PATH or set {DATA_DIR_ENV} to the folder that holds it"
    )


def resolve_entry(entry: Mapping[str, Any], where: str = "data") -> dict[str, Any]:
    """``{"source", "params"}`` of a ``data`` entry, with its root (``root`` if set, else
    ``params.root``) found on this machine and written into ``params.root`` as an absolute path.

    Raises:
        ValueError: for unknown keys or a missing ``source``.
        FileNotFoundError: when the root is not found (:func:`resolve_root`).
    """
    if not isinstance(entry, Mapping) or "source" not in entry:
        raise ValueError(f"{where}: expected a mapping with 'source' (a registered dataset) and 'params'")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}: expected some of {list(ENTRY_KEYS)}")
    params = dict(entry.get("params") or {})
    if entry.get("root") not in (None, ""):
        params["root"] = str(resolve_root(entry["root"], entry.get("data_dir"), f"{where}.root"))
    elif params.get("root") not in (None, ""):
        params["root"] = str(resolve_root(params["root"], entry.get("data_dir"), f"{where}.params.root"))
    return {"source": entry["source"], "params": params}


def data_fingerprint(spec: Mapping[str, Any]) -> str:
    """The fingerprint of the data ``spec`` (``{"source", "params"}``, root resolved) describes:
    :func:`files_fingerprint` of ``params.root`` for data on disk, else ``spec-sha256:`` of the spec
    (a generated dataset is fully determined by it)."""
    params = dict(spec.get("params") or {})
    if params.get("root") not in (None, ""):
        layout = "decathlon" if spec.get("source") == "decathlon" else str(params.get("layout", "auto"))
        return files_fingerprint(params["root"], layout, params.get("cache_dir"))
    digest = hashlib.sha256(json.dumps(dict(spec), sort_keys=True, default=str).encode()).hexdigest()
    return f"{SPEC_PREFIX}{digest}"


def check_fingerprint(expected: str, spec: Mapping[str, Any], where: str = "data") -> str:
    """The fingerprint of the data ``spec`` describes, when it is ``expected``.

    Raises:
        DataMismatchError: naming the data found, both fingerprints and the ways out.
    """
    found = data_fingerprint(spec)
    if found != str(expected):
        params = dict(spec.get("params") or {})
        data = (
            f"the data at {params['root']}" if params.get("root") else
            f"dataset {spec.get('source')!r} with params {json.dumps(params, sort_keys=True, default=str)}"
        )
        raise DataMismatchError(
            f"{where}.fingerprint: {data} has fingerprint {found}, expected {expected} (the data the config "
            f"was made with): point data.root (or {DATA_DIR_ENV}) at that data, or give data.fingerprint=null "
            "to train on this data anyway"
        )
    return found


def files_fingerprint(
    root: str | os.PathLike[str], layout: str = "auto", cache_dir: str | os.PathLike[str] | None = None
) -> str:
    """``files-sha256:`` of a dataset folder's ``dataset.json`` and its cases' files (path inside the
    folder, size, bytes). Hashing reads every file once; the result is kept under the prepared
    cache (``<cache_dir>/fingerprints/``) keyed by the files' sizes and modification times, so that
    later calls only stat them.

    Raises:
        DatasetError: when the folder is not a dataset (:func:`~asymtune.data.layouts.scan_layout`).
    """
    from asymtune.data.layouts import scan_layout
    from asymtune.data.prepared import dataset_fingerprint, default_cache_dir

    found = scan_layout(Path(root), layout)
    memo = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    memo = memo / "fingerprints" / f"{dataset_fingerprint(found)}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    files = sorted((found.relative(path), path) for case in found.cases for path in (*case.images, case.label))
    record = {
        "dataset.json": _sha256(found.root / "dataset.json"),
        "files": [[name, path.stat().st_size, _sha256(path)] for name, path in files],
    }
    fingerprint = FILES_PREFIX + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        temporary = memo.with_name(f".{memo.name}.{uuid.uuid4().hex[:8]}.tmp")
        temporary.write_text(fingerprint + "\n")
        os.replace(temporary, memo)
    except OSError:
        pass  # a read-only cache only costs the hashing next time
    return fingerprint


def portable_root(root: str | os.PathLike[str], bases: Sequence[str | os.PathLike[str]]) -> str:
    """``root`` relative to the first of ``bases`` that holds it, else the folder's name (to be
    found in the data directory of the machine that trains it)."""
    path = Path(os.path.abspath(Path(str(root)).expanduser()))
    for base in bases:
        try:
            relative = path.relative_to(os.path.abspath(Path(str(base)).expanduser()))
        except ValueError:
            continue
        if relative.parts:
            return relative.as_posix()
    return path.name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
