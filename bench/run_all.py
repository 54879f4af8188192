"""Run every benchmark of bench/ and write its figures into docs/benchmarks.md (and docs/results.md).

Each benchmark prints one Markdown block that starts with ``Command: `...` `` (the command that
reproduces it) and holds its table. This script runs each one in its own process, then puts the
block, with a line naming the machine, the date and the run time, into its section of the
document, between the markers ``<!-- bench:KEY -->`` and ``<!-- /bench:KEY -->``. The prose around
the markers (goals, interpretation) is left as it is: read it again after a rerun.

A section without markers yet gets them on the first run: the old block that starts with the same
``Command: `python bench/<script>`` line is replaced up to the end of its table; when there is
none, the block is added at the end of the section (found by its heading), or in a new section.

    python bench/run_all.py                  # every benchmark, full size; updates docs/ (hours)
    python bench/run_all.py --quick          # every benchmark, small; writes outputs/bench-quick/
    python bench/run_all.py --only train_speed loss_cost
    python bench/run_all.py --only reproduction --resume   # continue an interrupted long benchmark
    python bench/run_all.py --list
    python bench/run_all.py --check-stale           # mark blocks whose measured code has changed

Benchmarks that need a GPU are skipped (their sections untouched) when none is visible. A
benchmark that fails leaves its section untouched; the script then exits with status 1.

Staleness: each benchmark names the source paths it measures (its script and the parts of the
product it exercises). A block's provenance records the commit it was measured at and, when those
paths differed from that commit then (uncommitted changes), a fingerprint of the code measured.
``--check-stale``, also run at the end of every invocation, puts a line ``> stale: ...`` inside
the markers of each block of docs/benchmarks.md and docs/results.md whose paths changed since
(``git diff <commit> HEAD -- <paths>``, where a Python file whose change is only in comments,
docstrings or layout does not count; with a fingerprint, when the code measured is neither HEAD's
nor the working tree's), or whose provenance names no commit; it takes the line
away again once the block is fresh. Rerunning the block replaces it.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _machine import describe_machine, now_utc  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent

PRODUCT = ("asymtune", "conf", "search_spaces")
"""Source paths of benchmarks that run the whole product (``asymtune tune``)."""

TRAINING = ("asymtune/method", "asymtune/models", "asymtune/data", "asymtune/train")
"""Source paths of benchmarks that train models without the sweep machinery."""

DOCS = ("docs/benchmarks.md", "docs/results.md")
"""The documents whose blocks this script writes and checks."""


@dataclass(frozen=True)
class Benchmark:
    """One block of a document and the command that produces it.

    Attributes:
        key: the marker name (``<!-- bench:KEY -->``).
        doc: the document, relative to the repository root.
        heading: the ``## `` heading of its section (used when the markers are not there yet).
        script: the file in bench/.
        full: its arguments for the published figure.
        quick: its arguments for ``--quick`` (a check that it runs; figures not comparable).
        needs_gpu: skipped when no GPU is visible.
        minutes: rough full-size run time on the 2-core development machine (for ``--list``).
        paths: the source paths it measures besides its script (files or folders, relative to the
            repository root); a change to one of them makes its block stale.
    """

    key: str
    doc: str
    heading: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    needs_gpu: bool = False
    minutes: float = 1.0
    paths: tuple[str, ...] = PRODUCT

    @property
    def sources(self) -> tuple[str, ...]:
        """Its script and :attr:`paths`."""
        return (f"bench/{self.script}", *self.paths)


BENCHMARKS = (
    Benchmark(
        "train_speed", "docs/benchmarks.md", "Training speed", "train_speed.py",
        ("--rounds", "10", "--iterations", "20"), ("--quick",), minutes=2, paths=TRAINING,
    ),
    Benchmark(
        "loss_cost", "docs/benchmarks.md", "Cost of each loss and regulariser per training step", "loss_cost.py",
        ("--rounds", "30", "--base-channels", "16", "--batch-size", "8", "--threads", "1"),
        ("--rounds", "3"), minutes=2, paths=("asymtune/method", "asymtune/models", "asymtune/data"),
    ),
    Benchmark(  # the loss alone, forward + backward on a leaf tensor, against MONAI's DiceFocalLoss
        "loss_alone", "docs/benchmarks.md", "Cost of each loss and regulariser per training step", "loss_alone.py",
        ("--repeats", "5", "--rounds", "100"), ("--quick",), minutes=2, paths=("asymtune/method",),
    ),
    Benchmark(  # where a default trial's wall time goes (the real trainable, its parts timed)
        "trial_breakdown", "docs/benchmarks.md", "Where a trial's time goes", "trial_breakdown.py",
        ("--repeats", "3"), ("--quick",), minutes=6,
    ),
    Benchmark(
        "sweep_wall_time", "docs/benchmarks.md", "Sweep wall time", "sweep_wall_time.py",
        (), ("--quick",), minutes=7,
    ),
    Benchmark(
        "orchestration_overhead_30", "docs/benchmarks.md", "Orchestration overhead", "orchestration_overhead.py",
        ("--trials", "4", "--concurrency", "2", "--epochs", "30", "--repeats", "3"),
        ("--trials", "2", "--concurrency", "2", "--epochs", "2", "--repeats", "1"), minutes=8,
    ),
    Benchmark(
        "orchestration_overhead_30x8", "docs/benchmarks.md", "Orchestration overhead", "orchestration_overhead.py",
        ("--trials", "8", "--concurrency", "2", "--epochs", "30", "--repeats", "3"),
        ("--trials", "2", "--concurrency", "2", "--epochs", "2", "--repeats", "1"), minutes=13,
    ),
    Benchmark(
        "orchestration_overhead_60", "docs/benchmarks.md", "Orchestration overhead", "orchestration_overhead.py",
        ("--trials", "4", "--concurrency", "2", "--epochs", "60", "--repeats", "3"),
        ("--trials", "2", "--concurrency", "2", "--epochs", "3", "--repeats", "1"), minutes=14,
    ),
    Benchmark(  # a simulation: 32 logical CPUs, trials that sleep instead of training (bench/scale.py)
        "scale", "docs/benchmarks.md", "Scale on a simulated cluster", "scale.py",
        ("--repeats", "3", "--json", "docs/data/scale.json"), ("--quick",), minutes=140,
    ),
    Benchmark(
        "data_pipeline", "docs/benchmarks.md", "Real data pipeline: throughput and memory (brain atlas)",
        "data_pipeline.py", (), ("--quick",), minutes=5, paths=(*TRAINING, "asymtune/monai_import.py"),
    ),
    Benchmark(
        "sweep_memory", "docs/benchmarks.md", "Real data pipeline: throughput and memory (brain atlas)",
        "sweep_memory.py", (), ("--quick",), minutes=8,
    ),
    Benchmark(
        "gpu_packing", "docs/benchmarks.md", "GPU packing", "gpu_packing.py",
        ("--trials", "8", "--epochs", "10"), ("--trials", "4", "--epochs", "2"), needs_gpu=True, minutes=5,
    ),
    Benchmark(  # the shipped sweep against a 12-setting grid's mean over 3 seeds, on the 4 built-in sets (issue 13)
        "search_efficiency", "docs/benchmarks.md", "Search efficiency", "search_efficiency.py",
        ("--datasets", "synth_lesions", "synth_organs", "brain_atlas", "nuclei", "--searches", "3",
         "--json", "docs/data/search_efficiency.json"),
        ("--quick", "--json", "outputs/bench-quick/search_efficiency.json",
         "--work-dir", "outputs/bench-quick/search_efficiency"), minutes=150,
    ),
    Benchmark(  # cold against warm-started sweeps (search.warm_start) on both built-in datasets
        "warm_start", "docs/benchmarks.md", "Warm start", "warm_start.py",
        ("--repeats", "3"), ("--quick",), minutes=8,
    ),
    Benchmark(
        "effect_study_synth_lesions", "docs/results.md", "synth_lesions", "effect_study.py",
        ("--dataset", "synth_lesions", "--seeds", "0", "1", "2", "--epochs", "30", "--iterations", "20",
         "--base-channels", "8", "--settings", "baseline", "asym_focal", "asym_margin", "asym_focal_margin"),
        ("--dataset", "synth_lesions", "--seeds", "0", "--epochs", "2", "--iterations", "2", "--base-channels", "4",
         "--settings", "baseline", "asym_focal"), minutes=4, paths=TRAINING,
    ),
    Benchmark(
        "effect_study_synth_organs", "docs/results.md", "synth_organs", "effect_study.py",
        ("--dataset", "synth_organs", "--seeds", "0", "1", "2", "--epochs", "30", "--iterations", "20",
         "--base-channels", "8", "--settings", "baseline", "asym_focal", "asym_margin"),
        ("--dataset", "synth_organs", "--seeds", "0", "--epochs", "2", "--iterations", "2", "--base-channels", "4",
         "--settings", "baseline", "asym_focal"), minutes=3, paths=TRAINING,
    ),
    Benchmark(  # the baseline probes that found that regime, rendered from their stored records
        "effect_study_probes", "docs/results.md", "Probes: where the baseline memorises and under-segments",
        "effect_study.py", ("--render-probes", "docs/data/effect_study_probes.json"),
        ("--render-probes", "docs/data/effect_study_probes.json"), minutes=1,
        paths=("bench/effect_study.py", "docs/data/effect_study_probes.json"),
    ),
    Benchmark(  # the paper's regime on a real set: 1 training tile, trained to memorise it (issue 15)
        "effect_study_real_nuclei", "docs/results.md", "The phenomenon on the real datasets", "effect_study.py",
        ("--dataset", "nuclei", "--train-fraction", "0.1", "--seeds", "0", "1", "2", "--epochs", "200",
         "--iterations", "20", "--base-channels", "8", "--settings", "baseline", "asym_focal", "asym_margin",
         "asym_augmentation", "asym_mixup", "asym_adversarial", "sym_augmentation",
         "--json", "docs/data/effect_study_nuclei.json"),
        ("--dataset", "nuclei", "--train-fraction", "0.1", "--seeds", "0", "--epochs", "2", "--iterations", "2",
         "--base-channels", "4", "--settings", "baseline", "asym_focal"),
        minutes=45, paths=(*TRAINING, "bench/reproduction.py"),
    ),
    Benchmark(  # the same on brain_atlas: 1 training volume (fraction 0.25), 16 channels
        "effect_study_real_brain_atlas", "docs/results.md", "The phenomenon on the real datasets", "effect_study.py",
        ("--dataset", "brain_atlas", "--train-fraction", "0.25", "--seeds", "0", "1", "2", "--epochs", "60",
         "--iterations", "20", "--base-channels", "16", "--settings", "baseline", "asym_focal", "asym_margin",
         "asym_augmentation", "asym_mixup", "asym_adversarial", "tuned", "sym_augmentation",
         "--json", "docs/data/effect_study_brain_atlas.json"),
        ("--dataset", "brain_atlas", "--train-fraction", "0.25", "--seeds", "0", "--epochs", "2", "--iterations",
         "2", "--base-channels", "4", "--settings", "baseline", "asym_focal"),
        minutes=30, paths=(*TRAINING, "bench/reproduction.py", "bench/tuned/brain_atlas.yaml"),
    ),
    Benchmark(
        "reproduction", "docs/results.md", "Reproduction study", "reproduction.py",
        ("--datasets", "synth_lesions", "synth_organs", "--n-train", "4", "16", "--seeds", "0", "1", "2",
         "--epochs", "30", "--json", "docs/data/reproduction.json", "--figure-dir", "docs/figures"),
        ("--quick",), minutes=30, paths=TRAINING,
    ),
    Benchmark(
        "reproduction_real", "docs/results.md", "Reproduction study on the real datasets", "reproduction.py",
        ("--datasets", "brain_atlas", "nuclei", "--train-fractions", "0.5", "1.0", "--seeds", "0", "1", "2",
         "--epochs", "30", "--json", "docs/data/reproduction_real.json", "--figure-dir", "docs/figures"),
        ("--quick", "--datasets", "brain_atlas", "nuclei"), minutes=50, paths=TRAINING,
    ),
    Benchmark(  # the product as shipped: `asymtune tune` over sweep seeds; records in docs/data/decision_study.json
        "decision_study", "docs/results.md", "Decision study", "decision_study.py",
        ("--datasets", "builtin", "--seeds", "0", "1", "2", "--fresh", "--json", "docs/data/decision_study.json"),
        ("--experiment", "smoke", "--seeds", "0", "--json", "outputs/bench-quick/decision_study.json",
         "--output-root", "outputs/bench-quick/decision_study"), minutes=115,
    ),
    Benchmark(  # the same on the real built-in sets, one command per set and sweep seed
        "decision_study_real", "docs/results.md", "Decision study", "decision_study.py",
        ("--datasets", "brain_atlas", "nuclei", "--seeds", "0", "1", "2", "--fresh",
         "--json", "docs/data/decision_study_real.json"),
        ("--datasets", "nuclei", "--seeds", "0", "--overrides", "search.num_samples=2", "train.epochs=2",
         "search.scheduler.grace_period=1",
         "--json", "outputs/bench-quick/decision_study_real.json",
         "--output-root", "outputs/bench-quick/decision_study"), minutes=90,
    ),
    Benchmark(  # the larger budget on the real sets: twice the sweep, a race of up to 6 seeds (issue 13, item 6)
        "decision_study_real_larger", "docs/results.md", "Decision study", "decision_study.py",
        ("--datasets", "brain_atlas", "nuclei", "--budgets", "larger", "--seeds", "0", "1", "2", "--fresh",
         "--json", "docs/data/decision_study_real_larger.json"),
        ("--datasets", "nuclei", "--budgets", "larger", "--seeds", "0", "--overrides", "train.epochs=2",
         "search.scheduler.grace_period=1",
         "--json", "outputs/bench-quick/decision_study_real_larger.json",
         "--output-root", "outputs/bench-quick/decision_study"), minutes=100,
    ),
)


def commit_of_tree() -> str:
    """``commit abc1234`` of the measured tree, ``+ uncommitted changes`` when its code (not the
    documents this command writes) differs from that commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "asymtune", "bench", "conf", "search_spaces",
                "pyproject.toml")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (" + uncommitted changes" if dirty else "")


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, env=env)


