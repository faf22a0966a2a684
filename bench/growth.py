"""Cost growth (issue 24): the same reads at 100, 1,000, 10,000 and 100,000 versions (10 a model).

A read should cost what it touches, so its time at the largest size is
compared with its time at the smallest one, against the targets of issue 24:
library resolve at HEAD (warm) <= 2x, CLI resolve <= 1.3x, `model list
--limit 10` <= 1.5x, `validate --base` on one change <= 1.5x, the peak RSS
of a paged list <= 100 MB at every size, and `mreg serve` to `/readyz` warm
<= 1.5x and cold <= 10 s at the largest size. MLflow's registry (sqlite) is built
at the same shape and read with `search_registered_models` and
`get_model_version_by_alias`; GTO where it finishes.

Registries take minutes to build at 100,000 versions: with
MREG_BENCH_REGISTRIES=DIR they are built once into DIR and reused (a stamp
names what was built; each run resets them to the built commit).

    MREG_BENCH_REGISTRIES=~/.cache/mreg-growth python -m bench --full --only growth
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import synth
from bench.common import GTO, ROOT, Mode, Workdir, log, ms, ratio, report, run, run_measured
from bench.common import table as md_table
from bench.scale import _free_port, _get, drop_cache, probe
from bench.serving import stop

VERSIONS = 10
ENTRY = "import sys; from tool.cli import main; sys.argv[0] = 'mreg'; main()"
GTO_TIMEOUT = 300.0  # seconds a GTO command may take before it counts as not finishing

# `mreg serve` to /readyz, warm, largest / smallest; cold at the largest size, seconds.
SERVE_WARM_LIMIT, SERVE_COLD_LIMIT = 1.5, 10.0

# (label, result key, largest / smallest limit)
TARGETS = (
    ("library resolve at HEAD, warm", "library resolve (HEAD)", 2.0),
    ("CLI resolve, warm", "resolve", 1.3),
    ("`model list --limit 10`, warm", "model list --limit 10", 1.5),
    ("`validate --base HEAD~1` (one change), warm", "validate --base HEAD~1", 1.5),
)
OTHER = (
    (
        "library resolve at HEAD (`snapshot('HEAD').resolve`), warm",
        "library snapshot resolve (HEAD)",
    ),
    ("library page of 10 at HEAD, warm", "library page (HEAD)"),
    ("CLI resolve --rev HEAD, warm", "resolve --rev HEAD"),
    ("`model list --limit 10 --rev HEAD`, warm", "model list --limit 10 --rev HEAD"),
    ("`validate --base HEAD~1 --rev HEAD`, warm", "validate --base HEAD~1 --rev HEAD"),
    ("`validate --base HEAD~1`, cold ids index", "validate --base HEAD~1 (cold index)"),
    ("`model list` (every model), warm", "model list"),
    ("`model list` (every model), cold: parses all", "model list (cold)"),
    ("CLI resolve, cold", "resolve (cold)"),
)


def mreg(*args: str) -> tuple[list[str], dict[str, str]]:
    """A fresh `mreg` process of this checkout (PYTHONPATH picks it, not an installed one)."""
    return [sys.executable, "-c", ENTRY, *args], {"PYTHONPATH": str(ROOT)}


def registries(work: Workdir) -> Path:
    where = os.environ.get("MREG_BENCH_REGISTRIES")
    path = Path(where).expanduser() if where else work.path / "registries"
    path.mkdir(parents=True, exist_ok=True)
    return path


def built_mreg(where: Path, models: int, env: dict[str, str]) -> tuple[Path, str]:
    """The registry of `models` x VERSIONS, built once, reset to its built commit."""
    repo = where / f"mreg-{models}x{VERSIONS}"
    stamp = repo / ".git" / "bench-base"
    if not stamp.is_file():
        log(f"growth: building an mreg registry of {models} x {VERSIONS}")
        run(["rm", "-rf", str(repo)])
        synth.make_mreg_registry(repo, models, VERSIONS, env)
        stamp.write_text(run(["git", "rev-parse", "HEAD"], cwd=repo, env=env).stdout.strip())
    base = stamp.read_text().strip()
    run(["git", "reset", "-q", "--hard", base], cwd=repo, env=env)
    return repo, base


def timed_cli(
    args: list[str], repeats: int, env: dict[str, str], cold: bool, repo: Path
) -> dict[str, Any]:
    """The median of `repeats` warm runs (after one run that warms), peak RSS; cold: one run
    without a parse cache."""
    argv, extra = mreg(*args)
    full = {**env, **extra}
    if cold:
        drop_cache(repo)
        r = run_measured(argv, env=full)
        return {"median_s": r.seconds, "max_rss_mb": r.max_rss_mb, "n": 1}
    run_measured(argv, env=full)
    samples = [run_measured(argv, env=full) for _ in range(repeats)]
    times = sorted(s.seconds for s in samples)
    return {
        "median_s": times[len(times) // 2],
        "min_s": times[0],
        "max_rss_mb": max(s.max_rss_mb for s in samples),
        "n": len(samples),
    }


def in_process(repo: Path, name: str, repeats: int) -> dict[str, Any]:
    """The library, warm (a new Registry, then a new snapshot per call, as a request makes it)."""
    from registry import Registry

    reg = Registry(repo)
    calls = {
        "library resolve (HEAD)": lambda: reg.resolve(f"{name}:prod", "HEAD"),
        "library snapshot resolve (HEAD)": lambda: reg.snapshot("HEAD").resolve(f"{name}:prod"),
        "library page (HEAD)": lambda: reg.snapshot("HEAD").models_page(limit=10),
    }
    out: dict[str, Any] = {}
    for key, fn in calls.items():
        fn()
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        samples.sort()
        out[key] = {"median_s": samples[len(samples) // 2], "min_s": samples[0], "n": repeats}
    return out


def serve_start(repo: Path, env: dict[str, str], cold: bool) -> dict[str, Any]:
    """Seconds from exec of `mreg serve` (this checkout) to /readyz answering, then to a first
    page of /v1/models and to /v1/registry (its counts); peak RSS. Cold: no parse cache."""
    if cold:
        drop_cache(repo)
    argv, extra = mreg("--repo", str(repo), "serve", "--port", str(port := _free_port()))
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env={**env, **extra},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out: dict[str, Any] = {}
    base = f"http://127.0.0.1:{port}"
    try:
        while not _get(base + "/readyz"):
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-500:] if proc.stderr else ""
                raise RuntimeError(f"mreg serve exited with {proc.returncode}: {err}")
            if time.perf_counter() - start > 300:
                raise RuntimeError("mreg serve not ready after 300 s")
            time.sleep(0.01)
        out["median_s"] = out["ready_s"] = time.perf_counter() - start
        for key, path in (("models_s", "/v1/models?limit=10"), ("registry_s", "/v1/registry")):
            began = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=120) as resp:
                resp.read()
            out[key] = time.perf_counter() - began
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        out["max_rss_mb"] = int(hwm.split()[1]) / 1024
    finally:
        stop(proc)
    return out


def measure_serve(repo: Path, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """`mreg serve` cold (one start) and warm (the median of `repeats` starts after it)."""
    cold = serve_start(repo, env, True)
    warm = [serve_start(repo, env, False) for _ in range(repeats)]
    warm.sort(key=lambda r: r["ready_s"])
    mid = warm[len(warm) // 2]
    return {"serve cold": cold, "serve warm": {**mid, "min_s": warm[0]["ready_s"]}}


def measure_mreg(models: int, mode: Mode, work: Workdir) -> dict[str, Any]:
    env = work.env
    repo, base = built_mreg(registries(work), models, env)
    name = probe(models)
    reps = mode.repeats
    r = ["--repo", str(repo)]
    res: dict[str, Any] = {"models": models, "versions": models * VERSIONS}
    log(f"growth {models} x {VERSIONS}: cold reads")
    res["model list (cold)"] = timed_cli([*r, "model", "list"], 1, env, True, repo)
    res["resolve (cold)"] = timed_cli([*r, "resolve", f"{name}:prod"], 1, env, True, repo)
    log(f"growth {models} x {VERSIONS}: warm reads")
    run_measured(mreg(*r, "model", "list")[0], env={**env, **mreg()[1]})  # fill the cache
    for key, args in {
        "resolve": ["resolve", f"{name}:prod"],
        "resolve --rev HEAD": ["resolve", f"{name}:prod", "--rev", "HEAD"],
        "model list --limit 10": ["model", "list", "--limit", "10"],
        "model list --limit 10 --rev HEAD": ["model", "list", "--limit", "10", "--rev", "HEAD"],
        "model list": ["model", "list"],
    }.items():
        res[key] = timed_cli([*r, *args], reps if key != "model list" else 3, env, False, repo)
    res.update(in_process(repo, name, max(reps, 9)))
    log(f"growth {models} x {VERSIONS}: serve to /readyz")
    res.update(measure_serve(repo, env, min(reps, 5)))
    log(f"growth {models} x {VERSIONS}: validate --base on one change")
    try:
        synth.change_one_version(repo, env, name, 2)
        with_base = [*r, "validate", "--base", "HEAD~1"]
        res["validate --base HEAD~1 (cold index)"] = timed_cli(with_base, 1, env, True, repo)
        res["validate --base HEAD~1"] = timed_cli(with_base, reps, env, False, repo)
        res["validate --base HEAD~1 --rev HEAD"] = timed_cli(
            [*with_base, "--rev", "HEAD"], reps, env, False, repo
        )
    finally:
        run(["git", "reset", "-q", "--hard", base], cwd=repo, env=env)
    return res


def measure_mlflow(models: int, mode: Mode, work: Workdir) -> dict[str, Any]:
    """MLflow's registry (sqlite) at the same shape, built once, read warm in one process."""
    db = registries(work) / f"mlflow-{models}x{VERSIONS}.db"
    script = str(Path(__file__).with_name("mlflow_ops.py"))
    env = {k: v for k, v in work.env.items() if k != "PYTHONPATH"}
    if not db.with_suffix(".ready").is_file():
        log(f"growth: building an MLflow registry of {models} x {VERSIONS}")
        db.unlink(missing_ok=True)
        shape = ["--models", str(models), "--versions", str(VERSIONS)]
        run([sys.executable, script, "bulk", "--db", str(db), *shape], cwd=db.parent, env=env)
        db.with_suffix(".ready").write_text("ok")
    out = run(
        [sys.executable, script, "reads", "--db", str(db), "--repeats", str(mode.repeats)],
        cwd=db.parent,
        env=env,
    )
    return dict(json.loads(out.stdout))


