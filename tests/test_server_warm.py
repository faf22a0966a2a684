"""A start reads nothing: the revision is read lazily, and answers as a checked one."""

from __future__ import annotations

from litestar.testing import TestClient

from server import create_app
from server.runtime import Served
from tests.showcase import Showcase


def test_a_load_reads_nothing_and_answers_as_a_checked_revision(showcase: Showcase) -> None:
    reg = showcase.registry()
    checked = Served.load(reg, "HEAD")
    checked.check_change(reg, None)  # every manifest read, every pointer resolved
    checked.versions.fill()
    lazy = Served.load(reg, "HEAD")
    assert (lazy.models.read, lazy.versions.read, lazy.pointers.read) == (0, 0, 0)
    assert lazy.counts() == checked.counts()
    assert lazy.versions.read == 0  # counting reads no version
    for pin in ("prod", "staging", "champion"):
        assert lazy.snapshot.resolve(f"iris:{pin}") == checked.snapshot.resolve(f"iris:{pin}")
    assert [v.version for v in lazy.versions["iris"]] == [1, 2, 3]
    assert lazy.versions.read == 1
    assert dict(lazy.versions.items()) == dict(checked.versions.items())


def test_warm_started_server_serves_the_same_answers(showcase: Showcase) -> None:
    reg = showcase.registry()
    Served.load(reg, "HEAD")  # the cold load records that this commit loads
    with TestClient(app=create_app(reg, "HEAD")) as client:
        body = client.post(
            "/v1/models/iris/invoke?pointer=prod", json={"data": [5.1, 3.5, 1.4, 0.2]}
        )
        assert body.status_code == 200, body.text
        assert (body.json()["version"], body.json()["outputs"][0]["label"]) == (2, "setosa")
        versions = client.get("/v1/models/iris/versions").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2, 3]
