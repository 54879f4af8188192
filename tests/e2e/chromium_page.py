"""Open a local HTML file in headless Chromium (Debian's ``chromium``) and report what a reader sees.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: messages
are JSON terminated by a NUL byte, commands on fd 3, replies and events on fd 4), so no port is
opened and nothing but the standard library is needed. The network is switched off before the
page loads (``Network.emulateNetworkConditions``), and every request the page makes is recorded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_IMAGES = "JSON.stringify(Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]))"


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What the page showed.

    Attributes:
        images: ``(alt, complete, natural width, natural height)`` of every ``<img>``.
        tables: the number of ``<table>`` elements.
        console: console messages and uncaught exceptions, ``(level, text)``.
        log: browser log entries (failed loads, blocked requests), ``(level, text)``.
        requests: every URL the page requested.
        screenshot: the full-page PNG.
    """

    images: list[tuple[str, bool, int, int]] = field(default_factory=list)
    tables: int = 0
    console: list[tuple[str, str]] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""

    @property
    def broken_images(self) -> list[str]:
        return [alt for alt, complete, width, height in self.images if not complete or width == 0 or height == 0]


class _Pipe:
    def __init__(self, process: subprocess.Popen[bytes], write_fd: int, read_fd: int) -> None:
        self.process, self.write_fd, self.read_fd = process, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._receive(deadline))


@contextlib.contextmanager
def open_chromium(chromium: str | None = None) -> Iterator[_Pipe]:
    """Start headless Chromium with a fresh profile, driven over the DevTools pipe; closed on exit."""
    executable = chromium or find_chromium()
    if executable is None:
        raise FileNotFoundError("chromium not found: install Debian's chromium (make setup does)")
    to_browser_read, to_browser_write = os.pipe()
    from_browser_read, from_browser_write = os.pipe()

    def child_fds() -> None:  # the protocol expects exactly fds 3 and 4 in the browser
        read_copy, write_copy = os.dup(to_browser_read), os.dup(from_browser_write)
        os.dup2(read_copy, 3)
        os.dup2(write_copy, 4)

    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        pipe = _Pipe(process, to_browser_write, from_browser_read)
        try:
            yield pipe
        finally:
            try:
                pipe.call("Browser.close", timeout=5)
            except (OSError, EOFError, RuntimeError, TimeoutError):
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(to_browser_write)
            os.close(from_browser_read)


def check_page(path: Path, width: int = 1280, chromium: str | None = None) -> PageCheck:
    """Load ``path`` offline in headless Chromium and collect images, tables, console and requests."""
    with open_chromium(chromium) as pipe:
        return _inspect(pipe, Path(path).resolve().as_uri(), width)


def _inspect(pipe: _Pipe, url: str, width: int) -> PageCheck:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Page", "Network"):
        pipe.call(f"{domain}.enable", session=session)
    pipe.call("Network.emulateNetworkConditions",
              {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}, session=session)
    pipe.call("Emulation.setDeviceMetricsOverride",
              {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
    pipe.call("Page.navigate", {"url": url}, session=session)
    pipe.wait_for("Page.loadEventFired")
    check = PageCheck()
    images = pipe.call("Runtime.evaluate", {"expression": _IMAGES, "returnByValue": True}, session=session)
    check.images = [tuple(item) for item in json.loads(images["result"]["value"])]  # type: ignore[misc]
    tables = pipe.call("Runtime.evaluate", {"expression": "document.querySelectorAll('table').length",
                                            "returnByValue": True}, session=session)
    check.tables = int(tables["result"]["value"])
    metrics = pipe.call("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = pipe.call("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(float(size["height"]), 16000.0), "scale": 1},
    }, session=session, timeout=60)
    check.screenshot = base64.b64decode(shot["data"])
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            check.console.append((params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            check.console.append(("exception", json.dumps(params.get("exceptionDetails", {}))[:500]))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            check.log.append((entry.get("level", ""), f"{entry.get('text', '')} {entry.get('url', '')}".strip()))
        elif method == "Network.requestWillBeSent":
            check.requests.append(params.get("request", {}).get("url", ""))
    return check
