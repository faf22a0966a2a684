"""deploy/kserve: the KServe manifests, checked offline, and the path they set up, run for real.

Each manifest is validated against the schema of KServe v0.20.0's CRDs kept in
deploy/kserve/schemas/ (its KServe-specific fields) and, for the Kubernetes
types inside (containers, volumes), against kubernetes-validate's Kubernetes
schemas. Then what KServe would run for inferenceservice-mlserver.yaml runs
here: the storage container's command with the storage URI and a models
directory, and the predictor's `mlserver start` with its environment.
"""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml

from registry import MLSERVER_RUNTIME, parse_storage_uri
from tests.conftest import apply_isolation
from tests.mlserver_process import MLServerProcess, mlserver_bin
from tests.processes import ROOT
from tests.remote_registry import RemoteRegistry, publish
from tests.showcase import Showcase, copy_showcase
from tool.cli import cli

KSERVE = ROOT / "deploy" / "kserve"
SCHEMA = yaml.safe_load((KSERVE / "schemas" / "kserve-v0.20.0.yaml").read_text())
K8S_VERSION = "1.30.0"
API_VERSIONS = {
    "ClusterStorageContainer": "serving.kserve.io/v1alpha1",
    "ClusterServingRuntime": "serving.kserve.io/v1alpha1",
    "InferenceService": "serving.kserve.io/v1beta1",
}
# ModelSpec = a Kubernetes Container and these fields.
MODEL_FIELDS = (
    "modelFormat",
    "runtime",
    "runtimeVersion",
    "protocolVersion",
    "storageUri",
    "storage",
)


def manifests() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(KSERVE.glob("*.yaml")):
        out.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


def named(kind: str, name: str | None = None) -> dict[str, Any]:
    return next(
        m for m in manifests() if m["kind"] == kind and name in (None, m["metadata"]["name"])
    )


def pod(containers: list[dict[str, Any]], volumes: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": spec}


def validate(doc: dict[str, Any]) -> None:
    """The manifest against KServe's schema, and its Kubernetes parts against Kubernetes'."""
    kind = doc["kind"]
    if kind not in API_VERSIONS:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        return
    schema = {**SCHEMA, "$ref": f"#/$defs/{kind}"}
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["apiVersion"] == API_VERSIONS[kind]
    spec = doc["spec"]
    if kind == "ClusterStorageContainer":
        kubernetes_validate.validate(pod([spec["container"]]), K8S_VERSION, strict=True)
    elif kind == "ClusterServingRuntime":
        check = pod(spec["containers"], spec.get("volumes"))
        kubernetes_validate.validate(check, K8S_VERSION, strict=True)
    else:
        model = {k: v for k, v in spec["predictor"]["model"].items() if k not in MODEL_FIELDS}
        kubernetes_validate.validate(
            pod([{"name": "kserve-container", **model}]), K8S_VERSION, strict=True
        )


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid(doc: dict[str, Any]) -> None:
    validate(doc)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("InferenceService", ["spec", "predictor", "model", "storageURI"], "mreg://iris"),
        ("InferenceService", ["spec", "predictor", "model", "protocolVersion"], "v3"),
        ("InferenceService", ["spec", "predictor", "model", "imagee"], "x"),
        ("ClusterServingRuntime", ["spec", "protocolVersions"], ["v9"]),
        ("ClusterServingRuntime", ["spec", "supportedModelFormats", 0, "priority"], 0),
        ("ClusterStorageContainer", ["spec", "workloadType"], "sidecar"),
        ("ClusterStorageContainer", ["spec", "container", "env", 0, "valueFrom", "secret"], {}),
    ],
)
def test_a_broken_manifest_is_caught(kind: str, path: list[Any], value: Any) -> None:
    broken = copy.deepcopy(named(kind))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(broken)


