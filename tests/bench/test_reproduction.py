"""bench/reproduction.py: the jobs of the synthetic sets keep the fields stored results carry, and
the real sets train at data.train_fraction with their sweep's options and fixed rare classes; the
tables pair each setting with the baseline over seeds, and --render-only prints them from records."""

from __future__ import annotations

import argparse
import json
import math
from types import ModuleType
from typing import Any

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


T_975_2 = 4.302652729911275  # the 0.975 quantile of Student's t with 2 degrees of freedom
DICE = {  # test Dice of lesion per (setting, n_train): seeds 0, 1, 2
    ("baseline", 4): [0.10, 0.20, 0.15], ("asym_margin", 4): [0.18, 0.27, 0.24],  # gains 0.08, 0.07, 0.09
    ("baseline", 16): [0.50, 0.52, 0.54], ("asym_margin", 16): [0.55, 0.49, 0.56],  # gains 0.05, -0.03, 0.02
}


def _records(reproduction: ModuleType, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Hand-made records of the jobs of ``args`` (synth_lesions): Dice from DICE, the other values fixed."""
    records = []
    for job in reproduction.make_jobs(args, {}):
        record = {key: value for key, value in job.items() if key != "tuned"} | {"seconds": 1.0}
        record |= {"test/dice/lesion": DICE[(job["setting"], job["n_train"])][job["seed"]]}
        record |= {f"{kind}/lesion": 0.5 for kind in ("test/sensitivity", "test/precision")}
        record |= {f"shift/{kind}/lesion": 1.0 for kind in ("median_train", "median_val", "shift")}
        records.append(record)
    return records


def _render_args(reproduction: ModuleType, seeds: list[int]) -> argparse.Namespace:
    args = _args(reproduction, ["synth_lesions"])
    args.seeds, args.settings, args.figure_dir = seeds, ["baseline", "asym_margin"], None
    return args


def _interval(gains: list[float]) -> str:
    """The paired interval by hand: mean ± t * sd / sqrt(n), as the tables print it."""
    mean = sum(gains) / 3
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / 2)
    half = T_975_2 * sd / math.sqrt(3)
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def test_tables_give_the_paired_interval_against_the_baseline(bench_module) -> None:
    reproduction = bench_module("reproduction")
    args = _render_args(reproduction, [0, 1, 2])
    records = _records(reproduction, args)
    block = "\n".join(reproduction.render(records, args, {}, {}))
    small = _interval([0.08, 0.07, 0.09])  # +0.080 [+0.055, +0.105]: excludes 0
    large = _interval([0.05, -0.03, 0.02])  # +0.013 [-0.087, +0.114]: holds 0
    assert small == "+0.080 [+0.055, +0.105]" and large == "+0.013 [-0.087, +0.114]"
    assert f"| asym_margin | 0.230 ± 0.046, **{small}** | 0.533 ± 0.038, {large} |" in block
    assert "| baseline | 0.150 ± 0.050 | 0.520 ± 0.020 |" in block
    assert f"| lesion | asym_margin | 0.230 ± 0.046, **{small}** | 0.500 ± 0.000 |" in block  # per class, n_train=4
    assert "paired over the training seeds" in block and "**bold**: the interval excludes 0" in block
    # A seed the baseline lacks is left out of the pairs (seeds 0 and 1 pair: gains 0.08 and 0.07).
    rows = [r for r in records if r["n_train"] == 4 and r["setting"] == "asym_margin"]
    base = [r for r in records if r["n_train"] == 4 and r["setting"] == "baseline" and r["seed"] != 2]
    pairs = reproduction._paired(rows, base, "test/dice/lesion")
    assert pairs.n == 2 and pairs.mean == pytest.approx(0.075)


def test_one_seed_gives_the_difference_without_an_interval(bench_module) -> None:
    reproduction = bench_module("reproduction")
    args = _render_args(reproduction, [0])
    block = "\n".join(reproduction.render(_records(reproduction, args), args, {}, {}))
    assert "| asym_margin | 0.180 ± 0.000, +0.080 (1 seed: no interval) | 0.550 ± 0.000, +0.050 (1 seed: no " \
           "interval) |" in block
    assert "nan" not in block


def test_render_only_prints_the_block_of_the_run(bench_module, tmp_path, capsys) -> None:
    """A run whose trainings are all in --json (--resume: it trains none) and --render-only print the same."""
    reproduction = bench_module("reproduction")
    path = tmp_path / "reproduction.json"
    path.write_text(json.dumps(_records(reproduction, _render_args(reproduction, [0, 1, 2]))))
    options = ["--datasets", "synth_lesions", "--n-train", "4", "16", "--seeds", "0", "1", "2",
               "--settings", "baseline", "asym_margin", "--json", str(path)]
    assert reproduction.main([*options, "--resume"]) == 0
    run = capsys.readouterr().out
    assert reproduction.main([*options, "--render-only"]) == 0
    assert capsys.readouterr().out == run
    assert run.startswith("Command: `python bench/reproduction.py --datasets synth_lesions --n-train 4 16 --seeds "
                          "0 1 2 --epochs 30 --settings baseline asym_margin` (U-Net")
    assert f"**{_interval([0.08, 0.07, 0.09])}**" in run


def test_render_only_names_the_file_and_the_missing_field(bench_module, tmp_path) -> None:
    reproduction = bench_module("reproduction")
    records = _records(reproduction, _render_args(reproduction, [0, 1, 2]))
    del records[0]["shift/shift/lesion"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(records))
    with pytest.raises(SystemExit, match=r"old\.json: .* no field 'shift/shift/lesion'"):
        reproduction.main(["--datasets", "synth_lesions", "--seeds", "0", "1", "2", "--settings", "baseline",
                           "asym_margin", "--json", str(path), "--render-only"])


def test_augmentation_is_paired_against_the_baseline_on_the_same_patches_where_there_is_one(bench_module) -> None:
    reproduction = bench_module("reproduction")
    with_patches = ["baseline", "asym_focal", "baseline_patches", "asym_augmentation", "sym_augmentation"]
    assert [reproduction._reference(s, with_patches) for s in with_patches] == [
        "baseline", "baseline", "baseline", "baseline_patches", "baseline_patches"]
    without = ["baseline", "asym_augmentation"]  # a real set whose augmentation trains on every setting's samples
    assert reproduction._reference("asym_augmentation", without) == "baseline"
