"""Where a trial's wall time goes: training steps, validation, diagnostics, checkpointing, tracking.

Each repeat is one real `asymtune tune` sweep at the default experiment's settings (conf/tune.yaml:
30 epochs x 20 iterations, batch 8, U-Net of 8 channels, ASHA grace 6 and factor 3, a checkpoint
every epoch, diagnostics at the decision epochs) on one built-in dataset, with its first two trials
(the anchors ``baseline`` and ``authors_default``) run one at a time. The trainable is the real
:func:`asymtune.search.trainable.run_trial` (which runs :mod:`asymtune.search.trial`); the benchmark only
wraps it, inside the Ray worker, so
that ``time.perf_counter`` times its parts:

- setup: loading the data, building the trainer, the attempt log, fetching a checkpoint;
- training steps: ``Trainer.train_epoch``;
- validation: ``Trainer.predict_logits`` and ``Trainer.evaluate`` on the validation split;
- diagnostics: the boundary distances of both splits (training-split inference included), their
  summary and ``diagnostics.npz``;
- checkpointing: ``torch.save`` of the trainer state and ``tune.report`` with a checkpoint (which
  persists it to the sweep's storage);
- tracking: ``tune.report`` without a checkpoint (the metrics to the driver, where the MLflow
  callback logs them off the trial's clock);
- other: the rest of ``run_trial`` (building each epoch's metrics, temporary folders).

A call nested in another timed call counts for the outer one (inference inside the diagnostics is
diagnostics). Fractions are of the trial function's wall time in its worker. Goal (issue 15): at
least 0.85 of it in training steps (median over repeats).

    python bench/trial_breakdown.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs

GOAL = 0.85
"""At least this fraction of a trial's wall time in training steps (issue 15)."""

PARTS = ("setup", "training steps", "validation", "diagnostics", "checkpointing", "tracking", "other")

SETUP_CALLS = ("load_dataset", "build_trainer", "_record_attempt")
"""Names in :mod:`asymtune.search.trial` timed as setup."""

DIAGNOSTIC_CALLS = ("split_distances", "shift_metrics", "save_distances")
"""Names in :mod:`asymtune.search.trial` timed as diagnostics."""