def code_fingerprint(root: Path, paths: Sequence[str], ref: str | None = None) -> str:
    """12 hex digits naming the content of ``paths`` at commit ``ref``, or in the working tree
    (untracked files that git does not ignore included) when ``ref`` is None."""
    if ref is None:
        head = set(_git(root, "ls-tree", "--name-only", "HEAD", "--", *paths).stdout.split())
        present = [path for path in paths if (root / path).exists() or path in head]
        with tempfile.TemporaryDirectory() as tmp:  # a scratch index: the real one is left alone
            env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(root, "read-tree", "HEAD", env=env)
            if present:
                _git(root, "add", "--all", "--", *present, env=env)
            ref = _git(root, "write-tree", env=env).stdout.strip()
    listing = _git(root, "ls-tree", ref, "--", *paths).stdout
    return hashlib.sha1(listing.encode()).hexdigest()[:12]


def code_note(root: Path, bench: Benchmark) -> str:
    """``, measured code <fingerprint>`` when ``bench``'s sources differ from HEAD's, else ``""``."""
    measured = code_fingerprint(root, bench.sources)
    return "" if measured == code_fingerprint(root, bench.sources, "HEAD") else f", measured code {measured}"


STALE = "> stale: "
"""How a stale block's first line starts."""

_BLOCK = re.compile(r"^(<!-- bench:([\w.-]+) -->\n)(.*?)(\n<!-- /bench:\2 -->)$", re.DOTALL | re.MULTILINE)
"""A block: its start marker on a line of its own, its text, its end marker on a line of its own."""


