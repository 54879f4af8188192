"""Cross-field checks before anything starts: one sentence naming the keys, exit code 2, no output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asymtune.cli import main
from asymtune.config import ConfigError, check_cluster_resources, check_tune_config, compose


def _refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: list[str]) -> str:
    output_dir = tmp_path / "out"
    capsys.readouterr()
    assert main(["tune", *overrides, f"output_dir={output_dir}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one error line, got {err}"
    assert not output_dir.exists(), "nothing may start on a bad config"
    return err[0]


def test_grace_period_beyond_the_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _refused(tmp_path, capsys, ["experiment=brain_atlas", "train.epochs=2"])
    assert message.startswith(
        "asymtune tune: error: search.scheduler.grace_period=6 is more than train.epochs=2: expected a grace period "
        "of at most train.epochs"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("search.num_samples=0", "search.num_samples=0: expected an integer >= 1"),
        ("search.max_concurrent_trials=0", "search.max_concurrent_trials=0: expected an integer >= 1"),
        ("search.scheduler.reduction_factor=1", "search.scheduler.reduction_factor=1: expected a number > 1"),
        ("search.n_startup_trials=-1", "search.n_startup_trials=-1: expected an integer >= 0"),
        ("search.checkpoint_every=0", "search.checkpoint_every=0: expected an integer >= 1"),
        ("search.checkpoints_to_keep=0", "search.checkpoints_to_keep=0: expected an integer >= 1"),
        ("search.max_failures=-2", "search.max_failures=-2: expected an integer >= 0, or -1"),
        ("search.scheduler.grace_period=0", "search.scheduler.grace_period=0: expected an integer >= 1"),
        ("search.parallel_datasets=0", "search.parallel_datasets=0: expected an integer >= 1"),
        ("search.scheduler.probe_trials=-1", "search.scheduler.probe_trials=-1: expected an integer >= 0"),
        ("search.scheduler.min_pairs=2", "search.scheduler.min_pairs=2: expected an integer >= 3"),
        ("search.scheduler.min_rho=1.5", "search.scheduler.min_rho=1.5: expected a Spearman rho in [-1, 1]"),
        ("confirm.rivals=[authors_adversarial]", "confirm.rivals: 'authors_adversarial' is not a rival"),
        ("resources.cpu=-1", "resources.cpu=-1: expected a number >= 0"),
        ("objective.mode=best", "objective.mode='best': expected 'max' or 'min'"),
        ("verbose=7", "verbose=7: expected 0"),
        ("ray.num_cpus=0", "ray.num_cpus=0: expected an integer >= 1"),
    ],
)
def test_out_of_range_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, expected: str) -> None:
    assert expected in _refused(tmp_path, capsys, [override])


def test_gpus_a_local_runtime_does_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asymtune.config.checks.local_gpu_count", lambda: 0)
    message = _refused(tmp_path, capsys, ["resources.gpu=1"])
    assert message.startswith(
        "asymtune tune: error: resources.gpu=1 per trial but this machine has 0 GPUs (torch.cuda.device_count()) "
        "for the local Ray runtime (ray.address=null)"
    )
    monkeypatch.setattr("asymtune.config.checks.local_gpu_count", lambda: 1)
    assert "resources.gpu=2 per trial but this machine has 1 GPUs" in _refused(tmp_path, capsys, ["resources.gpu=2"])
    check_tune_config(compose("tune", ["resources.gpu=0.5"]))  # half of the one GPU: fine


def test_more_cpus_than_the_local_runtime_may_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _refused(tmp_path, capsys, ["ray.num_cpus=2", "resources.cpu=3"])
    assert "resources.cpu=3 per trial is more than ray.num_cpus=2 of the local Ray runtime" in message
    message = _refused(tmp_path, capsys, ["resources.cpu=100000"])
    assert "resources.cpu=100000 per trial but this machine has" in message


def test_a_cluster_is_not_checked_against_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("asymtune.config.checks.local_gpu_count", lambda: 0)
    check_tune_config(compose("tune", ["ray.address=auto", "resources.gpu=1", "resources.cpu=100000"]))


@pytest.mark.parametrize("experiment", [None, "smoke", "brain_atlas", "nuclei", "paper_full", "per_class"])
def test_every_shipped_config_passes(experiment: str | None) -> None:
    check_tune_config(compose("tune", [f"experiment={experiment}"] if experiment else []))


def test_cluster_without_the_gpus_a_trial_asks_for() -> None:
    cfg = compose("tune", ["ray.address=ray://head:10001", "resources.gpu=1"])
    with pytest.raises(ConfigError) as error:
        check_cluster_resources(cfg, {"CPU": 8.0, "memory": 1e9})
    assert str(error.value) == (
        "resources.gpu=1 per trial but the Ray cluster at ray://head:10001 has 0 GPUs, so no trial could start: "
        "expected fewer resources per trial or a runtime that has them, or resources.wait_for_resources=true to "
        "wait for nodes an autoscaler adds"
    )
    check_cluster_resources(cfg, {"CPU": 8.0, "GPU": 2.0})


def test_cluster_without_cpus_and_gpus_names_both() -> None:
    cfg = compose("tune", ["ray.address=auto", "resources.gpu=1", "resources.cpu=4"])
    with pytest.raises(ConfigError, match=r"resources.cpu=4 per trial but the Ray cluster at auto has 2 CPUs and "
                                          r"resources.gpu=1 per trial but the Ray cluster at auto has 0 GPUs"):
        check_cluster_resources(cfg, {"CPU": 2.0})


def test_waiting_for_resources_warns_instead(caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose("tune", ["ray.address=auto", "resources.gpu=1", "resources.wait_for_resources=true"])
    with caplog.at_level(logging.WARNING, logger="asymtune.config.checks"):
        check_cluster_resources(cfg, {"CPU": 8.0})
    assert "resources.gpu=1 per trial but the Ray cluster at auto has 0 GPUs: trials wait" in caplog.text


def test_a_local_runtime_never_waits() -> None:
    cfg = compose("tune", ["resources.gpu=1", "resources.wait_for_resources=true"])
    with pytest.raises(ConfigError, match="the local Ray runtime has 0 GPUs"):
        check_cluster_resources(cfg, {"CPU": 2.0})
