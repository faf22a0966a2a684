"""The write lock serves writers in arrival order, across processes and threads.

The test holds the lock, lets real writers arrive one after another (a CLI
process, then an HTTP write to a real server, and so on), each seen queued
before the next starts, then releases it: the versions must be numbered in
the order the writers arrived. No timing is asserted, only order.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from registry import Registry
from registry.writelock import QUEUE, LockTimeoutError, write_lock
from tests.processes import MREG, ROOT, serving
from tests.scale_fixtures import wait_for

WRITERS_PER_SIDE = 8


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("churn")
    return reg


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    entries = [
        {"name": n, "sha256": hashlib.sha256(f"secret-{n}".encode()).hexdigest(), "scopes": [s]}
        for n, s in (("writer", "write"), ("reader", "read"))
    ]
    path.write_text(json.dumps(entries))
    return path


def queued(reg: Registry) -> int:
    folder = reg.state_dir / QUEUE
    return sum(1 for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else 0


@pytest.mark.slow
def test_http_and_cli_writers_get_the_lock_in_the_order_they_arrived(
    registry: Registry, tokens: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    register = [*MREG, "--repo", str(registry.root), "register", "churn", "--untrained"]
    arrived: list[str] = []
    clis: list[subprocess.Popen[str]] = []
    answers: list[httpx.Response] = []
    threads: list[threading.Thread] = []
    with serving(registry.root, "--tokens", str(tokens)) as server:
        with write_lock(registry.state_dir):
            for i in range(2 * WRITERS_PER_SIDE):
                name = f"cli {i}" if i % 2 == 0 else f"http {i}"
                if name.startswith("cli"):
                    clis.append(
                        subprocess.Popen(
                            [*register, "--description", name],
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True,
                        )
                    )
                else:

                    def post(name: str = name) -> None:
                        answers.append(
                            server.post(
                                "/v1/models/churn/versions",
                                json={"description": name},
                                headers={"Authorization": "Bearer secret-writer"},
                                timeout=300,
                            )
                        )

                    threads.append(threading.Thread(target=post))
                    threads[-1].start()
                # The next writer starts only once this one waits in the queue.
                wait_for(lambda n=i: queued(registry) == n + 2, f"{name} to queue", 120)
                arrived.append(name)
        for thread in threads:
            thread.join(300)
        for proc in clis:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        assert [a.status_code for a in answers] == [201] * WRITERS_PER_SIDE, [
            a.text for a in answers
        ]
    versions = sorted(registry.snapshot("HEAD").versions("churn"), key=lambda v: v.version)
    assert [v.description for v in versions] == arrived


def test_a_timeout_says_how_long_it_waited_and_behind_whom(registry: Registry) -> None:
    errors: list[LockTimeoutError] = []

    def second() -> None:
        try:
            with write_lock(registry.state_dir, timeout=0.2):
                pass
        except LockTimeoutError as exc:
            errors.append(exc)

    with write_lock(registry.state_dir):
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(60)
    assert len(errors) == 1
    message = str(errors[0])
    assert message.startswith("another mreg write is still running on this registry: waited ")
    assert "behind 1 earlier writes" in message
    assert queued(registry) == 0


def test_the_ticket_of_a_killed_writer_does_not_block_the_queue(registry: Registry) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from registry.writelock import write_lock\n"
            "with write_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)",
            str(registry.state_dir),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.send_signal(signal.SIGKILL)
    holder.wait(60)
    assert queued(registry) == 1  # its ticket stays behind
    registry.register("churn", untrained=True)
    assert queued(registry) == 0
