"""Profiles behind the missed targets in BENCHMARKS.md (py-spy, and Python's -X importtime).

    python -m bench.profile serving   # mreg serve vs the minimal endpoint under 8 clients
    python -m bench.profile cli       # where a `mreg resolve` process spends its time
    python -m bench.profile scale     # model list, resolve, server start at 10,000 x 10

Prints the functions with the most samples (self and inclusive) and, for
the CLI, the slowest imports; writes the raw stacks to bench/results/.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import serving, synth
from bench.common import MREG, RESULTS, Workdir, log, run

BIN = Path(sys.executable).parent
PY_SPY = shutil.which("py-spy") or str(BIN / "py-spy")


PACKAGES = (
    "server/",
    "registry/",
    "bench/",
    "litestar/",
    "uvicorn/",
    "msgspec",
    "sklearn/",
    "numpy/",
    "threading",
    "sqlite3",
)


def _package(frame: str) -> str | None:
    where = frame.rsplit("(", 1)[-1]
    return next((p.rstrip("/") for p in PACKAGES if p in where), None)


def summarize(raw: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Collapsed stacks ("a;b;c count") -> top frames by self share, by mreg-code inclusive share,
    and the share of samples that pass through each package."""
    self_count: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if frames:
            self_count[frames[-1]] += n
            if "Runner.run (asyncio/runners.py" in frames[-1] or frames[-1].startswith("select"):
                packages["(event loop idle)"] += n
        for f in set(frames):
            if _package(f) in ("server", "registry", "tool", "bench"):
                incl[f] += n
        for pkg in {_package(f) for f in frames} - {None}:
            packages[str(pkg)] += n

    def pct(c: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)] if total else []

    return {"self": pct(self_count), "inclusive": pct(incl), "packages": pct(packages)}


def record(pid: int, seconds: int, out: Path) -> None:
    subprocess.run(
        [
            PY_SPY,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        check=True,
        capture_output=True,
    )


def profile_serving(seconds: int) -> dict[str, object]:
    work = Workdir()
    out: dict[str, object] = {}
    try:
        skops_path, _, rows = serving.train(work.path)
        found, _ = serving.servers(work, skops_path, skops_path, None)
        for server in found:
            r = serving.launch(server, work)
            try:
                serving.check(r, rows, serving.expected_predictions(skops_path, rows), work, True)
                body = json.dumps(server.single(rows[0])).encode()
                loader = subprocess.Popen(
                    [
                        *(["taskset", "-c", serving.CLIENT_CPU] if serving.CLIENT_CPU else []),
                        "wrk",
                        "-t1",
                        "-c8",
                        f"-d{seconds + 2}s",
                        "-s",
                        str(_lua(work, body)),
                        r.url,
                    ],
                    stdout=subprocess.DEVNULL,
                )
                time.sleep(1)
                raw = RESULTS / f"profile-serving-{server.name}.txt"
                RESULTS.mkdir(parents=True, exist_ok=True)
                record(r.proc.pid, seconds, raw)
                loader.wait()
                out[server.name] = summarize(raw)
            finally:
                serving.stop(r.proc)
    finally:
        work.close()
    return out


def _lua(work: Workdir, body: bytes) -> Path:
    from bench.loadgen import LUA

    body_file = work.path / "profile-body.json"
    body_file.write_bytes(body)
    script = work.path / "profile.lua"
    script.write_text(LUA.format(body=body_file))
    return script


def profile_cli() -> dict[str, object]:
    work = Workdir()
    try:
        repo = work.path / "reg"
        synth.make_mreg_registry(repo, 200, 5, work.env)
        argv = [MREG, "--repo", str(repo), "resolve", f"{synth.model_name(7)}:prod"]
        run(argv, env=work.env)  # warm the parse cache
        imports = run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                "import sys; from tool.cli import main; sys.argv = sys.argv[1:]; main()",
                *argv,
            ],
            env=work.env,
            check=False,
        ).stderr
        rows = []
        for line in imports.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = (x.strip() for x in line[len("import time:") :].split("|"))
                if cumulative.isdigit():
                    rows.append((name, int(cumulative) / 1000))
        total = run(argv, env=work.env).seconds
        raw = RESULTS / "profile-cli-resolve.txt"
        RESULTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                PY_SPY,
                "record",
                "--rate",
                "1000",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--",
                *argv,
            ],
            check=True,
            capture_output=True,
            env=work.env,
        )
        top_level = sorted((r for r in rows if not r[0].startswith(" ")), key=lambda r: -r[1])
        return {
            "wall_s": round(total, 3),
            "imports_ms": [(n, round(ms, 1)) for n, ms in sorted(rows, key=lambda r: -r[1])[:30]],
            "top_level_imports_ms": [(n, round(ms, 1)) for n, ms in top_level[:10]],
            "py_spy": summarize(raw),
        }
    finally:
        work.close()


