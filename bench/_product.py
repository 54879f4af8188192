"""Shared by the benchmark scripts that run the product as a user runs it: the `asymtune` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def asymtune_command() -> list[str]:
    """The `asymtune` console script of this interpreter's environment (``python -m asymtune.cli``
    when the package is not installed with its scripts)."""
    script = Path(sys.executable).with_name("asymtune")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "asymtune.cli"]


def local_ray_env(arguments: list[str]) -> dict[str, str]:
    """This process's environment for an `asymtune` command, with ``RAY_ADDRESS=local`` unless an
    address is given (in the environment or as ``ray.address=``): with ``ray.address`` unset,
    ``ray.init`` joins a cluster that ``ray start`` left on this machine (Ray reads
    ``/tmp/ray/ray_current_cluster``) instead of starting its own, and the benchmark then measures,
    or dies with, somebody else's cluster."""
    env = dict(os.environ)
    if "RAY_ADDRESS" not in env and not any(a.startswith("ray.address=") for a in arguments):
        env["RAY_ADDRESS"] = "local"
    return env
