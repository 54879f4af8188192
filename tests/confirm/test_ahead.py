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


def _train(job: tuple[str, str]) -> str:
    """A stand-in training job run by Ray's workers: it notes its run in ``<directory>/ran``."""
    directory, name = job
    with open(Path(directory) / "ran", "a") as ran:
        ran.write(name + "\n")
    return name.upper()


def _train_held(job: tuple[str, str]) -> str:
    """:func:`_train`, but a job named ``held*`` ends only once ``<directory>/release`` exists."""
    directory, name = job
    while name.startswith("held") and not (Path(directory) / "release").exists():
        time.sleep(0.05)
    return _train(job)


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
    def job(name: str) -> tuple[str, str]:
        return (str(tmp_path), name)

    rounds = RoundTrainings(RayExecutor({"cpu": 1, "gpu": 0}), ahead=True)
    first = dict(rounds.run(_train, [job("a"), job("b")], later=[job("c"), job("d"), job("e")]))
    assert first == {0: "A", 1: "B"}
    # 4 free slots, 2 taken by the round: the 2 likeliest later trainings run ahead, not the third
    _wait(lambda: {"c", "d"} <= set(_ran(tmp_path)), "c and d run ahead")
    # and when a or b ended, its slot took e (slots that come free: the test below)
    _wait(lambda: "e" in _ran(tmp_path), "e runs ahead on a slot a or b freed")
    second = dict(rounds.run(_train, [job("c"), job("e")], later=[]))
    assert second == {0: "C", 1: "E"}
    assert rounds.used == 2, "c and e came from their runs ahead"
    assert rounds.close() == 1, "d: run ahead, asked for by no round, dropped"
    assert sorted(_ran(tmp_path)) == ["a", "b", "c", "d", "e"], "each ran once: c was not trained again"


def _round_in_thread(rounds: RoundTrainings, *args: Any) -> tuple[threading.Thread, dict[int, str]]:
    """Run ``rounds.run(*args)`` to its end in a thread (the round waits on a held job)."""
    results: dict[int, str] = {}
    thread = threading.Thread(target=lambda: results.update(rounds.run(*args)), daemon=True)
    thread.start()
    return thread, results


@pytest.mark.e2e
def test_slots_that_come_free_during_a_round_take_more_trainings_ahead(ray_slots: Any, tmp_path: Path) -> None:
    def job(name: str) -> tuple[str, str]:
        return (str(tmp_path), name)

    rounds = RoundTrainings(RayExecutor({"cpu": 1, "gpu": 0}), ahead=True)
    later = [job(name) for name in "cdefg"]
    thread, results = _round_in_thread(rounds, _train_held, [job("held")], later)
    # the round holds 1 of 4 slots; c, d, e start with it and end at once: their slots take f and g,
    # while the round still waits (before, f and g waited for the next round)
    _wait(lambda: set("cdefg") <= set(_ran(tmp_path)), "f and g run ahead on the slots c, d and e freed")
    assert thread.is_alive() and "held" not in _ran(tmp_path)
    (tmp_path / "release").touch()
    thread.join(WAIT_S)
    assert results == {0: "HELD"}
    assert dict(rounds.run(_train_held, [job("f"), job("g")], later=[])) == {0: "F", 1: "G"}
    assert (rounds.used, rounds.close(), rounds.held) == (2, 3, 0)
    assert sorted(_ran(tmp_path)) == ["c", "d", "e", "f", "g", "held"], "each ran once"


@pytest.mark.e2e
def test_a_waiting_placement_group_keeps_the_slots_that_come_free(ray_slots: Any, tmp_path: Path) -> None:
    def job(name: str) -> tuple[str, str]:
        return (str(tmp_path), name)

    # a sweep trial's placement group waits (for more CPUs than the runtime has: it waits throughout)
    group = ray_slots.util.placement_group([{"CPU": SLOTS + 1}])
    try:
        _wait(lambda: ray_slots.util.placement_group_table(group)["state"] == "PENDING", "the group waits")
        rounds = RoundTrainings(RayExecutor({"cpu": 1, "gpu": 0}), ahead=True)
        later = [job("c"), job("held-d"), job("held-e"), job("f")]
        thread, results = _round_in_thread(rounds, _train_held, [job("held")], later)
        # the round takes 1 of 4 slots, c, held-d and held-e the other 3; c ends, and its slot is kept free
        _wait(lambda: rounds.held >= 1, "a top-up considered after c ended, and held back")
        (tmp_path / "release").touch()
        thread.join(WAIT_S)
        assert results == {0: "HELD"}
    finally:
        ray_slots.util.remove_placement_group(group)
    assert rounds.close() == 3, "c, held-d and held-e ran ahead; f never started"
    assert sorted(_ran(tmp_path)) == ["c", "held", "held-d", "held-e"]


@pytest.mark.e2e
def test_without_ahead_only_the_rounds_trainings_run(ray_slots: Any, tmp_path: Path) -> None:
    rounds = RoundTrainings(RayExecutor({"cpu": 1, "gpu": 0}), ahead=False)
    assert dict(rounds.run(_train, [(str(tmp_path), "a")], later=[(str(tmp_path), "b")])) == {0: "A"}
    assert rounds.close() == 0 and rounds.used == 0
    assert _ran(tmp_path) == ["a"]
