"""bench/reproduction.py: the jobs of the synthetic sets keep the fields stored results carry, and
the real sets train at data.train_fraction with their sweep's options and fixed rare classes."""

from __future__ import annotations

import argparse
from types import ModuleType

import pytest


def _args(reproduction: ModuleType, datasets: list[str]) -> argparse.Namespace:
    return argparse.Namespace(
        datasets=datasets, n_train=[4, 16], train_fractions=[0.5, 1.0], seeds=[0, 1], epochs=30, iterations=20,
        base_channels=8, settings=[*reproduction.SETTINGS, "tuned"], quick=False, datasets_given=True,
        rare={"brain_atlas": ["hippocampus", "amygdala"], "nuclei": ["boundary"]},
    )


def test_synthetic_jobs_keep_the_fields_of_stored_results(bench_module) -> None:
    reproduction = bench_module("reproduction")
    jobs = reproduction.make_jobs(_args(reproduction, ["synth_lesions"]), {})
    assert len(jobs) == 2 * 2 * len(reproduction.SETTINGS)  # sizes x seeds x settings, no tuned config given
    assert jobs[0] == {
        "dataset": "synth_lesions", "n_train": 4, "setting": "baseline", "seed": 0, "tuned": None,
        "model": {"name": "unet", "base_channels": 8, "depth": 3},
        "train": {"epochs": 30, "iterations_per_epoch": 20, "batch_size": 8},
    }
    stored = {key: value for key, value in jobs[0].items() if key != "tuned"}
    stored |= {"seconds": 1.0, "test/dice/lesion": 0.5}
    assert reproduction._same_job(stored, jobs[0]) and not reproduction._same_job(stored, jobs[1])


@pytest.mark.parametrize(("name", "patch"), [("brain_atlas", [48, 48]), ("nuclei", [32, 32])])
def test_real_jobs_train_at_a_fraction_with_their_sweep_options(bench_module, name: str, patch: list[int]) -> None:
    reproduction = bench_module("reproduction")
    args = _args(reproduction, [name])
    jobs = reproduction.make_jobs(args, {name: {"margin": [0.0, 0.0, 0.0]}})
    assert {job["train_fraction"] for job in jobs} == {0.5, 1.0} and all("n_train" not in job for job in jobs)
    assert {job["setting"] for job in jobs} == set(reproduction.SETTINGS) - {"baseline_patches"} | {"tuned"}
    job = jobs[0]
    assert job["train"]["patch_size"] == patch
    assert job["data"]["source"] == "nnunet"
    assert job["data"]["params"]["root"] == f"data/{reproduction.REAL[name].folder}"
    assert job["data"]["params"]["rare_classes"] == args.rare[name]  # the same at every fraction
    assert reproduction._size_key(name) == "train_fraction"
    assert "--train-fractions 0.5 1.0" in reproduction._command(args)


def test_augmentation_trains_on_the_samples_of_every_setting_where_they_lack_rare_classes(bench_module) -> None:
    reproduction = bench_module("reproduction")
    synthetic, real = reproduction._settings_table(), reproduction._settings_table(None)
    assert synthetic["asym_augmentation"][2] == {"augment": True, "patch_size": [32, 32]}
    assert real["asym_augmentation"][2] == {"augment": True} and "baseline_patches" not in real
