"""Shared by the benchmark scripts: print a Markdown result and optionally write it to a file."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> int:
    """Print ``lines`` as one Markdown block; write it to ``out`` too when given. Returns 0."""
    table = "\n".join(lines)
    print(table)
    if out:
        out.write_text(table + "\n")
    return 0