def provenance_of(body: str) -> tuple[str | None, str | None]:
    """The commit and the measured-code fingerprint (or None) of a block's provenance line."""
    for line in reversed(body.splitlines()):
        if line.startswith("<sub>") and "bench/run_all.py --only " in line:
            commit = re.search(r"\bcommit ([0-9a-f]{7,40})\b", line)
            code = re.search(r"\bmeasured code ([0-9a-f]{12})\b", line)
            return (commit.group(1) if commit else None), (code.group(1) if code else None)
    return None, None


_RECORDS = re.compile(r"records measured at commit ([0-9a-f]{7,40}) on ([\d-]+ [\d:]+ UTC)")


RECORDS_INDEX = "docs/data/records.json"
"""Per records file (``--json`` of a full run): the commit and date at which the run that wrote
its records started, written by :func:`main` before the run, read when a block is rendered
again from the records (``--resume``)."""


def records_file(bench: Benchmark) -> str | None:
    """The ``--json`` records file of ``bench``'s full run (relative to the root), or None."""
    arguments = list(bench.full)
    return arguments[arguments.index("--json") + 1] if "--json" in arguments else None


def read_records_index(root: Path) -> dict[str, dict[str, str]]:
    path = root / RECORDS_INDEX
    return json.loads(path.read_text()) if path.is_file() else {}