def profile_scale(models: int) -> dict[str, object]:
    """Where `model list`, `resolve` and a warm server start spend their time on a large registry."""
    work = Workdir()
    out: dict[str, object] = {}
    try:
        repo = work.path / "reg"
        log(f"profile: building {models} x 10")
        synth.make_mreg_registry(repo, models, 10, work.env)
        m = [MREG, "--repo", str(repo)]
        commands = {
            "model list": [*m, "model", "list"],
            "model list --rev HEAD": [*m, "model", "list", "--rev", "HEAD"],
            "resolve": [*m, "resolve", f"{synth.model_name(7)}:prod"],
            "serve (start + first /v1/models)": [*m, "serve", "--get", "/v1/models"],
            "point (commit)": [*m, "point", f"{synth.model_name(7)}:prod", "v3"],
        }
        # The warm-up of a write must not be the same write (it would be a no-op the second time).
        warmups = {"point (commit)": [*m, "point", f"{synth.model_name(7)}:prod", "v2"]}
        RESULTS.mkdir(parents=True, exist_ok=True)
        for label, argv in commands.items():
            run(warmups.get(label, argv), env=work.env)  # warm: the parse cache is filled
            raw = RESULTS / f"profile-scale-{label.split()[0]}-{len(out)}.txt"
            wall = time.perf_counter()
            subprocess.run(
                [
                    PY_SPY,
                    "record",
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--subprocesses",
                    "--",
                    *argv,
                ],
                check=True,
                capture_output=True,
                env=work.env,
            )
            summary = summarize(raw)
            summary["wall"] = [("seconds (under py-spy)", round(time.perf_counter() - wall, 2))]
            out[label] = summary
    finally:
        work.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["serving", "cli", "scale"])
    parser.add_argument("--models", type=int, default=10_000, help="scale: registry size")
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args(argv)
    log(f"profiling {args.what} with {PY_SPY}")
    if args.what == "serving":
        result: dict[str, Any] = profile_serving(args.seconds)
    elif args.what == "scale":
        result = profile_scale(args.models)
    else:
        result = profile_cli()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"profile-{args.what}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))


def render(result: dict[str, Any]) -> str:
    """The profile as short text blocks (the JSON file has everything)."""
    out: list[str] = []
    for name, value in result.items():
        if isinstance(value, dict) and "self" in value:
            if "wall" in value:
                out.append(f"== {name}: {value['wall'][0][1]} s under py-spy")
            for kind in ("packages", "inclusive", "self"):
                out.append(f"== {name}: py-spy, % of samples ({kind})")
                out += [f"{pct:6.1f}%  {frame}" for frame, pct in value[kind][:15]]
        elif isinstance(value, dict):
            out.append(render(value))
        elif isinstance(value, list):
            out.append(f"== {name}")
            out += [f"{v:8.1f}  {k}" for k, v in value[:15]]
        else:
            out.append(f"== {name}: {value}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
