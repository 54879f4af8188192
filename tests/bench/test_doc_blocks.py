"""Every block of docs/benchmarks.md and docs/results.md comes from bench/run_all.py, names its command
and its commit; bench/run_all.py marks a block stale when the code it measured has changed since."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = re.compile(r"^<!-- bench:([\w.-]+) -->$", re.MULTILINE)  # a marker on a line of its own


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(key, body)`` of each block; fails on a start marker without its end marker."""
    blocks = []
    for match in START.finditer(text):
        key = match.group(1)
        end = text.find(f"\n<!-- /bench:{key} -->\n", match.end())
        assert end != -1, f"<!-- bench:{key} --> has no <!-- /bench:{key} -->"
        body = text[match.end():end]
        assert "<!-- bench:" not in body, f"block {key} holds another block's start marker"
        blocks.append((key, body))
    return blocks


@pytest.mark.parametrize("doc", ["docs/benchmarks.md", "docs/results.md"])
def test_every_block_has_its_markers_the_command_that_writes_it_and_a_commit(bench_module, doc: str) -> None:
    run_all = bench_module("run_all")
    registered = {bench.key: bench for bench in run_all.BENCHMARKS}
    text = (ROOT / doc).read_text()
    blocks = _blocks(text)
    assert blocks, f"{doc} has no block"
    ends = re.findall(r"^<!-- /bench:[\w.-]+ -->$", text, re.MULTILINE)
    assert len(ends) == len(blocks), f"{doc}: an end marker without its start marker"
    keys = [key for key, _ in blocks]
    assert len(keys) == len(set(keys)), f"{doc}: a block appears twice"
    for key, body in blocks:
        assert key in registered, f"{doc}: block {key} is not a benchmark of bench/run_all.py"
        written = registered[key].doc
        assert written == doc, f"block {key} is in {doc}, bench/run_all.py writes it to {written}"
        if body.lstrip("\n").startswith(run_all.STALE):
            continue  # a block the command itself marked: its line says why (no commit, code changed)
        commit, _ = run_all.provenance_of(body)
        assert f"python bench/run_all.py --only {key}" in body, f"{doc}: block {key} does not name its command"
        assert commit is not None, f"{doc}: block {key} names no commit and is not marked stale"


def test_every_registered_source_path_exists(bench_module) -> None:
    run_all = bench_module("run_all")
    for bench in run_all.BENCHMARKS:
        for path in bench.sources:
            assert (ROOT / path).exists(), f"{bench.key}: source path {path} does not exist"


def test_provenance_names_the_commit_and_the_measured_code(bench_module) -> None:
    run_all = bench_module("run_all")
    body = ("Command: `python bench/x.py` (commit 1234567 in prose does not count)\n\n| a |\n|---|\n\n"
            "<sub>measured today on a machine, commit abcdef1 + uncommitted changes, measured code 0123456789ab; "
            "the command took 3 s (`python bench/run_all.py --only x`).</sub>")
    assert run_all.provenance_of(body) == ("abcdef1", "0123456789ab")
    assert run_all.provenance_of("<sub>measured, commit abcdef1; (`python bench/run_all.py --only x`)</sub>") == (
        "abcdef1", None)
    assert run_all.provenance_of("Command: `x`, commit abcdef1") == (None, None)


# ----------------------------------------------------------------------------- a tiny repository
def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org", "-c", "commit.gpgsign=false", *args],
        cwd=root, capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


def _commit(root: Path, files: dict[str, str]) -> str:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    _git(root, "add", "--all")
    _git(root, "commit", "-q", "-m", "change")
    return _git(root, "rev-parse", "--short", "HEAD")


def _doc(key: str, provenance: str) -> str:
    return (f"# Doc\n\n## Section\n\nProse.\n\n<!-- bench:{key} -->\nCommand: `python bench/x.py`\n\n"
            f"| a |\n|---|\n| 1 |\n\n{provenance}\n<!-- /bench:{key} -->\n\nMore prose.\n")


def _provenance(commit: str, extra: str = "") -> str:
    return (f"<sub>measured today on a machine, commit {commit}{extra}; the command took 1 s "
            "(`python bench/run_all.py --only x`).</sub>")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    return tmp_path