def note_records_start(root: Path, records: str, commit: str, date: str) -> None:
    """Write into the index that a run writing ``records`` starts now, at ``commit``."""
    index = read_records_index(root)
    index[records] = {"commit": commit, "date": date}
    (root / RECORDS_INDEX).parent.mkdir(parents=True, exist_ok=True)
    (root / RECORDS_INDEX).write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")


def _code_of(source: str) -> str | None:
    """``source``'s syntax tree without docstrings (comments are not in it), or None if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def same_code(root: Path, path: str, old: str, new: str) -> bool:
    """Whether the Python file ``path`` runs the same code at commits ``old`` and ``new``: they
    differ at most in comments, docstrings and layout. False for any other file, or one that is
    missing or does not parse at either commit."""
    if not path.endswith(".py"):
        return False
    versions = [_git(root, "show", f"{ref}:{path}") for ref in (old, new)]
    if any(version.returncode != 0 for version in versions):
        return False
    trees = [_code_of(version.stdout) for version in versions]
    return trees[0] is not None and trees[0] == trees[1]


Fingerprint = Callable[[Path, Sequence[str], "str | None"], str]


def stale_reason(
    root: Path, bench: Benchmark | None, key: str, body: str, fingerprint: Fingerprint = code_fingerprint
) -> str | None:
    """Why the block ``key`` (text ``body``) no longer shows the code of ``root``'s HEAD, or None."""
    rerun = f"rerun `python bench/run_all.py --only {key}`"
    if bench is None:
        return f"`{key}` is not a benchmark of bench/run_all.py"
    commit, code = provenance_of(body)
    if commit is None:
        return f"its provenance names no commit, so its code cannot be checked; {rerun}"
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return f"commit {commit} of its provenance is not in this repository; {rerun}"
    files = _git(root, "diff", "--name-only", commit, "HEAD", "--", *bench.sources).stdout.split()
    if code is None:
        files = [path for path in files if not same_code(root, path, commit, "HEAD")]
        fresh = not files
    else:  # measured with uncommitted changes: fresh when HEAD (or the working tree) now holds them
        fresh = code in (fingerprint(root, bench.sources, "HEAD"), fingerprint(root, bench.sources, None))
    since = commit
    records = _RECORDS.search(body)
    if records and _git(root, "cat-file", "-e", f"{records.group(1)}^{{commit}}").returncode == 0:
        # records taken from an earlier run (--resume): the product they measured is judged from then
        earlier = records.group(1)
        product = _git(root, "diff", "--name-only", earlier, "HEAD", "--", *bench.paths).stdout.split()
        product = [path for path in product if not same_code(root, path, earlier, "HEAD")]
        if product:
            files, fresh = sorted({*files, *product}), False
            since = f"{earlier}, the commit its records were measured at (rendered at {commit})"
    if fresh:
        return None
    changed = [path for path in bench.sources if any(f == path or f.startswith(f"{path}/") for f in files)]
    what = ", ".join(changed) if changed else "the uncommitted code it measured"
    return f"{what} changed since {since}{' (+ uncommitted changes)' if code else ''}; {rerun}"


