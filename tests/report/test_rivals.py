"""The rivals table: each rival's paired intervals against the baseline and the export's against it."""

from __future__ import annotations

import pytest

from asymtune.confirm.jobs import OFFSET_METRIC
from asymtune.confirm.retrain import Confirmation
from asymtune.confirm.stats import paired_difference
from asymtune.method.settings import baseline
from asymtune.report.results import ConfirmedResults
from asymtune.report.rivals import best_rival, rivals, rivals_sentence
from asymtune.results.trials import TrialRecord
from asymtune.tracking.confirmation import ConfirmationRun

METRIC = "test/mean_fg_dice"
CLASSES = ("background", "lesion")


def _setup(offset_values: list[float]) -> tuple[Confirmation, ConfirmedResults]:
    """A confirmation of 3 seeds: baseline 0.50-0.52, the export 0.56-0.58, the logit-offset rival
    ``offset_values`` (its offsets 0, 0.25, 0.5)."""
    offset = TrialRecord("rival-logit_offset", {}, baseline(2))
    runs = [ConfirmationRun(f"b{s}", "base", s, "baseline", "tested", {METRIC: 0.50 + s / 100}) for s in range(3)]
    runs += [ConfirmationRun(f"o{s}", offset.trial_id, s, "rival", "tested",
                             {METRIC: offset_values[s], f"{OFFSET_METRIC}/lesion": 0.25 * s}) for s in range(3)]
    confirmation = Confirmation("sel", "base", ["sel"], "sel", [0, 1, 2], runs, rivals={"logit_offset": offset})
    results = ConfirmedResults(seeds=[0, 1, 2], values={
        "selected": {METRIC: [0.56, 0.58, 0.57]}, "baseline": {METRIC: [0.50, 0.51, 0.52]}})
    return confirmation, results


def test_rivals_are_paired_by_seed() -> None:
    confirmation, results = _setup([0.55, 0.57, 0.59])
    baseline, offset, export = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    assert [baseline["name"], offset["name"], export["name"]] == ["baseline", "logit_offset", "export"]
    expected = paired_difference([0.55, 0.57, 0.59], [0.50, 0.51, 0.52], 0.95)
    assert offset["vs_baseline"]["mean"] == pytest.approx(expected.mean)
    assert offset["vs_baseline"]["low"] == pytest.approx(expected.low)
    assert offset["export_vs_it"]["mean"] == pytest.approx((0.01 + 0.01 - 0.02) / 3)
    assert offset["offsets"] == {"lesion": [0.0, 0.25, 0.5]}
    assert export["vs_baseline"]["mean"] == pytest.approx(0.06)
    assert best_rival([baseline, offset, export], "max")["name"] == "logit_offset"
    assert best_rival([baseline, offset, export], "min")["name"] == "baseline"


def test_a_rival_without_values_for_every_seed_is_left_out() -> None:
    confirmation, results = _setup([0.55, 0.57, 0.59])
    confirmation.runs[5].metrics.pop(METRIC)  # the offset rival's seed 2
    assert [entry["name"] for entry in rivals(confirmation, results, METRIC, CLASSES, 0.95)] == ["baseline", "export"]


def _with_trained_rival(focal_values: list[float], selected: str = "sel") -> tuple[Confirmation, ConfirmedResults]:
    confirmation, results = _setup([0.55, 0.57, 0.59])
    focal = TrialRecord("rival-authors_focal", {}, baseline(2))
    confirmation.rivals["authors_focal"] = focal
    confirmation.selected = selected
    confirmation.runs += [ConfirmationRun(f"f{s}", focal.trial_id, s, "rival", "tested", {METRIC: v})
                          for s, v in enumerate(focal_values)]
    return confirmation, results


