"""Version information recorded with every run (package, git commit, libraries)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import asymtune

LIBRARIES = ("torch", "ray", "optuna", "mlflow", "hydra-core", "numpy")


@lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+<git commit>`` when run from a git checkout, else the package version."""
    root = Path(asymtune.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{asymtune.__version__}+{commit}" if commit else asymtune.__version__


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run depends on."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
