"""Registry scale: mreg on synthetic registries, side by side with GTO and MLflow on the same shape.

mreg is measured as users meet it: each CLI command is a fresh `mreg`
process (Python start-up included), cold (no parse cache in .git/mreg) and
warm (the median of the next runs); plus the library in one process, as a
server or a script uses it. GTO runs on its own annotated-tag layout of the
same shape (bench/synth.py), MLflow on a sqlite registry of the same shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import synth
from bench.common import (
    GTO,
    MREG,
    Mode,
    Workdir,
    log,
    ms,
    ratio,
    report,
    run,
    run_measured,
    time_call,
    time_cmd,
    timing,
)
from bench.common import (
    table as md_table,
)
from bench.peers import gto_version, mlflow_ops_script
from bench.serving import stop


def probe(models: int) -> str:
    """The model every read and write touches."""
    return synth.model_name(min(7, models - 1))


# Measurements of mreg per shape, shared by the scale and growth sections of one run.
_MEASURED: dict[tuple[int, int], dict[str, Any]] = {}


def _cache_files(repo: Path) -> list[Path]:
    base = repo / ".git" / "mreg" / "cache.sqlite"
    return [base, base.with_name("cache.sqlite-wal"), base.with_name("cache.sqlite-shm")]


def drop_cache(repo: Path) -> None:
    for f in _cache_files(repo):
        f.unlink(missing_ok=True)


def cold_warm(argv: list[str], repo: Path, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """The first run without a parse cache, then the median of `repeats` warm runs."""
    drop_cache(repo)
    cold = run_measured(argv, cwd=repo, env=env)
    warm = time_cmd(argv, repeats, cwd=repo, env=env)
    return {
        "cold_s": cold.seconds,
        **warm.to_dict(),
        "max_rss_mb": max(cold.max_rss_mb, warm.max_rss_mb),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            resp.read()
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def server_start(repo: Path, env: dict[str, str]) -> dict[str, Any]:
    """Seconds from exec to /readyz answering, and to the first /v1/models page; peak RSS."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [MREG, "--repo", str(repo), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out: dict[str, Any] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        while not _get(base + "/readyz"):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mreg serve exited with {proc.returncode}: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}"
                )
            if time.perf_counter() - start > 300:
                raise RuntimeError("mreg serve not ready after 300 s")
            time.sleep(0.02)
        out["ready_s"] = time.perf_counter() - start
        if not _get(base + "/v1/models"):
            raise RuntimeError("GET /v1/models failed")
        out["first_models_s"] = time.perf_counter() - start
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        out["max_rss_mb"] = int(hwm.split()[1]) / 1024
    finally:
        stop(proc)
    return out


def in_process(repo: Path, repeats: int, name: str) -> dict[str, Any]:
    """The library in one warm process: a new snapshot per call, as a request or script makes it."""
    from registry import Registry

    reg = Registry(repo)
    reg.snapshot().models()  # warm the in-memory cache once
    reg.snapshot("HEAD").models()
    return {
        "list (work tree)": time_call(lambda: reg.snapshot().models(), repeats).to_dict(),
        "list (HEAD)": time_call(lambda: reg.snapshot("HEAD").models(), repeats).to_dict(),
        "resolve (work tree)": time_call(
            lambda: reg.snapshot().resolve(f"{name}:prod"), repeats
        ).to_dict(),
        "resolve (HEAD)": time_call(
            lambda: reg.snapshot("HEAD").resolve(f"{name}:prod"), repeats
        ).to_dict(),
    }


