"""Run named units of work side by side in threads of this process, at most ``limit`` at a time.

The pipeline runs each dataset's sweep and confirmation as one unit (``docs/architecture.md``:
datasets side by side). Each unit gets its own thread, named after it; while units run side by
side, every line a unit prints (``sys.stdout``, ``sys.stderr``: Ray Tune's trial table) and every
log record it emits starts with ``[<name>] ``, so that interleaved output stays readable. A single
unit, or ``limit`` 1, runs in the calling thread, one unit after the other and unprefixed, exactly as
a plain loop would (Ray Tune then also installs its Ctrl+C handler, which only the main thread can).

Threads are daemons: interrupting the main thread (Ctrl+C) ends the process without waiting for the
running units, as a killed process would.

>>> run_side_by_side([("a", lambda: 1), ("b", lambda: 2)], limit=2)
[1, 2]
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
_unit = threading.local()  # .name: the unit the current thread runs (absent outside units)


def current_unit() -> str | None:
    """The name of the unit the calling thread runs side by side, or None."""
    name: str | None = getattr(_unit, "name", None)
    return name


def run_side_by_side(units: Sequence[tuple[str, Callable[[], T]]], limit: int) -> list[T]:
    """Run every unit ``(name, work)``, at most ``limit`` at a time, and return their results in
    the order of ``units``.

    Units start in order; each next one starts as soon as a running one ends. When a unit raises,
    no further unit starts, the running ones finish (what they did is kept, e.g. for a resume), and
    the first error is raised.

    Args:
        units: ``(name, work)`` pairs; ``work()`` takes no argument. Names should be unique (they
            prefix the output).
        limit: the most units running at the same time (>= 1).

    Raises:
        ValueError: ``limit`` < 1.
    """
    if limit < 1:
        raise ValueError(f"limit={limit!r}: expected an integer >= 1 (units running at the same time)")
    if limit == 1 or len(units) <= 1:
        return [work() for _, work in units]
    finished: queue.Queue[tuple[int, Any, BaseException | None]] = queue.Queue()
    waiting = list(enumerate(units))[::-1]  # pop() takes the next unit in order
    results: dict[int, Any] = {}
    first_error: BaseException | None = None
    running = 0
    with _prefixed_output():
        while waiting and running < limit:
            _start(*waiting.pop(), finished)
            running += 1
        while running:
            index, result, error = finished.get()  # a Ctrl+C interrupts this wait
            running -= 1
            if error is None:
                results[index] = result
            elif first_error is None:
                first_error = error
            if waiting and first_error is None:
                _start(*waiting.pop(), finished)
                running += 1
    if first_error is not None:
        raise first_error
    return [results[index] for index in range(len(units))]


def _start(
    index: int, unit: tuple[str, Callable[[], Any]], finished: queue.Queue[tuple[int, Any, BaseException | None]]
) -> None:
    """Run ``unit`` in a new daemon thread that puts ``(index, result, error)`` on ``finished``."""
    name, work = unit

    def body() -> None:
        _unit.name = name
        result, error = None, None
        try:
            result = work()
        except BaseException as raised:  # reported to the caller, which raises it
            error = raised
        for stream in (sys.stdout, sys.stderr):  # before the caller may put the streams back
            if isinstance(stream, PrefixedStream):
                stream.end_unit()
        finished.put((index, result, error))

    threading.Thread(target=body, name=f"asymtune-{name}", daemon=True).start()


class PrefixedStream:
    """A text stream that writes the lines of units' threads as ``[<name>] <line>`` (whole lines,
    so that two units' lines never mix); other threads write through unchanged.

    Args:
        stream: the stream written to (``sys.stdout`` ...).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._partial: dict[int, str] = {}  # thread ident -> its unfinished line
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        name = current_unit()
        if name is None:
            return self.stream.write(text)
        with self._lock:
            ident = threading.get_ident()
            *lines, rest = (self._partial.pop(ident, "") + text).split("\n")
            if lines:
                self.stream.write("".join(f"[{name}] {line}\n" for line in lines))
            if rest:
                self._partial[ident] = rest
        return len(text)

    def end_unit(self) -> None:
        """Write the calling unit's unfinished line (its thread ends)."""
        name = current_unit()
        with self._lock:
            rest = self._partial.pop(threading.get_ident(), "")
            if rest:
                self.stream.write(f"[{name}] {rest}\n")

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, attribute: str) -> Any:  # encoding, isatty, fileno ... of the stream
        return getattr(self.stream, attribute)


@contextmanager
def _prefixed_output() -> Iterator[None]:
    """Prefix units' printed lines and log records with their names, while the block runs."""
    stdout, stderr = sys.stdout, sys.stderr
    make_record = logging.getLogRecordFactory()

    def prefixed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        name = current_unit()
        if name is not None and isinstance(record.msg, str):
            record.msg = f"[{name.replace('%', '%%') if record.args else name}] {record.msg}"
        return record

    sys.stdout, sys.stderr = PrefixedStream(stdout), PrefixedStream(stderr)
    logging.setLogRecordFactory(prefixed_record)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        logging.setLogRecordFactory(make_record)