class PartTimer:
    """Seconds per part; a call inside another timed call counts for the outer part only."""

    def __init__(self) -> None:
        self.seconds = {part: 0.0 for part in PARTS}
        self._depth = 0

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        if self._depth:
            yield
            return
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self._depth -= 1

    def wrap(self, name: str | Callable[..., str], function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` timed as part ``name`` (or ``name(*args, **kwargs)`` when callable)."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.part(name(*args, **kwargs) if callable(name) else name):
                return function(*args, **kwargs)

        return timed


@contextmanager
def patched(replacements: Sequence[tuple[Any, str, Any]]) -> Iterator[None]:
    """Set ``setattr(owner, attribute, value)`` for each entry, restore them on exit."""
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in replacements]
    try:
        for owner, attribute, value in replacements:
            setattr(owner, attribute, value)
        yield
    finally:
        for owner, attribute, value in reversed(saved):
            setattr(owner, attribute, value)


def timed_trainable(records: str) -> Callable[[dict[str, Any]], None]:
    """The real ``run_trial``, its parts timed; each trial appends one JSON line to ``records``.

    Defined here and pickled by value into the Ray worker, where it patches the modules that
    ``run_trial`` calls (and puts them back when the trial ends).
    """
    def run_trial(config: dict[str, Any]) -> None:
        import torch
        from ray import tune

        import asymtune.search.trial as trial
        from asymtune.search.trainable import run_trial as entry
        from asymtune.train.trainer import Trainer

        timer = PartTimer()
        epochs: list[int] = []

        def report_part(*args: Any, **kwargs: Any) -> str:
            return "checkpointing" if kwargs.get("checkpoint") is not None else "tracking"

        def train_epoch(self: Trainer) -> dict[str, float]:
            result = original_train_epoch(self)
            epochs.append(self.epoch)
            return result

        def write(stage: str) -> None:
            """Append this trial's record so far: Ray may end the trial inside its last report,
            so a record is written before and after every report (the last one per trial counts)."""
            total = time.perf_counter() - start
            seconds = dict(timer.seconds, other=0.0)
            seconds["other"] = total - sum(seconds.values())
            record = {"trial": trial_id, "stage": stage, "total": total, "seconds": seconds,
                      "epochs": len(epochs), "setting": _setting_name(config)}
            with open(records, "a") as stream:
                stream.write(json.dumps(record) + "\n")

        def report(*args: Any, **kwargs: Any) -> None:
            write("before report")
            with timer.part(report_part(*args, **kwargs)):
                original_report(*args, **kwargs)
            write("after report")

        original_train_epoch = Trainer.train_epoch
        original_report = tune.report
        trial_id = tune.get_context().get_trial_id()
        replacements = [
            *((trial, name, timer.wrap("setup", getattr(trial, name)))
              for name in SETUP_CALLS),
            (tune, "get_checkpoint", timer.wrap("setup", tune.get_checkpoint)),
            (Trainer, "train_epoch", timer.wrap("training steps", train_epoch)),
            (Trainer, "predict_logits", timer.wrap("validation", Trainer.predict_logits)),
            (Trainer, "evaluate", timer.wrap("validation", Trainer.evaluate)),
            *((trial, name, timer.wrap("diagnostics", getattr(trial, name)))
              for name in DIAGNOSTIC_CALLS),
            (torch, "save", timer.wrap("checkpointing", torch.save)),
            (tune, "report", report),
        ]
        start = time.perf_counter()
        with patched(replacements):
            entry(config)
        write("returned")

    run_trial.__name__ = "run_trial"  # the name the sweep registers its trainable under
    return run_trial


def _setting_name(config: dict[str, Any]) -> str:
    """``baseline`` or the trial's per-class margins and focal exponents."""
    from asymtune.results.spec import trial_settings

    settings = trial_settings(config)
    if settings.is_baseline:
        return "baseline"
    return f"margin {list(settings.margin)}, gamma {list(settings.gamma)}"


def run_sweep(dataset: str, trials: int, overrides: Sequence[str], records: Path) -> None:
    """One `asymtune tune` sweep with the timed trainable, trials one at a time."""
    import asymtune.search.sweep as sweep
    from asymtune.cli import compose
    from asymtune.pipeline import run_tune

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose("tune", [
            f"data={dataset}", f"output_dir={tmp}/out", f"search.num_samples={trials}",
            "search.max_concurrent_trials=1", "report.enabled=false", "verbose=0",
            "++confirm.enabled=false",  # the sweep only
            *overrides,
        ])
        with patched([(sweep, "run_trial", timed_trainable(str(records)))]):
            run_tune(cfg)


def last_per_trial(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last record of each trial, in the order the trials started."""
    last: dict[str, dict[str, Any]] = {}
    for line in lines:
        last[line["trial"]] = line
    return list(last.values())


def summarise(records: Sequence[dict[str, Any]], command: str, description: str) -> list[str]:
    """The Markdown block: per part, the median and range over trials of its fraction."""
    fractions = {part: [r["seconds"][part] / r["total"] for r in records] for part in PARTS}
    totals = [r["total"] for r in records]
    settings = sorted({r["setting"] for r in records})
    epochs = sorted({r["epochs"] for r in records})
    lines = [
        f"Command: `{command}` ({description}; {len(records)} trials ({', '.join(settings)}), "
        f"{'/'.join(str(e) for e in epochs)} epochs each, {min(totals):.1f}-{max(totals):.1f} s per trial)",
        "",
        "| part of the trial | fraction of its wall time, median (range over trials) | seconds, median |",
        "|---|---|---|",
    ]
    for part in PARTS:
        values = fractions[part]
        seconds = statistics.median(r["seconds"][part] for r in records)
        lines.append(f"| {part} | {statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f}) "
                     f"| {seconds:.2f} |")
    training = statistics.median(fractions["training steps"])
    largest = max((p for p in PARTS if p != "training steps"), key=lambda p: statistics.median(fractions[p]))
    verdict = "met" if training >= GOAL else "missed"
    returned = sum(r["stage"] == "returned" for r in records)
    lines += [
        "",
        f"{returned} of {len(records)} trials returned from `run_trial`; Ray ended the others inside their last "
        "report, whose own time is then not counted.",
        "",
        f"Verdict: training steps take {training:.3f} of a trial's wall time (median over trials); goal at least "
        f"{GOAL}: {verdict}. The largest other part is {largest} "
        f"({statistics.median(fractions[largest]):.3f}).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="sweeps, each of --trials trials")
    parser.add_argument("--trials", type=int, default=2, help="trials per sweep (the anchors first)")
    parser.add_argument("--dataset", default="synth_lesions", help="a conf/data group")
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides of the sweeps")
    parser.add_argument("--quick", action="store_true", help="1 sweep of 2 trials of 2 epochs x 2 iterations")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    overrides = list(args.override)
    if args.quick:
        args.repeats = 1
        overrides += ["train.epochs=2", "train.iterations_per_epoch=2", "search.scheduler.grace_period=1"]
    if args.repeats < 1 or args.trials < 1:
        parser.error(f"--repeats {args.repeats} --trials {args.trials}: expected both >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        records_path = Path(tmp) / "trials.jsonl"
        for _ in range(args.repeats):
            run_sweep(args.dataset, args.trials, overrides, records_path)
        records = last_per_trial(
            [json.loads(line) for line in records_path.read_text().splitlines()] if records_path.is_file() else []
        )
    if not records:
        raise SystemExit("no trial finished: see the sweep's output above")
    command = "python bench/trial_breakdown.py " + (
        "--quick" if args.quick else f"--repeats {args.repeats} --trials {args.trials} --dataset {args.dataset}"
    ) + (" --override " + " ".join(args.override) if args.override else "")
    description = (
        f"sweeps: {args.repeats}, each `asymtune tune data={args.dataset}` at the default settings"
        + (f" with {' '.join(overrides)}" if overrides else "")
        + f", {args.trials} trials each run one at a time, 1 CPU and 1 thread per trial"
    )
    return emit(summarise(records, command, description), args.out)


if __name__ == "__main__":
    sys.exit(main())
