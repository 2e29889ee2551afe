"""`deploy/` must be true to what runs: every role configured alike, every file listed.

The shipped deployment once set `THREADLINE_PUBLIC_URL` for the API only (Twilio
signatures and links then pointed at localhost in the workers), documented a Kafka
setting no code reads, left two manifests out of its README and stored attachments
per process. These tests read the files the way compose and kustomize would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from threadline.services.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
WORKER_ROLES = ("projections", "channels", "triggers")


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return compose


def _threadline_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("threadline")
    }


def _k8s_documents() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S.glob("*.yaml"))
    }


def test_compose_gives_every_role_the_same_public_url_attachments_and_migrate_first() -> None:
    services = _threadline_services(_compose())
    assert set(services) == {"migrate", "api", *WORKER_ROLES}
    for name, service in services.items():
        env = service["environment"]
        assert env["THREADLINE_PUBLIC_URL"], name
        assert env["THREADLINE_ATTACHMENTS_DIR"] == "/app/var/attachments", name
        assert "attachments:/app/var/attachments" in service["volumes"], name
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name
    assert services["migrate"]["command"] == ["threadline", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert "migrate" not in services["migrate"]["depends_on"]
    api_env = services["api"]["environment"]
    assert api_env["THREADLINE_CHANNELS"] == "0" and api_env["THREADLINE_TRIGGERS"] == "0"
    assert "--no-projections" in services["api"]["command"]
    for role in WORKER_ROLES:
        assert services[role]["command"] == ["threadline", "worker", role]
    assert "attachments" in _compose()["volumes"]


def test_every_deployment_reads_the_public_url_mounts_attachments_and_migrates_first() -> None:
    documents = _k8s_documents()
    config = next(d for d in documents["configmap.yaml"] if d["kind"] == "ConfigMap")
    assert config["data"]["THREADLINE_PUBLIC_URL"].startswith("https://")
    claim = documents["attachments.yaml"][0]
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    deployments = [d for docs in documents.values() for d in docs if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        f"threadline-{role}" for role in ("api", *WORKER_ROLES)
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["command"] == ["threadline", "migrate"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert (
            volumes["attachments"]["persistentVolumeClaim"]["claimName"]
            == claim["metadata"]["name"]
        )
        for container in [init, *pod["containers"]]:
            sources = [ref for ref in container["envFrom"] if "configMapRef" in ref]
            assert sources == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        (container,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["attachments"] == config["data"]["THREADLINE_ATTACHMENTS_DIR"]


def test_every_manifest_is_applied_and_documented() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # the Secret is applied by hand, from a copy with real values
    assert set(kustomization["resources"]) == manifests - {"secret.example.yaml"}
    readme = (DEPLOY / "README.md").read_text()
    for name in manifests | {"kustomization.yaml"}:
        assert f"`k8s/{name}`" in readme, name
    for path in DEPLOY.iterdir():
        if path.is_file() and path.name != "README.md":
            assert f"`{path.name}`" in readme, path.name


def test_deploy_sets_only_settings_the_code_reads() -> None:
    known = {name for name, _, _ in SETTINGS}
    for path in [*DEPLOY.glob("*.yaml"), *K8S.glob("*.yaml"), DEPLOY / "README.md"]:
        text = path.read_text()
        assert "KAFKA_BOOTSTRAP" not in text, path.name
        for name in re.findall(r"THREADLINE_[A-Z_]*[A-Z]", text):
            assert name in known, (path.name, name)
