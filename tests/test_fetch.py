"""mreg:// storage URIs: `mreg fetch` and `mreg-storage-initializer` against a real remote registry.

The registry is a bare git repository (MREG_REPO_URL=file://...) with a local
DVC remote; each fetch clones one revision, shallow, with an empty DVC cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from registry import file_md5
from tests.remote_registry import RemoteRegistry, git, publish
from tests.showcase import Showcase, default_trust
from tool.cli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def remote(showcase: Showcase, tmp_path: Path) -> RemoteRegistry:
    default_trust(showcase.root)  # churn's joblib version is untrusted, as in a new registry
    return publish(showcase, tmp_path / "registry.git")


def initializer(remote: RemoteRegistry, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as KServe runs it: URI and DEST, the registry from MREG_REPO_URL."""
    import os

    env = {**os.environ, "MREG_REPO_URL": remote.url, "PYTHONPATH": str(ROOT)}
    code = "from tool.fetch_cmd import storage_initializer; storage_initializer()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def fetch(remote: RemoteRegistry, uri: str, dest: Path) -> Result:
    return CliRunner().invoke(cli, ["fetch", uri, str(dest)], env={"MREG_REPO_URL": remote.url})


def provenance(dest: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((dest / ".mreg.json").read_text())
    return data


def test_the_storage_initializer_fetches_a_pointer(remote: RemoteRegistry, tmp_path: Path) -> None:
    dest = tmp_path / "mnt" / "models"
    done = initializer(remote, "mreg://iris:prod", str(dest))
    assert done.returncode == 0, done.stderr
    meta = provenance(dest)
    head = git(remote.bare, "rev-parse", "refs/heads/main")
    assert meta["model"] == "iris" and meta["version"] == 2
    assert meta["id"] == remote.show.ids["iris:v2"]
    assert meta["commit"] == head
    assert meta["format"] == "skops"
    assert sorted(p.name for p in dest.iterdir()) == [".mreg.json", "model.skops"]
    assert file_md5(dest / "model.skops") == meta["md5"]
    # Nothing left beside DEST: the staging directory was renamed onto it.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["models"]


def test_fetch_into_an_existing_empty_directory(remote: RemoteRegistry, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    dest.mkdir()  # as /mnt/models, a volume's mount point, is
    result = fetch(remote, "mreg://iris:staging", dest)
    assert result.exit_code == 0, result.output
    assert provenance(dest)["version"] == 3
    assert "fetched iris:v3" in result.output


@pytest.mark.parametrize(
    ("uri", "version"),
    [
        ("mreg://iris:prod@release-1", 2),
        ("mreg://iris@release-1", 2),  # latest at the tag: v3 did not exist yet
        ("mreg://iris", 3),
        ("mreg://iris:champion", 2),  # champion -> prod -> v2
        ("mreg://iris:v1@main", 1),
    ],
)
def test_resolved_at_a_revision(
    remote: RemoteRegistry, tmp_path: Path, uri: str, version: int
) -> None:
    dest = tmp_path / "out"
    result = fetch(remote, uri, dest)
    assert result.exit_code == 0, result.output
    meta = provenance(dest)
    assert meta["version"] == version
    assert meta["uri"] == uri


def test_at_a_commit_sha(remote: RemoteRegistry, tmp_path: Path) -> None:
    sha = git(remote.bare, "rev-parse", "release-1^{commit}")
    result = fetch(remote, f"mreg://iris@{sha}", tmp_path / "out")
    assert result.exit_code == 0, result.output
    meta = provenance(tmp_path / "out")
    assert (meta["version"], meta["commit"]) == (2, sha)


def test_by_version_id(remote: RemoteRegistry, tmp_path: Path) -> None:
    vid = remote.show.ids["iris:v1"]
    result = fetch(remote, f"mreg://{vid}", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert provenance(tmp_path / "out")["version"] == 1


def test_the_commit_of_a_tag_is_recorded(remote: RemoteRegistry, tmp_path: Path) -> None:
    assert fetch(remote, "mreg://iris:prod@release-1", tmp_path / "out").exit_code == 0
    tagged = git(remote.bare, "rev-parse", "release-1^{commit}")
    assert provenance(tmp_path / "out")["commit"] == tagged


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("mreg://iris:nope", "pointer iris:nope not found"),
        ("mreg://iris:staging@release-1", "pointer iris:staging not found"),
        ("mreg://iris:v3@release-1", "version iris:v3 not found"),
        ("mreg://ghost", "model 'ghost' not found"),
        ("mreg://iris@no-such-tag", "cannot fetch revision 'no-such-tag'"),
        ("mreg://Iris", "invalid storage URI"),
        ("s3://bucket/iris", "invalid storage URI"),
        ("mreg://churn:v2", "untrained"),
        ("mreg://churn:v1", "joblib artifact, which runs code when loaded"),
    ],
)
def test_a_bad_uri_is_one_error_line_and_no_dest(
    remote: RemoteRegistry, tmp_path: Path, uri: str, message: str
) -> None:
    out = tmp_path / "mnt"
    out.mkdir()
    done = initializer(remote, uri, str(out / "models"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert message in lines[0]
    assert list(out.iterdir()) == []


def test_a_token_in_the_registry_url_stays_out_of_the_error(tmp_path: Path) -> None:
    url = "http://reader:s3cret-token@127.0.0.1:9/ml/registry.git"  # port 9: nothing listens
    result = CliRunner().invoke(
        cli, ["fetch", "mreg://iris:prod", str(tmp_path / "out")], env={"MREG_REPO_URL": url}
    )
    assert result.exit_code == 1
    assert "error: cannot fetch http://***@127.0.0.1:9/ml/registry.git" in result.output
    assert "s3cret" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_corrupt_remote_object_fails_whole(remote: RemoteRegistry, tmp_path: Path) -> None:
    md5 = provenance_md5(remote, "iris:v2")
    obj = remote.show.storage / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"not the model")
    out = tmp_path / "mnt"
    out.mkdir()
    done = initializer(remote, "mreg://iris:prod", str(out / "models"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: artifact of iris:v2"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


def test_a_missing_remote_object_fails_whole(remote: RemoteRegistry, tmp_path: Path) -> None:
    md5 = provenance_md5(remote, "iris:v3")
    (remote.show.storage / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    dest = tmp_path / "models"
    result = fetch(remote, "mreg://iris:staging", dest)
    assert result.exit_code == 1
    assert "error: artifact of iris:v3" in result.output
    assert not dest.exists()


def test_a_full_dest_is_refused(remote: RemoteRegistry, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    result = fetch(remote, "mreg://iris:prod", dest)
    assert result.exit_code == 1
    assert "is not an empty directory" in result.output
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("fails", ["beside", "rename"])
def test_dest_that_cannot_be_replaced_gets_the_files_moved_in(
    remote: RemoteRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """/mnt/models is a mount point: nothing can be made beside it, or renamed onto it (EBUSY)."""
    import errno
    import os
    import tempfile

    import registry.storage

    dest = tmp_path / "models"
    dest.mkdir()
    if fails == "beside":
        real = tempfile.mkdtemp

        def mkdtemp(
            suffix: str | None = None, prefix: str | None = None, dir: str | None = None
        ) -> str:
            if dir is not None and Path(dir) == tmp_path:
                raise PermissionError(errno.EACCES, "read-only", str(dir))
            return real(suffix, prefix, dir)

        monkeypatch.setattr(registry.storage.tempfile, "mkdtemp", mkdtemp)
    else:

        def rename(staging: Path, dest: Path) -> None:
            raise OSError(errno.EBUSY, "Device or resource busy", str(dest))

        monkeypatch.setattr(registry.storage, "_rename_onto", rename)
    result = fetch(remote, "mreg://iris:prod", dest)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(dest)) == [".mreg.json", "model.skops"]
    assert not [p for p in tmp_path.iterdir() if ".mreg-" in p.name]  # no staging left
    assert provenance(dest)["version"] == 2


def test_fetch_from_a_local_checkout(showcase: Showcase, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["--repo", str(showcase.root), "fetch", "mreg://iris:prod", str(dest), "--json"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)
    assert meta["version"] == 2
    assert meta["commit"] == git(showcase.root, "rev-parse", "HEAD")
    assert provenance(dest) == meta


def test_several_uris_each_into_its_path(remote: RemoteRegistry, tmp_path: Path) -> None:
    done = initializer(
        remote, "mreg://iris:prod", str(tmp_path / "a"), "mreg://iris:staging", str(tmp_path / "b")
    )
    assert done.returncode == 0, done.stderr
    assert provenance(tmp_path / "a")["version"] == 2
    assert provenance(tmp_path / "b")["version"] == 3


def provenance_md5(remote: RemoteRegistry, ref: str) -> str:
    resolution = remote.show.registry().resolve(ref, rev="HEAD")
    assert resolution.version.artifact is not None
    return resolution.version.artifact.md5
