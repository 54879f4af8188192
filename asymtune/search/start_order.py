"""Which waiting trial a free slot starts: the newest, so that a finished trial's process is not
traded for one still starting.

Ray Tune (2.60) asks the scheduler for the trial to run (``choose_trial_to_run``); its FIFO rule
returns the oldest waiting (PENDING) trial. With ``reuse_actors``, a trial that ends leaves its
actor (its worker process) for the chosen trial. But Ray Tune has already asked Ray for an actor
for each older waiting trial, and that actor may be starting (a new process, Ray's imports): Ray
Tune then removes it and the start is lost, while the trial that the ended trial let in (the
searcher proposes it only then, under ``max_concurrent_trials``) asks for a new actor, which starts
from scratch. When trials end faster than processes start (short trials stopped by ASHA, a busy
node), this repeats for every trial: a 100-trial sweep on 32 slots of a 2-core machine started 56
worker processes and never ran more than 10 trials at once, where bare Ray Tune started 34.

Choosing the newest waiting trial gives the free actor to the trial that has none yet, and the older
trials keep their actors, which start and take their trial. Once every slot runs a trial, there is
at most one waiting trial, and the rule is FIFO's. Paused trials come after waiting ones, oldest
first, as in FIFO (asymtune's schedulers never pause a trial).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.experiment import Trial


def trial_to_start(trials: Sequence[Any]) -> Any | None:
    """The newest PENDING trial of ``trials`` (in creation order), else the oldest PAUSED one, else None.

    >>> from types import SimpleNamespace as T
    >>> trial_to_start([T(n=1, status="PENDING"), T(n=2, status="RUNNING"), T(n=3, status="PENDING")]).n
    3
    >>> trial_to_start([T(n=1, status="PAUSED"), T(n=2, status="PAUSED"), T(n=3, status="TERMINATED")]).n
    1
    >>> trial_to_start([T(n=1, status="RUNNING")]) is None
    True
    """
    for trial in reversed(trials):
        if trial.status == Trial.PENDING:
            return trial
    return next((trial for trial in trials if trial.status == Trial.PAUSED), None)
