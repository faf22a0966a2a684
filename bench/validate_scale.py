"""How long `mreg validate` takes on a one-change pull request, on registries of 10 and 10,000 models.

The registries are synthetic (bench/synth.py: one `git fast-import` commit),
the pull request is a branch `pr` that registers one new version and moves
one pointer, and each command runs as CI runs it: a fresh `mreg` process.

- `validate --base main`: the CI check, on the checked-out pull request
  (work tree), only what the change touched.
- `validate --rev pr --base main`: the same from git objects alone.
- `diff main --format markdown`: the pull request comment.
- `validate` (whole registry): what the incremental check avoids.

Cold is the first run (empty parse cache), warm the median of the next ones.

    python -m bench.validate_scale [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import (
    MREG,
    Workdir,
    log,
    machine,
    ms,
    ratio,
    run_measured,
    save,
    table,
    timing,
)
from bench.common import run as run_process
from bench.synth import dvc_yaml, make_mreg_registry, model_name, version_yaml

SIZES = (10, 10_000)


def _make_pr(repo: Path, env: dict[str, str], models: int, versions: int) -> str:
    """Branch `pr`: one model gets version versions+1 and its prod pointer moves to it."""
    name = model_name(models // 2)
    n = versions + 1
    run_process(["git", "checkout", "-q", "-b", "pr"], cwd=repo, env=env)
    (repo / f"models/{name}/versions/{n}.yaml").write_text(version_yaml(name, n))
    dvc = repo / f"models/{name}/artifacts/v{n}/model.skops.dvc"
    dvc.parent.mkdir(parents=True, exist_ok=True)
    dvc.write_text(dvc_yaml(name, n))
    (repo / f"pointers/{name}/prod.yaml").write_text(f"target: v{n}\ndescription: prod traffic\n")
    run_process(["git", "add", "-A", "models", "pointers"], cwd=repo, env=env)
    run_process(
        ["git", "commit", "-q", "-m", f"{name}: register v{n}, move prod"], cwd=repo, env=env
    )
    return name


def _measure(argv: list[str], repo: Path, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Cold first run (no parse cache), then the median of `repeats` warm runs."""
    cache = repo / ".git" / "mreg" / "cache.sqlite"
    for stale in (cache, cache.with_suffix(".sqlite-wal"), cache.with_suffix(".sqlite-shm")):
        stale.unlink(missing_ok=True)
    cold = run_measured(argv, cwd=repo, env=env)
    warm = [run_measured(argv, cwd=repo, env=env) for _ in range(repeats)]
    t = timing([r.seconds for r in warm], max(r.max_rss_mb for r in [cold, *warm]))
    return {
        "cold_s": round(cold.seconds, 5),
        **t.to_dict(),
        "stdout_tail": (warm[-1].stdout if warm else cold.stdout).strip().splitlines()[-1:],
    }


COMMANDS = {
    "validate --base main (work tree)": ["validate", "--base", "main"],
    "validate --rev pr --base main": ["validate", "--rev", "pr", "--base", "main"],
    "diff main --format markdown": ["diff", "main", "--format", "markdown"],
    "validate (whole registry)": ["validate"],
}


def run(quick: bool, sizes: tuple[int, int] = SIZES) -> dict[str, Any]:
    """Build each registry, time every command on it; returns (and saves) the results.

    `sizes` (small, large) is for smoke tests; the benchmark is 10 vs 10,000 models.
    """
    versions = 3 if quick else 10
    repeats = 3 if quick else 5
    work = Workdir()
    results: dict[str, Any] = {
        "benchmark": "validate_scale",
        "mode": "quick" if quick else "full",
        "versions_per_model": versions,
        "machine": machine(),
        "sizes": {},
    }
    try:
        for models in sizes:
            repo = work.sub(f"reg-{models}")
            log(f"validate_scale: building {models} models x {versions} versions")
            make_mreg_registry(repo, models, versions, work.env)
            changed = _make_pr(repo, work.env, models, versions)
            per: dict[str, Any] = {"changed_model": changed}
            for label, args in COMMANDS.items():
                # The whole-registry scan is the slow reference: fewer repeats at scale.
                n = 1 if args == ["validate"] and models > 1000 else repeats
                log(f"validate_scale: {models} models: {label}")
                per[label] = _measure([MREG, *args], repo, work.env, n)
            results["sizes"][str(models)] = per
    finally:
        work.close()
    small, large = (results["sizes"][str(s)] for s in sizes)
    rows = [
        [
            label,
            ms(small[label]["cold_s"]),
            ms(small[label]["median_s"]),
            ms(large[label]["cold_s"]),
            ms(large[label]["median_s"]),
            ratio(large[label]["median_s"], small[label]["median_s"]),
        ]
        for label in COMMANDS
    ]
    headers = [
        "command (1-change PR)",
        f"{sizes[0]:,} cold",
        f"{sizes[0]:,} warm",
        f"{sizes[1]:,} cold",
        f"{sizes[1]:,} warm",
        "warm ratio",
    ]
    title = (
        f"mreg validate on a one-change pull request: {sizes[0]:,} vs {sizes[1]:,} models"
        f" x {versions} versions ({results['mode']})"
    )
    text = table(title, headers, rows)
    results["table"] = text
    results["json_path"] = str(save("validate_scale", results, [text]))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 versions a model, 3 repeats")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.quick)
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        print()
    else:
        print(results["table"])
        print(f"results: {results['json_path']}")


if __name__ == "__main__":
    main()
