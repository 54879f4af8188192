"""The scheduling priority (niceness) of the Ray workers that run trials and confirmation trainings.

Ray lowers the priority of every worker process it starts: a worker calls ``nice(worker_niceness)``
(Ray's config, environment variable ``RAY_worker_niceness``, default 15) as it starts, an increment
over the niceness of the node's raylet. On a node shared with other work, trials at niceness 15 get
only the CPU time no one else wants (a sweep beside another study ran three times slower).

asymtune sets ``ray.worker_niceness`` in two steps:

1. the driver joins a cluster with a job runtime environment (:func:`priority_runtime_env`)
   in which Ray leaves the workers at the raylet's niceness (``RAY_worker_niceness=0``) and which
   carries the niceness asked for (:data:`NICENESS_ENV`) to every worker of the job, on every node;
   a local runtime it starts gets the same variables from the driver's environment
   (:func:`local_worker_priority`), which its raylet passes to the workers it starts;
2. each trial and each confirmation training sets its own process's niceness to exactly that
   value as it starts (:func:`apply_worker_niceness`, :func:`with_worker_priority`).

Raising a niceness needs no privilege; lowering it below the current one needs ``CAP_SYS_NICE``
(root outside a container) or an ``RLIMIT_NICE`` that allows it. A worker that may not lower its
niceness logs one warning and keeps the niceness it has; a local runtime's driver warns once
before any trial starts (:func:`warn_if_unreachable`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import resource
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

NICENESS_ENV = "ASYMTUNE_WORKER_NICENESS"
"""The niceness the driver asked for (``ray.worker_niceness``), in the environment of its Ray workers."""
RAY_NICENESS_ENV = "RAY_worker_niceness"
"""Ray's increment to the raylet's niceness that every worker applies as it starts."""
_CAP_SYS_NICE = 23  # bit of CAP_SYS_NICE in /proc/<pid>/status CapEff (linux/capability.h)
_warned = False  # a worker process warns once, however many trials it runs

T = TypeVar("T")


def priority_env_vars(niceness: int | None) -> dict[str, str]:
    """The environment variables that give a job's workers ``niceness``: Ray leaves them at the
    raylet's niceness and :func:`apply_worker_niceness` sets it (none for ``niceness=None``).

    >>> priority_env_vars(0)
    {'RAY_worker_niceness': '0', 'ASYMTUNE_WORKER_NICENESS': '0'}
    """
    return {} if niceness is None else {RAY_NICENESS_ENV: "0", NICENESS_ENV: str(int(niceness))}


def priority_runtime_env(niceness: int | None) -> dict[str, Any] | None:
    """The runtime environment (``ray.init(runtime_env=...)``) that gives the job's workers
    ``niceness`` on every node of a cluster; None (leave it to Ray) for ``niceness=None``."""
    env_vars = priority_env_vars(niceness)
    return {"env_vars": env_vars} if env_vars else None


@contextlib.contextmanager
def local_worker_priority(niceness: int | None) -> Iterator[None]:
    """Within the block, this process's environment carries :func:`priority_env_vars`: a local Ray
    runtime started in it passes them from its raylet to every worker, without a runtime
    environment (whose set-up adds a process and an agent call to every worker's start)."""
    saved = {key: os.environ.get(key) for key in (RAY_NICENESS_ENV, NICENESS_ENV)}
    os.environ.update(priority_env_vars(niceness))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def current_niceness() -> int:
    """The niceness of this process (-20 to 19)."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def may_set_niceness(niceness: int) -> bool:
    """Whether this process may set its niceness to ``niceness``: raising it always; lowering it
    with ``CAP_SYS_NICE`` or an ``RLIMIT_NICE`` of at least ``20 - niceness``."""
    if niceness >= current_niceness():
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return _has_cap_sys_nice() or soft == resource.RLIM_INFINITY or niceness >= 20 - soft


def _has_cap_sys_nice() -> bool:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: only root may lower a niceness
        return os.geteuid() == 0
    effective = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "0")
    return bool(int(effective, 16) >> _CAP_SYS_NICE & 1)


def _refusal(niceness: int, current: int) -> str:
    return (
        f"ray.worker_niceness={niceness}: this process runs at niceness {current} and may not lower it "
        f"(that needs root or CAP_SYS_NICE, or ulimit -e of at least {20 - niceness}); the trials keep "
        f"niceness {current}"
    )


def warn_if_unreachable(niceness: int | None) -> None:
    """Log one warning if the workers of a local Ray runtime, which inherit this process's niceness
    and privileges, could not run at ``niceness``."""
    if niceness is not None and not may_set_niceness(niceness):
        log.warning("%s", _refusal(niceness, current_niceness()))


def apply_worker_niceness(environ: Mapping[str, str] = os.environ) -> int:
    """Set this process's niceness to the one the driver asked for (:data:`NICENESS_ENV`; nothing
    to do without it) and return the niceness it runs at.

    Lowering it without the privilege leaves it as it is, with one warning per process.
    """
    global _warned
    wanted = environ.get(NICENESS_ENV)
    current = current_niceness()
    if wanted is None or int(wanted) == current:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, int(wanted))
    except PermissionError:
        if not _warned:
            log.warning("%s", _refusal(int(wanted), current))
            _warned = True
    return current_niceness()


def with_worker_priority(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run at the niceness the driver asked for (for functions that Ray runs as tasks)."""

    @functools.wraps(fn)
    def at_priority(*args: Any, **kwargs: Any) -> T:
        apply_worker_niceness()
        return fn(*args, **kwargs)

    return at_priority