def mark_stale(text: str, root: Path, benchmarks: Sequence[Benchmark]) -> tuple[str, list[str]]:
    """``text`` with a ``> stale: ...`` line first in each stale block (and none in fresh ones),
    and one ``key: reason`` per stale block."""
    by_key = {bench.key: bench for bench in benchmarks}
    found: list[str] = []
    cached = functools.lru_cache(maxsize=None)(
        lambda sources, ref: code_fingerprint(root, sources, ref)
    )

    def fingerprint(_: Path, sources: Sequence[str], ref: str | None) -> str:
        return str(cached(tuple(sources), ref))

    def rewrite(match: re.Match[str]) -> str:
        start, key, body, end = match.groups()
        if body.startswith(STALE):
            body = body.split("\n", 1)[1].lstrip("\n") if "\n" in body else ""
        reason = stale_reason(root, by_key.get(key), key, body, fingerprint)
        if reason is None:
            return start + body + end
        found.append(f"{key}: {reason}")
        return f"{start}{STALE}{reason}\n\n{body}{end}"

    return _BLOCK.sub(rewrite, text), found


def check_stale(root: Path, doc_dir: Path, benchmarks: Sequence[Benchmark]) -> list[str]:
    """Mark the stale blocks of the documents in ``doc_dir`` (:data:`DOCS`); returns what is stale."""
    stale = []
    for doc in DOCS:
        path = doc_dir / Path(doc).name
        if not path.is_file():
            continue
        text = path.read_text()
        marked, found = mark_stale(text, root, benchmarks)
        if marked != text:
            path.write_text(marked)
        stale += [f"{doc}: {line}" for line in found]
    return stale


