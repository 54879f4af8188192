"""The built-in data shows the paper's phenomenon: the baseline memorises the rare lesion and
under-segments it on the test images. Slow (about 2 minutes on 2 cores): ``make test-slow`` or ``pytest -m slow``.
"""

from __future__ import annotations

import importlib.util
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


def test_the_baseline_overfits_the_lesion_on_every_seed() -> None:
    """The phenomenon, seed by seed. (The authors' focal loss is not asserted to help: its gain on this
    set is within the seeds' noise, docs/results.md gives the paired interval; a float-level change of
    the loss's arithmetic turned the 3-seed mean gain of 0.019 into -0.006.)"""
    study = _study()
    for seed in SEEDS:
        run = study.run_one({
            "dataset": "synth_lesions", "data_seed": 0, "setting": "baseline", "seed": seed,
            "model": {"name": "unet", "base_channels": 8, "depth": 3},
            "train": {"epochs": 30, "iterations_per_epoch": 20, "batch_size": 8},
        })
        assert run["train/sensitivity/lesion"] > 0.95, "the training lesions are memorised"
        # the logit shift of method.md section 4: training voxels sit further from the boundary
        assert run["diag/median_train/lesion"] > run["diag/median_val/lesion"]
        # under-segmentation: test sensitivity clearly below test precision
        assert run["test/sensitivity/lesion"] < run["test/precision/lesion"] - 0.1
