"""How a trial's worker starts: the trainable's module imports nothing heavy (an actor starts as
fast as Ray's own worker), and a free slot goes to the newest waiting trial, not to an older one
whose actor is still starting (asymtune.search.start_order)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler

from asymtune.search.scheduler import FidelityCheckedASHA

HEAVY = ("torch", "mlflow", "optuna", "matplotlib", "asymtune.search.trial", "asymtune.data", "asymtune.train")


def test_the_trainable_module_imports_nothing_heavy() -> None:
    code = ("import json, sys; import asymtune.search.trainable as t; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules] + [callable(t.run_trial)]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    assert loaded == [True], f"importing asymtune.search.trainable loads {loaded[:-1]}"


def _scheduler() -> FidelityCheckedASHA:
    return FidelityCheckedASHA(max_t=4, grace_period=1, reduction_factor=2, probe_trials=3, min_pairs=3, min_rho=0.5)


def _trials(*statuses: str) -> list[Trial]:
    trials = []
    for index, status in enumerate(statuses):
        trial = Trial("__fake", trial_id=f"t{index}", stub=True)
        trial.status = status
        trials.append(trial)
    return trials


def test_a_free_slot_starts_the_newest_waiting_trial_where_fifo_starts_the_oldest() -> None:
    trials = _trials(Trial.TERMINATED, Trial.PENDING, Trial.RUNNING, Trial.PENDING, Trial.PENDING, Trial.RUNNING)
    controller = SimpleNamespace(get_trials=lambda: trials)
    scheduler = _scheduler()
    assert scheduler.choose_trial_to_run(controller).trial_id == "t4"
    assert ASHAScheduler(max_t=4).choose_trial_to_run(controller).trial_id == "t1"  # Ray Tune's FIFO rule
    assert scheduler.choose_trial_to_run(controller).trial_id == "t4"  # idempotent, as Ray Tune requires


def test_paused_trials_come_after_waiting_ones_oldest_first() -> None:
    scheduler = _scheduler()
    paused = _trials(Trial.PAUSED, Trial.RUNNING, Trial.PAUSED)
    assert scheduler.choose_trial_to_run(SimpleNamespace(get_trials=lambda: paused)).trial_id == "t0"
    running = _trials(Trial.RUNNING, Trial.TERMINATED)
    assert scheduler.choose_trial_to_run(SimpleNamespace(get_trials=lambda: running)) is None