def report_stale(doc_dir: Path) -> None:
    """:func:`check_stale` on ``doc_dir``, printing each stale block."""
    stale = check_stale(ROOT, doc_dir, BENCHMARKS)
    for line in stale:
        print(f"[bench] stale: {line}", flush=True)
    print(f"[bench] {len(stale)} stale block(s) marked in {doc_dir}", flush=True)


def gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def markers(key: str) -> tuple[str, str]:
    return f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"


def _table_end(lines: list[str], start: int) -> int:
    """Index just past the first Markdown table at or after ``start`` (``start + 1`` if none)."""
    index = start + 1
    while index < len(lines) and not lines[index].startswith("|"):
        if lines[index].startswith("#"):
            return start + 1
        index += 1
    while index < len(lines) and lines[index].startswith("|"):
        index += 1
    return index


def _paragraphs_after_table(lines: list[str]) -> int:
    """How many paragraphs a block has after its (first) table."""
    end = _table_end(lines, 0)
    return len([p for p in "\n".join(lines[end:]).split("\n\n") if p.strip()])


def _skip_paragraphs(lines: list[str], index: int, count: int) -> int:
    """Index just past ``count`` paragraphs starting at ``index`` (stops at a heading)."""
    for _ in range(count):
        while index < len(lines) and not lines[index].strip():
            index += 1
        if index >= len(lines) or lines[index].startswith("#"):
            break
        while index < len(lines) and lines[index].strip():
            index += 1
    return index


def _section_end(lines: list[str], heading: str) -> int | None:
    """Index of the line that ends the section whose heading starts with ``heading``."""
    level = None
    for index, line in enumerate(lines):
        match = re.match(r"^(#+) (.*)", line)
        if not match:
            continue
        if level is None and match.group(2).startswith(heading):
            level = len(match.group(1))
        elif level is not None and len(match.group(1)) <= level:
            return index
    return len(lines) if level is not None else None


def place_block(text: str, bench: Benchmark, block: str, provenance: str = "") -> str:
    """``text`` with ``block`` (and a ``provenance`` line under it) between ``bench``'s markers.

    Without the markers, an old block of the same command is replaced: from its ``Command:`` line
    to the end of its table and as many paragraphs after it as ``block`` has; else the block is
    added at the end of the section ``bench.heading`` (or in a new section at the end).
    """
    start, end = markers(bench.key)
    body = block.rstrip() + (f"\n\n{provenance}" if provenance else "")
    wrapped = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        return pattern.sub(lambda _: wrapped, text, count=1)
    lines = text.splitlines()
    command = f"Command: `python bench/{bench.script} {' '.join(bench.full)}".rstrip()
    for index, line in enumerate(lines):
        if line.startswith(command):
            stop = _skip_paragraphs(lines, _table_end(lines, index), _paragraphs_after_table(block.splitlines()))
            return "\n".join(lines[:index] + wrapped.splitlines() + lines[stop:]) + "\n"
    section_end = _section_end(lines, bench.heading)
    if section_end is None:
        return text.rstrip() + f"\n\n## {bench.heading}\n\n{wrapped}\n"
    head, tail = lines[:section_end], lines[section_end:]
    while head and not head[-1].strip():
        head.pop()
    return "\n".join(head + ["", *wrapped.splitlines(), "", *tail]).rstrip() + "\n"


