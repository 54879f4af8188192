"""The processor each confirmation run trained on, counted for the export's provenance."""

from __future__ import annotations

from pathlib import Path

from asymtune.tracking.confirmation import TAG_DERIVED, TAG_MACHINE, TAG_REUSED, ConfirmationRun, trained_on
from asymtune.versions import cpu_model, machine


def _run(seed: int, **tags: str) -> ConfirmationRun:
    return ConfirmationRun(f"run{seed}", "t", seed, "candidate", "tested", tags=tags)


def test_runs_are_counted_by_the_machine_they_trained_on() -> None:
    xeon, epyc = "cpu: Intel(R) Xeon(R) Processor @ 2.60GHz", "cpu: AMD EPYC 7B13"
    runs = [_run(0, **{TAG_REUSED: "true"}), _run(1, **{TAG_MACHINE: xeon}), _run(2, **{TAG_MACHINE: epyc}),
            _run(3, **{TAG_MACHINE: xeon}), _run(4, **{TAG_DERIVED: "run1"}), _run(5)]
    assert trained_on(runs) == {"not recorded": 1, "not recorded (a sweep trial)": 1, epyc: 1, xeon: 2}
    assert trained_on([]) == {}


def test_a_cpu_training_names_this_machines_processor() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    assert machine("cpu") == f"cpu: {cpu_model()}" and cpu_model() and cpu_model() == cpu_model().strip()
    if cpuinfo.is_file():  # Linux: the model name /proc/cpuinfo gives
        assert f": {cpu_model()}\n" in cpuinfo.read_text()
