"""The race's rounds of trainings, and trainings ahead of them on slots that nobody uses.

A race's rounds wait on each other (a round's choice reads every seed before it), so the dataset
whose sweep ends last runs its rounds alone while the cluster's other slots idle: the confirmation's
tail. With ``confirm.train_ahead`` and Ray tasks, each round also starts, on the slots free at
that moment, the trainings a later round would need if the race goes on
(:func:`asymtune.confirm.retrain.later_trainings`: the likeliest first), and, while it waits on
its own trainings, more of them on slots that have stayed free for a while (free at two polls
``poll_s`` apart, so that a slot a sweep's next trial is about to take is left to it; one lock
across the datasets' races, so that they do not all fill the same free slots). Their results stay
in Ray's object store until a round asks for them, and only then are they logged, so the
confirmation's runs, its choice and its verdict are those of a race without them; a result no
round asks for is dropped when the race ends (a task still running is cancelled). The price is
the slot-time of those trainings, on slots that would have idled.

>>> from asymtune.confirm.executors import LocalExecutor
>>> rounds = RoundTrainings(LocalExecutor(), ahead=True)  # in this process: no trainings ahead
>>> list(rounds.run(lambda job, dataset=None: job * 2, [1, 2], later=[3]))
[(0, 2), (1, 4)]
>>> rounds.close()
0
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from asymtune.confirm.executors import Executor, RayExecutor

log = logging.getLogger(__name__)

_SLOTS = threading.Lock()  # one reading of the free slots, and the submissions it allows, at a time
_last_submit = [0.0]  # time.monotonic() of the last submission under the lock: Ray's view lags behind it


class RoundTrainings:
    """Runs a race's rounds of one job function on an executor, and (with ``ahead`` on a
    :class:`RayExecutor`) jobs of later rounds on free slots.

    Jobs are identified by themselves (hashable, e.g. ``(trial id, seed)`` or a frozen dataclass
    with a ``key``): a round that asks for a job started ahead gets that task's result.

    Args:
        executor: where the jobs run; trainings ahead only on a :class:`RayExecutor`.
        ahead: start later rounds' jobs on free slots.
        poll_s: while a round waits, how often the free slots are read again (a slot is taken only
            when it was free at the reading before too).
        settle_s: how long after a submission (by any race) Ray's resource view is not trusted.
    """

    def __init__(self, executor: Executor, ahead: bool, poll_s: float = 2.0, settle_s: float = 1.0) -> None:
        self.executor = executor
        self.ahead = ahead and isinstance(executor, RayExecutor)
        self.poll_s = poll_s
        self.settle_s = settle_s
        self._started: dict[Hashable, Any] = {}  # job key -> ObjectRef of a task started ahead
        self.used = 0  # trainings started ahead that a round asked for
        self.topped_up = 0  # trainings started ahead while a round waited (included in those started)
        self.polls = 0  # readings of the free slots while a round waited

    def run(self, fn: Callable[..., Any], jobs: Sequence[Any], later: Sequence[Any],
            key: Callable[[Any], Hashable] = lambda job: job) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(jobs[index]))`` as each of this round's jobs finishes (the exception if it
        raised); first start, on the slots still free, the jobs of ``later`` (most wanted first) not
        yet started, and more of them as slots stay free while the round waits."""
        executor = self.executor
        if not self.ahead or not isinstance(executor, RayExecutor):
            yield from executor.run(fn, [(job,) for job in jobs])
            return
        pending = {}
        with _SLOTS:
            free = executor.free_slots()  # read first: Ray's view may not count a task just submitted
            for index, job in enumerate(jobs):
                ref = self._started.pop(key(job), None)
                if ref is None:
                    ref, free = executor.submit(fn, (job,)), free - 1
                else:
                    self.used += 1
                pending[ref] = index
            asked = {key(job) for job in jobs}
            waiting = [job for job in later if key(job) not in self._started and key(job) not in asked]
            waiting = self._start(fn, waiting, free, key)
            _last_submit[0] = time.monotonic()
        previous: int | None = None  # the free slots at the last poll (None: not trusted)

        def top_up() -> None:
            nonlocal waiting, previous
            if not waiting:
                return
            with _SLOTS:
                self.polls += 1
                if time.monotonic() - _last_submit[0] < self.settle_s:
                    previous = None  # a race just submitted: Ray's view may not count it yet
                    return
                free = executor.free_slots()
                stayed, previous = (0 if previous is None else min(free, previous)), free
                if stayed > 0:
                    count = len(waiting)
                    waiting = self._start(fn, waiting, stayed, key)
                    self.topped_up += count - len(waiting)
                    _last_submit[0] = time.monotonic()
                    previous = None

        yield from executor.results(pending, idle=top_up, every_s=self.poll_s)

    def _start(self, fn: Callable[..., Any], waiting: list[Any], free: int,
               key: Callable[[Any], Hashable]) -> list[Any]:
        """Start the first ``free`` of ``waiting`` (jobs not yet started) ahead; returns the rest."""
        assert isinstance(self.executor, RayExecutor)
        for job in waiting[:max(free, 0)]:
            self._started[key(job)] = self.executor.submit(fn, (job,))
        return waiting[max(free, 0):]

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