def in_process_writes(
    repo: Path, artifact: Path, repeats: int, env: dict[str, str], name: str
) -> dict[str, Any]:
    """Registry.register / Registry.point in one process (commit included), like MLflow's client calls."""
    from registry import Registry

    saved = dict(os.environ)
    os.environ.update(
        {k: v for k, v in env.items() if k.startswith(("GIT_", "HOME", "DVC_", "XDG_"))}
    )
    try:
        reg = Registry(repo)
        targets = iter(["v1", "v2"] * repeats)
        return {
            "register": time_call(lambda: reg.register(name, artifact), repeats).to_dict(),
            "point": time_call(lambda: reg.point(f"{name}:prod", next(targets)), repeats).to_dict(),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure_mreg(models: int, versions: int, mode: Mode, work: Workdir) -> dict[str, Any]:
    """Every mreg operation on a models x versions registry (memoised for this run)."""
    key = (models, versions)
    if key in _MEASURED:
        return _MEASURED[key]
    env = work.env
    name = probe(models)
    repo = work.path / f"mreg-{models}x{versions}"
    log(f"scale: building an mreg registry of {models} x {versions} (+2 pointers each)")
    start = time.perf_counter()
    synth.make_mreg_registry(repo, models, versions, env)
    res: dict[str, Any] = {
        "models": models,
        "versions": versions,
        "generate_s": time.perf_counter() - start,
    }
    files = run(["git", "ls-files"], cwd=repo, env=env).stdout.count("\n")
    res["files"] = files
    heavy = models * versions > 20_000
    reps = max(1, mode.repeats - 2) if heavy else mode.repeats
    m = [MREG, "--repo", str(repo)]
    log(f"scale {models}x{versions}: reads")
    # The floor of every CLI command: Python start-up and mreg's imports.
    res["mreg --version"] = time_cmd([MREG, "--version"], reps, env=env).to_dict()
    res["model list"] = cold_warm([*m, "model", "list"], repo, env, reps)
    res["model list --rev HEAD"] = cold_warm(
        [*m, "model", "list", "--rev", "HEAD"], repo, env, reps
    )
    res["resolve"] = cold_warm([*m, "resolve", f"{name}:prod"], repo, env, reps)
    res["resolve --rev HEAD"] = cold_warm(
        [*m, "resolve", f"{name}:prod", "--rev", "HEAD"], repo, env, reps
    )
    res["in process"] = in_process(repo, max(reps, 5), name)
    log(f"scale {models}x{versions}: validate")
    res["validate"] = cold_warm([*m, "validate"], repo, env, 1 if heavy else reps)
    synth.change_one_version(repo, env, name, 2)
    res["validate --base HEAD~1"] = cold_warm([*m, "validate", "--base", "HEAD~1"], repo, env, reps)
    log(f"scale {models}x{versions}: server start")
    drop_cache(repo)
    res["serve cold"] = server_start(repo, env)
    warm = [server_start(repo, env) for _ in range(1 if mode.tiny else 2 if heavy else 3)]
    res["serve warm"] = {
        "ready_s": timing(w["ready_s"] for w in warm).median,
        "first_models_s": timing(w["first_models_s"] for w in warm).median,
        "max_rss_mb": max(w["max_rss_mb"] for w in warm),
    }
    log(f"scale {models}x{versions}: writes")
    artifact = work.path / "artifact.skops"
    if not artifact.exists():
        artifact.write_bytes(os.urandom(4096))
    res["register"] = time_cmd(
        [*m, "register", name, str(artifact)], reps, cwd=repo, env=env
    ).to_dict()
    res["register --untrained"] = time_cmd(
        [*m, "register", name, "--untrained"], reps, cwd=repo, env=env
    ).to_dict()
    targets = ["v1", "v2"]
    samples, rss = [], 0.0
    for i in range(reps):
        r = run_measured([*m, "point", f"{name}:prod", targets[i % 2]], cwd=repo, env=env)
        samples.append(r.seconds)
        rss = max(rss, r.max_rss_mb)
    res["point"] = timing(samples, rss).to_dict()
    res["in process writes"] = in_process_writes(repo, artifact, max(reps, 3), env, name)
    _MEASURED[key] = res
    return res


def measure_gto(models: int, versions: int, mode: Mode, work: Workdir) -> dict[str, Any]:
    env = work.env
    repo = work.path / f"gto-{models}x{versions}"
    log(f"scale: building a GTO registry of {models} x {versions} (annotated tags)")
    start = time.perf_counter()
    synth.make_gto_registry(repo, models, versions, env)
    res: dict[str, Any] = {"generate_s": time.perf_counter() - start, "gto": gto_version()}
    reps = min(mode.repeats, 3)
    g = [GTO]
    log("scale: gto show")
    res["gto --version"] = time_cmd([*g, "--version"], reps, cwd=repo, env=env).to_dict()
    res["gto show"] = time_cmd([*g, "show"], reps, cwd=repo, env=env).to_dict()
    res["gto show NAME#prod --ref"] = time_cmd(
        [*g, "show", f"{probe(models)}#prod", "--ref"], reps, cwd=repo, env=env
    ).to_dict()
    # Each write on a model that has no version at HEAD yet, as a release would.
    names = iter(synth.model_name((20 + i) % models) for i in range(3 * reps))
    older = max(1, versions - 2)
    res["gto register"] = _gto_writes(repo, env, reps, names, "register", older)
    res["gto assign"] = _gto_writes(repo, env, reps, names, "assign", older)
    if mode.name == "full":
        # With an artifacts.yaml (GTO's optional annotations) GTO parses it at every tagged commit.
        annotated = work.path / f"gto-annotated-{models}x{versions}"
        synth.make_gto_registry(annotated, models, versions, env, annotations=True)
        log("scale: gto show with artifacts.yaml (one run)")
        res["gto show (with artifacts.yaml)"] = time_cmd(
            [*g, "show"], 1, cwd=annotated, env=env
        ).to_dict()
    return res


def _gto_writes(
    repo: Path, env: dict[str, str], reps: int, names: Any, action: str, older: int
) -> dict[str, Any]:
    samples, rss = [], 0.0
    for _ in range(reps):
        name = next(names)
        if action == "register":
            argv = [GTO, "register", name]
        else:
            # Move prod back to an older version (prod is at the newest one).
            argv = [GTO, "assign", name, f"{name}@v0.0.{older}", "--stage", "prod"]
        r = run_measured(argv, cwd=repo, env=env)
        samples.append(r.seconds)
        rss = max(rss, r.max_rss_mb)
    return timing(samples, rss).to_dict()


def measure_mlflow(
    python: Path, models: int, versions: int, mode: Mode, work: Workdir
) -> dict[str, Any]:
    db = work.path / f"mlflow-{models}x{versions}.db"
    env = {k: v for k, v in work.env.items() if k != "PYTHONPATH"}
    script = str(mlflow_ops_script())
    log(f"scale: building an MLflow sqlite registry of {models} x {versions} (client API)")
    base = [str(python), script]
    setup = json.loads(
        run(
            [*base, "setup", "--db", str(db), "--models", str(models), "--versions", str(versions)],
            cwd=work.path,
            env=env,
        ).stdout
    )
    res: dict[str, Any] = {"setup_s": setup["setup_s"]}
    reps = min(mode.repeats, 3)
    for op in ("list", "resolve"):
        t = time_cmd([*base, "once", "--db", str(db), "--op", op], reps, cwd=work.path, env=env)
        res[f"process: {op}"] = t.to_dict()
    timed = run(
        [*base, "time", "--db", str(db), "--repeats", str(mode.repeats)], cwd=work.path, env=env
    )
    res["in process"] = json.loads(timed.stdout)
    return res


def _t(d: dict[str, Any] | None, key: str = "median_s") -> float | None:
    return None if d is None else d.get(key)


# Targets at 10,000 x 10 (issue 7): warm, in seconds.
LARGE_TARGETS = {
    "list every model": 1.0,
    "list every model (at HEAD)": 1.0,
    "resolve NAME:prod": 1.0,
    "resolve NAME:prod (at HEAD)": 1.0,
    "serve: /readyz": 2.0,
}


def _mreg_only_table(shape: str, mreg: dict[str, Any], rows: list[list[str]]) -> str:
    """mreg alone (no peer on this shape), with the large-registry targets."""
    large = mreg["models"] >= 10_000
    out = []
    for label, cold, warm, *_ in rows:
        limit = LARGE_TARGETS.get(label) if large else None
        verdict = "-"
        if limit is not None:
            key = {
                "list every model": "model list",
                "list every model (at HEAD)": "model list --rev HEAD",
                "resolve NAME:prod": "resolve",
                "resolve NAME:prod (at HEAD)": "resolve --rev HEAD",
            }.get(label)
            value = mreg[key]["median_s"] if key else mreg["serve warm"]["ready_s"]
            verdict = f"< {limit:.0f} s warm: {'met' if value < limit else 'MISSED'}"
        out.append([label, cold, warm, verdict])
    return md_table(
        f"Registry {shape} (+2 pointers each, {mreg['files']:,} files): mreg CLI (fresh process each)",
        ["operation", "mreg cold", "mreg warm", "target"],
        out,
    )


def render(results: dict[str, Any]) -> list[str]:
    tables = []
    for shape, r in results["shapes"].items():
        mreg = r["mreg"]
        gto = r.get("gto")
        rows = []
        pairs = [
            ("list every model", "model list", "gto show", 20),
            ("list every model (at HEAD)", "model list --rev HEAD", "gto show", 20),
            ("resolve NAME:prod", "resolve", "gto show NAME#prod --ref", 20),
            ("resolve NAME:prod (at HEAD)", "resolve --rev HEAD", "gto show NAME#prod --ref", 20),
            ("register (artifact, commit)", "register", "gto register", 10),
            ("register --untrained (commit)", "register --untrained", "gto register", 10),
            ("point / assign (commit)", "point", "gto assign", 10),
        ]
        for label, mk, gk, target in pairs:
            mv = _t(mreg.get(mk))
            gv = _t(gto.get(gk)) if gto else None
            cold = mreg.get(mk, {}).get("cold_s")
            speedup = gv / mv if gv and mv else None
            verdict = "-" if speedup is None else ("met" if speedup >= target else "MISSED")
            rows.append(
                [
                    label,
                    ms(cold),
                    ms(mv),
                    f"`{gk}`" if gto else "-",
                    ms(gv),
                    ratio(gv, mv),
                    f">= {target}x: {verdict}",
                ]
            )
        start = mreg["mreg --version"]
        rows.append(
            [
                "CLI start-up floor (`mreg --version`)",
                "-",
                ms(start["median_s"]),
                "`gto --version`" if gto else "-",
                ms(_t(gto.get("gto --version"))) if gto else "-",
                "-",
                "-",
            ]
        )
        for label, mk in (
            ("validate (whole registry)", "validate"),
            ("validate --base HEAD~1 (one change)", "validate --base HEAD~1"),
        ):
            rows.append(
                [label, ms(mreg[mk]["cold_s"]), ms(mreg[mk]["median_s"]), "-", "-", "-", "-"]
            )
        sc, sw = mreg["serve cold"], mreg["serve warm"]
        rows.append(["serve: /readyz", ms(sc["ready_s"]), ms(sw["ready_s"]), "-", "-", "-", "-"])
        rows.append(
            [
                "serve: first /v1/models",
                ms(sc["first_models_s"]),
                ms(sw["first_models_s"]),
                "-",
                "-",
                "-",
                "-",
            ]
        )
        if not gto:
            tables.append(_mreg_only_table(shape, mreg, rows))
        else:
            tables.append(
                md_table(
                    f"Registry {shape} (+2 pointers each, {mreg['files']:,} files): mreg CLI vs GTO CLI (fresh process each)",
                    [
                        "operation",
                        "mreg cold",
                        "mreg warm",
                        "GTO command",
                        "GTO",
                        "GTO / mreg",
                        "target",
                    ],
                    rows,
                )
            )
        mem = [
            [k, f"{mreg[k]['max_rss_mb']:.0f} MB"]
            for k in (
                "model list",
                "resolve",
                "validate",
                "validate --base HEAD~1",
                "register",
                "point",
                "serve cold",
                "serve warm",
            )
        ]
        if gto:
            mem += [
                [k, f"{gto[k]['max_rss_mb']:.0f} MB"]
                for k in ("gto show", "gto show NAME#prod --ref", "gto register", "gto assign")
            ]
        tables.append(
            md_table(
                f"Peak memory (max RSS of the process), {shape}", ["operation", "peak RSS"], mem
            )
        )
        if gto and "gto show (with artifacts.yaml)" in gto:
            note = gto["gto show (with artifacts.yaml)"]["median_s"]
            tables[-2] += (
                f"\nGTO with an artifacts.yaml listing the {shape.split()[0]} models:"
                f" `gto show` took {ms(note)} (one run): GTO parses it again at every tagged commit.\n"
            )
        mlf = r.get("mlflow")
        ip, ipw = mreg["in process"], mreg["in process writes"]
        if mlf:
            mi = mlf["in process"]
            rows = [
                [
                    "list every model",
                    ms(_t(ip["list (work tree)"])),
                    ms(_t(ip["list (HEAD)"])),
                    "search_registered_models (all pages)",
                    ms(_t(mi["search_registered_models"])),
                    ratio(_t(mi["search_registered_models"]), _t(ip["list (HEAD)"])),
                ],
                [
                    "resolve NAME:prod",
                    ms(_t(ip["resolve (work tree)"])),
                    ms(_t(ip["resolve (HEAD)"])),
                    "get_model_version_by_alias",
                    ms(_t(mi["get_model_version_by_alias"])),
                    ratio(_t(mi["get_model_version_by_alias"]), _t(ip["resolve (HEAD)"])),
                ],
                [
                    "register a version",
                    ms(_t(ipw["register"])),
                    "-",
                    "create_model_version",
                    ms(_t(mi["create_model_version"])),
                    ratio(_t(mi["create_model_version"]), _t(ipw["register"])),
                ],
                [
                    "move a pointer / alias",
                    ms(_t(ipw["point"])),
                    "-",
                    "set_registered_model_alias",
                    ms(_t(mi["set_registered_model_alias"])),
                    ratio(_t(mi["set_registered_model_alias"]), _t(ipw["point"])),
                ],
                [
                    "CLI / fresh process: list",
                    ms(_t(mreg["model list"])),
                    ms(_t(mreg["model list --rev HEAD"])),
                    "python: import mlflow + list",
                    ms(_t(mlf["process: list"])),
                    ratio(_t(mlf["process: list"]), _t(mreg["model list --rev HEAD"])),
                ],
                [
                    "CLI / fresh process: resolve",
                    ms(_t(mreg["resolve"])),
                    ms(_t(mreg["resolve --rev HEAD"])),
                    "python: import mlflow + get alias",
                    ms(_t(mlf["process: resolve"])),
                    ratio(_t(mlf["process: resolve"]), _t(mreg["resolve --rev HEAD"])),
                ],
            ]
            tables.append(
                md_table(
                    f"Registry {shape}: mreg library vs MLflow client (sqlite), warm, in one process",
                    [
                        "operation",
                        "mreg (work tree)",
                        "mreg (HEAD)",
                        "MLflow call",
                        "MLflow",
                        "MLflow / mreg (HEAD)",
                    ],
                    rows,
                )
            )
    return tables


def main(mode: Mode, work: Workdir, mlflow_python: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {"shapes": {}}
    for models, versions in mode.scale_shapes:
        shape = f"{models:,} x {versions}"
        entry: dict[str, Any] = {"mreg": measure_mreg(models, versions, mode, work)}
        side_by_side = (models, versions) == mode.scale_shapes[0]
        if mode.gto and side_by_side:
            entry["gto"] = measure_gto(models, versions, mode, work)
        if mode.peers and side_by_side and mlflow_python is not None:
            entry["mlflow"] = measure_mlflow(mlflow_python, models, versions, mode, work)
        results["shapes"][shape] = entry
    tables = render(results)
    report("scale", results, tables)
    return results
