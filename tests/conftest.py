"""Shared fixtures: one real smoke sweep per test session, run through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, timeout: float = 600, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``asymtune ARGS`` in a fresh process (as a user would) and capture its output."""
    result = subprocess.run(
        [sys.executable, "-m", "asymtune.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"asymtune {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    """Small tensors on a shared 2-core machine: extra torch threads only contend."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def cli():
    """``cli("tune", "experiment=smoke", ...)`` runs the real command in a new process."""
    return run_cli


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output_dir of ``asymtune tune experiment=smoke`` (both datasets, 3 trials, 2 epochs), its
    confirmation run as Ray tasks (the default executor; the smoke experiment's own is in-process)."""
    output_dir = tmp_path_factory.mktemp("smoke") / "out"
    run_cli("tune", "experiment=smoke", "confirm.executor=ray", f"output_dir={output_dir}")
    return output_dir
