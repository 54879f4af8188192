"""The driver's local SQLite stores (the default MLflow and Optuna stores) in write-ahead-log mode.

A sweep's driver commits to ``mlflow.db`` and ``optuna.db`` at every trial result (a metric batch,
an intermediate value). In SQLite's default rollback-journal mode each commit creates, syncs and
deletes a journal file; in WAL mode (``journal_mode=WAL``, ``synchronous=NORMAL``) it appends to one
log, and the loop that hands each trial its next epoch waits less. A WAL database stays consistent
when its process is killed (what a resume relies on); ``synchronous=NORMAL`` may lose the last
commits on a power cut, never the file.

WAL needs every process that opens the database to be on one host (it shares memory through a
``-shm`` file), so it is switched on only for a database file on a local filesystem
(:data:`LOCAL_FILESYSTEMS`, read from ``/proc/mounts``); on NFS, or where the filesystem is
unknown, SQLite's default is kept. The mode is stored in the file: ``mlflow ui`` and
``optuna-dashboard`` opened later on the same host use it too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "f2fs", "overlay", "jfs"})
"""Filesystems whose files WAL mode may use (every process that opens them runs on this host)."""
MOUNTS = Path("/proc/mounts")
_installed = False


def filesystem_type(path: str | Path, mounts: str | None = None) -> str | None:
    """The type of the filesystem that holds ``path`` (its longest mount point), from ``mounts``
    (``/proc/mounts``'s text; read when None); None where it cannot be told (no ``/proc``).

    >>> filesystem_type("/data/x.db", "/dev/sda1 / ext4 rw 0 0\\nserver:/exp /data nfs4 rw 0 0\\n")
    'nfs4'
    >>> filesystem_type("/database.db", "/dev/sda1 / ext4 rw 0 0\\nserver:/exp /data nfs4 rw 0 0\\n")
    'ext4'
    """
    if mounts is None:
        try:
            mounts = MOUNTS.read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def use_wal(connection: sqlite3.Connection) -> bool:
    """Switch ``connection``'s database to WAL mode with ``synchronous=NORMAL`` when its file is on a
    local filesystem; True when it runs in WAL mode afterwards."""
    rows = connection.execute("PRAGMA database_list").fetchall()
    path = next((row[2] for row in rows if row[1] == "main"), "")
    if not path or filesystem_type(path) not in LOCAL_FILESYSTEMS:  # in memory, on NFS, or unknown
        return False
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.OperationalError as error:  # another process holds it: keep its mode
        log.debug("%s stays in its journal mode: %s", path, error)
        return False
    if str(mode).lower() != "wal":
        return False
    connection.execute("PRAGMA synchronous=NORMAL")
    return True


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        use_wal(dbapi_connection)


def local_sqlite_in_wal_mode() -> None:
    """From now on, every SQLAlchemy engine of this process (MLflow's store, Optuna's ``RDBStorage``)
    opens a local SQLite file in WAL mode. Idempotent."""
    global _installed
    if not _installed:
        event.listen(Engine, "connect", _on_connect)
        _installed = True
