"""Decision study: the product as shipped, `asymtune tune` repeated over sweep seeds (issue 13, item 6).

Each repeat is one `asymtune tune` command, exactly as a user types it, with one sweep seed
(``search.seed``, the seed of Optuna's sampler) and its own ``output_dir`` under ``--output-root``.
From each repeat's ``report.json`` (and its output folder, for the compute) this script keeps, per
dataset: what was exported (``is``: tuned, a rival, the baseline), the verdict (the export's test
gain over the baseline with its paired interval, the number of confirmation seeds, significant or
not), the best rival and the export's paired interval against it, the per-seed test values of the
export, the baseline and every rival, and the compute (the command's wall time, the sweep's trial
epochs, the confirmation's trainings). The records go to ``--json`` (committed:
``docs/data/decision_study.json``); the Markdown block is rendered from that file alone
(:func:`render`), recomputing every interval from the per-seed values, so that the document can be
rendered again without running anything (``--render-only``).

Groups of datasets (``--datasets``), one command each:

- ``builtin``: synth_lesions and synth_organs, the default ``data: builtin`` (``asymtune tune``);
- ``brain_atlas``: ``asymtune tune experiment=brain_atlas`` (prepared first with ``asymtune data
  prepare brain_atlas`` when ``data/Dataset901_BrainAtlas`` is missing);
- ``nuclei``: ``asymtune tune experiment=nuclei`` (likewise ``data/Dataset902_Nuclei``).

Budgets (``--budgets``): ``default`` is the shipped defaults (no override); ``larger`` doubles the
sweep (``search.num_samples=16``) and lets the confirmation race go to 6 seeds
(``confirm.max_seeds=6``), the two knobs a user with more time would turn first.

Resuming: a repeat whose ``output_dir`` holds a ``report.json`` from a command that ended well is
taken as it is (not run again); an unfinished one is run again with the same command, which
asymtune resumes. ``--fresh`` deletes the selected repeats' output folders first (a new
measurement, e.g. of a new commit); ``--resume`` also takes repeats found in ``--json`` whose output
folder is gone. The block says how many repeats were taken from an earlier invocation.

    python bench/decision_study.py --datasets builtin --seeds 0 1 2 --json docs/data/decision_study.json
    python bench/decision_study.py --datasets builtin --budgets larger --seeds 0 1 2   # the same JSON file
    python bench/decision_study.py --experiment smoke --seeds 0 --json /tmp/ds.json --output-root /tmp/ds  # a check
    python bench/decision_study.py --render-only --datasets builtin --seeds 0 1 2 --json docs/data/decision_study.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs
from _product import asymtune_command, local_ray_env

ROOT = Path(__file__).resolve().parent.parent
REPORT = "report.json"
WALL = "wall.json"  # next to each repeat's output folder: <name>.wall.json, the command and its attempts


@dataclass(frozen=True)
class Group:
    """Datasets that one `asymtune tune` command sweeps.

    Attributes:
        overrides: the Hydra overrides that select them (none: the default ``data: builtin``).
        prepare: ``asymtune data prepare`` argument and the folder under data/ it writes, if any.
    """

    overrides: tuple[str, ...]
    prepare: tuple[str, str] | None = None


GROUPS = {
    "builtin": Group(()),
    "brain_atlas": Group(("experiment=brain_atlas",), ("brain_atlas", "Dataset901_BrainAtlas")),
    "nuclei": Group(("experiment=nuclei",), ("nuclei", "Dataset902_Nuclei")),
}
BUDGETS = {
    "default": (),
    "larger": ("search.num_samples=16", "confirm.max_seeds=6"),
}


@dataclass(frozen=True)
class Repeat:
    """One `asymtune tune` command of the study: a group, a budget and a sweep seed.

    Attributes:
        experiment: an ``experiment=`` overlay for the builtin group (``smoke`` for a quick check).
        overrides: further Hydra overrides given to every command (``--overrides``).
    """

    group: str
    budget: str
    sweep_seed: int
    experiment: str | None = None
    overrides: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The folder name under the output root, e.g. ``builtin-default-seed0``."""
        extra = f"-{self.experiment}" if self.experiment else ""
        extra += "".join(f"-{o.replace('=', '_').replace('/', '_')}" for o in self.overrides)
        return f"{self.group}-{self.budget}{extra}-seed{self.sweep_seed}"

    def identity(self) -> dict[str, Any]:
        """The fields that tell two records of the JSON file apart."""
        return {"group": self.group, "budget": self.budget, "sweep_seed": self.sweep_seed,
                "experiment": self.experiment, "overrides": list(self.overrides)}

    def arguments(self, output_dir: Path) -> list[str]:
        """The arguments of `asymtune` (``tune`` and the overrides)."""
        experiment = (f"experiment={self.experiment}",) if self.experiment else ()
        return ["tune", *GROUPS[self.group].overrides, *experiment, *BUDGETS[self.budget],
                f"search.seed={self.sweep_seed}", *self.overrides, f"output_dir={_shown(output_dir)}"]


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (the commands run there)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ------------------------------------------------------------------------------------ running
Runner = Callable[[list[str], Path], int]
"""Runs ``asymtune`` with these arguments, appending its output to the log file; returns the exit status."""


