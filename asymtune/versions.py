"""Version information recorded with every run (package, git commit, libraries), and the machine a
model trained on (a seeded training gives the same model only on the same type of processor)."""

from __future__ import annotations

import platform
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


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device: object) -> str:
    """The processor a training on ``device`` (a ``torch.device`` or its name) ran its arithmetic on:
    ``"cpu: <model>"``, or ``"cuda:0: <GPU name> (cpu: <model>)"``.

    >>> machine("cpu") == f"cpu: {cpu_model()}"
    True
    """
    name = str(device)
    if name.startswith("cuda"):
        import torch

        return f"{name}: {torch.cuda.get_device_name(torch.device(name))} (cpu: {cpu_model()})"
    return f"{name}: {cpu_model()}"
