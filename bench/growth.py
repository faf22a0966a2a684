"""Cost growth: the same mreg operations at 100, 1,000 and 10,000 models (10 versions each).

Reads with a warm cache should stay flat, `validate --base` should depend on
the change and not on the registry, and the whole-registry validate is
expected to grow with it. Shares its measurements with bench/scale.py.
"""

from __future__ import annotations

from typing import Any

from bench.common import Mode, Workdir, ms, ratio, save, table
from bench.scale import measure_mreg

VERSIONS = 10

ROWS = (
    ("mreg --version (start-up floor)", "mreg --version", "median_s"),
    ("model list, warm", "model list", "median_s"),
    ("model list, cold", "model list", "cold_s"),
    ("model list --rev HEAD, warm", "model list --rev HEAD", "median_s"),
    ("resolve NAME:prod, warm", "resolve", "median_s"),
    ("resolve NAME:prod, cold", "resolve", "cold_s"),
    ("resolve --rev HEAD, warm", "resolve --rev HEAD", "median_s"),
    ("validate (whole), warm", "validate", "median_s"),
    ("validate --base HEAD~1, warm", "validate --base HEAD~1", "median_s"),
    ("serve: /readyz, cold", "serve cold", "ready_s"),
    ("serve: /readyz, warm", "serve warm", "ready_s"),
    ("serve: first /v1/models, warm", "serve warm", "first_models_s"),
    ("register (artifact, commit)", "register", "median_s"),
    ("point (commit)", "point", "median_s"),
)
IN_PROCESS = (
    ("library: list (HEAD), warm", "in process", "list (HEAD)"),
    ("library: list (work tree), warm", "in process", "list (work tree)"),
    ("library: resolve (HEAD), warm", "in process", "resolve (HEAD)"),
    ("library: register", "in process writes", "register"),
    ("library: point", "in process writes", "point"),
)


def render(sizes: dict[int, dict[str, Any]]) -> list[str]:
    ns = sorted(sizes)
    rows = []
    for label, key, field in ROWS:
        values = [sizes[n][key][field] for n in ns]
        rows.append([label, *(ms(v) for v in values), ratio(values[-1], values[0])])
    for label, group, key in IN_PROCESS:
        values = [sizes[n][group][key]["median_s"] for n in ns]
        rows.append([label, *(ms(v) for v in values), ratio(values[-1], values[0])])
    rows.append(
        [
            "peak RSS: model list",
            *(f"{sizes[n]['model list']['max_rss_mb']:.0f} MB" for n in ns),
            "-",
        ]
    )
    rows.append(
        ["peak RSS: validate", *(f"{sizes[n]['validate']['max_rss_mb']:.0f} MB" for n in ns), "-"]
    )
    rows.append(
        [
            "peak RSS: server (warm)",
            *(f"{sizes[n]['serve warm']['max_rss_mb']:.0f} MB" for n in ns),
            "-",
        ]
    )
    headers = ["operation", *(f"{n:,} models" for n in ns), f"{ns[-1]:,} / {ns[0]:,}"]
    return [
        table(
            f"Cost growth: mreg at {', '.join(f'{n:,}' for n in ns)} models x {VERSIONS} versions",
            headers,
            rows,
        )
    ]


def main(mode: Mode, work: Workdir) -> dict[str, Any]:
    versions = 2 if mode.tiny else VERSIONS
    sizes = {n: measure_mreg(n, versions, mode, work) for n in mode.growth_models}
    tables = render(sizes)
    for t in tables:
        print(t)
    save("growth", {"versions": versions, "sizes": {str(n): r for n, r in sizes.items()}}, tables)
    return {"sizes": sizes}
