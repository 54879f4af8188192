"""bench/trial_breakdown.py times the parts of the real trainable; its wrapped names must exist in
the trial's module (asymtune.search.trial)."""

from __future__ import annotations

import time

import asymtune.search.trial as trial


def test_the_wrapped_calls_are_the_trainables(bench_module) -> None:
    breakdown = bench_module("trial_breakdown")
    for name in (*breakdown.SETUP_CALLS, *breakdown.DIAGNOSTIC_CALLS):
        assert callable(getattr(trial, name, None)), f"run_trial no longer calls {name}"


def test_a_nested_call_counts_for_the_outer_part(bench_module) -> None:
    breakdown = bench_module("trial_breakdown")
    timer = breakdown.PartTimer()

    def inference() -> None:
        time.sleep(0.01)

    validation = timer.wrap("validation", inference)
    diagnostics = timer.wrap("diagnostics", lambda: (validation(), validation()))
    diagnostics()
    validation()
    assert timer.seconds["diagnostics"] >= 0.02 and 0.01 <= timer.seconds["validation"] < 0.02


def test_patched_attributes_are_put_back(bench_module) -> None:
    breakdown = bench_module("trial_breakdown")

    class Owner:
        value = 1

    try:
        with breakdown.patched([(Owner, "value", 2)]):
            assert Owner.value == 2
            raise RuntimeError
    except RuntimeError:
        pass
    assert Owner.value == 1


def _record(trial: str, stage: str, training: float, checkpointing: float, total: float = 10.0) -> dict:
    seconds = {part: 0.0 for part in ("setup", "training steps", "validation", "diagnostics", "checkpointing",
                                      "tracking", "other")}
    seconds.update({"training steps": training, "checkpointing": checkpointing})
    return {"trial": trial, "stage": stage, "total": total, "seconds": seconds, "epochs": 30, "setting": "baseline"}


def test_the_last_record_of_each_trial_counts_and_the_verdict_uses_the_median(bench_module) -> None:
    breakdown = bench_module("trial_breakdown")
    records = breakdown.last_per_trial([
        _record("a", "before report", 1.0, 0.0, 1.0), _record("a", "after report", 8.0, 2.0),
        _record("b", "after report", 9.0, 1.0), _record("c", "returned", 8.2, 1.8),
    ])
    assert [r["trial"] for r in records] == ["a", "b", "c"] and records[0]["seconds"]["training steps"] == 8.0
    text = "\n".join(breakdown.summarise(records, "python bench/trial_breakdown.py", "three trials"))
    assert "| training steps | 0.820 (0.800-0.900) | 8.20 |" in text
    assert "1 of 3 trials returned from `run_trial`" in text
    assert "goal at least 0.85: missed. The largest other part is checkpointing (0.180)." in text
