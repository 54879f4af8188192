"""``optuna.storage``: a journal file (``journal:///PATH``) or a database URL, opened by
:func:`asymtune.search.storage.open_optuna_storage`; a malformed value refused before anything starts.
(Writers on two Ray nodes, two sweeps and a resume: ``tests/e2e/test_journal_two_nodes.py``.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from asymtune.cli import main
from asymtune.search.storage import journal_path, open_optuna_storage

EXPECTED = (
    "expected null (SQLite in output_dir), a database URL (sqlite:///PATH, postgresql+psycopg2://...) or "
    "journal:///ABSOLUTE/PATH (a journal file, e.g. journal:///shared/sweeps/optuna.log)"
)


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], storage: str) -> str:
    capsys.readouterr()
    assert main(["tune", f"optuna.storage={storage}", f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not (tmp_path / "out").exists(), err
    return err[0].removeprefix("asymtune tune: error: ")


def test_relative_journal_path_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _refusal(tmp_path, capsys, "journal://optuna.log") == (
        f"optuna.storage='journal://optuna.log': {EXPECTED}; a journal's path is absolute (three slashes)"
    )


def test_journal_in_a_missing_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"journal://{tmp_path}/missing/optuna.log"
    assert _refusal(tmp_path, capsys, url) == (
        f"optuna.storage={url!r}: no folder {tmp_path}/missing: expected a journal file in a folder that exists "
        "(shared, when several drivers write to it)"
    )


def test_journal_that_is_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"journal://{tmp_path}"
    assert _refusal(tmp_path, capsys, url).startswith(f"optuna.storage={url!r}: is a folder: expected a journal file")


def test_a_path_without_a_scheme_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _refusal(tmp_path, capsys, "/shared/optuna.db") == f"optuna.storage='/shared/optuna.db': {EXPECTED}"


def test_urls_open_the_storage_they_name(tmp_path: Path) -> None:
    assert journal_path(f"journal://{tmp_path}/optuna.log") == f"{tmp_path}/optuna.log"
    assert isinstance(open_optuna_storage(f"journal://{tmp_path}/optuna.log"), optuna.storages.JournalStorage)
    assert (tmp_path / "optuna.log").is_file()
    assert isinstance(open_optuna_storage(f"sqlite:///{tmp_path}/optuna.db"), optuna.storages.RDBStorage)


_WRITER = """
import sys
import optuna
from asymtune.search.storage import open_optuna_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="shared", storage=open_optuna_storage(sys.argv[1]))
study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0) ** 2, n_trials=int(sys.argv[2]))
"""


def test_processes_writing_at_once_lose_no_trial(tmp_path: Path) -> None:
    url, per_process = f"journal://{tmp_path}/optuna.log", 30
    optuna.create_study(study_name="shared", storage=open_optuna_storage(url))
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, url, str(per_process)]) for _ in range(3)]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0, 0]
    trials = optuna.load_study(study_name="shared", storage=open_optuna_storage(url)).trials
    assert sorted(trial.number for trial in trials) == list(range(3 * per_process))
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)


def test_a_restored_searcher_continues_its_study_in_the_journal(tmp_path: Path) -> None:
    """What ``Tuner.restore`` does with the searcher: pickle it, unpickle it in a new driver."""
    url = f"journal://{tmp_path}/optuna.log"

    def searcher() -> OptunaSearch:
        return OptunaSearch(space={"x": tune.uniform(0.0, 1.0)}, metric="loss", mode="min", study_name="sweep",
                            storage=open_optuna_storage(url))

    before = searcher()
    before.suggest("a")
    before.on_trial_complete("a", {"loss": 0.5})
    before.suggest("b")  # running when the driver dies
    before.save(str(tmp_path / "searcher.pkl"))

    after = searcher()
    after.restore(str(tmp_path / "searcher.pkl"))
    after.on_trial_complete("b", {"loss": 0.25})
    after.suggest("c")
    after.on_trial_complete("c", {"loss": 0.125})

    trials = optuna.load_study(study_name="sweep", storage=open_optuna_storage(url)).trials
    assert [(trial.state, trial.value) for trial in trials] == [
        (optuna.trial.TrialState.COMPLETE, 0.5), (optuna.trial.TrialState.COMPLETE, 0.25),
        (optuna.trial.TrialState.COMPLETE, 0.125),
    ]
