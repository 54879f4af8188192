"""Memory of a real sweep on one node with one and with two concurrent trials (issue 4, acceptance 4).

Runs ``asymtune tune experiment=brain_atlas`` (Ray Tune on a local Ray runtime, Optuna, MLflow) twice
on the same prepared brain atlas set: ``search.max_concurrent_trials=1`` and ``=2``, the same trials
otherwise (confirmation, report and model registry off: the trials are what is measured). A monitor
samples, every 100 ms, the proportional set size (PSS: a page shared by n processes counts 1/n in
each, so the sum counts it once) of every process of the sweep: the driver and all its descendants
(Ray's GCS server, raylet and agents, the worker processes that run the trials). Reported: the peak
of the sum over all of them (the node's memory for the sweep) and, separately, the peak of the sum over
the trial workers (processes titled ``ray::`` that are neither idle workers nor Ray's agents).

The same figure for the trial processes alone, outside Ray, is ``bench/data_pipeline.py``'s.

    python bench/sweep_memory.py                       # prepares brain_atlas in a temporary folder
    python bench/sweep_memory.py --root data/Dataset901_BrainAtlas --epochs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _memory import process_title, pss_kb  # bench/ is on sys.path when a script runs
from _output import emit

ROOT = Path(__file__).resolve().parent.parent

GOAL = 1.3
"""Issue 4: two concurrent trials take at most this multiple of one trial's memory."""

# Ray processes titled ray:: that run no trial: an idle worker and the node's agents.
NOT_TRIALS = {"ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}


def _children() -> dict[int, list[int]]:
    """``{parent pid: [child pids]}`` of every process visible in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                parent = int(stream.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree, found, stack = _children(), [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(tree.get(current, []))
    return found


class Monitor(threading.Thread):
    """Samples the summed PSS of a process tree until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stopped = threading.Event()
        self.peak = {"total": 0, "trials": 0, "trial_processes": 0}
        self.ray_titles: set[str] = set()  # first word of every ray:: process title seen

    def sample(self) -> None:
        """One sample: the sum over the tree, the sum over its trial processes, how many those are."""
        total = trials = busy = 0
        for pid in _descendants(self.pid):
            try:
                pss, title = pss_kb(pid), process_title(pid)
            except (FileNotFoundError, ProcessLookupError, StopIteration, PermissionError):
                continue
            total += pss
            if title.startswith("ray::"):
                self.ray_titles.add(title.split()[0])
            if title.startswith("ray::") and title.split()[0] not in NOT_TRIALS:
                trials += pss
                busy += 1
        for key, value in (("total", total), ("trials", trials), ("trial_processes", busy)):
            self.peak[key] = max(self.peak[key], value)

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            time.sleep(self.interval)


def sweep(root: str, concurrent: int, args: argparse.Namespace, work: Path, repeat: int) -> dict[str, float]:
    """Run one sweep with ``concurrent`` trials at a time; peak PSS (MB) of the whole and of the trials."""
    output = work / f"sweep_{repeat}_{concurrent}"  # a fresh folder: the same one would resume the finished sweep
    command = [
        sys.executable, "-m", "asymtune.cli", "tune", "experiment=brain_atlas", f"data.root={root}",
        f"output_dir={output}",
        f"search.num_samples={args.trials}", f"search.max_concurrent_trials={concurrent}",
        f"search.n_startup_trials={args.trials}", f"search.scheduler.grace_period={args.epochs}",
        f"train.epochs={args.epochs}", f"train.iterations_per_epoch={args.iterations}",
        "ray.num_cpus=2", "confirm.enabled=false", "report.enabled=false", "export.register_model=false", "verbose=0",
    ]
    log = (work / f"sweep_{repeat}_{concurrent}.log").open("w")
    start = time.perf_counter()
    environment = {**os.environ, "ASYMTUNE_CACHE": str(work / "cache")}  # both sweeps read the same prepared arrays
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    monitor = Monitor(process.pid)
    monitor.start()
    code = process.wait()
    monitor.stopped.set()
    monitor.join()
    log.close()
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {code}; see {log.name}:\n"
                           + Path(log.name).read_text()[-3000:])
    if monitor.peak["trials"] == 0:
        raise RuntimeError(f"no trial process seen in the sweep (Ray process titles: {sorted(monitor.ray_titles)}); "
                           f"see {log.name}")
    return {
        "total": monitor.peak["total"] / 1024, "trials": monitor.peak["trials"] / 1024,
        "trial_processes": monitor.peak["trial_processes"],
        "seconds": time.perf_counter() - start,
    }


