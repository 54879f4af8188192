"""Where the confirmation's jobs run: in this process, one after the other (:class:`LocalExecutor`),
or as Ray tasks with the sweep trials' resources (:class:`RayExecutor`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from asymtune.data.base import SegmentationDataset
from asymtune.search.priority import with_worker_priority


class LocalExecutor:
    """Runs jobs one after the other in this process (optionally on a given in-memory dataset)."""

    def __init__(self, dataset: SegmentationDataset | None = None) -> None:
        self.dataset = dataset

    def run(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(*calls[index]))`` as each call finishes (the exception if it raised)."""
        for index, args in enumerate(calls):
            try:
                yield index, fn(*args, dataset=self.dataset)
            except Exception as error:  # a diverged training must not lose the others
                yield index, error


class RayExecutor:
    """Runs jobs as Ray tasks with the sweep's per-trial resources (``resources.cpu``/``gpu``), at the trials'
    niceness (``ray.worker_niceness``)."""

    def __init__(self, resources: Mapping[str, Any]) -> None:
        self.num_cpus = float(resources["cpu"])
        self.num_gpus = float(resources["gpu"])
        self._remotes: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Start ``fn(*args)`` as a Ray task; returns its ``ObjectRef``."""
        import ray

        if fn not in self._remotes:
            self._remotes[fn] = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=1)(
                with_worker_priority(fn))
        return self._remotes[fn].remote(*args)

    def run(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` in the order the tasks finish (the exception if one raised)."""
        yield from self.results({self.submit(fn, args): index for index, args in enumerate(calls)})

    @staticmethod
    def results(pending: dict[Any, int], idle: Callable[[], None] | None = None,
                every_s: float = 2.0) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` of the tasks ``{ObjectRef: index}`` in the order they finish (the
        exception if one raised); ``pending`` is emptied. With ``idle``, it is called whenever
        ``every_s`` seconds pass without a task finishing."""
        import ray

        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=every_s if idle else None)
            if not done and idle is not None:
                idle()
            for ref in done:
                index = pending.pop(ref)
                try:
                    yield index, ray.get(ref)
                except Exception as error:  # a diverged training must not lose the others
                    yield index, error

    def free_slots(self) -> int:
        """How many more tasks the cluster could start now: its free CPUs (and GPUs, when a task
        takes some) over a task's share, from Ray's resource view (which may lag a moment behind)."""
        import ray

        free: dict[str, float] = ray.available_resources()  # type: ignore[no-untyped-call]
        counts = [math.floor(free.get(name, 0.0) / need + 1e-9)
                  for name, need in (("CPU", self.num_cpus), ("GPU", self.num_gpus)) if need > 0]
        return max(0, min(counts)) if counts else 0


Executor = LocalExecutor | RayExecutor