def test_the_storage_container_runs_the_storage_initializer() -> None:
    spec = named("ClusterStorageContainer")["spec"]
    container = spec["container"]
    assert container["name"] == "storage-initializer"  # KServe's name for it
    assert {"prefix": "mreg://"} in spec["supportedUriFormats"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert container["command"] == ["mreg-storage-initializer"]
    assert scripts["mreg-storage-initializer"] == "tool.fetch_cmd:storage_initializer"
    assert "MREG_REPO_URL" in {e["name"] for e in container["env"]}


def test_every_secret_the_manifests_read_exists() -> None:
    secret = named("Secret", "mreg-storage")
    keys = set(secret["stringData"])
    runtime = named("ClusterServingRuntime")["spec"]
    containers = [named("ClusterStorageContainer")["spec"]["container"], *runtime["containers"]]
    refs = [
        e["valueFrom"]["secretKeyRef"] for c in containers for e in c["env"] if "valueFrom" in e
    ]
    assert refs
    assert all(r["name"] == "mreg-storage" and r["key"] in keys for r in refs)
    for volume in runtime["volumes"]:
        if "secret" in volume:
            assert {i["key"] for i in volume["secret"]["items"]} <= keys


def test_the_mreg_runtime_runs_options_mreg_serve_has() -> None:
    runtime = named("ClusterServingRuntime", "kserve-mreg")["spec"]
    assert {"v2", "grpc-v2"} <= set(runtime["protocolVersions"])
    (container,) = runtime["containers"]
    words = shlex.split(container["args"][0])
    serve = words[words.index("serve") + 1 :]
    command = cli.get_command(click.Context(cli), "serve")  # imports its module
    assert isinstance(command, click.Command)
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    given = [w for w in serve if w.startswith("--")]
    assert given and set(given) <= known
    # HTTP on KServe's default port (no port declared: the InferenceService picks the routed one).
    assert "ports" not in container
    assert serve[serve.index("--port") + 1] == "8080"
    assert container["readinessProbe"]["httpGet"]["port"] == 8080
    grpc = named("InferenceService", "mreg-grpc")["spec"]["predictor"]["model"]
    assert grpc["protocolVersion"] == "grpc-v2"
    (port,) = grpc["ports"]  # Knative routes one port; h2c makes it HTTP/2
    assert port["name"] == "h2c"
    assert serve[serve.index("--grpc-port") + 1] == str(port["containerPort"])
    isvc = named("InferenceService", "mreg")["spec"]["predictor"]["model"]
    formats = {f["name"]: f for f in runtime["supportedModelFormats"]}
    assert isvc["runtime"] == "kserve-mreg"
    assert formats[isvc["modelFormat"]["name"]]["autoSelect"] is True


def test_the_mlserver_inference_service_names_mregs_runtime() -> None:
    model = named("InferenceService", "iris")["spec"]["predictor"]["model"]
    assert model["runtime"] == "kserve-mlserver"
    assert parse_storage_uri(model["storageUri"]).ref == "iris:prod"
    env = {e["name"]: e["value"] for e in model["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == MLSERVER_RUNTIME


# -- what KServe runs for inferenceservice-mlserver.yaml, run here ------------------------


@pytest.fixture(scope="module")
def remote(
    showcase_template: Showcase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RemoteRegistry]:
    with pytest.MonkeyPatch.context() as mp:
        apply_isolation(mp, tmp_path_factory.mktemp("home"))
        tmp = tmp_path_factory.mktemp("kserve")
        yield publish(copy_showcase(showcase_template, tmp / "registry"), tmp / "registry.git")


def test_the_mlserver_inference_service_serves_the_pointer(
    remote: RemoteRegistry, tmp_path: Path
) -> None:
    isvc = named("InferenceService", "iris")
    model = isvc["spec"]["predictor"]["model"]
    container = named("ClusterStorageContainer")["spec"]["container"]
    models = tmp_path / "mnt" / "models"
    models.mkdir(parents=True)  # an emptyDir, as KServe mounts it
    bin_dir = mlserver_bin()
    fetched = subprocess.run(
        [str(bin_dir / container["command"][0]), model["storageUri"], str(models)],
        capture_output=True,
        text=True,
        env={**os.environ, "MREG_REPO_URL": remote.url},
    )
    assert fetched.returncode == 0, fetched.stderr
    # The environment KServe gives the predictor (SetMlServerDefaults), then the service's own.
    env = {"MLSERVER_MODEL_NAME": isvc["metadata"]["name"], "MLSERVER_MODEL_URI": str(models)}
    env.update({e["name"]: e["value"] for e in model["env"]})
    assert model["command"][:2] == ["mlserver", "start"]
    server = MLServerProcess(models, **env)
    try:
        server.wait_ready()
        body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64",
                            "data": [[6.7, 3.0, 5.2, 2.3]]}]}  # fmt: skip
        response = server.post("/v2/models/iris/infer", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["parameters"]["model_id"] == remote.show.ids["iris:v2"]  # prod -> v2
        labels = next(o for o in answer["outputs"] if o["name"] == "label")
        assert labels["data"] == ["virginica"]
    finally:
        server.stop()
