"""A warm start: a revision that loaded cleanly once is read lazily the next time."""

from __future__ import annotations

from litestar.testing import TestClient

from server import create_app
from server.runtime import Served
from tests.showcase import Showcase


def test_second_load_of_a_revision_is_lazy_and_answers_the_same(showcase: Showcase) -> None:
    reg = showcase.registry()
    cold = Served.load(reg, "HEAD")
    warm = Served.load(reg, "HEAD")
    assert type(cold.versions) is dict  # every version read and checked
    assert type(warm.versions) is not dict and len(warm.versions) == 0  # nothing read yet
    assert warm.counts() == cold.counts()
    for pin in ("prod", "staging", "champion"):
        assert warm.snapshot.resolve(f"iris:{pin}") == cold.snapshot.resolve(f"iris:{pin}")
    assert [v.version for v in warm.versions["iris"]] == [1, 2, 3]


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
