"""The Optuna storage of the studies (``optuna.storage``): a database (RDB URL) or a journal file.

``journal:///ABSOLUTE/PATH`` keeps the studies in Optuna's journal file (``JournalStorage`` with
a ``JournalFileBackend``): an append-only log of operations, each append taken under a lock file
created with ``link()``, which works on NFS where SQLite's locking does not. Several processes,
on one machine or on many nodes that share the filesystem, may write to one journal (several
sweeps, or optuna-dashboard reading it while a sweep writes), with no database server.
Any other value is a SQLAlchemy URL for Optuna's ``RDBStorage`` (``sqlite:///...``,
``postgresql+psycopg2://...``).

The URL's syntax is checked with the config (:func:`asymtune.config.checks.check_tune_config`);
:func:`open_optuna_storage` only opens what it names.
"""

from __future__ import annotations

import optuna
from optuna.storages.journal import JournalFileBackend

JOURNAL_SCHEME = "journal://"
"""The prefix of a journal file's URL: ``journal:///shared/sweeps/optuna.log``."""


def journal_path(url: str) -> str | None:
    """The file of a journal URL (``journal:///a/b.log`` -> ``/a/b.log``); None for any other URL.

    >>> journal_path("journal:///shared/optuna.log"), journal_path("sqlite:///optuna.db")
    ('/shared/optuna.log', None)
    """
    return url.removeprefix(JOURNAL_SCHEME) if url.startswith(JOURNAL_SCHEME) else None


def open_optuna_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage ``url`` names: a journal file for ``journal:///PATH`` (created if
    missing, in a folder that exists), an ``RDBStorage`` otherwise."""
    path = journal_path(url)
    if path is None:
        return optuna.storages.RDBStorage(url)
    return optuna.storages.JournalStorage(JournalFileBackend(path))