def measure_gto(models: int, work: Workdir) -> dict[str, Any]:
    """`gto show` and `gto show NAME#prod --ref`, one run each; None where it did not finish."""
    env = work.env
    repo = registries(work) / f"gto-{models}x{VERSIONS}"
    if not (repo / ".git" / "bench-built").is_file():
        log(f"growth: building a GTO registry of {models} x {VERSIONS}")
        run(["rm", "-rf", str(repo)])
        synth.make_gto_registry(repo, models, VERSIONS, env)
        (repo / ".git" / "bench-built").write_text("ok")
    out: dict[str, Any] = {}
    for key, argv in {
        "gto show": [GTO, "show"],
        "gto show NAME#prod --ref": [GTO, "show", f"{probe(models)}#prod", "--ref"],
    }.items():
        start = time.perf_counter()
        try:
            subprocess.run(argv, cwd=repo, env=env, capture_output=True, timeout=GTO_TIMEOUT)
            out[key] = time.perf_counter() - start
        except subprocess.TimeoutExpired:
            out[key] = None
    return out


def render(sizes: dict[int, dict[str, Any]]) -> list[str]:
    ns = sorted(sizes)
    heads = [f"{sizes[n]['mreg']['versions']:,} versions" for n in ns]
    rows = []
    for label, key, limit in TARGETS:
        values = [sizes[n]["mreg"][key]["median_s"] for n in ns]
        grown = values[-1] / values[0]
        verdict = f"<= {limit}x: {'met' if grown <= limit else 'MISSED'}"
        rows.append([label, *(ms(v) for v in values), ratio(values[-1], values[0]), verdict])
    warm = [sizes[n]["mreg"]["serve warm"]["ready_s"] for n in ns]
    cold = [sizes[n]["mreg"]["serve cold"]["ready_s"] for n in ns]
    grown = warm[-1] / warm[0]
    verdict = f"<= {SERVE_WARM_LIMIT}x: {'met' if grown <= SERVE_WARM_LIMIT else 'MISSED'}"
    rows.append(
        ["`serve` to `/readyz`, warm", *(ms(v) for v in warm), ratio(warm[-1], warm[0]), verdict]
    )
    verdict = f"<= {SERVE_COLD_LIMIT:.0f} s: {'met' if cold[-1] <= SERVE_COLD_LIMIT else 'MISSED'}"
    rows.append(
        ["`serve` to `/readyz`, cold", *(ms(v) for v in cold), ratio(cold[-1], cold[0]), verdict]
    )
    rss = [sizes[n]["mreg"]["model list --limit 10"]["max_rss_mb"] for n in ns]
    rows.append(
        [
            "peak RSS of `model list --limit 10`",
            *(f"{v:.0f} MB" for v in rss),
            "-",
            f"<= 100 MB: {'met' if max(rss) <= 100 else 'MISSED'}",
        ]
    )
    for label, key in OTHER:
        values = [sizes[n]["mreg"][key]["median_s"] for n in ns]
        rows.append([label, *(ms(v) for v in values), ratio(values[-1], values[0]), "-"])
    for label, which, key in (
        ("`serve`, cold: then the first `/v1/models?limit=10`", "serve cold", "models_s"),
        ("`serve`, cold: then `/v1/registry` (counts)", "serve cold", "registry_s"),
        ("`serve`, warm: then the first `/v1/models?limit=10`", "serve warm", "models_s"),
        ("`serve`, warm: then `/v1/registry` (counts)", "serve warm", "registry_s"),
    ):
        values = [sizes[n]["mreg"][which][key] for n in ns]
        rows.append([label, *(ms(v) for v in values), ratio(values[-1], values[0]), "-"])
    for which in ("serve cold", "serve warm"):
        rss = [sizes[n]["mreg"][which]["max_rss_mb"] for n in ns]
        rows.append(
            [f"peak RSS of `{which}` (after both)", *(f"{v:.0f} MB" for v in rss), "-", "-"]
        )
    rss = [sizes[n]["mreg"]["model list"]["max_rss_mb"] for n in ns]
    rows.append(["peak RSS of `model list` (every model)", *(f"{v:.0f} MB" for v in rss), "-", "-"])
    headers = ["operation", *heads, "largest / smallest", "target"]
    title = f"Cost growth: mreg at {', '.join(heads)} ({VERSIONS} a model, 2 pointers each)"
    tables = [md_table(title, headers, rows)]
    peers = []
    for label, who, key in (
        (
            "MLflow `search_registered_models(max_results=10)`",
            "mlflow",
            "search_registered_models (first page of 10)",
        ),
        (
            "MLflow `search_registered_models` (every page of 100)",
            "mlflow",
            "search_registered_models",
        ),
        ("MLflow `get_model_version_by_alias`", "mlflow", "get_model_version_by_alias"),
        ("GTO `gto show` (fresh process)", "gto", "gto show"),
        ("GTO `gto show NAME#prod --ref` (fresh process)", "gto", "gto show NAME#prod --ref"),
    ):
        values = []
        for n in ns:
            got = sizes[n].get(who)
            value = None if got is None else got.get(key)
            values.append(value["median_s"] if isinstance(value, dict) else value)
        cells = [
            ms(v) if v is not None else ("did not finish" if sizes[n].get(who) else "not run")
            for n, v in zip(ns, values, strict=True)
        ]
        known = [v for v in values if v is not None]
        rows_ratio = ratio(values[-1], values[0]) if values[-1] and values[0] else "-"
        peers.append([label, *cells, rows_ratio if known else "-"])
    tables.append(
        md_table(
            "The same shapes in MLflow (sqlite, warm, one process) and GTO",
            ["operation", *heads, "largest / smallest"],
            peers,
        )
    )
    return tables


def main(mode: Mode, work: Workdir) -> dict[str, Any]:
    sizes: dict[int, dict[str, Any]] = {}
    for models in mode.growth_models:
        entry: dict[str, Any] = {"mreg": measure_mreg(models, mode, work)}
        if mode.peers:
            entry["mlflow"] = measure_mlflow(models, mode, work)
        if mode.gto and models * VERSIONS <= 10_000:
            entry["gto"] = measure_gto(models, work)
        sizes[models] = entry
        log(f"growth {models} x {VERSIONS}: done")
    tables = render(sizes)
    report("growth", {"versions": VERSIONS, "sizes": {str(n): r for n, r in sizes.items()}}, tables)
    return {"sizes": sizes}