def asymtune_runner(arguments: list[str], log: Path) -> int:
    """Run the `asymtune` command of this environment in the repository root, on a Ray runtime of
    its own (``_product.local_ray_env``) unless an address is given."""
    command = [*asymtune_command(), *arguments]
    env = local_ray_env(arguments)
    with log.open("a") as stream:
        stream.write(f"\n$ asymtune {' '.join(arguments)}\n")
        stream.flush()
        return subprocess.run(command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, env=env,
                              check=False).returncode


def prepare_data(group: str, runner: Runner, log: Path) -> None:
    """``asymtune data prepare NAME`` when the group's folder under data/ is missing."""
    prepare = GROUPS[group].prepare
    if prepare is not None and not (ROOT / "data" / prepare[1]).is_dir():
        status = runner(["data", "prepare", prepare[0]], log)
        if status != 0:
            raise RuntimeError(f"asymtune data prepare {prepare[0]} failed (exit {status}); see {log}")


def _read_wall(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"attempts": []}


def is_finished(output_dir: Path, wall: dict[str, Any]) -> bool:
    """A repeat is finished when its report exists and the last command (if this script ran it) ended well."""
    attempts = wall.get("attempts", [])
    return (output_dir / REPORT).is_file() and (not attempts or attempts[-1]["returncode"] == 0)


