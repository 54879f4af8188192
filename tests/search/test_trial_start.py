"""How a trial's worker starts: the trainable's module imports nothing heavy, so an actor starts
as fast as Ray's own worker (the order trials start in: tests/search/test_scheduler.py)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "mlflow", "optuna", "matplotlib", "asymtune.search.trial", "asymtune.data", "asymtune.train")


def test_the_trainable_module_imports_nothing_heavy() -> None:
    code = ("import json, sys; import asymtune.search.trainable as t; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules] + [callable(t.run_trial)]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    assert loaded == [True], f"importing asymtune.search.trainable loads {loaded[:-1]}"
