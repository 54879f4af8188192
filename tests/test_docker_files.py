"""The cluster files parse, reference files that exist, and keep safe defaults.

There is no Docker engine or Kubernetes on the development machines, so the images are not built
here; these tests check what can be checked without them.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"


def _compose(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


def test_compose_has_the_services_and_they_build_from_this_repository() -> None:
    compose = _compose("compose.yaml")
    assert {"postgres", "mlflow", "ray-head", "ray-worker"} <= set(compose["services"])
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == REPO, name
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).is_file(), f"{name}: {source} is missing"


def test_published_ports_bind_to_loopback_only() -> None:
    for name in ("compose.yaml", "compose.gpu.yaml"):
        for service, spec in _compose(name)["services"].items():
            for port in spec.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name}:{service} publishes {port} beyond loopback"


def test_credentials_come_from_the_environment() -> None:
    for path in [*DOCKER.glob("*.yaml"), *DOCKER.glob("k8s/*.yaml")]:
        text = path.read_text()
        for match in re.findall(r"PASSWORD[=:]\s*(\S+)", text):
            assert match.startswith(("${", "$(", "valueFrom")), f"{path.name}: literal password {match}"
    assert (DOCKER / ".env.example").is_file()
    assert "docker/.env" in (REPO / ".gitignore").read_text()


def test_gpu_overlay_reserves_gpus_for_workers() -> None:
    worker = _compose("compose.gpu.yaml")["services"]["ray-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_dockerfile_copies_existing_paths_and_installs_the_cluster_extra() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"Dockerfile copies {path}, which does not exist"
    assert '".[cluster]"' in text
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "cluster = [" in pyproject
    assert "USER asymtune" in text


def test_rayjob_manifest_runs_asymtune_against_a_cluster() -> None:
    job = yaml.safe_load((DOCKER / "k8s" / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["entrypoint"].startswith("asymtune tune ray.address=auto")
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
