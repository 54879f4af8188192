"""The Ray Tune trainable that ``asymtune tune`` registers: :func:`run_trial`, the entry of every trial.

Ray Tune runs each trial in an actor. Creating an actor imports the module of its trainable, and
Ray Tune may remove an actor that is still starting when a finished trial's actor can take its trial
instead (``reuse_actors``). This module therefore imports nothing heavy: the actor starts as fast
as Ray's own worker, and what a trial does (:mod:`asymtune.search.trial`, which imports torch,
the data and the trainer) is imported by the first trial the actor runs, once per process. Were
those imports (about 2 CPU seconds) part of the actor's start, a slow start would let trials
finish and their actors take over, and the actors still starting would be removed and their
imports lost: on a busy node, many more worker processes started than trials ran at once.
"""

from __future__ import annotations

from typing import Any

from asymtune.search.priority import apply_worker_niceness


def run_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``config`` is the trial contract (:mod:`asymtune.results.spec`).

    Sets the process's niceness (``ray.worker_niceness``) before the trial takes any CPU time, then
    runs :func:`asymtune.search.trial.train_trial`.
    """
    apply_worker_niceness()
    from asymtune.search.trial import train_trial  # imported in the trial, not as the actor starts

    train_trial(config)
