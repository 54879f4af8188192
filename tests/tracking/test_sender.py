"""The tracker's sender thread: Ray Tune's loop, which calls the callbacks, never waits on MLflow."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from asymtune.tracking import MLflowSweepTracker

REQUEST_TIMEOUT_S = 30


def test_the_callbacks_return_while_the_tracking_server_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts connections and never answers: every request waits its full timeout
    (30 s), in the sender thread; the trial's start and three results are queued at once."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", str(REQUEST_TIMEOUT_S))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        tracker = MLflowSweepTracker(f"http://127.0.0.1:{silent.getsockname()[1]}", "silent", None, "sweep-silent",
                                     "synth_lesions", {}, {}, trial_params=dict, flush_timeout_s=0.0)
        tracker.parent_run_id = "parent"  # made before the sweep, as the pipeline does
        trial = SimpleNamespace(trial_id="t1", config={"margin": 1.0}, checkpoint=None)
        started = time.monotonic()
        tracker.on_trial_start(0, [trial], trial)
        for epoch in (1, 2, 3):
            tracker.on_trial_result(epoch, [trial], trial, {"training_iteration": epoch, "val/mean_fg_dice": 0.5})
        returned = time.monotonic() - started
        assert returned < REQUEST_TIMEOUT_S / 3, f"the callbacks took {returned:.1f} s: they waited on a request"
        assert tracker.pending == 4, "nothing was accepted: all four events wait, in order"
        assert tracker.get_state() == {"outbox": [event for event in tracker._outbox]}
    # the server is gone: the request fails, the sender stops, the events are still there to resend
    tracker._stop_sender()
    assert tracker.pending == 4 and [event[0] for event in tracker._outbox] == ["start", "metrics", "metrics",
                                                                                 "metrics"]
