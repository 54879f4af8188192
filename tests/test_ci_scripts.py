""".ci/repeat-resume-tests: the resume tests N times inside one run of the default suite."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    path = ROOT / ".ci" / "repeat-resume-tests"
    loader = importlib.machinery.SourceFileLoader("repeat_resume_tests", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_each_resume_file_follows_each_of_n_chunks_and_every_other_file_runs_once() -> None:
    script = _script()
    ordered = script.arguments(10)
    counts = Counter(ordered)
    assert all(counts[f] == 10 for f in script.RESUME)
    others = [f for f in ordered if f not in script.RESUME]
    assert len(others) == len(set(others)) > 30  # every other test file once, in pytest's (sorted) order
    assert others == sorted(others)
    assert ordered[-len(script.RESUME):] == list(script.RESUME)  # the last run ends the suite
    positions = [i for i, f in enumerate(ordered) if f == script.RESUME[0]]
    gaps = [b - a for a, b in zip(positions, positions[1:])]
    assert max(gaps) - min(gaps) <= 1 + len(script.RESUME)  # spread evenly through the suite, not bunched


def test_the_count_takes_passes_and_failures_per_test_and_ignores_the_rest(tmp_path: Path) -> None:
    script = _script()
    junit = tmp_path / "r.xml"
    case = '<testcase classname="tests.e2e.test_resume" name="test_sigkill"{}</testcase>'
    junit.write_text(
        "<testsuites><testsuite>"
        + case.format(">") * 2
        + case.format('><failure message="boom"/>')
        + '<testcase classname="tests.e2e.test_kill_points" name="test_point[between_datasets]"></testcase>'
        + '<testcase classname="tests.test_other" name="test_x"><failure message="not ours"/></testcase>'
        + '<testcase classname="tests.train.test_trainer" name="test_resume_from_state"></testcase>'  # not by name
        + "</testsuite></testsuites>"
    )
    passed, failed = script.passes(junit)
    assert passed == {"tests.e2e.test_resume::test_sigkill": 2,
                      "tests.e2e.test_kill_points::test_point[between_datasets]": 1}
    assert failed == {"tests.e2e.test_resume::test_sigkill": 1}
