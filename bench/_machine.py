"""Shared by the benchmark scripts: one line that says where and when a figure was measured."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from asymtune.versions import cpu_model  # the same name the exports record


def memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return None


def describe_machine() -> str:
    """CPU model and cores, memory, GPU, Python and library versions, the load when asked."""
    import torch

    parts = [f"{cpu_model()}, {os.cpu_count()} cores"]
    memory = memory_gib()
    if memory:
        parts.append(f"{memory:.0f} GiB")
    parts.append(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
    parts.append(f"Python {platform.python_version()}, torch {torch.__version__}")
    for module in ("ray", "optuna", "mlflow", "monai"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f} at the start")
    return ", ".join(parts)


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot, from /proc/stat; None where there is none."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields)  # idle + iowait


class BusyCores:
    """The share of the machine's CPU time (all cores) that was busy between enter and exit.

    ``busy`` is None where /proc/stat cannot be read. Counts every process: the driver, Ray's
    daemons, the trial processes and anything else that ran.
    """

    def __enter__(self) -> BusyCores:
        self._start = _cpu_times()
        self.busy: float | None = None
        return self

    def __exit__(self, *_: object) -> None:
        end = _cpu_times()
        if self._start is not None and end is not None and end[1] > self._start[1]:
            self.busy = 1.0 - (end[0] - self._start[0]) / (end[1] - self._start[1])
