"""The race's rounds of trainings, and trainings ahead of them on slots that nobody uses.

A race's rounds wait on each other (a round's choice reads every seed before it), so the dataset
whose sweep ends last runs its rounds alone while the cluster's other slots idle: the confirmation's
tail. With ``confirm.train_ahead`` and Ray tasks, each round also starts, on the slots free at
that moment, the trainings a later round would need if the race goes on
(:func:`asymtune.confirm.retrain.later_trainings`: the likeliest first). Their results stay in Ray's
object store until a round asks for them, and only then are they logged, so the confirmation's
runs, its choice and its verdict are those of a race without them; a result no round asks for is
dropped when the race ends (a task still running is cancelled). The price is the slot-time of
those trainings, on slots that would have idled.

>>> from asymtune.confirm.executors import LocalExecutor
>>> rounds = RoundTrainings(LocalExecutor(), ahead=True)  # in this process: no trainings ahead
>>> list(rounds.run(lambda job, dataset=None: job * 2, [1, 2], later=[3]))
[(0, 2), (1, 4)]
>>> rounds.close()
0
"""

from __future__ import annotations

import logging
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

    def __init__(self, executor: Executor, ahead: bool) -> None:
        self.executor = executor
        self.ahead = ahead and isinstance(executor, RayExecutor)
        self._started: dict[Hashable, Any] = {}  # job key -> ObjectRef of a task started ahead
        self.used = 0  # trainings started ahead that a round asked for

    def run(self, fn: Callable[..., Any], jobs: Sequence[Any], later: Sequence[Any],
            key: Callable[[Any], Hashable] = lambda job: job) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(jobs[index]))`` as each of this round's jobs finishes (the exception if it
        raised); first start, on the slots still free, the jobs of ``later`` (most wanted first) not
        yet started."""
        executor = self.executor
        if not self.ahead or not isinstance(executor, RayExecutor):
            yield from executor.run(fn, [(job,) for job in jobs])
            return
        free = executor.free_slots()  # read first: Ray's view may not count a task just submitted
        pending = {}
        for index, job in enumerate(jobs):
            ref = self._started.pop(key(job), None)
            if ref is None:
                ref, free = executor.submit(fn, (job,)), free - 1
            else:
                self.used += 1
            pending[ref] = index
        asked = {key(job) for job in jobs}
        for job in later:
            if free <= 0:
                break
            if key(job) not in self._started and key(job) not in asked:
                self._started[key(job)] = executor.submit(fn, (job,))
                free -= 1
        yield from executor.results(pending)

    def close(self) -> int:
        """Drop the trainings started ahead that no round asked for (cancelling those still running);
        returns how many."""
        dropped = len(self._started)
        if dropped:
            import ray

            for ref in self._started.values():
                ray.cancel(ref)  # a finished task: nothing to cancel; its result is freed with the ref
            self._started.clear()
        return dropped
