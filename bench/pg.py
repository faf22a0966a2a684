"""A throwaway PostgreSQL cluster (Debian's postgresql 15): initdb and pg_ctl in a temp dir.

initdb refuses root, so as root the cluster runs as an unprivileged user
(postgres, else nobody). Used by bench/usage_store.py and the tests' fixture.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path(os.environ.get("MREG_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> tuple[list[str], str | None]:
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], name
    raise PostgresUnavailable("running as root and no unprivileged user (postgres, nobody)")


@contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster on a free loopback port; yields the URL of its `postgres` database."""
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not initdb.is_file():
        raise PostgresUnavailable(
            f"PostgreSQL not found at {PG_BIN} (Debian: apt-get install postgresql;"
            " or set MREG_PG_BIN)"
        )
    prefix, user = _as_user()
    base = Path(tempfile.mkdtemp(prefix="mreg-pg-"))
    if user is not None:
        shutil.chown(base, user=user)
    data, port = base / "data", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, env=env, cwd=base)

    try:
        made = pg(
            str(initdb), "-D", str(data), "-U", "mreg", "-A", "trust", "--no-sync", "-E", "UTF8"
        )
        if made.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {made.stderr.strip()}")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = pg(
            str(pg_ctl), "-D", str(data), "-l", str(base / "log"), "-w", "-o", options, "start"
        )
        if started.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()}\n{log}")
        try:
            yield f"postgresql://mreg@127.0.0.1:{port}/postgres"
        finally:
            pg(str(pg_ctl), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new database in the cluster at `server_url`; returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
