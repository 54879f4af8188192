"""The built-in data shows the paper's phenomenon, and the authors' asymmetric defaults help.

Slow (about 3 minutes on 2 cores): ``make test-slow`` or ``pytest -m slow``.
"""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
STUDY = Path(__file__).resolve().parents[2] / "bench" / "effect_study.py"
SEEDS = (0, 1, 2)


def _study():
    spec = importlib.util.spec_from_file_location("effect_study", STUDY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_baseline_overfits_the_lesion_and_asymmetric_focal_reduces_it() -> None:
    study = _study()
    results = {}
    for setting in ("baseline", "asym_focal"):
        results[setting] = [
            study.run_one({
                "dataset": "synth_lesions", "data_seed": 0, "setting": setting, "seed": seed,
                "model": {"name": "unet", "base_channels": 8, "depth": 3},
                "train": {"epochs": 30, "iterations_per_epoch": 20, "batch_size": 8},
            })
            for seed in SEEDS
        ]
    for run in results["baseline"]:
        # the logit shift of method.md section 4: training voxels sit further from the boundary
        assert run["diag/median_train/lesion"] > run["diag/median_val/lesion"]
        # under-segmentation: test sensitivity clearly below test precision
        assert run["test/sensitivity/lesion"] < run["test/precision/lesion"] - 0.1

    def mean(setting: str, key: str) -> float:
        return statistics.mean(run[key] for run in results[setting])

    assert mean("asym_focal", "test/dice/lesion") > mean("baseline", "test/dice/lesion")
    assert mean("asym_focal", "diag/shift/lesion") < mean("baseline", "diag/shift/lesion")
