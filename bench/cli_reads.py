"""CLI reads against GTO at 200 models x 5 versions, interleaved in one run.

`python -m bench.cli_reads [--rounds N] [--baseline DIR]` (also `python -m
bench --only cli`). Every command is a fresh process, as a user meets it. Each
round runs every command once, in turn: mreg (this checkout), optionally a
baseline checkout of mreg (`--baseline DIR`, a directory holding its
`registry/` and `tool/`, e.g. made with `git worktree add DIR <commit>`), GTO,
and the floors (a bare Python, `git for-each-ref`), so that the noise of a
shared machine falls on all of them alike. Tables report medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import synth
from bench.common import GTO, ROOT, Mode, Workdir, log, ms, ratio, report, run, table
from bench.scale import drop_cache, probe

MODELS, VERSIONS = 200, 5
# `python -c` rather than the console script, so that PYTHONPATH picks the checkout.
ENTRY = "import sys; from tool.cli import main; sys.argv[0] = 'mreg'; main()"


def _mreg(checkout: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-c", ENTRY, *args], {"PYTHONPATH": str(checkout)}


def measure(rounds: int, work: Workdir, baseline: Path | None = None) -> dict[str, Any]:
    env = work.env
    repo = work.path / f"cli-mreg-{MODELS}x{VERSIONS}"
    gto_repo = work.path / f"cli-gto-{MODELS}x{VERSIONS}"
    log(f"cli reads: building mreg and GTO registries of {MODELS} x {VERSIONS}")
    synth.make_mreg_registry(repo, MODELS, VERSIONS, env)
    synth.make_gto_registry(gto_repo, MODELS, VERSIONS, env)
    name = probe(MODELS)
    reads = {
        "--version": ["--version"],
        "model list --json": ["--repo", str(repo), "model", "list", "--json"],
        "resolve NAME:prod": ["--repo", str(repo), "resolve", f"{name}:prod"],
        "resolve NAME:prod --rev HEAD": [
            "--repo",
            str(repo),
            "resolve",
            f"{name}:prod",
            "--rev",
            "HEAD",
        ],
    }
    checkouts = {"mreg": ROOT, **({"baseline": baseline} if baseline else {})}
    gto = {
        "gto --version": [GTO, "--version"],
        "gto show": [GTO, "show"],
        "gto show NAME#prod --ref": [GTO, "show", f"{name}#prod", "--ref"],
    }
    floors = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "git for-each-ref": ["git", "for-each-ref"],
    }
    samples: dict[str, list[float]] = {}
    outputs: dict[str, str] = {}

    def timed(
        key: str, argv: list[str], extra: dict[str, str] | None = None, cwd: Path = work.path
    ) -> None:
        r = run(argv, cwd=cwd, env={**env, **(extra or {})})
        samples.setdefault(key, []).append(r.seconds)
        outputs[key] = r.stdout

    # Warm every checkout's parse cache once (the cold runs below drop it again).
    for checkout in checkouts.values():
        for args in reads.values():
            argv, extra = _mreg(checkout, *args)
            run(argv, cwd=work.path, env={**env, **extra})
    for i in range(rounds):
        log(f"cli reads: round {i + 1} of {rounds}")
        for who, checkout in checkouts.items():
            for label in ("model list --json", "resolve NAME:prod"):
                drop_cache(repo)
                argv, extra = _mreg(checkout, *reads[label])
                timed(f"{who}: {label} (cold)", argv, extra)
            for args in reads.values():  # warm again
                argv, extra = _mreg(checkout, *args)
                run(argv, cwd=work.path, env={**env, **extra})
            for label, args in reads.items():
                argv, extra = _mreg(checkout, *args)
                timed(f"{who}: {label}", argv, extra)
        for label, argv in floors.items():
            timed(label, argv, cwd=gto_repo)
        # GTO takes seconds a call: three rounds are plenty for a median.
        if i < 3:
            for label, argv in gto.items():
                timed(label, argv, cwd=gto_repo)
    if baseline is not None:
        for label in reads:
            if outputs[f"mreg: {label}"] != outputs[f"baseline: {label}"] and label != "--version":
                raise RuntimeError(
                    f"{label}: this checkout and the baseline print different output"
                )
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "models": MODELS,
        "versions": VERSIONS,
        "rounds": rounds,
        "baseline": str(baseline) if baseline else None,
        "median_s": medians,
        "samples_s": samples,
    }


def render(res: dict[str, Any]) -> list[str]:
    m = res["median_s"]
    has_base = res["baseline"] is not None
    pairs = [
        ("start-up (`--version`)", "--version", "gto --version", None),
        ("list every model", "model list --json", "gto show", 20),
        ("resolve NAME:prod", "resolve NAME:prod", "gto show NAME#prod --ref", 20),
        (
            "resolve NAME:prod at HEAD",
            "resolve NAME:prod --rev HEAD",
            "gto show NAME#prod --ref",
            20,
        ),
        ("list every model, cold", "model list --json (cold)", "gto show", None),
        ("resolve NAME:prod, cold", "resolve NAME:prod (cold)", "gto show NAME#prod --ref", None),
    ]
    rows = []
    for label, key, gkey, target in pairs:
        mine, gv = m[f"mreg: {key}"], m[gkey]
        speedup = gv / mine
        verdict = (
            "-" if target is None else f">= {target}x: {'met' if speedup >= target else 'MISSED'}"
        )
        row = [label, ms(mine)]
        if has_base:
            base = m[f"baseline: {key}"]
            row += [ms(base), ratio(base, mine)]
        row += [f"`{gkey}`", ms(gv), ratio(gv, mine), verdict]
        rows.append(row)
    headers = ["operation", "mreg"]
    if has_base:
        headers += ["baseline", "baseline / mreg"]
    headers += ["GTO command", "GTO", "GTO / mreg", "target"]
    title = (
        f"CLI reads, {res['models']} x {res['versions']}: fresh processes, medians of"
        f" {res['rounds']} interleaved rounds (GTO: {min(3, res['rounds'])})"
    )
    floor = (
        f"Floors in the same run: `python -c pass` {ms(m['python -c pass'])},"
        f" `git for-each-ref` {ms(m['git for-each-ref'])}.\n"
    )
    return [table(title, headers, rows) + "\n" + floor]


def main(mode: Mode, work: Workdir, baseline: Path | None = None) -> dict[str, Any]:
    rounds = {"tiny": 1, "quick": 5}.get(mode.name, 9)
    res = measure(rounds, work, baseline)
    tables = render(res)
    report("cli_reads", res, tables)
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.cli_reads", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--baseline", type=Path, help="another mreg checkout to compare with")
    args = parser.parse_args()
    started = time.perf_counter()
    work = Workdir()
    try:
        res = measure(args.rounds, work, args.baseline)
        tables = render(res)
        report("cli_reads", res, tables)
    finally:
        work.close()
    log(f"done in {time.perf_counter() - started:.0f} s")