def run_one(bench: Benchmark, quick: bool, log_dir: Path, resume: bool = False) -> tuple[str | None, float]:
    """Run one benchmark; returns its Markdown block (None on failure) and its seconds.

    With ``resume``, a benchmark that keeps its records in a ``--json`` file takes the records
    already there (an interrupted full run) instead of computing them again.
    """
    arguments = list(bench.quick if quick else bench.full)
    if resume and not quick and "--json" in arguments:
        arguments.append("--resume")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "block.md"
        command = [sys.executable, str(ROOT / "bench" / bench.script), *arguments, "--out", str(out)]
        log = log_dir / f"{bench.key}.log"
        print(f"[bench] {bench.key}: {' '.join(command[1:])} (log: {log})", flush=True)
        start = time.perf_counter()
        with log.open("w") as stream:
            result = subprocess.run(command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, check=False)
        seconds = time.perf_counter() - start
        if result.returncode != 0 or not out.is_file():
            print(f"[bench] {bench.key}: FAILED (exit {result.returncode}) after {seconds:.0f} s; see {log}",
                  flush=True)
            return None, seconds
        return out.read_text(), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs into --doc-dir (default outputs/bench-quick)")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="run only these benchmarks")
    parser.add_argument("--skip", nargs="+", metavar="KEY", default=[], help="leave these out")
    parser.add_argument("--doc-dir", type=Path, help="where the documents are written (default docs/, or "
                        "outputs/bench-quick/ with --quick, starting from a copy of docs/)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--resume", action="store_true", help="benchmarks that store their records in --json "
                        "files continue an interrupted run (the figures are the same as a full run's)")
    parser.add_argument("--check-stale", action="store_true", help="only mark the blocks whose measured code "
                        "has changed since (done after every run too) and exit")
    args = parser.parse_args(argv)
    known = {bench.key for bench in BENCHMARKS}
    unknown = sorted((set(args.only or []) | set(args.skip)) - known)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: expected some of {', '.join(sorted(known))}")
    if args.list:
        for bench in BENCHMARKS:
            gpu = ", needs a GPU" if bench.needs_gpu else ""
            print(f"{bench.key:30s} {bench.doc:20s} ~{bench.minutes:g} min{gpu}: "
                  f"python bench/{bench.script} {' '.join(bench.full)}")
        return 0
    selected = [b for b in BENCHMARKS if (not args.only or b.key in args.only) and b.key not in args.skip]
    doc_dir = args.doc_dir or (ROOT / "outputs" / "bench-quick" if args.quick else ROOT / "docs")
    if args.check_stale:
        report_stale(doc_dir)
        return 0
    log_dir = ROOT / "outputs" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    has_gpu = gpu_visible()
    failed = []
    for bench in selected:
        if bench.needs_gpu and not has_gpu:
            print(f"[bench] {bench.key}: skipped, no GPU visible (its section is left as it is)", flush=True)
            continue
        if not (ROOT / "bench" / bench.script).is_file():
            print(f"[bench] {bench.key}: skipped, bench/{bench.script} does not exist", flush=True)
            continue
        machine, date = describe_machine(), now_utc()
        measured = f"{commit_of_tree()}{code_note(ROOT, bench)}"  # the code as it is when the run starts
        records = records_file(bench)
        resumed = args.resume and not args.quick and records is not None
        if records is not None and not args.quick and not args.resume:
            note_records_start(ROOT, records, _git(ROOT, "rev-parse", "--short", "HEAD").stdout.strip(), date)
        earlier = read_records_index(ROOT).get(records or "") if resumed else None
        block, seconds = run_one(bench, args.quick, log_dir, args.resume)
        if block is None:
            failed.append(bench.key)
            continue
        size = "quick run, not a published figure: " if args.quick else ""
        closing = (
            " --resume`; records found in the --json file from an earlier run were taken, not recomputed"
            + (f"; records measured at commit {earlier['commit']} on {earlier['date']}" if earlier else "")
            if resumed
            else "`"
        )
        provenance = (
            f"<sub>{size}measured {date} on {machine}, {measured}; the command took {seconds:.0f} s "
            f"(`python bench/run_all.py --only {bench.key}{' --quick' if args.quick else ''}"
            f"{closing}"
            ").</sub>"
        )
        target = doc_dir / Path(bench.doc).name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / bench.doc, target)
        target.write_text(place_block(target.read_text(), bench, block, provenance))
        print(f"[bench] {bench.key}: {seconds:.0f} s, written to {target}", flush=True)
    report_stale(doc_dir)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
