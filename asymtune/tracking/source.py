"""MLflow's standard source tags of a run: the command line that made it, the git commit of the
code, the user.

``MlflowClient.create_run`` sets none of these (only the fluent ``mlflow.start_run`` does, and it
records the script's path rather than the command line), so every run asymtune creates carries
them explicitly: the MLflow UI then shows the run's source and commit on the run page.
"""

from __future__ import annotations

import getpass
import shlex
import subprocess
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from mlflow.utils.mlflow_tags import (
    MLFLOW_GIT_BRANCH,
    MLFLOW_GIT_COMMIT,
    MLFLOW_GIT_DIRTY,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
    MLFLOW_USER,
)

import asymtune

SOURCE_TYPE = "LOCAL"  # mlflow.entities.SourceType.LOCAL: a command run on this machine


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user would type it: ``asymtune tune experiment=smoke ...``.

    ``argv`` defaults to ``sys.argv``. Its first item, the program's path, is shown by its name
    (``asymtune``), or as ``python -m asymtune.<module>`` for a module of the package run with
    ``python -m`` (Python puts the module's file there).

    >>> command_line(["/venv/bin/asymtune", "tune", "output_dir=/tmp/a b"])
    "asymtune tune 'output_dir=/tmp/a b'"
    >>> command_line([str(Path(asymtune.__file__).with_name("cli.py")), "report", "out"])
    'python -m asymtune.cli report out'
    """
    args = list(sys.argv if argv is None else argv)
    if not args or args[0] in ("", "-c"):
        return shlex.join(["python", *args[1:]])
    path = Path(args[0])
    package = Path(asymtune.__file__).resolve().parent
    if path.suffix == ".py" and path.resolve().parent == package:
        return shlex.join(["python", "-m", f"asymtune.{path.stem}", *args[1:]])
    return shlex.join([path.name, *args[1:]])


def _git(*args: str) -> str:
    root = Path(asymtune.__file__).resolve().parents[1]
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def _git_tags() -> tuple[tuple[str, str], ...]:
    return tuple(git_tags().items())


def git_tags() -> dict[str, str]:
    """``mlflow.source.git.*`` of the asymtune checkout (commit, branch, dirty); empty when the
    package is not run from a git checkout (an installed wheel). :func:`source_tags` reads them
    once per process."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {MLFLOW_GIT_COMMIT: commit, MLFLOW_GIT_DIRTY: "true" if _git("status", "--porcelain") else "false"}
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags[MLFLOW_GIT_BRANCH] = branch
    return tags


def source_tags(argv: Sequence[str] | None = None) -> dict[str, str]:
    """The source tags of a run made by this process (see :func:`command_line` for ``argv``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = ""
    tags = {MLFLOW_SOURCE_NAME: command_line(argv), MLFLOW_SOURCE_TYPE: SOURCE_TYPE, **dict(_git_tags())}
    if user:
        tags[MLFLOW_USER] = user
    return tags
