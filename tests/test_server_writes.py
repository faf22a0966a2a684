"""The management API over HTTP (server/v1/: models, versions, pointers), in-process on a copy of the showcase.

Every write is checked as a user sees it: the status and body, exactly one
new commit with the usual subject and trailers authored as the token's name,
and the server answering from that commit at once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from server import create_app
from server.runtime.auth import Token, hash_token
from tests.conftest import git, head
from tests.server_fixtures import SETOSA, bearer, token_secret
from tests.showcase import IRIS_LABELS, Showcase

SCOPES = {"writer": "write", "invoker": "invoke", "reader": "read", "admin": "admin"}
IMPLIED = {
    "read": {"read"},
    "invoke": {"read", "invoke"},
    "write": {"read", "invoke", "write"},
    "admin": {"read", "invoke", "write", "admin"},
}


def tokens() -> list[Token]:
    return [
        Token(name, hash_token(token_secret(name)), frozenset(IMPLIED[scope]))
        for name, scope in SCOPES.items()
    ]


def commits_since(root: Path, base: str, rev: str = "HEAD") -> list[dict[str, Any]]:
    """Each commit after `base`: author, subject and trailers (oldest first)."""
    out = git(root, "log", "--reverse", "--format=%H%x1f%an%x1f%ae%x1f%B%x1e", f"{base}..{rev}")
    found = []
    for record in filter(None, (r.strip() for r in out.split("\x1e"))):
        sha, name, email, body = record.split("\x1f")
        lines = body.strip().splitlines()
        trailers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        found.append(
            {"sha": sha, "author": name, "email": email, "subject": lines[0], "trailers": trailers}
        )
    return found


@pytest.fixture
def client(showcase: Showcase, tmp_path: Path) -> Iterator[TestClient[Any]]:
    app = create_app(showcase.root, tokens=tokens(), usage_path=tmp_path / "usage.sqlite")
    with TestClient(app=app) as c:
        yield c


def test_a_cross_site_form_post_cannot_write_to_a_server_without_tokens(
    showcase: Showcase, tmp_path: Path
) -> None:
    """The attack: a web page the developer opens posts a form (no CORS preflight) to the
    local server. Without tokens reads are open on loopback, but writes never are."""
    before = head(showcase.root)
    app = create_app(showcase.root, tokens=[], usage_path=tmp_path / "usage.sqlite")
    with TestClient(app=app) as c:
        archive = c.post(
            "/v1/models/iris/archive",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil"},
        )
        create = c.post(
            "/v1/models", content=b'{"name": "fraud"}', headers={"Content-Type": "text/plain"}
        )
        shown = c.get("/v1/models/iris")
    assert archive.status_code == create.status_code == 403
    assert archive.json()["error"]["code"] == "writes_disabled"
    assert "--tokens" in archive.json()["error"]["message"]
    assert head(showcase.root) == before
    assert shown.status_code == 200 and shown.json()["archived_at"] is None


def test_a_write_needs_the_write_scope(client: TestClient[Any], showcase: Showcase) -> None:
    before = head(showcase.root)
    r = client.post("/v1/models", json={"name": "fraud"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    for name in ("reader", "invoker"):
        r = client.post("/v1/models", json={"name": "fraud"}, headers=bearer(name))
        assert r.status_code == 403, r.text
        assert r.json()["error"] == {
            "code": "forbidden",
            "message": f"token {name!r} lacks the 'write' scope",
            "detail": None,
        }
    assert head(showcase.root) == before
    r = client.post("/v1/models", json={"name": "fraud"}, headers=bearer("admin"))
    assert r.status_code == 201, r.text


WRITES = {
    "create model": (
        "POST",
        "/v1/models",
        {"name": "fraud", "library": "sklearn", "labels": {"team": "risk"}},
        201,
        "fraud: create model",
        "model-create",
    ),
    "update model": (
        "PATCH",
        "/v1/models/iris",
        {"description": "Iris, patched over HTTP", "labels": {"tier": "gold"}},
        200,
        "iris: update model (description, labels)",
        "model-update",
    ),
    "archive": (
        "POST",
        "/v1/models/iris/archive",
        None,
        200,
        "iris: archive model",
        "model-archive",
    ),
    "restore": (
        "POST",
        "/v1/models/legacy/restore",
        None,
        200,
        "legacy: restore model",
        "model-restore",
    ),
    "delete model": (
        "DELETE",
        "/v1/models/churn",
        None,
        200,
        "churn: delete model",
        "model-delete",
    ),
    "register untrained": (
        "POST",
        "/v1/models/churn/versions",
        {"input_info": {"features": ["a", "b", "c", "d"]}, "metrics": {"f1": 0.5}},
        201,
        "churn: register v3 (",
        "register",
    ),
    "update version": (
        "PATCH",
        "/v1/models/iris/versions/1",
        {"notes": "superseded", "deprecated": True},
        200,
        "iris: update v1 (notes, deprecated)",
        "version-update",
    ),
    "status move": (
        "PATCH",
        "/v1/models/churn/versions/2",
        {"status": "training"},
        200,
        "churn: v2 untrained -> training",
        "version-status",
    ),
    "move pointer": (
        "PUT",
        "/v1/models/iris/pointers/prod",
        {"target": "v3"},
        200,
        "iris: move prod v2 -> v3",
        "point",
    ),
    "create pointer": (
        "PUT",
        "/v1/models/iris/pointers/canary",
        {"target": "v1", "description": "5% of traffic"},
        200,
        "iris: point canary -> v1",
        "point",
    ),
    "delete pointer": (
        "DELETE",
        "/v1/models/iris/pointers/staging",
        None,
        200,
        "iris: delete pointer staging (was v3)",
        "pointer-delete",
    ),
}


@pytest.mark.parametrize("case", list(WRITES), ids=list(WRITES))
def test_each_write_is_one_commit_by_the_token_and_served_at_once(
    client: TestClient[Any], showcase: Showcase, case: str
) -> None:
    method, path, body, status, subject, action = WRITES[case]
    before = head(showcase.root)
    r = client.request(method, path, json=body, headers=bearer("writer"))
    assert r.status_code == status, r.text
    made = commits_since(showcase.root, before)
    assert len(made) == 1
    commit = made[0]
    assert commit["subject"].startswith(subject)
    assert (commit["author"], commit["email"]) == ("writer", "writer@mreg.invalid")
    assert commit["trailers"]["Mreg-Action"] == action
    model = body["name"] if path == "/v1/models" else path.split("/")[3]
    assert commit["trailers"]["Mreg-Model"] == model
    write = r.json()["write"]
    assert write["commit"] == commit["sha"] == head(showcase.root)
    assert write["branch"] is None
    assert write["revision"] == commit["sha"]
    assert client.get("/v1/registry", headers=bearer("writer")).json()["revision"] == commit["sha"]
    # The work tree follows the branch: nothing left uncommitted by the write.
    assert git(showcase.root, "status", "--porcelain", "--untracked-files=no") == ""


def test_the_new_state_is_what_the_server_answers(client: TestClient[Any]) -> None:
    r = client.put("/v1/models/iris/pointers/prod", json={"target": "v3"}, headers=bearer("writer"))
    assert r.status_code == 200, r.text
    r = client.post("/v1/models/iris/invoke?pointer=prod", json={"data": SETOSA})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    r = client.patch("/v1/models/iris", json={"description": None}, headers=bearer("writer"))
    assert r.json()["model"]["description"] is None
    assert client.get("/v1/models/iris").json()["description"] is None
    r = client.post(
        "/v1/models", json={"name": "fraud", "is_public": True}, headers=bearer("writer")
    )
    assert client.get("/v1/models/fraud").json()["is_public"] is True
    assert client.delete("/v1/models/fraud", headers=bearer("writer")).status_code == 200
    assert client.get("/v1/models/fraud").status_code == 404


def test_version_created_by_is_the_token(client: TestClient[Any]) -> None:
    r = client.post(
        "/v1/models/churn/versions", json={"description": "retrain"}, headers=bearer("writer")
    )
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    assert (version["version"], version["status"]) == (3, "untrained")
    assert version["created_by"] == "writer <writer@mreg.invalid>"
    assert r.json()["write"]["tag"] == "churn@v3"


def md5_header(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_upload_pushes_the_artifact_and_trains_the_version(
    client: TestClient[Any], showcase: Showcase
) -> None:
    data = (showcase.root / "models" / "iris" / "artifacts" / "v2" / "model.skops").read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    before = head(showcase.root)
    r = client.post(
        "/v1/models/iris/versions",
        json={"output_info": {"labels": IRIS_LABELS}},
        headers=bearer("writer"),
    )
    assert r.status_code == 201, r.text
    n = r.json()["version"]["version"]
    r = client.put(
        f"/v1/models/iris/versions/{n}/artifact?filename=model.skops",
        content=data,
        headers={**bearer("writer"), "Content-MD5": md5_header(data)},
    )
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    assert version["status"] == "trained"
    assert version["artifact"] == {
        "path": f"artifacts/v{n}/model.skops",
        "md5": md5,
        "size": len(data),
        "library": "sklearn",
        "format": "skops",
    }
    assert (showcase.storage / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == data
    made = commits_since(showcase.root, before)
    assert [c["subject"] for c in made][1] == f"iris: v{n} untrained -> trained"
    r = client.post(f"/v1/models/iris/invoke?version={n}", json={"data": SETOSA})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["label"] == "setosa"
    assert not any((showcase.root / ".git" / "mreg" / "uploads").iterdir())


@pytest.mark.parametrize("header", ["hex", "base64"])
def test_an_upload_that_does_not_match_content_md5_changes_nothing(
    client: TestClient[Any], showcase: Showcase, header: str
) -> None:
    data = b"not the bytes the client hashed"
    digest = hashlib.md5(b"the bytes the client hashed").digest()
    given = digest.hex() if header == "hex" else base64.b64encode(digest).decode()
    before = head(showcase.root)
    r = client.put(
        "/v1/models/churn/versions/2/artifact?filename=churn.joblib",
        content=data,
        headers={**bearer("writer"), "Content-MD5": given},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "md5_mismatch"
    assert digest.hex() in r.json()["error"]["message"]
    assert head(showcase.root) == before
    assert not any((showcase.root / ".git" / "mreg" / "uploads").iterdir())
    assert (
        client.get("/v1/models/churn/versions/2", headers=bearer("writer")).json()["status"]
        == "untrained"
    )


def test_an_upload_over_max_upload_is_413_and_leaves_nothing(
    showcase: Showcase, tmp_path: Path
) -> None:
    app = create_app(showcase.root, tokens=tokens(), max_upload=100, usage_path=tmp_path / "u")
    before = head(showcase.root)
    with TestClient(app=app) as c:
        r = c.put(
            "/v1/models/churn/versions/2/artifact?filename=churn.joblib",
            content=b"x" * 101,
            headers=bearer("writer"),
        )
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
            for _ in range(11):
                yield b"y" * 10

        r = c.put(
            "/v1/models/churn/versions/2/artifact?filename=churn.joblib",
            content=chunks(),
            headers=bearer("writer"),
        )
        assert r.status_code == 413, r.text
    assert head(showcase.root) == before
    assert not any((showcase.root / ".git" / "mreg" / "uploads").iterdir())


def test_upload_refusals(client: TestClient[Any], showcase: Showcase) -> None:
    before = head(showcase.root)
    url = "/v1/models/iris/versions/1/artifact?filename=model.skops"
    r = client.put(url, content=b"bytes", headers=bearer("writer"))
    assert r.status_code == 409
    assert "has an artifact already" in r.json()["error"]["message"]
    r = client.put(
        "/v1/models/iris/versions/9/artifact?filename=m.skops",
        content=b"x",
        headers=bearer("writer"),
    )
    assert r.status_code == 404
    r = client.put(
        "/v1/models/churn/versions/2/artifact?filename=notes.txt",
        content=b"x",
        headers=bearer("writer"),
    )
    assert r.status_code == 400
    r = client.put(
        "/v1/models/churn/versions/2/artifact?filename=m.joblib",
        content=b"",
        headers=bearer("writer"),
    )
    assert r.status_code == 400
    assert "empty" in r.json()["error"]["message"]
    assert head(showcase.root) == before


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/models/iris/versions/1", {"status": "training"}, 409, "is trained: it cannot become"),
        (
            "/v1/models/churn/versions/2",
            {"status": "trained"},
            409,
            "when its artifact is uploaded",
        ),
        (
            "/v1/models/churn/versions/2",
            {"status": "failed", "notes": "x"},
            409,
            "a status move is a write of its own",
        ),
        ("/v1/models/churn/versions/9", {"notes": "x"}, 404, "v9"),
        ("/v1/models/iris", {"created_at": "2020-01-01T00:00:00Z"}, 400, "created_at"),
        ("/v1/models/nope", {"description": "x"}, 404, "nope"),
    ],
)
def test_refused_patches_change_nothing(
    client: TestClient[Any], showcase: Showcase, path: str, body: Any, status: int, needle: str
) -> None:
    before = head(showcase.root)
    r = client.patch(path, json=body, headers=bearer("writer"))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message", "detail"}
    assert needle in error["message"]
    assert head(showcase.root) == before


def test_create_refusals(client: TestClient[Any], showcase: Showcase) -> None:
    before = head(showcase.root)
    r = client.post("/v1/models", json={"name": "iris"}, headers=bearer("writer"))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
    r = client.post("/v1/models", json={"name": "Not A Name"}, headers=bearer("writer"))
    assert r.status_code == 400
    r = client.post("/v1/models/nope/versions", json={}, headers=bearer("writer"))
    assert r.status_code == 404
    r = client.post("/v1/models/legacy/versions", json={}, headers=bearer("writer"))
    assert r.status_code == 409
    assert "archived" in r.json()["error"]["message"]
    assert head(showcase.root) == before


def test_an_empty_patch_makes_no_commit(client: TestClient[Any], showcase: Showcase) -> None:
    before = head(showcase.root)
    r = client.patch("/v1/models/iris", json={}, headers=bearer("writer"))
    assert r.status_code == 200, r.text
    assert r.json()["write"]["commit"] is None
    assert r.json()["model"]["name"] == "iris"
    assert head(showcase.root) == before


def protect_prod(showcase: Showcase) -> None:
    settings = showcase.root / "registry.yaml"
    settings.write_text(settings.read_text() + "protected_pointers: [prod]\n")
    git(showcase.root, "commit", "-q", "-am", "protect prod")


def test_a_protected_pointer_moves_only_on_a_branch(showcase: Showcase, tmp_path: Path) -> None:
    protect_prod(showcase)
    before = head(showcase.root)
    app = create_app(showcase.root, tokens=tokens(), usage_path=tmp_path / "usage.sqlite")
    with TestClient(app=app) as c:
        r = c.put("/v1/models/iris/pointers/prod", json={"target": "v3"}, headers=bearer("writer"))
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "protected_pointer"
        r = c.delete("/v1/models/iris/pointers/prod", headers=bearer("writer"))
        assert r.status_code == 409
        assert head(showcase.root) == before

        r = c.put(
            "/v1/models/iris/pointers/prod?branch=promote-v3",
            json={"target": "v3"},
            headers=bearer("writer"),
        )
        assert r.status_code == 200, r.text
        write = r.json()["write"]
        assert write["branch"] == "promote-v3"
        assert write["commit"] == head(showcase.root, "promote-v3")
        assert write["revision"] == before  # the served branch did not move
        assert (
            c.post("/v1/models/iris/invoke?pointer=prod", json={"data": SETOSA}).json()["version"]
            == 2
        )
    assert head(showcase.root) == before
    made = commits_since(showcase.root, before, "promote-v3")
    assert [(c["subject"], c["author"]) for c in made] == [("iris: move prod v2 -> v3", "writer")]


def test_branch_write_mode_commits_each_write_on_a_new_branch(
    showcase: Showcase, tmp_path: Path
) -> None:
    before = head(showcase.root)
    app = create_app(
        showcase.root, tokens=tokens(), write_mode="branch", usage_path=tmp_path / "u.sqlite"
    )
    with TestClient(app=app) as c:
        r = c.post("/v1/models", json={"name": "fraud"}, headers=bearer("writer"))
        assert r.status_code == 201, r.text
        branch = r.json()["write"]["branch"]
        assert branch.startswith("mreg/fraud-")
        assert c.get("/v1/models/fraud", headers=bearer("writer")).status_code == 404
        r = c.post("/v1/models", json={"name": "fraud"}, headers=bearer("writer"))
        assert r.json()["write"]["branch"] != branch
    assert head(showcase.root) == before
    assert git(showcase.root, "log", "-1", "--format=%s", branch) == "fraud: create model"


def test_a_server_at_a_fixed_revision_writes_only_to_branches(
    showcase: Showcase, tmp_path: Path
) -> None:
    app = create_app(
        showcase.root, rev=showcase.release, tokens=tokens(), usage_path=tmp_path / "u.sqlite"
    )
    before = head(showcase.root)
    with TestClient(app=app) as c:
        r = c.post("/v1/models", json={"name": "fraud"}, headers=bearer("writer"))
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "read_only_revision"
        r = c.post("/v1/models?branch=add-fraud", json={"name": "fraud"}, headers=bearer("writer"))
        assert r.status_code == 201, r.text
    assert head(showcase.root) == before
    assert head(showcase.root, "add-fraud") != before


def test_a_write_never_clobbers_uncommitted_edits(
    client: TestClient[Any], showcase: Showcase
) -> None:
    manifest = showcase.root / "models" / "iris" / "model.yaml"
    edited = manifest.read_text() + "owner: someone editing by hand\n"
    manifest.write_text(edited)
    before = head(showcase.root)
    r = client.patch("/v1/models/iris", json={"description": "from HTTP"}, headers=bearer("writer"))
    assert r.status_code == 409
    assert r.json()["error"]["detail"]["file"] == "models/iris/model.yaml"
    assert manifest.read_text() == edited
    assert head(showcase.root) == before
    # Another model's write goes through and leaves the edit alone.
    r = client.patch("/v1/models/churn", json={"description": "fine"}, headers=bearer("writer"))
    assert r.status_code == 200, r.text
    assert manifest.read_text() == edited


def test_options_lists_reads_and_writes_of_a_path(client: TestClient[Any]) -> None:
    r = client.options("/v1/models/iris")
    assert r.status_code == 204
    assert r.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
    r = client.request("TRACE", "/v1/models/iris")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"DELETE", "GET", "OPTIONS", "PATCH"}


def test_openapi_documents_the_write_routes(client: TestClient[Any]) -> None:
    schema = client.get("/schema/openapi.json").json()
    paths = schema["paths"]
    expected = {
        "/v1/models": {"post"},
        "/v1/models/{model}": {"patch", "delete"},
        "/v1/models/{model}/archive": {"post"},
        "/v1/models/{model}/restore": {"post"},
        "/v1/models/{model}/versions": {"post"},
        "/v1/models/{model}/versions/{n}": {"patch"},
        "/v1/models/{model}/versions/{n}/artifact": {"put"},
        "/v1/models/{model}/pointers/{tag}": {"put", "delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            op = paths[path][method]
            assert op["tags"] == ["writes"]
            assert {"401", "403", "404", "409"} <= set(op["responses"])
            assert op["responses"]["403"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
    upload = paths["/v1/models/{model}/versions/{n}/artifact"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert "413" in upload["responses"]
    assert schema["components"]["schemas"]["ModelPatch"]["additionalProperties"] is False


def test_a_version_posted_with_its_artifact_is_one_trained_commit(
    client: TestClient[Any], showcase: Showcase
) -> None:
    data = (showcase.root / "models" / "iris" / "artifacts" / "v1" / "model.skops").read_bytes()
    before = head(showcase.root)
    r = client.post(
        "/v1/models/iris/versions?filename=iris.skops",
        content=data,
        headers={
            **bearer("writer"),
            "Content-Type": "application/octet-stream",
            "Content-MD5": md5_header(data),
        },
    )
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    assert (version["version"], version["status"]) == (4, "trained")
    assert version["artifact"]["md5"] == hashlib.md5(data).hexdigest()
    assert version["artifact"]["path"] == "artifacts/v4/iris.skops"
    made = commits_since(showcase.root, before)
    assert [(c["subject"].split(" (")[0], c["author"]) for c in made] == [
        ("iris: register v4", "writer")
    ]
    assert r.json()["write"]["tag"] == "iris@v4"
    md5 = version["artifact"]["md5"]
    assert (showcase.storage / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_a_version_body_that_is_not_json_is_400(
    client: TestClient[Any], showcase: Showcase
) -> None:
    before = head(showcase.root)
    r = client.post(
        "/v1/models/iris/versions",
        content=b'{"input_info": 3}',
        headers={**bearer("writer"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "expected a JSON body of version fields" in r.json()["error"]["message"]
    r = client.post("/v1/models/iris/versions", json={"nope": 1}, headers=bearer("writer"))
    assert r.status_code == 400
    assert "nope" in r.json()["error"]["message"]
    assert head(showcase.root) == before