def run_repeat(repeat: Repeat, output_root: Path, runner: Runner) -> tuple[dict[str, Any], bool]:
    """Run ``repeat`` unless it is finished; returns its wall record and whether it was taken as it was.

    The wall record (``<output_root>/<name>.wall.json``) holds the command and one entry per
    attempt (seconds, exit status, load average at the start), so that a resumed repeat's compute
    is the sum of its attempts.
    """
    output_dir = output_root / repeat.name
    wall_path = output_root / f"{repeat.name}.{WALL}"
    wall = _read_wall(wall_path)
    arguments = repeat.arguments(output_dir)
    if is_finished(output_dir, wall):
        return wall, True
    output_root.mkdir(parents=True, exist_ok=True)
    log = output_root / f"{repeat.name}.log"
    prepare_data(repeat.group, runner, log)
    wall["command"] = f"asymtune {' '.join(arguments)}"
    print(f"[decision_study] {repeat.name}: {wall['command']} (log: {_shown(log)})", file=sys.stderr, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    status = runner(arguments, log)
    seconds = time.perf_counter() - start
    wall["attempts"].append({"seconds": round(seconds, 1), "returncode": status, "load_at_start": load})
    wall_path.write_text(json.dumps(wall, indent=1) + "\n")
    if status != 0 or not (output_dir / REPORT).is_file():
        raise RuntimeError(f"{wall['command']} failed (exit {status}) after {seconds:.0f} s; see {log}. "
                           "Run this script again to resume it.")
    print(f"[decision_study] {repeat.name}: {seconds / 60:.1f} min", file=sys.stderr, flush=True)
    return wall, False


# --------------------------------------------------------------------------------- collecting
def collect_report(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dataset of a ``report.json``: the export, the verdict, the best rival and the per-seed
    test values of the export, the baseline and every rival (the report's own numbers, kept so that
    they can be checked against the values)."""
    datasets = {}
    for name, entry in report["datasets"].items():
        decision = entry.get("decision") or {}
        rivals = decision.get("rivals") or []
        export = next((r for r in rivals if r["name"] == "export"), None)
        results = entry.get("results") or {}
        metric = decision.get("metric")
        values = {r["name"]: r["values"] for r in rivals}
        seeds = {r["name"]: r["seeds"] for r in rivals if "seeds" in r}  # a rival may have fewer than the export
        if export is None and results and metric:  # no rival entries: the confirmed values of both sides
            tested = results.get("test", {})
            values = {side: tested[label][metric]["values"] for side, label in
                      (("export", "selected"), ("baseline", "baseline")) if metric in tested.get(label, {})}
        best = next((r for r in rivals if r["name"] == decision.get("best_rival")), None)
        race = decision.get("race") or {}
        datasets[name] = {
            "confirmed": bool(entry.get("confirmed")),
            "metric": metric, "mode": decision.get("mode", "max"), "confidence": decision.get("confidence", 0.95),
            "confirmation_seeds": results.get("seeds", []),
            "export": {
                "is": export["is"] if export else ("baseline" if entry.get("selected") == entry.get("baseline")
                                                   else "tuned"),
                "trial_id": entry.get("selected"), "setting": entry.get("setting"),
            },
            "verdict": {
                "interval": decision.get("interval"), "seeds_per_setting": decision.get("seeds_per_setting"),
                "significant": decision.get("significant"),
                "smallest_detectable_gain": decision.get("smallest_detectable_gain"),
                "sentence": decision.get("verdict"),
            },
            "best_rival": None if best is None else {"name": best["name"], "export_vs_it": best["export_vs_it"]},
            "export_beats_best_rival": decision.get("export_beats_best_rival"),
            "values": values,
            **({"seeds": seeds} if seeds else {}),
            "race": {key: race.get(key) for key in ("reason", "seeds", "max_seeds", "sentence")} if race else None,
            "notes": entry.get("notes", []),
        }
    return datasets


def count_compute(output_dir: Path) -> dict[str, dict[str, Any]]:
    """Per dataset: the sweep's trials and the epochs they trained (Ray Tune's folder), its fit
    seconds (the manifest), and the confirmation's trainings (its MLflow runs, without the sweep
    trials it reused as a seed). Empty when the folder holds no sweep."""
    from asymtune.results.layout import MANIFEST, RESOLVED_CONFIG, read_manifest

    if not (output_dir / MANIFEST).is_file():
        return {}
    import yaml
    from mlflow.tracking import MlflowClient

    from asymtune.results.trials import load_trials
    from asymtune.tracking.confirmation import TAG_REUSED, list_confirmation_runs

    manifest = read_manifest(output_dir)
    config = yaml.safe_load((output_dir / RESOLVED_CONFIG).read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    compute = {}
    for name, entry in manifest["datasets"].items():
        trials = load_trials(entry["experiment_dir"])
        runs = list_confirmation_runs(client, entry["parent_run_id"]) if entry.get("parent_run_id") else []
        reused = sum(1 for run in runs if run.tags.get(TAG_REUSED) == "true")
        compute[name] = {
            "sweep_trials": len(trials), "sweep_epochs": sum(t.epochs for t in trials),
            "sweep_seconds": entry.get("fit_seconds"), "epochs_per_training": int(config["train"]["epochs"]),
            "confirmation_trainings": sum(run.trained_here for run in runs), "confirmation_reused_trials": reused,
        }
    return compute


def budget_of(output_dir: Path) -> dict[str, Any]:
    """The resolved values that make a repeat's budget (from its ``config.yaml``)."""
    import yaml

    path = output_dir / "config.yaml"
    if not path.is_file():
        return {}
    config = yaml.safe_load(path.read_text())
    return {"num_samples": config["search"]["num_samples"], "epochs": config["train"]["epochs"],
            "confirm_seeds": config["confirm"]["seeds"], "confirm_max_seeds": config["confirm"]["max_seeds"],
            "confirm_verdict_seeds": config["confirm"].get("verdict_seeds"), "rivals": config["confirm"]["rivals"]}


