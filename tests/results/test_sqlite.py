"""The driver's local SQLite stores run in WAL mode on a local disk, and keep SQLite's default elsewhere."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from asymtune.results import sqlite as wal


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def _write_through_sqlalchemy(path: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE IF NOT EXISTS t (a INTEGER)"))
        connection.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
    engine.dispose()


def test_filesystem_type_takes_the_longest_mount_point() -> None:
    mounts = "/dev/sda1 / ext4 rw 0 0\nserver:/exp /data nfs4 rw 0 0\ntmpfs /data/scratch tmpfs rw 0 0\n"
    assert wal.filesystem_type("/data/a/optuna.db", mounts) == "nfs4"
    assert wal.filesystem_type("/data/scratch/optuna.db", mounts) == "tmpfs"
    assert wal.filesystem_type("/datasets/optuna.db", mounts) == "ext4"  # not inside /data
    assert wal.filesystem_type("/x.db", "") is None


def test_an_engine_opens_a_local_file_in_wal_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\n/dev/vdb {tmp_path} xfs rw 0 0\n")
    monkeypatch.setattr(wal, "MOUNTS", mounts)
    before = tmp_path / "before.db"
    _write_through_sqlalchemy(before)
    assert _journal_mode(before) == "delete"  # SQLite's default, until the driver asks for WAL

    wal.local_sqlite_in_wal_mode()
    wal.local_sqlite_in_wal_mode()  # idempotent: one listener
    after = tmp_path / "after.db"
    _write_through_sqlalchemy(after)
    assert _journal_mode(after) == "wal"
    with sqlite3.connect(after) as connection:  # the rows are there for a new reader
        assert connection.execute("SELECT a FROM t").fetchall() == [(1,)]


@pytest.mark.parametrize("kind", ["nfs4", "cifs", "lustre"])
def test_a_network_filesystem_keeps_the_default_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nserver:/x {tmp_path} {kind} rw 0 0\n")
    monkeypatch.setattr(wal, "MOUNTS", mounts)
    path = tmp_path / "optuna.db"
    with sqlite3.connect(path) as connection:
        assert wal.use_wal(connection) is False
    assert _journal_mode(path) == "delete"


def test_an_unknown_filesystem_keeps_the_default_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wal, "MOUNTS", tmp_path / "no-proc-mounts")  # e.g. macOS: no /proc
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as connection:
        assert wal.use_wal(connection) is False
    assert _journal_mode(path) == "delete"
