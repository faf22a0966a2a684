"""Shared fixtures: an isolated HOME and git identity, and small real registries."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXED_DATE = "2026-11-24T05:00:00Z"
# registry.yaml `trusted_formats` of the fixtures that serve every format (pickle, joblib,
# torchscript, mlflow run code at load: a registry trusts them only when it lists them).
ALL_FORMATS = ["skops", "onnx", "keras", "h5", "joblib", "pickle", "torchscript", "mlflow"]

# Variables a machine (a CI runner, a developer's shell) may set that would change what
# a test's git commands, DVC or mreg do: identities, another repository, tokens.
MACHINE_VARS = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_SYSTEM",
    "MREG_REPO",
    "MREG_TOKEN",
    "MREG_TOKENS",
    "MREG_SERVE_OPTIONS",
    "DVC_GLOBAL_CONFIG_DIR",
    "DVC_SYSTEM_CONFIG_DIR",
)


def isolated_env(home: Path) -> dict[str, str]:
    """Variables that keep git, DVC and HOME away from the machine: a test identity, fixed dates."""
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    return {
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_AUTHOR_DATE": FIXED_DATE,
        "GIT_COMMITTER_DATE": FIXED_DATE,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


def apply_isolation(mp: pytest.MonkeyPatch, home: Path) -> None:
    """Clear MACHINE_VARS and set `isolated_env(home)` through `mp`."""
    for name in MACHINE_VARS:
        mp.delenv(name, raising=False)
    for key, value in isolated_env(home).items():
        mp.setenv(key, value)


@pytest.fixture(autouse=True)
def isolate(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Tests never see the machine's git config and identity, HOME, DVC settings or tokens."""
    apply_isolation(monkeypatch, tmp_path_factory.mktemp("home"))
    yield


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def head(where: Any, rev: str = "HEAD") -> str:
    """The commit `rev` names in a repository (a Registry or its root folder)."""
    return git(where if isinstance(where, Path) else where.root, "rev-parse", rev)


class RepoBuilder:
    """Writes registry files by hand and commits them: for tests of the reading side."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q")
        self.write("registry.yaml", "schema_version: 1\nname: test\n")

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    def model(self, name: str, **fields: str) -> None:
        extra = "".join(f"{k}: {v}\n" for k, v in fields.items())
        self.write(f"models/{name}/model.yaml", f"name: {name}\ncreated_at: {FIXED_DATE}\n{extra}")

    def version(self, model: str, n: int, status: str = "trained", **fields: str) -> str:
        vid = "mv_" + hashlib.sha1(f"{model}:{n}".encode()).hexdigest()[:16]
        extra = "".join(f"{k}: {v}\n" for k, v in fields.items())
        self.write(
            f"models/{model}/versions/{n}.yaml",
            f"id: {vid}\nversion: {n}\nstatus: {status}\ncreated_at: {FIXED_DATE}\n{extra}",
        )
        return vid

    def pointer(self, model: str, tag: str, target: str) -> None:
        self.write(f"pointers/{model}/{tag}.yaml", f"target: {target}\n")

    def commit(self, message: str = "change") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD")


@pytest.fixture
def builder(tmp_path: Path) -> RepoBuilder:
    return RepoBuilder(tmp_path / "reg")


# -- showcase: a small real registry built through the public API (tests/showcase.py) --


@pytest.fixture(scope="session")
def showcase_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Built once per test process, with the same isolation as `isolate`; tests get copies."""
    from tests.showcase import build_showcase

    with pytest.MonkeyPatch.context() as mp:
        apply_isolation(mp, tmp_path_factory.mktemp("showcase-home"))
        yield build_showcase(tmp_path_factory.mktemp("showcase-template") / "registry")


@pytest.fixture
def showcase(showcase_template: object, tmp_path: Path) -> object:
    """A private copy of the showcase registry (see tests/showcase.py): change it freely."""
    from tests.showcase import Showcase, copy_showcase

    assert isinstance(showcase_template, Showcase)
    return copy_showcase(showcase_template, tmp_path / "showcase")