def test_a_trained_rival_is_paired_with_the_baseline_and_the_export() -> None:
    confirmation, results = _with_trained_rival([0.60, 0.61, 0.65])
    entries = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    assert [e["name"] for e in entries] == ["baseline", "logit_offset", "authors_focal", "export"]
    focal = entries[2]
    assert focal["vs_baseline"]["mean"] == pytest.approx((0.10 + 0.10 + 0.13) / 3)
    assert focal["export_vs_it"]["mean"] == pytest.approx((-0.04 - 0.03 - 0.08) / 3)
    assert entries[-1]["is"] == "tuned" and "trial sel" in entries[-1]["description"]
    assert best_rival(entries, "max")["name"] == "authors_focal"
    sentence = rivals_sentence(entries, "max", 0.95)
    d = paired_difference([0.56, 0.58, 0.57], [0.60, 0.61, 0.65], 0.95)
    assert sentence == (f"the export (the tuned setting of trial sel) against the best rival, authors_focal: "
                        f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}], "
                        + ("worse at 95%" if d.high < 0 else "not better at 95%"))


def test_an_exported_rival_is_named_and_not_its_own_rival() -> None:
    confirmation, results = _with_trained_rival([0.56, 0.58, 0.57], selected="rival-authors_focal")
    entries = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    assert [e["name"] for e in entries] == ["baseline", "logit_offset", "export"]
    assert entries[-1]["is"] == "authors_focal" and "rival authors_focal" in entries[-1]["description"]


def test_the_sentence_says_better_only_when_the_interval_excludes_zero() -> None:
    confirmation, results = _with_trained_rival([0.40, 0.41, 0.42])
    entries = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    best = best_rival(entries, "max")
    assert best["name"] == "logit_offset"  # 0.57 mean, above the baseline's 0.51 and focal's 0.41
    assert rivals_sentence(entries, "max", 0.95).endswith("not better at 95%")  # +0.000 [-0.03, +0.03]
    assert rivals_sentence([e for e in entries if e["name"] in ("authors_focal", "export")], "max", 0.95).endswith(
        "better at 95%") and "not better" not in rivals_sentence(
        [e for e in entries if e["name"] in ("authors_focal", "export")], "max", 0.95)


def test_an_exported_logit_offset_keeps_its_offsets() -> None:
    confirmation, results = _setup([0.56, 0.58, 0.57])
    confirmation.selected = "rival-logit_offset"
    entries = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    assert [e["name"] for e in entries] == ["baseline", "export"]
    assert entries[-1]["is"] == "logit_offset" and entries[-1]["offsets"] == {"lesion": [0.0, 0.25, 0.5]}


def test_rivals_are_paired_on_the_race_seeds_when_the_export_has_the_verdicts_seeds() -> None:
    """The export and the baseline have a fourth seed (``confirm.verdict_seeds``), the rival only the
    race's 3: its intervals pair it with them on those 3, and the best rival is chosen by that
    paired gain (+0.013), not by its mean (0.523), which is below the baseline's over 4 seeds (0.558)."""
    confirmation, _ = _setup([0.51, 0.53, 0.53])  # over the baseline's 0.50, 0.51, 0.52
    confirmation.verdict_seeds = [3]
    confirmation.runs.append(ConfirmationRun("b3", "base", 3, "baseline", "tested", {METRIC: 0.70}))
    results = ConfirmedResults(seeds=[0, 1, 2, 3], values={
        "selected": {METRIC: [0.56, 0.58, 0.57, 0.72]}, "baseline": {METRIC: [0.50, 0.51, 0.52, 0.70]}})
    baseline, offset, export = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    assert offset["seeds"] == [0, 1, 2] and export["seeds"] == baseline["seeds"] == [0, 1, 2, 3]
    assert offset["vs_baseline"] == paired_difference([0.51, 0.53, 0.53], [0.50, 0.51, 0.52], 0.95).to_dict()
    assert offset["export_vs_it"] == paired_difference([0.56, 0.58, 0.57], [0.51, 0.53, 0.53], 0.95).to_dict()
    assert export["vs_baseline"]["n"] == 4 and export["vs_baseline"]["mean"] == pytest.approx(0.05)
    assert offset["test"]["mean"] < baseline["test"]["mean"]
    assert best_rival([baseline, offset, export], "max")["name"] == "logit_offset"
    assert best_rival([baseline, offset, export], "min")["name"] == "baseline"
