"""`mreg validate` and `mreg diff`: the checks CI runs on a pull request, and its summary."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from registry import (
    Finding,
    MetricChange,
    PointerChange,
    Registry,
    RegistryDiff,
    ValidationReport,
    VersionChange,
    diff_registry,
    validate_registry,
)
from tool.base import cli, json_option, pass_registry

# -- validate ----------------------------------------------------------------


def _escape_data(text: str) -> str:
    """GitHub workflow-command escaping of a message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(finding: Finding) -> str:
    """`::error file=F,line=L,title=mreg CODE::message`, GitHub Actions' annotation syntax."""
    props = [f"file={_escape_property(finding.file)}"]
    if finding.line:
        props.append(f"line={finding.line}")
    props.append(f"title={_escape_property(f'mreg {finding.code}')}")
    return f"::{finding.severity} {','.join(props)}::{_escape_data(finding.message)}"


def _summary(report: ValidationReport) -> str:
    what = f"{report.label}" + (f" against {report.base}" if report.base else "")
    counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    scope = f"{report.models_checked} model(s), {report.pointers_checked} pointer(s) checked"
    verdict = "ok" if report.ok else "failed"
    return f"mreg validate {what}: {verdict}: {counts} ({scope})"


@cli.command("validate")
@click.option("--rev", default=None, help="Validate this revision instead of the work tree.")
@click.option(
    "--base",
    default=None,
    help="Check only the change from this revision (e.g. origin/main), and the change itself.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text for people, json for programs (also --json), github for workflow annotations.",
)
@click.option(
    "--check-artifacts",
    is_flag=True,
    help="Also check that every trained artifact is in the DVC cache or the default remote.",
)
@json_option
@pass_registry
def validate_cmd(
    registry: Registry,
    rev: str | None,
    base: str | None,
    output: str,
    check_artifacts: bool,
    as_json: bool,
) -> None:
    """Check manifests, names, versions, pointers and .dvc files; exit 1 on any error.

    Without --base the whole registry is checked. With --base, only the models
    and pointers the change touched are read, and the change is also checked
    against the base: immutable fields, deleted or reused versions, status
    moves, protected pointers. Warnings never fail.

    \b
    Examples:
        mreg validate
        mreg validate --base origin/main --format github
        mreg validate --rev v1.2 --format json
    """
    report = validate_registry(registry, rev, base=base, check_artifacts=check_artifacts)
    if output == "json" or as_json:
        click.echo(json.dumps([f.to_dict() for f in report.findings], indent=2))
    elif output == "github":
        for finding in report.findings:
            click.echo(github_annotation(finding))
        click.echo(_summary(report))
    else:
        for finding in report.findings:
            click.echo(str(finding))
        click.echo(_summary(report))
    sys.exit(0 if report.ok else 1)


# -- diff --------------------------------------------------------------------


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric(m: MetricChange) -> str:
    if m.old is None:
        return f"{m.name} {_value(m.new)}"
    if m.new is None:
        return f"{m.name} - (was {_value(m.old)})"
    delta = m.delta
    change = f" ({delta:+.4g})" if delta is not None else ""
    return f"{m.name} {_value(m.old)} -> {_value(m.new)}{change}"


def _version_detail(c: VersionChange) -> str:
    if c.change == "registered":
        parts = [f"{c.status}"]
        if c.metrics:
            against = f" vs v{c.replaces}" if c.replaces is not None else ""
            parts.append(", ".join(_metric(m) for m in c.metrics) + against)
        return "; ".join(parts)
    if c.change == "status":
        return f"{c.old_status} -> {c.status}"
    if c.fields:
        return "fields: " + ", ".join(c.fields)
    return ""


def _pointer_side(target: str | None, version: int | None) -> str:
    if target is None:
        return "-"
    if version is None or target == f"v{version}":
        return target
    return f"{target} (v{version})"


