"""Shared by the memory benchmarks: a process's proportional set size, read from /proc (Linux)."""

from __future__ import annotations


def pss_kb(pid: int, under: str | None = None) -> int:
    """PSS of a process in kB (a page shared by n processes counts 1/n in each, so sums count it once);
    with ``under``, only of the mappings of files in that folder."""
    if under is None:
        with open(f"/proc/{pid}/smaps_rollup") as stream:
            return next(int(line.split()[1]) for line in stream if line.startswith("Pss:"))
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps") as stream:
        for line in stream:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                inside = len(fields) >= 6 and fields[5].startswith(under)
            elif inside and fields[0] == "Pss:":
                total += int(fields[1])
    return total


def process_title(pid: int) -> str:
    """The command line of a process, arguments separated by spaces (Ray sets a worker's to ``ray::<task>``)."""
    with open(f"/proc/{pid}/cmdline", "rb") as stream:
        return stream.read().replace(b"\0", b" ").decode(errors="replace").strip()
