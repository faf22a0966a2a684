"""What every benchmark shares: an isolated environment, timed processes, tables and results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("MREG_BENCH_RESULTS", ROOT / "bench" / "results"))
BIN = Path(sys.executable).parent
MREG = str(BIN / "mreg")
GTO = str(BIN / "gto")
FIXED_DATE = "2026-11-24T05:00:00Z"


@dataclass(frozen=True)
class Mode:
    """How big and how long: quick for `make bench`, full for `make bench FULL=1`, tiny for tests."""

    name: str
    load_seconds: int
    repeats: int
    scale_shapes: tuple[tuple[int, int], ...]  # (models, versions) for the side-by-side shapes
    growth_models: tuple[int, ...]
    peers: bool = True  # MLflow (its own venv)
    gto: bool = True  # GTO (installed with dvc)

    @property
    def tiny(self) -> bool:
        return self.name == "tiny"


QUICK = Mode(
    "quick",
    load_seconds=4,
    repeats=5,
    scale_shapes=((200, 5), (1000, 10)),
    growth_models=(10, 100, 1000),
)
FULL = Mode(
    "full",
    load_seconds=15,
    repeats=7,
    scale_shapes=((200, 5), (10_000, 10)),
    growth_models=(10, 100, 1000, 10_000),
)
TINY = Mode(
    "tiny", load_seconds=1, repeats=1, scale_shapes=((5, 2),), growth_models=(5,), peers=False
)


class Workdir:
    """A scratch directory with its own git identity, HOME and caches; removed at the end."""

    def __init__(self, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="mreg-bench-"))
        self.keep = keep
        home = self.path / "home"
        home.mkdir()
        gitconfig = home / ".gitconfig"
        gitconfig.write_text(
            "[user]\n\tname = Bench User\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
            "[gc]\n\tauto = 0\n"
        )
        self.env = {
            **os.environ,
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(gitconfig),
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "GTO_EMOJIS": "false",
            "NO_COLOR": "1",
        }
        self.env.pop("MREG_REPO", None)
        # Real clocks: a fixed date (tests set one) makes GTO fail to create its tags.
        self.env.pop("GIT_AUTHOR_DATE", None)
        self.env.pop("GIT_COMMITTER_DATE", None)
        # Users' Pythons cache bytecode; without it every mreg process would compile
        # registry/ and tool/ from source (installed peers ship compiled).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)

    def sub(self, name: str) -> Path:
        p = self.path / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> Run:
    """Run a process to completion and time it (no memory figure: see run_measured)."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv), cwd=cwd, env=env, input=input, capture_output=True, check=False
    )
    seconds = time.perf_counter() - start
    result = Run(
        seconds,
        0.0,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n{result.stderr[-2000:]}"
        )
    return result


TIME = Path("/usr/bin/time")


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> Run:
    """Like run(), with the child's own peak RSS.

    Through GNU time when installed: a child forked from this (large) process
    would report this process's size as its floor, since Linux keeps the
    high-water mark across exec; forked from `time`, the floor is tiny.
    """
    with tempfile.NamedTemporaryFile() as mem:
        cmd = [str(TIME), "-f", "%M", "-o", mem.name, *argv] if TIME.exists() else list(argv)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        seconds = time.perf_counter() - start
        text = Path(mem.name).read_text().strip().splitlines() if TIME.exists() else []
    kb = int(text[-1]) if text and text[-1].isdigit() else 0
    result = Run(
        seconds,
        kb / 1024,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stderr[-2000:]}"
        )
    return result


@dataclass
class Timing:
    """Median and spread of repeated measurements, in seconds."""

    median: float
    min: float
    max: float
    n: int
    max_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "median_s": round(self.median, 5),
            "min_s": round(self.min, 5),
            "max_s": round(self.max, 5),
            "n": self.n,
            "max_rss_mb": round(self.max_rss_mb, 1),
        }


def timing(samples: Iterable[float], rss: float = 0.0) -> Timing:
    values = list(samples)
    return Timing(statistics.median(values), min(values), max(values), len(values), rss)


def time_cmd(
    argv: Sequence[str],
    repeats: int,
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    before: Callable[[int], None] | None = None,
) -> Timing:
    """Median wall time of a command over `repeats` runs (after `before(i)` for each)."""
    samples: list[float] = []
    rss = 0.0
    for i in range(repeats):
        if before is not None:
            before(i)
        r = run_measured(argv, cwd=cwd, env=env)
        samples.append(r.seconds)
        rss = max(rss, r.max_rss_mb)
    return timing(samples, rss)


def time_call(fn: Callable[[], Any], repeats: int) -> Timing:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return timing(samples)


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def ratio(a: float | None, b: float | None) -> str:
    """a / b as 'N.Nx', or '-' when either side is missing."""
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (also readable as plain text), with a title line."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [f"### {title}", "", line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out) + "\n"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal"):
                mem = f"{int(text.split()[1]) // 1024} MiB"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def save(name: str, data: dict[str, Any], tables: list[str]) -> Path:
    """bench/results/<name>.json and <name>.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(tables))
    return path


def report(name: str, data: dict[str, Any], tables: list[str]) -> Path:
    """Print a section's tables on stdout, then `save` them with its results."""
    for t in tables:
        print(t)
    return save(name, data, tables)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def section_main(
    prog: str, doc: str | None, label: str, bench: Callable[[Mode, Workdir], Any], argv: Any
) -> int:
    """The command line of one section (`python -m bench.NAME [--full|--tiny] [--keep]`): runs
    `bench(mode, workdir)` in a scratch directory and says how long it took."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--full", action="store_true", help="15 s load runs (default: quick)")
    parser.add_argument("--tiny", action="store_true", help="one second, for a smoke test")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    mode = FULL if args.full else TINY if args.tiny else QUICK
    started = time.perf_counter()
    work = Workdir(keep=args.keep)
    try:
        bench(mode, work)
    finally:
        work.close()
    log(f"{label} benchmark done in {time.perf_counter() - started:.0f} s")
    return 0
