"""The stages import one way and in no cycle; the import contracts fail when that is broken.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and CI runs them through this
test. Each breaking case below is applied to a copy of the package, so the check is shown to
catch exactly what the contracts promise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` with the project's contracts on the package under ``root``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


@pytest.fixture()
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "asymtune", tmp_path / "asymtune", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_every_import_contract() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # an earlier stage reaching up to a later one
        ("search/sweep.py", "import asymtune.report.build", "Stages import only earlier stages"),
        ("tracking/mlflow_tracker.py", "import asymtune.confirm.retrain", "Stages import only earlier stages"),
        ("train/trainer.py", "import asymtune.search.space", "Stages import only earlier stages"),
        # search and tracking are independent
        ("search/sweep.py", "import asymtune.tracking.mlflow_tracker", "Stages import only earlier stages"),
        # a cycle inside one package
        ("report/render.py", "import asymtune.report.build", "No import cycle"),
        # package code importing the users' re-export
        ("train/trainer.py", "import asymtune.losses", "asymtune.losses is only a re-export"),
    ],
)
def test_a_broken_contract_fails_the_check(package_copy: Path, module: str, line: str, contract: str) -> None:
    path = package_copy / "asymtune" / module
    path.write_text(path.read_text() + f"\n{line}  # injected by the test\n")
    result = _lint(package_copy)
    assert result.returncode != 0, f"{line} in {module} was not caught:\n{result.stdout[-3000:]}"
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), result.stdout[-3000:]


def test_every_package_has_an_init_and_the_package_is_typed() -> None:
    package = REPO / "asymtune"
    folders = [p for p in package.rglob("*") if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))]
    missing = [str(p.relative_to(REPO)) for p in folders if not (p / "__init__.py").is_file()]
    assert not missing, f"packages without __init__.py: {missing}"
    assert (package / "py.typed").is_file()