def repeat_record(repeat: Repeat, report: dict[str, Any], wall: dict[str, Any], reused: bool,
                  compute: dict[str, dict[str, Any]], budget: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """One repeat's record of the JSON file."""
    datasets = collect_report(report)
    for name, record in datasets.items():
        record["compute"] = compute.get(name)
    attempts = wall.get("attempts", [])
    return {
        **repeat.identity(), "command": wall.get("command") or f"asymtune {' '.join(repeat.arguments(output_dir))}",
        "output_dir": _shown(output_dir), "sweep_id": report.get("sweep_id"),
        "objective": report.get("objective"), "budget_values": budget,
        "wall_seconds": round(sum(a["seconds"] for a in attempts), 1) if attempts else None,
        "attempts": attempts, "taken_from_earlier_invocation": reused, "datasets": datasets,
    }


def identity_key(record: dict[str, Any]) -> str:
    """The repeat a record (or :meth:`Repeat.identity`) belongs to, as one comparable string."""
    return json.dumps({k: record.get(k) for k in ("group", "budget", "sweep_seed", "experiment", "overrides")},
                      sort_keys=True)


def merge(stored: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``stored`` with the records of the same repeats replaced by ``new`` ones, the others kept."""
    fresh = {identity_key(r) for r in new}
    return [r for r in stored if identity_key(r) not in fresh] + new


def run_study(repeats: Sequence[Repeat], output_root: Path, json_path: Path, runner: Runner = asymtune_runner,
              resume_from_json: bool = False) -> list[dict[str, Any]]:
    """Run (or take) every repeat, writing the JSON file after each; returns the records of ``repeats``."""
    stored = json.loads(json_path.read_text())["repeats"] if json_path.is_file() else []
    records = []
    for repeat in repeats:
        output_dir = output_root / repeat.name
        kept = [r for r in stored if identity_key(r) == identity_key(repeat.identity())]
        if resume_from_json and kept and not (output_dir / REPORT).is_file():
            records.append({**kept[0], "taken_from_earlier_invocation": True})
            continue
        wall, reused = run_repeat(repeat, output_root, runner)
        report = json.loads((output_dir / REPORT).read_text())
        records.append(repeat_record(repeat, report, wall, reused, count_compute(output_dir), budget_of(output_dir),
                                     output_dir))
        write_json(json_path, merge(stored, records))
    return records


def write_json(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "about": "bench/decision_study.py: per repeat of `asymtune tune` (group, budget, sweep seed) and per dataset, "
                 "the export, the per-seed test values of the export, the baseline and every rival (values, in "
                 "the order of confirmation_seeds), the report's own verdict and the compute. Every interval of "
                 "docs/results.md's decision study is recomputed from these values.",
        "repeats": records,
    }, indent=1) + "\n")


# ---------------------------------------------------------------------------------- rendering
def _interval(values: Sequence[float], reference: Sequence[float], confidence: float) -> dict[str, float]:
    """The paired difference ``values - reference`` (mean, sd, low, high, n), NaN where undefined."""
    from asymtune.confirm.stats import paired_difference

    return paired_difference(values, reference, confidence).to_dict()


def _signed(value: float) -> str:
    return f"{value:+.3f}" if value is not None and math.isfinite(value) else "n/a"


def _ci(d: dict[str, float]) -> str:
    return f"{_signed(d['mean'])} [{_signed(d['low'])}, {_signed(d['high'])}]"


def _better(d: dict[str, float], mode: str) -> bool:
    return d["n"] >= 2 and math.isfinite(d["low"]) and (d["low"] > 0 if mode == "max" else d["high"] < 0)


def _worse(d: dict[str, float], mode: str) -> bool:
    return d["n"] >= 2 and math.isfinite(d["low"]) and (d["high"] < 0 if mode == "max" else d["low"] > 0)


def _gain(mean: float, mode: str) -> float:
    """A difference in the better direction (positive: better)."""
    return mean if mode == "max" else -mean


def _shared(record: dict[str, Any], a: str, b: str) -> tuple[list[float], list[float]]:
    """The values of ``a`` and ``b`` on the seeds both have (by position in records without seeds)."""
    seeds = record.get("seeds") or {}
    if a not in seeds or b not in seeds:
        return record["values"][a], record["values"][b]
    of = {name: dict(zip(seeds[name], record["values"][name])) for name in (a, b)}
    common = [seed for seed in seeds[a] if seed in of[b]]
    return [of[a][seed] for seed in common], [of[b][seed] for seed in common]


def measures(record: dict[str, Any]) -> dict[str, Any] | None:
    """What the tables show for one dataset of one repeat, recomputed from its per-seed values
    (None when the repeat has no confirmed test values)."""
    values, mode, confidence = record["values"], record["mode"], record["confidence"]
    if "export" not in values or "baseline" not in values or not values["export"]:
        return None
    vs_baseline = _interval(values["export"], values["baseline"], confidence)
    spread = statistics.stdev(values["baseline"]) if len(values["baseline"]) > 1 else math.nan
    best = record["best_rival"]["name"] if record["best_rival"] else None
    vs_best = _interval(*_shared(record, "export", best), confidence) if best in values else None
    return {"vs_baseline": vs_baseline, "significant": _better(vs_baseline, mode), "spread": spread,
            "best_rival": best, "vs_best": vs_best}


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f}"


def _compute_cells(compute: dict[str, Any] | None) -> list[str]:
    if not compute:
        return ["n/a", "n/a"]
    return [f"{compute['sweep_epochs']} ({compute['sweep_trials']} trials)", str(compute["confirmation_trainings"])]


def _budget_words(repeat: dict[str, Any]) -> str:
    """What a repeat's budget is, in words: its overrides and the resolved values."""
    given = [*BUDGETS[repeat["budget"]], *([f"experiment={repeat['experiment']}"] if repeat["experiment"] else []),
             *repeat["overrides"]]
    what = f"`{' '.join(given)}`" if given else "the shipped defaults"
    values = repeat.get("budget_values") or {}
    if not values:
        return what
    low, high = values["confirm_seeds"], values["confirm_max_seeds"]
    confirmation = f"a confirmation race of {low} to {high} seeds" if high > low else f"a confirmation of {low} seeds"
    verdict = values.get("confirm_verdict_seeds")  # absent before 2026-12-02
    if verdict and verdict > max(low, high):
        confirmation += f" (a leader better on validation and the baseline: up to {verdict} seeds for the test)"
    rivals = list(values["rivals"])
    offset = "" if "logit_offset" in rivals else " and the logit offset"  # measured on every sweep before 2026-12-02
    return (f"{what}: {values['num_samples']} trials per dataset of {values['epochs']} epochs, {confirmation}, "
            f"rivals {', '.join(rivals)}{offset}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _of(count: int, total: int) -> str:
    """``2 of 3 repeats``."""
    return f"{count} of {_plural(total, 'repeat')}"


def criteria(rows: list[tuple[int, dict[str, Any], dict[str, Any] | None]], mode: str, level: str) -> list[str]:
    """The acceptance criteria of one dataset over its repeats, in words: a bullet each.

    ``rows``: (sweep seed, dataset record, its :func:`measures`) per repeat.
    """
    measured = [(seed, m) for seed, _, m in rows if m is not None]
    unconfirmed = [seed for seed, _, m in rows if m is None]
    n = len(measured)
    lines = []
    if unconfirmed:
        lines.append(f"- Not confirmed (no paired test values) at sweep seed(s) {', '.join(map(str, unconfirmed))}: "
                     "these repeats count as not meeting any criterion.")
    if not measured:
        return lines
    beyond = [(s, m) for s, m in measured
              if math.isfinite(m["spread"]) and _gain(m["vs_baseline"]["mean"], mode) < -m["spread"]]
    lowest_seed, lowest = min(measured, key=lambda sm: _gain(sm[1]["vs_baseline"]["mean"], mode))
    if beyond:
        misses = "; ".join(f"sweep seed {s}: gain {_ci(m['vs_baseline'])}, "
                           f"{-_gain(m['vs_baseline']['mean'], mode) - m['spread']:.3f} beyond the seed spread "
                           f"{m['spread']:.3f}" for s, m in beyond)
        lines.append(f"- Never worse than the baseline by more than the seed spread: **not met** in "
                     f"{_of(len(beyond), n)} ({misses}).")
    else:
        no_spread = [s for s, m in measured if not math.isfinite(m["spread"])]
        caveat = (f" (no spread with one seed at sweep seed(s) {', '.join(map(str, no_spread))})" if no_spread else "")
        lines.append(f"- Never worse than the baseline by more than the seed spread: met in {_of(n, n)}; the "
                     f"lowest gain is {_signed(lowest['vs_baseline']['mean'])} (sweep seed {lowest_seed}, seed spread "
                     f"{lowest['spread']:.3f}){caveat}.")
    significant = [(s, m) for s, m in measured if m["significant"]]
    others = [(s, m) for s, m in measured if not m["significant"]]
    shown = "; ".join(f"sweep seed {s}: {_ci(m['vs_baseline'])}" for s, m in others)
    if significant:
        won = "; ".join(f"sweep seed {s}: {_ci(m['vs_baseline'])}" for s, m in significant)
        rest = f"; not better at this confidence in the others ({shown})" if others else ""
        lines.append(f"- A gain over the baseline whose {level} interval excludes 0: met in "
                     f"{_of(len(significant), n)} ({won}){rest}.")
    else:
        lines.append(f"- A gain over the baseline whose {level} interval excludes 0: **not met**: not better at this "
                     f"confidence in {'the one repeat' if n == 1 else f'any of the {n} repeats'} ({shown}).")
    against = [(s, m) for s, m in measured if m["vs_best"] is not None]
    below = [(s, m) for s, m in against if _gain(m["vs_best"]["mean"], mode) < 0]
    if not against:
        lines.append("- At least as good as the best rival: no rival was measured.")
    elif below:
        misses = "; ".join(
            f"sweep seed {s}: below {m['best_rival']} by {abs(m['vs_best']['mean']):.3f}, {_ci(m['vs_best'])}, "
            + (f"worse at {level}" if _worse(m["vs_best"], mode) else f"not worse at {level}")
            for s, m in below
        )
        lines.append(f"- At least as good as the best rival (the mean paired difference at least 0): **not met** in "
                     f"{_of(len(below), len(against))} ({misses}).")
    else:
        better = sum(1 for _, m in against if _better(m["vs_best"], mode))
        lines.append(f"- At least as good as the best rival (the mean paired difference at least 0): met in "
                     f"{_of(len(against), len(against))}; better at {level} in {better} of them.")
    return lines


def render(data: dict[str, Any], command: str, selection: Callable[[dict[str, Any]], bool] = lambda r: True,
           json_name: str = "docs/data/decision_study.json") -> list[str]:
    """The Markdown block of the study, from the JSON file's content alone.

    Args:
        data: the content of the ``--json`` file.
        command: the command line that produced it (the block's first line).
        selection: which repeats to show (all by default).
        json_name: the JSON file as the block names it.
    """
    repeats = [r for r in data["repeats"] if selection(r)]
    lines = [f"Command: `{command}`. Each repeat is one `asymtune tune` command with its own sweep seed "
             f"(`search.seed`); per-seed records: `{json_name}`. Gains are the export's test value minus the "
             "other side's, paired over the confirmation seeds (Student-t intervals recomputed from the per-seed "
             "values); the seed spread is the standard deviation of the baseline's test value over those seeds; "
             "the best rival is the rival (not the export) with the largest mean paired gain over the baseline "
             "(a rival has the race's seeds, the export and the baseline may have more: `confirm.verdict_seeds`; "
             "each pair is taken on the seeds both have); compute: the epochs the "
             "sweep's trials trained, the confirmation's trainings (sweep trials reused as a seed not counted) and "
             "the command's wall time (shared by the datasets of one command)."]
    if not repeats:
        return lines + ["", "No repeat recorded yet."]
    taken = sum(1 for r in repeats if r.get("taken_from_earlier_invocation"))
    if taken:
        verb = "was" if taken == 1 else "were"
        lines += ["", f"{_of(taken, len(repeats))} {verb} taken from an earlier invocation (their report.json in the "
                      "output root, or their record in the JSON file with --resume), not run again by this command."]
    groups = list(dict.fromkeys((r["budget"], r["experiment"], tuple(r["overrides"])) for r in repeats))
    for budget, experiment, overrides in groups:
        mine = sorted((r for r in repeats if (r["budget"], r["experiment"], tuple(r["overrides"])) ==
                       (budget, experiment, overrides)), key=lambda r: (list(GROUPS).index(r["group"]),
                                                                         r["sweep_seed"]))
        label = f"{budget} budget" + "".join(f", {o}" for o in [*([f"experiment={experiment}"] if experiment else []),
                                                                   *overrides])
        datasets = list(dict.fromkeys(name for r in mine for name in r["datasets"]))
        for name in datasets:
            rows = [(r["sweep_seed"], r["datasets"][name], r) for r in mine if name in r["datasets"]]
            first = rows[0][1]
            mode, level = first["mode"], f"{round(first['confidence'] * 100)}%"
            lines += ["", f"### {name}: {label}", "",
                      f"{_budget_words(rows[0][2])}; metric "
                      f"`{first['metric']}` ({mode}), {level} intervals.", "",
                      f"| sweep seed | export | gain vs baseline [{level} CI] | seeds | significant | seed spread | "
                      f"best rival | export vs best rival [{level} CI] | sweep epochs | confirmation trainings | "
                      "minutes (command) |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            judged = []
            for seed, record, repeat in rows:
                m = measures(record)
                judged.append((seed, record, m))
                export = record["export"]["is"] + (f" ({record['export']['trial_id']})"
                                                   if record["export"]["is"] == "tuned" else "")
                if m is None:
                    cells = [export, "not confirmed", "0", "-", "-", "-", "-"]
                else:
                    cells = [export, _ci(m["vs_baseline"]), str(m["vs_baseline"]["n"]),
                             "yes" if m["significant"] else "no",
                             f"{m['spread']:.3f}" if math.isfinite(m["spread"]) else "n/a",
                             m["best_rival"] or "-", _ci(m["vs_best"]) if m["vs_best"] else "-"]
                cells += [*_compute_cells(record.get("compute")), _minutes(repeat.get("wall_seconds"))]
                lines.append(f"| {seed} | " + " | ".join(cells) + " |")
            lines += ["", "Exported settings: " + "; ".join(
                f"sweep seed {seed}: {record['export']['setting'] or 'none'}" for seed, record, _ in rows) + ".", "",
                f"Against the acceptance criteria ({name}, {_plural(len(rows), 'repeat')}):", ""]
            lines += criteria(judged, mode, level)
    return lines


# ----------------------------------------------------------------------------------- command
def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces the block (without --out, --resume, --render-only)."""
    parts = ["python bench/decision_study.py", "--datasets", *args.datasets]
    if args.budgets != ["default"]:
        parts += ["--budgets", *args.budgets]
    parts += ["--seeds", *map(str, args.seeds)]
    if args.experiment:
        parts += ["--experiment", args.experiment]
    if args.overrides:
        parts += ["--overrides", *args.overrides]
    if args.fresh:
        parts.append("--fresh")
    parts += ["--json", _shown(args.json)]
    if args.output_root != ROOT / "outputs" / "decision_study":
        parts += ["--output-root", _shown(args.output_root)]
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(GROUPS), default=["builtin"],
                        help="groups: builtin (synth_lesions + synth_organs in one command), brain_atlas, nuclei")
    parser.add_argument("--budgets", nargs="+", choices=list(BUDGETS), default=["default"],
                        help="default: the shipped defaults; larger: " + " ".join(BUDGETS["larger"]))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sweep seeds (search.seed)")
    parser.add_argument("--experiment", help="an experiment= overlay for the builtin group (smoke: a quick check)")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="further Hydra overrides given to every command")
    parser.add_argument("--output-root", type=Path, default=ROOT / "outputs" / "decision_study",
                        help="one output_dir per repeat is kept here (a rerun resumes)")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "data" / "decision_study.json",
                        help="the per-seed records (other repeats already there are kept)")
    parser.add_argument("--fresh", action="store_true",
                        help="delete the selected repeats' output folders first (ignored with --resume)")
    parser.add_argument("--resume", action="store_true",
                        help="also take repeats recorded in --json whose output folder is gone")
    parser.add_argument("--render-only", action="store_true", help="render the block from --json, run nothing")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.output_root, args.json = args.output_root.resolve(), args.json.resolve()
    if args.experiment and args.datasets != ["builtin"]:
        parser.error(f"--experiment {args.experiment}: only with --datasets builtin (the real groups are experiments "
                     "already)")
    repeats = [Repeat(group, budget, seed, args.experiment, tuple(args.overrides))
               for group in args.datasets for budget in args.budgets for seed in args.seeds]
    wanted = {identity_key(r.identity()) for r in repeats}
    if not args.render_only:
        if args.fresh and not args.resume:
            for repeat in repeats:
                shutil.rmtree(args.output_root / repeat.name, ignore_errors=True)
                (args.output_root / f"{repeat.name}.{WALL}").unlink(missing_ok=True)
        run_study(repeats, args.output_root, args.json, resume_from_json=args.resume)
    if not args.json.is_file():
        parser.error(f"--json {args.json}: no such file: run the study first (without --render-only)")
    data = json.loads(args.json.read_text())
    lines = render(data, _command(args), lambda record: identity_key(record) in wanted, _shown(args.json))
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