def _pointer_state(p: PointerChange, new: bool) -> str:
    """One side of a pointer change; a weighted side shows each arm: `v3 90%, v4 10%`."""
    arms = p.new_targets if new else p.old_targets
    if len(arms) > 1:
        return ", ".join(f"{_pointer_side(t, v)} {w}%" for t, w, v in arms)
    if new:
        return _pointer_side(p.new_target, p.new_version)
    return _pointer_side(p.old_target, p.old_version)


def diff_text(d: RegistryDiff) -> list[str]:
    lines = [f"registry changes {d.base} -> {d.head}"]
    if d.empty:
        lines.append("no registry changes")
    if d.settings:
        lines.append(f"registry.yaml: updated ({', '.join(d.settings)})")
    for m in d.models:
        fields = f" ({', '.join(m.fields)})" if m.fields else ""
        lines.append(f"model {m.model}: {m.change}{fields}")
    for v in d.versions:
        detail = _version_detail(v)
        lines.append(
            f"version {v.model}:v{v.version}: {v.change}" + (f": {detail}" if detail else "")
        )
    for p in d.pointers:
        lines.append(
            f"pointer {p.model}:{p.tag}: {p.change}"
            f" {_pointer_state(p, False)} -> {_pointer_state(p, True)}"
        )
    lines += [f"unreadable: {text}" for text in d.unreadable]
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def diff_markdown(d: RegistryDiff) -> list[str]:
    """A pull request comment: a heading and one table per kind of change."""
    lines = [f"### mreg: registry changes `{d.base}` → `{d.head}`", ""]
    if d.empty:
        lines.append("No registry changes.")
    if d.settings:
        lines += [f"`registry.yaml` updated: {', '.join(d.settings)}", ""]
    if d.models:
        lines += ["#### Models", "", "| Model | Change | Fields |", "| --- | --- | --- |"]
        lines += [f"| `{m.model}` | {m.change} | {', '.join(m.fields)} |" for m in d.models]
        lines.append("")
    if d.versions:
        lines += [
            "#### Versions",
            "",
            "| Version | Id | Change | Status | Metrics | Compared with |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for v in d.versions:
            status = v.status if v.change != "status" else f"{v.old_status} → {v.status}"
            metrics = "<br>".join(_md(_metric(m)).replace("->", "→") for m in v.metrics)
            if not metrics and v.fields:
                metrics = "fields: " + ", ".join(v.fields)
            against = f"v{v.replaces}" if v.replaces is not None else ""
            lines.append(
                f"| `{v.model}:v{v.version}` | `{v.id}` | {v.change} | {status}"
                f" | {metrics} | {against} |"
            )
        lines.append("")
    if d.pointers:
        lines += [
            "#### Pointers",
            "",
            "| Pointer | Change | From | To |",
            "| --- | --- | --- | --- |",
        ]
        for p in d.pointers:
            lines.append(
                f"| `{p.model}:{p.tag}` | {p.change}"
                f" | {_md(_pointer_state(p, False))}"
                f" | {_md(_pointer_state(p, True))} |"
            )
        lines.append("")
    if d.unreadable:
        lines += ["Could not read (run `mreg validate`):", ""]
        lines += [f"- `{_md(text)}`" for text in d.unreadable]
    return lines


@cli.command("diff")
@click.argument("rev1")
@click.argument("rev2", required=False)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text for people, json for programs (also --json), markdown for a pull request comment.",
)
@json_option
@pass_registry
def diff_cmd(registry: Registry, rev1: str, rev2: str | None, output: str, as_json: bool) -> None:
    """What changed in the registry from REV1 to REV2 (default: the work tree, like git diff).

    Models added, archived, restored, deleted or updated; versions registered
    (with their metrics against the latest trained version at REV1), deleted
    or moved to another status; pointers created, moved (from -> to, with
    each arm's weight for a weighted pointer) or deleted.

    \b
    Examples:
        mreg diff origin/main
        mreg diff iris@v3 main --format json
        mreg diff origin/main HEAD --format markdown > comment.md
    """
    result = diff_registry(registry, rev1, rev2)
    if output == "json" or as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif output == "markdown":
        click.echo("\n".join(diff_markdown(result)).rstrip())
    else:
        click.echo("\n".join(diff_text(result)))
