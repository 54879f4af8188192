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


def test_the_summary_gives_the_added_process_and_takes_the_verdict_on_the_trial_processes(bench_module) -> None:
    sweep_memory = bench_module("sweep_memory")
    runs = [  # PSS in MB; the node's ratio (1.24x) is within the goal, the trial processes' (1.74x) is not
        {1: {"total": 1419, "trials": 551}, 2: {"total": 1763, "trials": 959}},
        {1: {"total": 1413, "trials": 549}, 2: {"total": 1763, "trials": 959}},
        {1: {"total": 1458, "trials": 597}, 2: {"total": 1768, "trials": 963}},
    ]
    text = "\n".join(sweep_memory.summary(runs))
    assert "Per added trial process: **408 MB (366-410 MB)**" in text  # 959-551, 959-549, 963-597
    assert "the trial processes alone **1.74x (1.61-1.75x)**" in text  # 959/551=1.740, 963/597=1.613, 959/549=1.747
    assert "the whole sweep on the node 1.24x (1.21-1.25x)" in text  # 1763/1419=1.242, 1768/1458=1.213
    assert "**not met**" in text
    halved = [{n: {**r, "trials": r["trials"] * (1 if n == 1 else 0.7)} for n, r in run.items()} for run in runs]
    assert "**met**" in "\n".join(sweep_memory.summary(halved))  # 671/551 = 1.22 <= 1.3
