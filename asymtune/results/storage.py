"""Where a sweep keeps Ray Tune's experiment state, trial results and checkpoints.

``storage_path`` in ``conf/tune.yaml``: null means ``<output_dir>/ray_results``; otherwise a path
(relative to the working folder) or a URI that pyarrow and Ray Tune resolve, such as
``s3://bucket/prefix`` or ``gs://bucket/prefix``. Options of the filesystem may follow as a query
(``s3://bucket/prefix?endpoint_override=host:9000&scheme=http``) or come from the usual
environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), which every Ray node
then needs too. A location is a plain string throughout: a local path or a URI.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs

_PROBE = ".asymtune-write-check"


def is_uri(location: str) -> bool:
    """True for ``scheme://...`` locations (an object store, HDFS, ``file://``)."""
    return "://" in location


def resolve_storage_path(value: str | None, output_dir: Path) -> str:
    """The sweep's storage location: ``<output_dir>/ray_results`` for None, an absolute path for a
    path or a ``file://`` URI, the URI itself (without a trailing slash) otherwise."""
    if value is None or str(value).strip() == "":
        return str(output_dir / "ray_results")
    value = str(value).strip()
    if not is_uri(value):
        return str(Path(value).expanduser().resolve())
    parts = urlsplit(value)
    if parts.scheme == "file":
        return str(Path(parts.path).resolve())
    return urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def join_location(location: str, name: str) -> str:
    """``location/name`` for a path or a URI (a URI's query stays at its end)."""
    if not is_uri(location):
        return str(Path(location) / name)
    parts = urlsplit(location)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}"))


def filesystem_and_path(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The pyarrow filesystem of ``location`` and the path on it."""
    if is_uri(location):
        filesystem, path = pyarrow.fs.FileSystem.from_uri(location)
        return filesystem, str(path)
    return pyarrow.fs.LocalFileSystem(), location


def is_directory(location: str) -> bool:
    """Whether ``location`` holds a folder (on an object store: any object under that prefix)."""
    filesystem, path = filesystem_and_path(location)
    return bool(filesystem.get_file_info(path).type == pyarrow.fs.FileType.Directory)


def check_storage(location: str) -> None:
    """Stop before any trial when a remote ``location`` cannot be written.

    Writes and deletes a small probe object. Local paths are left to Ray Tune, which creates them.

    Raises:
        ValueError: naming the location and the filesystem's error.
    """
    if not is_uri(location):
        return
    try:
        filesystem, path = filesystem_and_path(location)
        probe = f"{path}/{_PROBE}-{uuid.uuid4().hex[:8]}"
        filesystem.create_dir(path, recursive=True)
        with filesystem.open_output_stream(probe) as stream:
            stream.write(b"asymtune\n")
        filesystem.delete_file(probe)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... by filesystem and cause
        raise ValueError(
            f"storage_path={location!r} cannot be written: {type(error).__name__}: {str(error)[:300]} "
            "(expected a writable path, or a URI such as s3://bucket/prefix whose credentials and endpoint "
            "are set, e.g. AWS_ENDPOINT_URL for an S3-compatible server)"
        ) from error
