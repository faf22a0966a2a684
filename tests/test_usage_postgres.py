"""The usage store on PostgreSQL: shared by every worker and replica (`--usage-url postgresql://`).

A real PostgreSQL 15 cluster (tests/scale_fixtures.py) and real `mreg serve`
processes: a job made on one replica is listed by the other, runs are found
by id on either, and `used=true` agrees.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from registry import Registry
from server.usage import UsageStoreError, open_usage_store
from server.usage.postgres import PostgresUsageStore
from tests.conftest import git
from tests.processes import MREG, ROOT, ServeProcess, free_port, run_bench
from tests.scale_fixtures import wait_for
from tests.server_fixtures import LABELS, SETOSA
from tests.test_usage_writer import record

pytest_plugins = ["tests.server_fixtures", "tests.scale_fixtures"]


def test_two_stores_on_one_database_share_jobs_runs_and_last_use(postgres_url: str) -> None:
    one = open_usage_store(postgres_url, flush_every=0.01)
    two = open_usage_store(postgres_url, flush_every=0.01)
    assert isinstance(one, PostgresUsageStore)
    one.record(record(1, model="iris"))
    one.record(record(2, model="wine"))
    one.flush()
    assert [j["id"] for j in two.jobs()] == [f"run_{2:016x}", f"run_{1:016x}"]
    assert [j["model"] for j in two.jobs(model="iris")] == ["iris"]
    assert two.jobs(models={"wine"})[0]["model"] == "wine"
    assert two.run(f"run_{1:016x}") == {**one.jobs(model="iris")[0], "outputs": None}
    assert "iris" not in two.last_used
    two.start()
    wait_for(lambda: set(two.last_used) == {"iris", "wine"}, "the other store's last uses")
    assert two.last_used["iris"] == 1001.0
    one.close()
    two.close()
    # A new process reads last uses from the database.
    three = open_usage_store(postgres_url)
    assert three.last_used == {"iris": 1001.0, "wine": 1002.0}
    three.close()


def test_the_newest_jobs_are_kept_and_every_last_use_outlives_them(postgres_url: str) -> None:
    store = open_usage_store(postgres_url, keep=10)
    for i in range(30):
        store.record(record(i, model="old" if i == 0 else "iris"))
        store.flush()
    jobs = store.jobs(limit=100)
    assert 10 <= len(jobs) <= 11
    assert jobs[0]["id"] == f"run_{29:016x}"
    assert all(j["model"] == "iris" for j in jobs)
    store.close()
    assert open_usage_store(postgres_url).last_used == {"old": 1000.0, "iris": 1029.0}


def test_a_locked_table_keeps_records_queued_until_the_lock_goes(postgres_url: str) -> None:
    store = open_usage_store(postgres_url, statement_timeout=0.2)
    store.record(record(1))
    # Another session holds the table's strongest lock: the insert waits, times out, is kept.
    with psycopg.connect(postgres_url) as locker:
        locker.execute("LOCK TABLE mreg_jobs IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(UsageStoreError, match="writing 1 records failed: QueryCanceled"):
            store.flush()
        assert store.pending == 1
        locker.rollback()
    assert store.flush() == 1
    assert [j["id"] for j in store.jobs()] == [f"run_{1:016x}"]
    store.close()


def test_an_unreachable_database_is_one_error_line(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "reg")
    url = f"postgresql://mreg:hunter2@127.0.0.1:{free_port()}/nowhere"
    out = subprocess.run(
        [*MREG, "--repo", str(reg.root), "serve", "--get", "/healthz"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "MREG_USAGE_URL": url},
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: usage store postgresql://mreg:***@127.0.0.1:")
    assert "cannot connect" in out.stderr
    assert "hunter2" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_two_replicas_share_usage_and_follow_one_branch(
    tmp_path: Path,
    model_files: dict[str, Path],
    postgres_url: str,
    serve: Callable[..., ServeProcess],
) -> None:
    """Two clones of one origin, each served by its own process, one PostgreSQL usage store."""
    poll = "0.5"
    origin = tmp_path / "origin.git"
    reg = Registry.init(tmp_path / "author")
    reg.create_model("iris", project="flowers", is_public=True)
    reg.create_model("wine", project="drinks", is_public=True)
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, point=["prod"])
    reg.register("wine", model_files["skops"], output_info={"labels": LABELS})
    git(tmp_path, "clone", "-q", "--bare", str(reg.root), str(origin))
    replicas = []
    for name in ("a", "b"):
        git(tmp_path, "clone", "-q", str(origin), name)
        replicas.append(
            serve(
                tmp_path / name,
                "--follow",
                "origin/main",
                "--poll",
                poll,
                "--usage-url",
                postgres_url,
            )
        )
    a, b = replicas
    a.wait_ready()
    b.wait_ready()

    invoked = a.post("/v1/models/iris/invoke", json={"data": SETOSA})
    assert invoked.status_code == 200, invoked.text
    run = a.post("/v1/runs", json={"pipeline": "iris:prod", "inputs": [SETOSA]}).json()

    def listed_on_b() -> list[dict[str, object]]:
        return [j for j in b.get("/v1/jobs").json()["jobs"] if j["model"] == "iris"]

    jobs = wait_for(lambda: len(listed_on_b()) == 2 and listed_on_b(), "a's jobs on b")
    assert {j["kind"] for j in jobs} == {"invoke", "run"}
    assert b.get(f"/v1/runs/{run['id']}").json()["outputs"] == run["outputs"]

    def used(replica: ServeProcess) -> list[str]:
        return [m["name"] for m in replica.get("/v1/models?used=true").json()["models"]]

    wait_for(lambda: used(b) == ["iris"], "used=true on b")
    assert used(a) == ["iris"]
    unused = [m["name"] for m in b.get("/v1/models?used=false").json()["models"]]
    assert unused == ["wine"]
    last_a = a.get("/v1/models/iris").json()["last_used_at"]
    assert last_a is not None
    # b may first read an older last use (the invoke's, before the run's): wait for a's own.
    wait_for(lambda: b.get("/v1/models/iris").json()["last_used_at"] == last_a, "b's last use")

    # A new commit on origin/main: both replicas fetch it and serve the same revision.
    reg.register("iris", model_files["onnx"], output_info={"labels": LABELS}, format="onnx")
    git(reg.root, "push", "-q", str(origin), "main")
    head = git(reg.root, "rev-parse", "HEAD")
    for replica in replicas:
        wait_for(lambda r=replica: r.get("/v1/registry").json()["revision"] == head, "convergence")
        assert replica.post("/v1/models/iris/invoke", json={"data": SETOSA}).json()["version"] == 2


@pytest.mark.slow
def test_the_usage_benchmark_runs_both_stores_and_loses_no_record(tmp_path: Path) -> None:
    """`python -m bench.usage_store --tiny` (numbers are not checked: no timing assertions)."""
    import json

    out = run_bench("bench.usage_store", "--tiny", results=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    stores = json.loads((tmp_path / "usage_store.json").read_text())["stores"]
    assert set(stores) == {"sqlite", "postgresql"}
    for result in stores.values():
        assert result["requests"] > 0
        assert result["written"] == result["answered"]
    assert "| postgresql |" in (tmp_path / "usage_store.md").read_text()