def _dataset(root: str | None, work: Path) -> str:
    if root:
        return str(Path(root).resolve())
    from asymtune.data.builtin_real import prepare_builtin

    return str(prepare_builtin("brain_atlas", work))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="a prepared brain_atlas folder (default: prepare one in a temporary folder)")
    parser.add_argument("--trials", type=int, default=4, help="trials per sweep")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20, help="training iterations per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of sweeps (1 then 2 concurrent trials)")
    parser.add_argument("--quick", action="store_true",
                        help="one pair of sweeps of 2 trials, 1 epoch of 3 iterations (a check)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.epochs, args.iterations, args.repeats = 2, 1, 3, 1
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        root = _dataset(args.root, work)
        runs = [{n: sweep(root, n, args, work, repeat) for n in (1, 2)} for repeat in range(args.repeats)]
    defaults = (args.trials, args.epochs, args.iterations, args.repeats) == (4, 4, 20, 3)
    options = "" if defaults else (" --quick" if args.quick else (
        f" --trials {args.trials} --epochs {args.epochs} --iterations {args.iterations} --repeats {args.repeats}"))
    lines = [
        f"Command: `python bench/sweep_memory.py{options}` (`asymtune tune experiment=brain_atlas`, {args.trials} "
        f"trials of {args.epochs} epochs x {args.iterations} iterations, local Ray with 2 CPUs, 1 CPU per trial; "
        f"{args.repeats} repeats, each a sweep with 1 then with 2 concurrent trials)",
        "",
        "| repeat | max concurrent trials | trial processes at once (most) | peak PSS, whole sweep (MB) | "
        "peak PSS, trial processes (MB) | sweep wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for index, results in enumerate(runs, 1):
        for n, result in results.items():
            lines.append(f"| {index} | {n} | {result['trial_processes']} | {result['total']:.0f} | "
                         f"{result['trials']:.0f} | {result['seconds']:.0f} |")
    return emit([*lines, "", *summary(runs)], args.out)


def _spread(values: list[float], digits: int, unit: str = "") -> str:
    """``median (min-max)`` of ``values``."""
    return (f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f}"
            f"{unit})")


def summary(runs: list[dict[int, dict[str, float]]]) -> list[str]:
    """The figures over repeats (each ``{1: result, 2: result}``, PSS in MB): the memory one added
    trial process costs, the node's ratio and the trial processes' ratio of two concurrent trials
    to one, and the verdict against :data:`GOAL`, taken on the trial processes (the node's ratio is
    diluted by Ray's daemons and the driver, which do not grow with the trials)."""
    added = [results[2]["trials"] - results[1]["trials"] for results in runs]
    whole = [results[2]["total"] / results[1]["total"] for results in runs]
    trials = [results[2]["trials"] / results[1]["trials"] for results in runs]
    met = statistics.median(trials) <= GOAL
    return [
        f"Per added trial process: **{_spread(added, 0, ' MB')}** of PSS (median over repeats, range). "
        f"Two concurrent trials against one: the trial processes alone **{_spread(trials, 2, 'x')}**; "
        f"the whole sweep on the node {_spread(whole, 2, 'x')}.",
        "",
        f"Verdict (goal: two concurrent trials at most {GOAL:.1f}x the memory of one, on the trial processes, "
        f"median): **{'met' if met else 'not met'}**.",
    ]


if __name__ == "__main__":
    sys.exit(main())