@pytest.fixture
def bench_x(bench_module) -> tuple[ModuleType, object]:
    run_all = bench_module("run_all")
    return run_all, run_all.Benchmark("x", "docs/benchmarks.md", "Section", "x.py", (), (), paths=("pkg",))


def test_a_block_turns_stale_when_its_paths_change_and_only_then(repo: Path, bench_x) -> None:
    run_all, bench = bench_x
    measured = _commit(repo, {"bench/x.py": "1", "pkg/a.py": "1", "other/c.py": "1"})
    doc = _doc("x", _provenance(measured))
    assert run_all.mark_stale(doc, repo, [bench]) == (doc, [])

    _commit(repo, {"other/c.py": "2"})  # not a source of x
    assert run_all.mark_stale(doc, repo, [bench]) == (doc, [])

    _commit(repo, {"pkg/a.py": "2"})
    marked, found = run_all.mark_stale(doc, repo, [bench])
    line = f"> stale: pkg changed since {measured}; rerun `python bench/run_all.py --only x`"
    assert found == [f"x: {line.removeprefix('> stale: ')}"]
    assert f"<!-- bench:x -->\n{line}\n\nCommand:" in marked
    assert "Prose." in marked and "More prose." in marked
    assert run_all.mark_stale(marked, repo, [bench])[0] == marked  # once, however often it runs

    _commit(repo, {"bench/x.py": "2"})  # the script is a source too
    assert "bench/x.py, pkg changed since" in run_all.mark_stale(doc, repo, [bench])[1][0]

    rerun = marked.replace(f"commit {measured};", f"commit {_git(repo, 'rev-parse', '--short', 'HEAD')};")
    fresh, found = run_all.mark_stale(rerun, repo, [bench])
    assert found == [] and run_all.STALE not in fresh and fresh == _doc("x", _provenance(_git(
        repo, "rev-parse", "--short", "HEAD")))


def test_a_block_measured_with_uncommitted_changes_stays_fresh_once_they_are_committed(repo: Path, bench_x) -> None:
    run_all, bench = bench_x
    base = _commit(repo, {"bench/x.py": "1", "pkg/a.py": "1"})
    (repo / "pkg" / "a.py").write_text("measured, not committed yet")
    (repo / "pkg" / "new.py").write_text("untracked, measured too")
    note = run_all.code_note(repo, bench)
    assert note.startswith(", measured code ")
    doc = _doc("x", _provenance(base, f" + uncommitted changes{note}"))
    assert run_all.mark_stale(doc, repo, [bench])[1] == []  # the working tree is what it measured

    _commit(repo, {})  # the measured changes are committed: HEAD holds the code it measured
    assert run_all.mark_stale(doc, repo, [bench])[1] == []
    assert run_all.code_note(repo, bench) == ""

    _commit(repo, {"pkg/a.py": "changed after the measurement"})
    found = run_all.mark_stale(doc, repo, [bench])[1]
    assert found == [f"x: pkg changed since {base} (+ uncommitted changes); rerun `python bench/run_all.py --only x`"]


def test_a_block_without_a_known_commit_or_benchmark_is_stale(repo: Path, bench_x) -> None:
    run_all, bench = bench_x
    _commit(repo, {"bench/x.py": "1", "pkg/a.py": "1"})
    no_commit = _doc("x", "<sub>measured today on a machine; the command took 1 s "
                          "(`python bench/run_all.py --only x`).</sub>")
    assert "its provenance names no commit" in run_all.mark_stale(no_commit, repo, [bench])[1][0]
    unknown = _doc("x", _provenance("deadbee"))
    found = run_all.mark_stale(unknown, repo, [bench])[1]
    assert "commit deadbee of its provenance is not in this repository" in found[0]
    other = _doc("y", _provenance("deadbee"))
    assert "`y` is not a benchmark of bench/run_all.py" in run_all.mark_stale(other, repo, [bench])[1][0]


def test_a_change_only_to_comments_docstrings_or_layout_leaves_a_block_fresh(repo: Path, bench_x) -> None:
    run_all, bench = bench_x
    code = 'def f(x):\n    """Twice x."""\n    return 2 * x\n'
    measured = _commit(repo, {"bench/x.py": "1", "pkg/a.py": code, "pkg/b.yaml": "a: 1\n"})
    doc = _doc("x", _provenance(measured))

    _commit(repo, {"pkg/a.py": '"""A module."""\n\n\ndef f(x):  # a comment\n    """Two times x."""\n'
                               "    return 2 * x\n"})
    assert run_all.mark_stale(doc, repo, [bench])[1] == []

    _commit(repo, {"pkg/a.py": 'def f(x):\n    """Twice x."""\n    return 3 * x\n'})
    assert run_all.mark_stale(doc, repo, [bench])[1] == [
        f"x: pkg changed since {measured}; rerun `python bench/run_all.py --only x`"]


