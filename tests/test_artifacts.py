"""Artifacts: DVC cache layout, the pushed object, fetching on demand, md5 checks, pull."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from registry import ArtifactError, Registry, cache_file, ensure_local, file_md5
from tests.conftest import git
from tests.showcase import Showcase


def drop(path: Path) -> None:
    os.chmod(path, 0o644)
    path.unlink()


def test_cache_file_follows_dvc3_layout_and_configured_cache_dir(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / ".dvc").mkdir(parents=True)
    md5 = "0123456789abcdef0123456789abcdef"
    assert cache_file(root, md5) == root / ".dvc/cache/files/md5/01/23456789abcdef0123456789abcdef"
    (root / ".dvc" / "config").write_text(f"[cache]\n    dir = {tmp_path / 'shared'}\n")
    assert cache_file(root, md5) == tmp_path / "shared/files/md5/01/23456789abcdef0123456789abcdef"


def test_file_md5_is_the_md5_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 3_000_000)
    assert file_md5(path) == hashlib.md5(b"x" * 3_000_000).hexdigest()


def test_register_pushes_to_the_remote_before_committing(showcase: Showcase) -> None:
    reg = showcase.registry()
    v = reg.snapshot("HEAD").version("iris", 3)
    assert v.artifact is not None
    pushed = showcase.storage / "files" / "md5" / v.artifact.md5[:2] / v.artifact.md5[2:]
    assert file_md5(pushed) == v.artifact.md5
    assert pushed.stat().st_size == v.artifact.size
    # DVC itself agrees that the .dvc files, cache and remote are in sync.
    from dvc.repo import Repo

    with Repo(str(showcase.root)) as dvc:
        assert dvc.status() == {}
        assert dvc.status(cloud=True) == {}


def test_ensure_local_fetches_a_missing_object_from_the_remote(showcase: Showcase) -> None:
    reg = showcase.registry()
    snap = reg.snapshot("HEAD")
    v = snap.version("iris", 2)
    assert v.artifact is not None
    cached = cache_file(reg.root, v.artifact.md5)
    drop(cached)
    assert ensure_local(reg, snap, "iris", v) == cached
    assert file_md5(cached) == v.artifact.md5


def test_ensure_local_replaces_corrupt_cache_bytes(showcase: Showcase) -> None:
    reg = showcase.registry()
    snap = reg.snapshot("HEAD")
    v = snap.version("iris", 1)
    assert v.artifact is not None
    cached = cache_file(reg.root, v.artifact.md5)
    drop(cached)
    cached.write_bytes(b"corrupt")
    assert file_md5(ensure_local(reg, snap, "iris", v)) == v.artifact.md5


def test_missing_everywhere_is_an_artifact_error(showcase: Showcase) -> None:
    reg = showcase.registry()
    snap = reg.snapshot("HEAD")
    v = snap.version("churn", 1)
    assert v.artifact is not None
    drop(cache_file(reg.root, v.artifact.md5))
    shutil.rmtree(showcase.storage)
    with pytest.raises(ArtifactError, match=r"churn:v1") as info:
        ensure_local(reg, snap, "churn", v)
    assert info.value.status == 503


def test_a_version_without_artifact_is_an_artifact_error(showcase: Showcase) -> None:
    reg = showcase.registry()
    snap = reg.snapshot("HEAD")
    with pytest.raises(ArtifactError, match="no artifact"):
        ensure_local(reg, snap, "churn", snap.version("churn", 2))


def test_a_clone_fetches_from_the_shared_remote_at_a_revision(
    showcase: Showcase, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(showcase.root), str(clone)], check=True)
    reg = Registry(clone)
    snap = reg.snapshot(showcase.release)
    res = snap.resolve("iris:prod")
    path = ensure_local(reg, snap, "iris", res.version)
    assert path.is_relative_to(clone / ".dvc" / "cache")
    assert res.version.artifact is not None and file_md5(path) == res.version.artifact.md5


def test_pull_brings_artifacts_into_the_work_tree(showcase: Showcase) -> None:
    reg = showcase.registry()
    target = showcase.root / "models/iris/artifacts/v2/model.skops"
    target.unlink()
    done = reg.pull(["iris:prod"])
    assert done == [("iris:v2", target, True)]
    assert file_md5(target) == reg.snapshot().version("iris", 2).artifact.md5  # type: ignore[union-attr]
    assert [copied for _, _, copied in reg.pull()] == [False] * 5
    assert git(showcase.root, "status", "--porcelain") == ""


def test_a_failing_push_commits_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the remote should be")
    reg = Registry.init(tmp_path / "reg", remote=str(blocker))
    reg.create_model("iris")
    before = git(reg.root, "rev-parse", "HEAD")
    art = tmp_path / "m.skops"
    art.write_bytes(b"bytes")
    with pytest.raises(ArtifactError, match="push"):
        reg.register("iris", art)
    assert git(reg.root, "rev-parse", "HEAD") == before
    assert git(reg.root, "status", "--porcelain") == ""


def test_a_remote_recorded_relative_to_dvc_is_fetched_at_a_revision(tmp_path: Path) -> None:
    """`mreg init --remote DIR` inside the repository records `../DIR` (the example registry's
    `../examples/storage`); the server fetches at its revision, where DVC would read it as `/DIR`."""
    reg = Registry.init(tmp_path / "reg", remote=str(tmp_path / "reg" / "storage"))
    assert "../storage" in (reg.root / ".dvc" / "config").read_text()
    reg.create_model("iris")
    art = tmp_path / "model.skops"
    art.write_bytes(b"the model's bytes")
    reg.register("iris", art)
    shutil.rmtree(reg.root / ".dvc" / "cache")
    snap = reg.snapshot("HEAD")
    path = ensure_local(reg, snap, "iris", snap.version("iris", 1))
    assert path.read_bytes() == b"the model's bytes"
