"""Trainings ahead of the race (asymtune.confirm.ahead): which a later round may need, the likeliest
first; run on a real local Ray runtime, started only on free slots, handed to the round that asks for
them without running again, and dropped when the race ends."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from asymtune.confirm.ahead import RoundTrainings
from asymtune.confirm.executors import RayExecutor
from asymtune.confirm.options import ConfirmOptions, DecisionOptions
from asymtune.confirm.retrain import Confirmation, later_trainings

SLOTS = 4
WAIT_S = 120  # bounds a wait on Ray's workers; a passing run returns as soon as they are done


def _options(seeds: int = 2, max_seeds: int = 4, verdict_seeds: int = 5) -> DecisionOptions:
    return DecisionOptions(metric="val/mean_fg_dice", mode="max", confirm=ConfirmOptions(
        seeds=seeds, max_seeds=max_seeds, verdict_seeds=verdict_seeds, rivals=[]))


def _confirmation(selected: str, rivals: dict[str, Any] | None = None) -> Confirmation:
    return Confirmation(sweep_choice="c", baseline="base", candidates=["c", "d"], selected=selected, seeds=[0, 1],
                        rivals=rivals or {})


def test_later_trainings_are_the_next_seeds_of_the_leader_and_baseline_first_then_the_verdicts() -> None:
    # seeds 0 and 1 so far; the race may go to 4 seeds (2, 3), the verdict to 5 (4: leader and baseline only)
    assert later_trainings(_confirmation("c"), _options()) == [
        ("c", 2), ("base", 2), ("d", 2), ("c", 3), ("base", 3), ("d", 3), ("c", 4), ("base", 4)]
    # the baseline leads so far: it is the pair; the derived logit-offset rival is never trained
    offsets = {"logit_offset": SimpleNamespace(trial_id="rival-logit_offset")}
    assert later_trainings(_confirmation("base", offsets), _options(verdict_seeds=3)) == [
        ("base", 2), ("c", 2), ("d", 2), ("base", 3), ("c", 3), ("d", 3)]
    # no race (max_seeds = seeds) and no more verdict seeds: nothing later
    assert later_trainings(_confirmation("c"), _options(max_seeds=2, verdict_seeds=2)) == []


def _train(job: tuple[str, ...]) -> str:
    """A stand-in training job run by Ray's workers: it notes its start in ``<directory>/ran`` and,
    given a gate, runs until the file ``<directory>/<gate>`` exists."""
    directory, name, *gate = job
    with open(Path(directory) / "ran", "a") as ran:
        ran.write(name + "\n")
    deadline = time.monotonic() + WAIT_S
    while gate and not (Path(directory) / gate[0]).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return name.upper()


def _ran(directory: Path) -> list[str]:
    path = directory / "ran"
    return path.read_text().split() if path.is_file() else []


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(0.05)


@pytest.fixture
def ray_slots() -> Any:
    """A local Ray runtime of ``SLOTS`` CPUs, all free; this module's functions pickled by value
    (Ray's workers cannot import a test module)."""
    import ray

    ray.init(num_cpus=SLOTS, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        _wait(lambda: ray.available_resources().get("CPU") == SLOTS, "all CPUs free")
        yield ray
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()


@pytest.mark.e2e
def test_trainings_ahead_take_the_free_slots_and_a_later_round_gets_them_without_a_rerun(
        ray_slots: Any, tmp_path: Path) -> None:
    def job(name: str, gate: str | None = None) -> tuple[str, ...]:
        return (str(tmp_path), name, gate) if gate else (str(tmp_path), name)

    rounds = RoundTrainings(RayExecutor({"cpu": 1, "gpu": 0}), ahead=True, poll_s=0.25, settle_s=2.0)
    later = [job(name, "go-later") for name in "cdef"]
    first: dict[int, str] = {}
    waiting = threading.Thread(target=lambda: first.update(rounds.run(_train, [job("a", "go-a"), job("b")], later)))
    waiting.start()
    try:
        # 4 free slots, 2 taken by the round: c and d start with it; b ends at once, and its slot,
        # free at two polls, takes e while a waits; then no slot is free (a, c, d, e run): f waits
        _wait(lambda: {"a", "b", "c", "d", "e"} <= set(_ran(tmp_path)), "c and d with the round, e on b's slot")
        polls = rounds.polls
        _wait(lambda: rounds.polls >= polls + 3, "three more polls while a runs")
        assert rounds.topped_up == 1, "only e: no slot was free for f"
        assert "f" not in _ran(tmp_path)
    finally:
        (tmp_path / "go-a").touch()
        waiting.join(WAIT_S)
    assert first == {0: "A", 1: "B"}
    (tmp_path / "go-later").touch()
    second = dict(rounds.run(_train, [later[0], later[2], later[3]], later=[]))
    assert second == {0: "C", 1: "E", 2: "F"}
    assert rounds.used == 2, "c (with the first round) and e (while it waited) came from their runs ahead; f did not"
    assert rounds.close() == 1, "d: run ahead, asked for by no round, dropped"
    assert sorted(_ran(tmp_path)) == ["a", "b", "c", "d", "e", "f"], "each ran once: c and e were not trained again"


@pytest.mark.e2e
def test_without_ahead_only_the_rounds_trainings_run(ray_slots: Any, tmp_path: Path) -> None:
    rounds = RoundTrainings(RayExecutor({"cpu": 1, "gpu": 0}), ahead=False)
    assert dict(rounds.run(_train, [(str(tmp_path), "a")], later=[(str(tmp_path), "b")])) == {0: "A"}
    assert rounds.close() == 0 and rounds.used == 0
    assert _ran(tmp_path) == ["a"]
