"""bench/sweep_memory.py's monitor: it finds a whole process tree and sums what the tree holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

# A parent that starts a child; the child holds 150 MB of touched memory until killed.
TREE = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; b = bytearray(150 * 2**20); "
    "print(1, flush=True); time.sleep(60)'],"
    " stdout=subprocess.PIPE)\n"
    "child.stdout.readline(); print(child.pid, flush=True); time.sleep(60)\n"
)


def test_the_monitor_sums_the_memory_of_every_descendant(bench_module) -> None:
    sweep_memory = bench_module("sweep_memory")
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        assert set(sweep_memory._descendants(parent.pid)) >= {parent.pid, child}
        monitor = sweep_memory.Monitor(parent.pid)
        monitor.sample()
        assert monitor.peak["total"] / 1024 > 150  # MB: the child's buffer counts, the parent's own memory adds
        assert monitor.peak["trial_processes"] == 0  # no process titled ray::
    finally:
        os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
