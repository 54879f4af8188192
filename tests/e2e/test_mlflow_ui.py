"""The smoke sweep's store in the real MLflow UI: ``mlflow server`` on loopback, read by headless
Chromium (Debian's ``chromium``, driven over the DevTools pipe as in :mod:`chromium_page`).

The experiment opens on its training runs with the address asymtune gives; the parent runs are
listed with their trials nested under them (hidden until a parent is expanded); a trial's page shows
its dataset, its source commit and its system metrics; a parent's page shows its description.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium_page import _Pipe, find_chromium, open_chromium
from mlflow.tracking import MlflowClient

from asymtune.tracking.datasets import digest_of
from asymtune.tracking.ui import experiment_url, run_url

pytestmark = pytest.mark.e2e
NAME_CELL = '[role=gridcell][col-id="attributes.`Run Name`"]'
RUN_NAME = "(cell.querySelector('a') ? cell.querySelector('a').innerText.trim() : '')"  # the link to the run page
ROWS = f"""Array.from(document.querySelectorAll('{NAME_CELL}')).map(cell => [
    Number(cell.closest('[row-index]').getAttribute('row-index')), {RUN_NAME}])"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_ui(smoke_sweep: Path) -> Iterator[str]:
    """``mlflow server`` on the smoke sweep's SQLite store; yields its address."""
    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{smoke_sweep / 'mlflow.db'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{server}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"mlflow server did not answer on {server}") from None
                time.sleep(0.25)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Browser:
    """One headless Chromium tab; :meth:`wait_for` polls a JavaScript expression until it is truthy."""

    def __init__(self, pipe: _Pipe, session: str) -> None:
        self.pipe, self.session = pipe, session

    def open(self, url: str) -> None:
        self.pipe.call("Page.navigate", {"url": url}, session=self.session)

    def evaluate(self, expression: str) -> Any:
        reply = self.pipe.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                               session=self.session)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression[:80]}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def wait_for(self, expression: str, what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not shown within {timeout:.0f} s; the page reads:\n{self.text()[:3000]}")
            time.sleep(0.25)

    def wait_for_text(self, texts: list[str], what: str, timeout: float = 60.0) -> str:
        self.wait_for(f"(document.body ? document.body.innerText : '') && {json.dumps(texts)}"
                      ".every(t => document.body.innerText.includes(t))", what, timeout)
        return self.text()


@pytest.fixture()
def browser() -> Iterator[Browser]:
    if find_chromium() is None:
        pytest.fail("chromium not found: install Debian's chromium (make setup does)")
    with open_chromium() as pipe:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        pipe.call("Runtime.enable", session=session)
        pipe.call("Page.enable", session=session)
        # Tall enough that the runs table draws every row of the smoke sweep (it draws what is visible).
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1600, "height": 3200, "deviceScaleFactor": 1, "mobile": False}, session=session)
        yield Browser(pipe, session)


def _runs(smoke_sweep: Path) -> tuple[MlflowClient, str, dict[str, Any]]:
    """The store's client, the experiment id and, per dataset, its parent run and trial runs."""
    manifest = json.loads((smoke_sweep / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name(manifest["mlflow"]["experiment_name"])
    assert experiment is not None
    runs = {}
    for name, entry in manifest["datasets"].items():
        parent = client.get_run(entry["parent_run_id"])
        trials = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`asymtune.role` = 'trial'",
        )
        runs[name] = {"parent": parent, "trials": trials}
    return client, str(experiment.experiment_id), runs


def test_the_experiment_lists_parent_runs_with_their_trials_nested(
    smoke_sweep: Path, mlflow_ui: str, browser: Browser
) -> None:
    _, experiment_id, runs = _runs(smoke_sweep)
    parents = {runs[name]["parent"].info.run_name: name for name in runs}
    browser.open(experiment_url(mlflow_ui, experiment_id))
    text = browser.wait_for_text(list(parents), "the parent runs in the runs table")
    assert "Traces\n0" not in text and "Detect Issues" not in text, "opened on the GenAI overview, not the runs"
    shown = [name for _, name in sorted(browser.evaluate(ROWS))]
    assert sorted(shown) == sorted(parents), f"before expanding, only the parents are listed: {shown}"
    for parent_name, dataset in parents.items():
        trial_names = [trial.info.run_name for trial in runs[dataset]["trials"]]
        assert not any(name in browser.text() for name in trial_names), "trials are nested, hidden until expanded"
        clicked = browser.evaluate(f"""(() => {{
            const cell = Array.from(document.querySelectorAll('{NAME_CELL}'))
                .find(cell => {RUN_NAME} === {json.dumps(parent_name)});
            const button = cell && cell.querySelector('button');
            if (button) button.click();
            return Boolean(button);
        }})()""")
        assert clicked, f"{parent_name}: no button to expand its nested runs"
        browser.wait_for_text(trial_names, f"the trials of {parent_name} after expanding it")
        rows = sorted(browser.evaluate(ROWS))
        parent_rows = [index for index, name in rows if name in parents]
        for index, name in rows:
            if name in trial_names:  # nested: listed below its own parent, before the next parent
                above = max(row for row in parent_rows if row < index)
                assert dict(rows)[above] == parent_name, f"{name} is listed under {dict(rows)[above]}"


def test_a_trial_run_page_shows_its_dataset_source_and_system_metrics(
    smoke_sweep: Path, mlflow_ui: str, browser: Browser
) -> None:
    _, experiment_id, runs = _runs(smoke_sweep)
    name = "synth_lesions"
    trial = runs[name]["trials"][0]
    (used,) = trial.inputs.dataset_inputs
    provenance = json.loads((smoke_sweep / "configs" / f"{name}.provenance.json").read_text())
    assert used.dataset.digest == digest_of(provenance["dataset_fingerprint"])
    commit = trial.data.tags["mlflow.source.git.commit"]
    browser.open(run_url(mlflow_ui, experiment_id, trial.info.run_id))
    browser.wait_for_text(
        [trial.info.run_name, "Parent run", runs[name]["parent"].info.run_name, "Datasets",
         f"{name} ({used.dataset.digest})", commit[:7], "system/cpu_utilization_percentage"],
        "the trial's parent, dataset, source commit and system metrics",
    )

    parent = runs[name]["parent"]
    browser.open(run_url(mlflow_ui, experiment_id, parent.info.run_id))
    browser.wait_for_text(["Chosen setting", "Verdict:", provenance["verdict"][:40]],
                          "the parent run's description: the chosen setting and its verdict")
