"""A write branch may not shadow what a server serves (issue 18, item 1).

The attack: a `write` token posts a version with `?branch=origin/main` (or
`?branch=<short sha>`), which used to create `refs/heads/origin/main`; git
resolves `origin/main` to that local branch before the remote-tracking one,
so a replica started with `--follow origin/main` swapped to the attacker's
commit. Now the write is refused and the server resolves only full ref names.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from registry import ConflictError, InvalidNameError, Registry, full_ref
from tests.conftest import git
from tests.processes import MREG, serving
from tests.server_fixtures import LABELS, bearer, write_tokens

pytest_plugins = ["tests.server_fixtures"]

TOKENS = {"writer": ["write"], "admin": ["admin"]}


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    return write_tokens(tmp_path / "tokens.json", TOKENS)


@pytest.fixture
def clone(tmp_path: Path, model_files: dict[str, Path]) -> Path:
    """A replica: a real clone of a registry pushed to a real bare remote."""
    reg = Registry.init(tmp_path / "reg")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, create=True)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(reg.root, "remote", "add", "origin", str(bare))
    git(reg.root, "push", "-q", "origin", "HEAD:refs/heads/main")
    replica = tmp_path / "replica"
    git(tmp_path, "clone", "-q", "--branch", "main", str(bare), str(replica))
    return replica


def attack(url: str, branch: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/iris/versions?filename=evil.skops&branch={branch}",
        content=body,
        headers={**bearer("writer"), "Content-Type": "application/octet-stream"},
        timeout=60,
    )


def test_a_write_to_origin_main_does_not_hijack_a_following_replica(
    clone: Path, tokens: Path, other_model_file: Path
) -> None:
    with serving(clone, "--follow", "origin/main", "--poll", "0", "--tokens", str(tokens)) as s:
        before = s.get("/v1/registry", headers=bearer("admin")).json()["revision"]
        r = attack(s.url, "origin/main", other_model_file.read_bytes())
        assert r.status_code in (400, 409), r.text
        assert "origin" in r.json()["error"]["message"]
        reload = s.post("/v1/admin/reload", headers=bearer("admin")).json()
        assert reload["reloaded"] is False
        assert s.get("/v1/registry", headers=bearer("admin")).json()["revision"] == before
        assert git(clone, "for-each-ref", "--format=%(refname)", "refs/heads/origin") == ""

        # At the root: even a shadowing branch made by other means is not what is served.
        evil = git(clone, "commit-tree", "-p", before, "-m", "evil", f"{before}^{{tree}}")
        git(clone, "update-ref", "refs/heads/origin/main", evil)
        reload = s.post("/v1/admin/reload", headers=bearer("admin")).json()
        assert (reload["reloaded"], reload["revision"]) == (False, before)
        assert reload["last_reload_error"] is None


def test_a_write_to_a_short_sha_does_not_move_a_rev_server(
    clone: Path, tokens: Path, other_model_file: Path
) -> None:
    short = git(clone, "rev-parse", "--short", "HEAD")
    with serving(clone, "--rev", short, "--tokens", str(tokens)) as s:
        before = s.get("/v1/registry", headers=bearer("admin")).json()["revision"]
        r = attack(s.url, short, other_model_file.read_bytes())
        assert r.status_code in (400, 409), r.text
        assert git(clone, "for-each-ref", "--format=%(refname)", f"refs/heads/{short}") == ""
        evil = git(clone, "commit-tree", "-p", before, "-m", "evil", f"{before}^{{tree}}")
        git(clone, "update-ref", f"refs/heads/{short}", evil)
        s.post("/v1/admin/reload", headers=bearer("admin"))
        assert s.get("/v1/registry", headers=bearer("admin")).json()["revision"] == before


def test_the_cli_refuses_a_branch_that_shadows_a_ref(clone: Path, other_model_file: Path) -> None:
    git(clone, "tag", "release")
    for name in ("origin/main", "release", git(clone, "rev-parse", "--short", "HEAD"), "main"):
        proc = subprocess.run(
            [
                *MREG,
                "--repo",
                str(clone),
                "register",
                "iris",
                str(other_model_file),
                "--branch",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, (name, proc.stderr)
        assert proc.stderr.startswith("error: "), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert git(clone, "branch", "--list") == "* main"


def test_full_ref_never_returns_a_short_name(clone: Path) -> None:
    head = git(clone, "rev-parse", "HEAD")
    git(clone, "tag", "release")
    # Even a local branch that shadows the remote-tracking one (made by hand) is ignored.
    git(clone, "branch", "origin/main")
    assert full_ref(clone, "origin/main") == "refs/remotes/origin/main"
    assert full_ref(clone, "main") == "refs/heads/main"
    assert full_ref(clone, "release") == "refs/tags/release"
    assert full_ref(clone, head[:7]) == head
    assert full_ref(clone, "HEAD") == "HEAD"
    git(clone, "branch", "release")
    with pytest.raises(ConflictError, match="both a branch and a tag"):
        full_ref(clone, "release")


@pytest.mark.parametrize("name", ["refs/heads/x", "tags/x", "deadbeef00", "HEAD", "FETCH_HEAD"])
def test_names_that_read_as_refs_are_refused(clone: Path, name: str) -> None:
    from registry import check_new_branch

    with pytest.raises((InvalidNameError, ConflictError)):
        check_new_branch(clone, name)
