"""A confirmation task's worker imports what training needs, not the driver's stores."""

from __future__ import annotations

import subprocess
import sys

# what a confirmation task's worker unpickles: the job functions and the niceness wrapper
WORKER_IMPORTS = "import asymtune.confirm.jobs, asymtune.search.priority"
DRIVER_ONLY = ("mlflow", "optuna", "scipy", "matplotlib", "ray.tune")


def test_a_confirmation_worker_imports_no_driver_store() -> None:
    probe = (
        f"import sys; {WORKER_IMPORTS}; "
        f"print(' '.join(name for name in {DRIVER_ONLY!r} if name in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_the_probe_sees_a_driver_import() -> None:
    # the same probe on the driver's module does see them (the test above can fail)
    probe = "import sys, asymtune.confirm.retrain; print('mlflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
