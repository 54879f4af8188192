"""bench/decision_study.py: what it keeps of a report.json, the block it renders from its JSON file
alone (intervals recomputed from the per-seed values, the acceptance criteria in words), and its
resume rule (a finished repeat is taken as it is, an unfinished one is run again with the same
command). No sweep runs: the report files are written by hand, and a stand-in for the `asymtune`
command writes one where a run is expected."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

METRIC = "test/mean_fg_dice"
SEEDS = [0, 1, 2]
BASELINE = [0.56, 0.57, 0.58]
FOCAL = [0.61, 0.61, 0.65]
OFFSET = [0.57, 0.58, 0.58]


def _interval(mean: float, low: float, high: float) -> dict[str, float]:
    return {"mean": mean, "low": low, "high": high, "n": 3, "confidence": 0.95}


def _report(export: list[float], is_: str = "tuned", verdict: dict[str, float] | None = None,
            vs_focal: dict[str, float] | None = None) -> dict[str, Any]:
    """A report.json with one dataset "toy" as `asymtune tune` writes it (the fields the study reads)."""
    selected = {"tuned": "t7", "baseline": "t0"}[is_]
    rivals = [
        {"name": "baseline", "values": BASELINE, "export_vs_it": verdict},
        {"name": "logit_offset", "values": OFFSET, "export_vs_it": None},
        {"name": "authors_focal", "trial_id": "rival-authors_focal", "values": FOCAL, "export_vs_it": vs_focal},
        {"name": "export", "is": is_, "trial_id": selected, "values": export, "export_vs_it": None},
    ]
    return {
        "sweep_id": "abc", "objective": {"metric": "val/mean_fg_dice", "mode": "max"},
        "datasets": {"toy": {
            "classes": ["background", "lesion"], "selected": selected, "baseline": "t0",
            "setting": "focal gamma 2.00 (background)" if is_ == "tuned" else "baseline (no asymmetry)",
            "confirmed": True, "notes": [],
            "results": {"seeds": SEEDS, "test": {"selected": {METRIC: {"values": export}},
                                                 "baseline": {METRIC: {"values": BASELINE}}}},
            "decision": {
                "metric": METRIC, "mode": "max", "seeds_per_setting": 3, "confidence": 0.95,
                "interval": verdict, "significant": bool(verdict and verdict["low"] > 0),
                "smallest_detectable_gain": None if verdict is None else (verdict["high"] - verdict["low"]) / 2,
                "verdict": "(the verdict in words)", "rivals": rivals, "best_rival": "authors_focal",
                "export_beats_best_rival": False,
                "race": {"reason": "better", "seeds": 3, "max_seeds": 4, "sentence": "(the race in words)"},
            },
        }},
    }


# By hand: t_{0.975, 2} = 4.302653; with 3 seeds the half-width is 4.302653 * sd / sqrt(3) = 2.484138 * sd.
# Sweep seed 0: export - baseline = [0.04, 0.05, 0.06]: mean 0.05, sd 0.01, half 0.024841;
#               export - authors_focal = [-0.01, 0.01, -0.01]: mean -0.003333, sd 0.011547, half 0.028685.
SEED0 = _report([0.60, 0.62, 0.64], verdict=_interval(0.05, 0.025159, 0.074841),
                vs_focal=_interval(-0.003333, -0.032018, 0.025352))
# Sweep seed 1: the export is the baseline: difference 0 on every seed (interval [0, 0]);
#               baseline - authors_focal = [-0.05, -0.04, -0.07]: mean -0.053333, sd 0.015275, half 0.037946.
SEED1 = _report(BASELINE, is_="baseline", verdict=_interval(0.0, 0.0, 0.0),
                vs_focal=_interval(-0.053333, -0.091279, -0.015388))
# Sweep seed 2: export - baseline = [-0.06, -0.05, -0.07]: mean -0.06, sd 0.01 (half 0.024841); the baseline's
#               spread over its seeds is 0.01, so the export is 0.05 worse than the spread allows;
#               export - authors_focal = [-0.11, -0.09, -0.14]: mean -0.113333, sd 0.025166, half 0.062515.
SEED2 = _report([0.50, 0.52, 0.51], verdict=_interval(-0.06, -0.084841, -0.035159),
                vs_focal=_interval(-0.113333, -0.175849, -0.050818))


def _record(study: ModuleType, seed: int, report: dict[str, Any], minutes: float = 10.0) -> dict[str, Any]:
    repeat = study.Repeat("builtin", "default", seed)
    compute = {"toy": {"sweep_trials": 8, "sweep_epochs": 90, "sweep_seconds": 300.0, "epochs_per_training": 20,
                       "confirmation_trainings": 14, "confirmation_reused_trials": 2}}
    wall = {"command": "asymtune tune", "attempts": [{"seconds": minutes * 60, "returncode": 0, "load_at_start": 1.0}]}
    budget = {"num_samples": 8, "epochs": 20, "confirm_seeds": 2, "confirm_max_seeds": 4, "rivals": ["authors_focal"]}
    return study.repeat_record(repeat, report, wall, False, compute, budget, Path("/tmp/x"))


def test_collection_keeps_the_export_the_verdict_the_best_rival_and_every_per_seed_value(bench_module) -> None:
    study = bench_module("decision_study")
    toy = study.collect_report(SEED0)["toy"]
    assert toy["export"] == {"is": "tuned", "trial_id": "t7", "setting": "focal gamma 2.00 (background)"}
    assert toy["confirmation_seeds"] == SEEDS and toy["metric"] == METRIC and toy["mode"] == "max"
    assert toy["values"] == {"baseline": BASELINE, "logit_offset": OFFSET, "authors_focal": FOCAL,
                             "export": [0.60, 0.62, 0.64]}
    assert toy["verdict"]["interval"]["low"] == 0.025159 and toy["verdict"]["significant"] is True
    assert toy["verdict"]["seeds_per_setting"] == 3
    assert toy["best_rival"]["name"] == "authors_focal" and toy["best_rival"]["export_vs_it"]["mean"] == -0.003333
    assert toy["race"]["reason"] == "better"
    # A report without rival entries still gives the export's and the baseline's values (its confirmed results).
    bare = json.loads(json.dumps(SEED0))
    bare["datasets"]["toy"]["decision"]["rivals"] = []
    assert study.collect_report(bare)["toy"]["values"] == {"export": [0.60, 0.62, 0.64], "baseline": BASELINE}


def test_intervals_are_recomputed_from_the_per_seed_values_and_match_the_report(bench_module) -> None:
    study = bench_module("decision_study")
    for report in (SEED0, SEED1, SEED2):
        toy = study.collect_report(report)["toy"]
        measured = study.measures(toy)
        for mine, theirs in ((measured["vs_baseline"], toy["verdict"]["interval"]),
                             (measured["vs_best"], toy["best_rival"]["export_vs_it"])):
            assert mine["mean"] == pytest.approx(theirs["mean"], abs=1e-6)
            assert mine["low"] == pytest.approx(theirs["low"], abs=1e-6)
            assert mine["high"] == pytest.approx(theirs["high"], abs=1e-6)
    assert study.measures(study.collect_report(SEED0)["toy"])["spread"] == pytest.approx(0.01)


def test_a_rival_with_fewer_seeds_than_the_export_is_compared_on_the_seeds_they_share(bench_module) -> None:
    """The export and the baseline have a fourth seed (``confirm.verdict_seeds``), authors_focal only
    the race's 3: the export against it pairs the first 3 seeds (as the report does, SEED0's
    interval), the verdict all 4 (by hand: differences 0.04, 0.05, 0.06, 0.05: mean 0.05, sd
    0.008165, half t_{0.975,3} 3.182446 * 0.008165 / 2 = 0.012992)."""
    study = bench_module("decision_study")
    report = json.loads(json.dumps(SEED0))
    for rival in report["datasets"]["toy"]["decision"]["rivals"]:
        rival["seeds"] = SEEDS if rival["name"] in ("authors_focal", "logit_offset") else [*SEEDS, 3]
        if rival["name"] in ("baseline", "export"):
            rival["values"] = [*rival["values"], 0.50 if rival["name"] == "baseline" else 0.55]
    toy = study.collect_report(report)["toy"]
    assert toy["seeds"]["authors_focal"] == SEEDS and toy["seeds"]["export"] == [0, 1, 2, 3]
    measured = study.measures(toy)
    assert measured["vs_best"]["n"] == 3 and measured["vs_best"]["mean"] == pytest.approx(-0.003333, abs=1e-6)
    assert measured["vs_best"]["low"] == pytest.approx(-0.032018, abs=1e-6)
    assert measured["vs_baseline"]["n"] == 4 and measured["vs_baseline"]["mean"] == pytest.approx(0.05)
    assert measured["vs_baseline"]["low"] == pytest.approx(0.05 - 0.012992, abs=1e-5)


def test_the_block_has_one_row_per_sweep_seed_and_the_criteria_in_words(bench_module) -> None:
    study = bench_module("decision_study")
    data = {"repeats": [_record(study, seed, report) for seed, report in enumerate((SEED0, SEED1, SEED2))]}
    block = "\n".join(study.render(data, "python bench/decision_study.py --seeds 0 1 2"))
    assert block.startswith("Command: `python bench/decision_study.py --seeds 0 1 2`")
    assert ("| 0 | tuned (t7) | +0.050 [+0.025, +0.075] | 3 | yes | 0.010 | authors_focal | -0.003 [-0.032, +0.025] "
            "| 90 (8 trials) | 14 | 10.0 |") in block
    assert ("| 1 | baseline | +0.000 [+0.000, +0.000] | 3 | no | 0.010 | authors_focal | -0.053 [-0.091, -0.015] "
            "|") in block
    assert "| 2 | tuned (t7) | -0.060 [-0.085, -0.035] | 3 | no |" in block
    assert ("Never worse than the baseline by more than the seed spread: **not met** in 1 of 3 repeats (sweep seed 2: "
            "gain -0.060 [-0.085, -0.035], 0.050 beyond the seed spread 0.010)") in block
    assert ("A gain over the baseline whose 95% interval excludes 0: met in 1 of 3 repeats (sweep seed 0: "
            "+0.050 [+0.025, +0.075]); not better at this confidence in the others (sweep seed 1: "
            "+0.000 [+0.000, +0.000]; sweep seed 2: -0.060 [-0.085, -0.035])") in block
    assert ("At least as good as the best rival (the mean paired difference at least 0): **not met** in 3 of 3 repeats "
            "(sweep seed 0: below authors_focal by 0.003, -0.003 [-0.032, +0.025], not worse at 95%; sweep seed 1: "
            "below authors_focal by 0.053, -0.053 [-0.091, -0.015], worse at 95%;") in block
    assert "the shipped defaults: 8 trials per dataset of 20 epochs, a confirmation race of 2 to 4 seeds" in block


def test_criteria_that_hold_are_said_to_be_met(bench_module) -> None:
    study = bench_module("decision_study")
    data = {"repeats": [_record(study, 0, SEED0)]}
    data["repeats"][0]["datasets"]["toy"]["values"]["authors_focal"] = [0.58, 0.59, 0.60]  # now below the export
    block = "\n".join(study.render(data, "c"))
    assert "seed spread: met in 1 of 1 repeat; the lowest gain is +0.050 (sweep seed 0, seed spread 0.010)" in block
    assert "excludes 0: met in 1 of 1 repeat (sweep seed 0: +0.050 [+0.025, +0.075])." in block
    # export - focal = [0.02, 0.03, 0.04]: mean 0.03, sd 0.01: [+0.005, +0.055], better at 95%
    assert "at least 0): met in 1 of 1 repeat; better at 95% in 1 of them." in block


def _finish(output_dir: Path, report: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.json").write_text(json.dumps(report))


def test_a_finished_repeat_is_taken_and_an_unfinished_one_runs_again_with_the_same_command(
    bench_module, tmp_path: Path
) -> None:
    study = bench_module("decision_study")
    root, json_path = tmp_path / "root", tmp_path / "docs" / "study.json"
    repeats = [study.Repeat("builtin", "default", seed) for seed in (0, 1, 2)]
    _finish(root / repeats[0].name, SEED0)  # finished by an earlier invocation
    (root / f"{repeats[0].name}.wall.json").write_text(json.dumps(
        {"command": "asymtune tune", "attempts": [{"seconds": 600.0, "returncode": 0, "load_at_start": 1.0}]}))
    (root / repeats[1].name).mkdir()  # interrupted: a folder without a report
    _finish(root / repeats[2].name, SEED2)  # a report, but its last command failed: run again
    (root / f"{repeats[2].name}.wall.json").write_text(json.dumps(
        {"command": "asymtune tune", "attempts": [{"seconds": 60.0, "returncode": 1, "load_at_start": 1.0}]}))
    other = {**_record(study, 0, SEED0), "group": "nuclei"}  # another group's record stays in the file
    study.write_json(json_path, [other])
    calls = []

    def runner(arguments: list[str], log: Path) -> int:  # stands in for `asymtune tune`: writes its report
        calls.append(arguments)
        output_dir = Path(next(a for a in arguments if a.startswith("output_dir=")).partition("=")[2])
        _finish(output_dir, SEED1 if "search.seed=1" in arguments else SEED2)
        return 0

    records = study.run_study(repeats, root, json_path, runner)
    assert [a[-2:] for a in calls] == [["search.seed=1", f"output_dir={root / repeats[1].name}"],
                                       ["search.seed=2", f"output_dir={root / repeats[2].name}"]]
    assert calls[0] == ["tune", "search.seed=1", f"output_dir={root / repeats[1].name}"]  # the default command
    assert [r["taken_from_earlier_invocation"] for r in records] == [True, False, False]
    assert records[0]["wall_seconds"] == 600.0 and records[0]["datasets"]["toy"]["export"]["is"] == "tuned"
    assert records[2]["wall_seconds"] == pytest.approx(60.0 + records[2]["attempts"][1]["seconds"])
    stored = json.loads(json_path.read_text())["repeats"]
    assert [(r["group"], r["sweep_seed"]) for r in stored] == [("nuclei", 0), ("builtin", 0), ("builtin", 1),
                                                               ("builtin", 2)]
    calls.clear()
    again = study.run_study(repeats, root, json_path, runner)  # everything finished now: nothing runs
    assert calls == [] and all(r["taken_from_earlier_invocation"] for r in again)


def test_commands_of_the_groups_and_budgets(bench_module, tmp_path: Path) -> None:
    study = bench_module("decision_study")
    out = tmp_path / "o"
    assert study.Repeat("brain_atlas", "larger", 2).arguments(out) == [
        "tune", "experiment=brain_atlas", "search.num_samples=16", "confirm.max_seeds=6", "search.seed=2",
        f"output_dir={out}"]
    assert study.Repeat("builtin", "default", 0, "smoke").name == "builtin-default-smoke-seed0"


def test_render_only_reads_the_json_file_and_shows_the_selected_repeats(bench_module, tmp_path: Path) -> None:
    study = bench_module("decision_study")
    json_path, out = tmp_path / "study.json", tmp_path / "block.md"
    study.write_json(json_path, [_record(study, 0, SEED0), {**_record(study, 1, SEED1), "budget": "larger"}])
    assert study.main(["--render-only", "--seeds", "0", "1", "--json", str(json_path), "--out", str(out)]) == 0
    block = out.read_text()
    assert f"--datasets builtin --seeds 0 1 --json {json_path}`" in block
    assert "| 0 | tuned (t7) |" in block and "| 1 |" not in block  # seed 1 was measured with the larger budget
    with pytest.raises(SystemExit):
        study.main(["--render-only", "--datasets", "nuclei", "--experiment", "smoke", "--json", str(json_path)])