@pytest.mark.parametrize(("old", "new", "same"), [
    ("x = 1\n", "x = 1  # one\n", True),
    ('def f():\n    """Doc."""\n', "def f():\n    pass\n", True),  # a body of only a docstring
    ('def f():\n    """Doc."""\n    return "Doc."\n', 'def f():\n    return "Other."\n', False),
    ("x = 1\n", "x = (\n", False),  # no longer parses
])
def test_same_code_compares_syntax_trees_without_docstrings(repo: Path, bench_module, old: str, new: str,
                                                            same: bool) -> None:
    run_all = bench_module("run_all")
    first = _commit(repo, {"pkg/a.py": old, "pkg/a.txt": "1"})
    second = _commit(repo, {"pkg/a.py": new, "pkg/a.txt": "1 "})
    assert run_all.same_code(repo, "pkg/a.py", first, second) is same
    assert run_all.same_code(repo, "pkg/a.txt", first, second) is False  # not Python: any change counts
    assert run_all.same_code(repo, "pkg/missing.py", first, second) is False


def test_a_block_rendered_from_earlier_records_is_judged_from_the_commit_of_those_records(
    repo: Path, bench_x
) -> None:
    run_all, bench = bench_x
    measured = _commit(repo, {"bench/x.py": "1", "pkg/a.py": "1"})
    # the script changes (e.g. its table), the product does not: re-rendered from the records, fresh
    rendered = _commit(repo, {"bench/x.py": "2"})
    carried = f"; records measured at commit {measured} on 2026-12-01 07:56 UTC"
    resumed = _doc("x", _provenance(rendered, carried))
    assert run_all.provenance_of(resumed)[0] == rendered  # the block's own commit comes first
    assert run_all.mark_stale(resumed, repo, [bench])[1] == []

    # the product changes after the records were measured but before the re-render: stale, not laundered
    _commit(repo, {"pkg/a.py": "2"})
    later = _commit(repo, {"bench/x.py": "3"})
    relaundered = _doc("x", _provenance(later, carried))
    assert run_all.mark_stale(relaundered, repo, [bench])[1] == [
        f"x: pkg changed since {measured}, the commit its records were measured at (rendered at {later}); "
        "rerun `python bench/run_all.py --only x`"]


def test_the_records_index_names_the_commit_a_records_file_was_started_at(repo: Path, bench_module) -> None:
    run_all = bench_module("run_all")
    registered = {bench.key: bench for bench in run_all.BENCHMARKS}
    assert run_all.records_file(registered["decision_study_real"]) == "docs/data/decision_study_real.json"
    assert run_all.records_file(registered["train_speed"]) is None
    assert run_all.read_records_index(repo) == {}
    run_all.note_records_start(repo, "docs/data/a.json", "abc1234", "2026-12-01 07:56 UTC")
    run_all.note_records_start(repo, "docs/data/b.json", "def5678", "2026-12-01 08:00 UTC")
    run_all.note_records_start(repo, "docs/data/a.json", "1234abc", "2026-12-01 09:00 UTC")  # a new run of a
    assert run_all.read_records_index(repo) == {
        "docs/data/a.json": {"commit": "1234abc", "date": "2026-12-01 09:00 UTC"},
        "docs/data/b.json": {"commit": "def5678", "date": "2026-12-01 08:00 UTC"}}


def test_every_records_file_of_the_documents_blocks_is_in_the_index(bench_module) -> None:
    run_all = bench_module("run_all")
    index = run_all.read_records_index(ROOT)
    for bench in run_all.BENCHMARKS:
        records = run_all.records_file(bench)
        if records is not None and (ROOT / records).is_file():
            assert records in index, f"{records} ({bench.key}) has no entry in {run_all.RECORDS_INDEX}"
            commit = index[records]["commit"]
            assert _git(ROOT, "cat-file", "-t", commit) == "commit", f"{records}: {commit} is not a commit here"
