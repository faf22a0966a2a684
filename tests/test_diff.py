"""`mreg diff REV1 [REV2]`: what changed in the registry, as text, JSON and a PR comment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FIXED_DATE, RepoBuilder
from tests.test_validate import add_version, remove_tree
from tool.cli import cli


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--repo", str(root), "diff", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def changed(builder: RepoBuilder) -> RepoBuilder:
    """main: iris v1, v2 (accuracy 0.91, 0.92), v3 untrained, prod -> v1; old, keep.
    Work tree: v4 registered (accuracy 0.94), v3 -> training, prod -> v4, canary created,
    beta deleted, old deleted, keep archived, tweak updated, fresh added."""
    builder.model("iris")
    add_version(builder, 1)
    add_version(builder, 2)
    add_version(builder, 3, "untrained")
    builder.pointer("iris", "prod", "v1")
    builder.pointer("iris", "staging", "v2")
    builder.pointer("iris", "beta", "v1")
    builder.model("old")
    builder.model("keep")
    builder.model("tweak")
    builder.commit("base")
    builder.remove("pointers/iris/beta.yaml")
    builder.model("tweak", description="now described")
    add_version(builder, 4)
    add_version(builder, 3, "training")
    builder.pointer("iris", "prod", "v4")
    builder.pointer("iris", "canary", "latest")
    remove_tree(builder, "models/old")
    builder.model("keep", archived_at=FIXED_DATE)
    builder.model("fresh")
    return builder


def test_markdown_lists_registered_version_with_metric_change_and_moved_pointer(
    changed: RepoBuilder,
) -> None:
    code, out, _ = run(changed.root, "main", "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "### mreg: registry changes `main` → `work tree`"
    assert (
        "| `iris:v4` | `mv_0000000000000004` | registered | trained | accuracy 0.92 → 0.94 (+0.02) | v2 |"
        in lines
    )
    assert (
        "| `iris:v3` | `mv_0000000000000003` | status | untrained → training | fields: status |  |"
        in lines
    )
    assert "| `iris:prod` | moved | v1 | v4 |" in lines
    assert "| `iris:canary` | created | - | latest (v4) |" in lines
    assert "| `old` | deleted |  |" in lines
    assert "| `keep` | archived |  |" in lines
    assert "| `fresh` | added |  |" in lines
    # Untouched pointers are not listed.
    assert not any("staging" in line for line in lines)


def test_text_output(changed: RepoBuilder) -> None:
    code, out, _ = run(changed.root, "main")
    assert code == 0
    assert out.splitlines() == [
        "registry changes main -> work tree",
        "model fresh: added",
        "model keep: archived",
        "model old: deleted",
        "model tweak: updated (description)",
        "version iris:v3: status: untrained -> training",
        "version iris:v4: registered: trained; accuracy 0.92 -> 0.94 (+0.02) vs v2",
        "pointer iris:beta: deleted v1 -> -",
        "pointer iris:canary: created - -> latest (v4)",
        "pointer iris:prod: moved v1 -> v4",
    ]


def test_json_between_two_revisions(changed: RepoBuilder) -> None:
    head = changed.commit("change")
    code, out, _ = run(changed.root, "HEAD~1", head, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["head_revision"] == head
    registered = [v for v in data["versions"] if v["change"] == "registered"]
    assert registered == [
        {
            "model": "iris",
            "version": 4,
            "id": "mv_0000000000000004",
            "change": "registered",
            "status": "trained",
            "old_status": None,
            "replaces": 2,
            "metrics": [
                {"name": "accuracy", "old": 0.92, "new": 0.94, "delta": pytest.approx(0.02)}
            ],
            "fields": [],
        }
    ]
    prod = next(p for p in data["pointers"] if p["tag"] == "prod")
    assert (prod["change"], prod["old_version"], prod["new_version"]) == ("moved", 1, 4)


def test_pointer_moved_through_a_chain_is_listed(builder: RepoBuilder) -> None:
    builder.model("iris")
    add_version(builder, 1)
    add_version(builder, 2)
    builder.pointer("iris", "champion", "v1")
    builder.pointer("iris", "prod", "champion")
    builder.commit("base")
    builder.pointer("iris", "champion", "v2")
    _, out, _ = run(builder.root, "main")
    assert "pointer iris:prod: moved champion (v1) -> champion (v2)" in out.splitlines()


def test_no_changes(builder: RepoBuilder) -> None:
    builder.model("iris")
    builder.commit("base")
    code, out, _ = run(builder.root, "main", "--format", "markdown")
    assert code == 0
    assert "No registry changes." in out


def test_unreadable_manifest_is_noted_not_fatal(builder: RepoBuilder) -> None:
    builder.model("iris")
    builder.commit("base")
    builder.write("models/iris/versions/1.yaml", "id: [\n")
    code, out, _ = run(builder.root, "main")
    assert code == 0
    assert any(
        line.startswith("unreadable: models/iris/versions/1.yaml") for line in out.splitlines()
    )


def test_unknown_revision(builder: RepoBuilder) -> None:
    builder.commit("base")
    code, _, err = run(builder.root, "nope")
    assert code == 1
    assert err.strip() == f"error: revision 'nope' not found in {builder.root}"


def test_showcase_release_to_main(showcase: object) -> None:
    from tests.showcase import Showcase

    assert isinstance(showcase, Showcase)
    code, out, _ = run(showcase.root, showcase.release, "main")
    assert code == 0
    lines = out.splitlines()
    assert "version iris:v3: registered: trained; accuracy 0.96 -> 0.97 (+0.01) vs v2" in lines
    assert "pointer iris:staging: created - -> v3" in lines
