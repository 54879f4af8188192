"""The race's rounds of trainings, and trainings ahead of them on slots that nobody uses.

A race's rounds wait on each other (a round's choice reads every seed before it), so the dataset
whose sweep ends last runs its rounds alone while the cluster's other slots idle: the confirmation's
tail. With ``confirm.train_ahead`` and Ray tasks, each round also starts, on the slots free at
that moment, the trainings a later round would need if the race goes on
(:func:`asymtune.confirm.retrain.later_trainings`: the likeliest first), and, while the round
runs, more of them on each slot that comes free (its own trainings' as they end, and others'
by Ray's resource view), unless a placement group waits for resources: that is a sweep trial
(Ray Tune's) wanting a slot, and a sweep comes before trainings that may not be needed. Their
results stay in Ray's object store until a round asks for them, and only then are they logged,
so the confirmation's runs, its choice and its verdict are those of a race without them; a
result no round asks for is dropped when the race ends (a task still running is cancelled). The
price is the slot-time of those trainings, on slots that would have idled.

>>> from asymtune.confirm.executors import LocalExecutor
>>> rounds = RoundTrainings(LocalExecutor(), ahead=True)  # in this process: no trainings ahead
>>> list(rounds.run(lambda job, dataset=None: job * 2, [1, 2], later=[3]))
[(0, 2), (1, 4)]
>>> rounds.close()
0
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from asymtune.confirm.executors import Executor, RayExecutor

log = logging.getLogger(__name__)


class RoundTrainings:
    """Runs a race's rounds of one job function on an executor, and (with ``ahead`` on a
    :class:`RayExecutor`) jobs of later rounds on free slots.

    Jobs are identified by themselves (hashable, e.g. ``(trial id, seed)`` or a frozen dataclass
    with a ``key``): a round that asks for a job started ahead gets that task's result.
    """

    VIEW_LAG_S = 1.0
    """Seconds after a submission during which Ray's resource view may not count it yet: within
    them, a slot that came free is only refilled for a task of this race that ended."""

    def __init__(self, executor: Executor, ahead: bool) -> None:
        self.executor = executor
        self._ray = executor if ahead and isinstance(executor, RayExecutor) else None
        self.ahead = self._ray is not None
        self._started: dict[Hashable, Any] = {}  # job key -> ObjectRef of a task started ahead
        self._running: set[Any] = set()  # those of them not yet seen to end
        self._submitted_at = -math.inf  # time.monotonic() of the last task started ahead
        self.used = 0  # trainings started ahead that a round asked for
        self.held = 0  # top-ups not made because a placement group waited

    def run(self, fn: Callable[..., Any], jobs: Sequence[Any], later: Sequence[Any],
            key: Callable[[Any], Hashable] = lambda job: job) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(jobs[index]))`` as each of this round's jobs finishes (the exception if it
        raised); first start, on the slots still free, the jobs of ``later`` (most wanted first) not
        yet started, then more of them as slots come free while the round runs."""
        executor = self._ray
        if executor is None:
            yield from self.executor.run(fn, [(job,) for job in jobs])
            return
        import ray

        free = executor.free_slots()  # read first: Ray's view may not count a task just submitted
        pending = {}
        for index, job in enumerate(jobs):
            ref = self._started.pop(key(job), None)
            if ref is None:
                ref, free = executor.submit(fn, (job,)), free - 1
            else:
                self.used += 1
                self._running.discard(ref)
            pending[ref] = index
        asked = {key(job) for job in jobs}
        waiting = [job for job in later if key(job) not in self._started and key(job) not in asked]
        waiting.reverse()  # pop() takes the most wanted
        self._start(executor, fn, waiting, free, key)
        while pending:
            done, _ = ray.wait([*pending, *self._running], num_returns=1)
            ended = 0
            for ref in done:
                ended += 1
                if ref in self._running:
                    self._running.discard(ref)
                    continue
                index = pending.pop(ref)
                try:
                    yield index, ray.get(ref)
                except Exception as error:  # a diverged training must not lose the others
                    yield index, error
            if waiting:
                self._top_up(executor, fn, waiting, ended, key)

    def _top_up(self, executor: RayExecutor, fn: Callable[..., Any], waiting: list[Any], ended: int,
                key: Callable[[Any], Hashable]) -> None:
        """After ``ended`` tasks of this race ended: start jobs ahead on their slots and on those Ray
        reports free (once its view counts the last submission), unless a placement group waits."""
        if _placement_group_waits():
            self.held += 1
            return
        settled = time.monotonic() - self._submitted_at >= self.VIEW_LAG_S
        self._start(executor, fn, waiting, max(executor.free_slots() if settled else 0, ended), key)

    def _start(self, executor: RayExecutor, fn: Callable[..., Any], waiting: list[Any], free: int,
               key: Callable[[Any], Hashable]) -> None:
        """Start up to ``free`` of ``waiting`` (taken from its end) as tasks ahead."""
        while free > 0 and waiting:
            job = waiting.pop()
            ref = executor.submit(fn, (job,))
            self._started[key(job)] = ref
            self._running.add(ref)
            self._submitted_at = time.monotonic()
            free -= 1

    def close(self) -> int:
        """Drop the trainings started ahead that no round asked for (cancelling those still running);
        returns how many."""
        dropped = len(self._started)
        if dropped:
            import ray

            for ref in self._started.values():
                ray.cancel(ref)  # a finished task: nothing to cancel; its result is freed with the ref
            self._started.clear()
        self._running.clear()
        return dropped


def _placement_group_waits() -> bool:
    """Whether a placement group of this Ray runtime waits for resources (a sweep trial to start)."""
    from ray.util import placement_group_table

    return any(entry.get("state") == "PENDING" for entry in placement_group_table().values())
