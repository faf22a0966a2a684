"""The OpenAPI document tells the truth: `schemathesis run --checks all` finds nothing.

schemathesis (its CLI, as a user runs it) against a real `mreg serve` of the
project's own example registry: a clone of this repository with its
artifacts pulled. A fixed seed and a bounded number of examples keep the run
reproducible and short. The second run configures tokens, makes one model
private, sends an admin token and feeds real model names and refs, so that
the authenticated and deeper paths (loaded models, pointers, invocations)
are exercised too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from tests import processes
from tests.conftest import git
from tests.server_fixtures import bearer, token_entries

pytest_plugins = ["tests.server_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
MREG = [sys.executable, "-c", "from tool.cli import main; main()"]
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
SEED = "1"
MAX_EXAMPLES = "10"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# Both runs: what a model rejects, and an md5 no schema can know, are not lies of the schema.
ACCEPTANCE = """
# What a model accepts is the model's business, not the schema's: a generic body that a
# real model rejects (wrong width, strings) is a 422 from that model, not a lying schema.
[[operations]]
include-path-regex = "(/invoke|/infer|/v1/runs)$"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"
]

# An upload's optional Content-MD5 must be the md5 of the body it comes with, which no
# schema can say: a made-up one is the 400 `md5_mismatch` the issue asks for.
[[operations]]
include-path-regex = "/v1/models/[^/]+/versions(/[^/]+/artifact)?$"
include-method-regex = "^(POST|PUT)$"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"
]
"""

# Real names and refs of the example registry, so the fuzzer reaches existing models too.
DEEP_CONFIG = """
[dictionaries.models]
values = ["iris", "wine", "diabetes", "digits-onnx", "digits-torch", "iris-legacy"]
[dictionaries.refs]
values = ["iris", "iris:prod", "iris:stable", "iris:staging", "iris:v2", "diabetes:latest", "wine"]

# Schemathesis' dependency analysis links the write responses' `model` property (the model's
# fields: an object) to every `{model}` path parameter and sends the object's repr as a name:
# a guess of the tool's that the schema does not make. Links from Location headers stay.
[phases.stateful.inference]
algorithms = ["location-headers"]

[parameters]
"path.model" = { dictionary = "models", probability = 0.7 }
"path.ref" = { dictionary = "refs", probability = 0.7 }
"""


@pytest.fixture(scope="module")
def example_clone(tmp_path_factory: pytest.TempPathFactory, session_env: None) -> Path:
    """This repository's example registry, cloned, with artifacts pulled (as `make serve` does)."""
    clone = tmp_path_factory.mktemp("openapi") / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    pulled = subprocess.run(
        [*MREG, "--repo", str(clone), "pull"], capture_output=True, text=True, env=ENV, cwd=clone
    )
    assert pulled.returncode == 0, pulled.stderr
    return clone


@contextmanager
def serving(repo: Path, *args: str) -> Iterator[str]:
    """`mreg serve --preload` of `repo` on a free loopback port; yields its URL once ready."""
    # cwd: never a directory whose server/ package would shadow ours
    with processes.serving(repo, "--preload", *args, cwd=repo.parent, timeout=120) as process:
        yield process.url


def schemathesis(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [
            *SCHEMATHESIS,
            *args[:2],  # global options (--config-file PATH) come before `run`
            "run",
            f"{url}/schema/openapi.json",
            "--checks",
            "all",
            "--seed",
            SEED,
            "--max-examples",
            MAX_EXAMPLES,
            "--generation-database",
            "none",
            "--request-timeout",
            "60",
            # `--checks all` also fails any answer slower than 10 s: a busy machine, not a lie
            # of the schema (speed is bench/'s business). Only the request timeout bounds it.
            "--max-response-time",
            "60",
            "--workers",
            "1",
            "--no-color",
            *args[2:],
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.mark.slow
def test_schemathesis_finds_nothing_on_the_example_registry(
    example_clone: Path, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(ACCEPTANCE)
    with serving(example_clone) as url:
        done = schemathesis(url, tmp_path / "run", "--config-file", str(config))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "failure" not in done.stdout.splitlines()[-1], done.stdout[-3000:]
    assert " passed" in done.stdout


@pytest.mark.slow
def test_schemathesis_finds_nothing_with_tokens_and_real_names(
    example_clone: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "private"
    subprocess.run(["git", "clone", "-q", str(example_clone), str(repo)], check=True)
    cache = example_clone / ".dvc" / "cache"
    subprocess.run(["cp", "-r", str(cache), str(repo / ".dvc" / "cache")], check=True)
    manifest = repo / "models" / "wine" / "model.yaml"
    manifest.write_text(manifest.read_text().replace("is_public: true", "is_public: false"))
    git(repo, "commit", "-qam", "wine: private")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump(token_entries()))
    config = tmp_path / "schemathesis.toml"
    config.write_text(DEEP_CONFIG + ACCEPTANCE)
    header = "Authorization: " + bearer("admin")["Authorization"]
    with serving(repo, "--tokens", str(tokens)) as url:
        # The setup holds: wine is private, and anonymous callers cannot tell it exists.
        assert httpx.get(f"{url}/v1/models/wine").status_code == 404
        assert httpx.get(f"{url}/v1/models/wine", headers=bearer("admin")).status_code == 200
        done = schemathesis(url, tmp_path / "run", "--config-file", str(config), "-H", header)
        jobs = httpx.get(f"{url}/v1/jobs?limit=1000", headers=bearer("admin")).json()["jobs"]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    # The fuzzer reached real models, and every call is a job with the status it got.
    reached = {j["model"] for j in jobs} & {"iris", "diabetes", "digits-onnx", "digits-torch"}
    assert reached, jobs[:5]
    assert {j["http_status"] for j in jobs} <= {200, 400, 404, 409, 413, 415, 422}, jobs
