"""Reads that cost what they touch (issue 24): one model's files, one page, one change.

The registry is real (bench/synth.py writes it with `git fast-import`), and
the proofs are structural, never timed: a read works although an unrelated
manifest is broken (so it never parsed it), the parse cache counts what was
parsed, and the source says whether the whole tree was ever listed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import synth
from registry import (
    ManifestCache,
    ManifestError,
    Registry,
    VersionNotFoundError,
    decode_cursor,
    encode_cursor,
    validate_registry,
)
from registry.ids import IdIndex
from tool.cli import cli

MODELS, VERSIONS = 30, 3
NAMES = [synth.model_name(i) for i in range(MODELS)]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "reg"
    synth.make_mreg_registry(path, MODELS, VERSIONS, dict(os.environ))
    return path


@pytest.fixture
def broken(repo: Path) -> Path:
    """The registry with two unrelated models broken: a bad model.yaml and a bad version."""
    commit(
        repo,
        {
            f"models/{NAMES[20]}/model.yaml": "name: [not, a, name\n",
            f"models/{NAMES[21]}/versions/2.yaml": "version: two\nunknown_key: 1\n",
        },
        "break two unrelated models",
    )
    return repo


@pytest.mark.parametrize("rev", ["HEAD", None])
def test_resolve_reads_only_its_chain_though_another_manifest_is_broken(
    broken: Path, rev: str | None
) -> None:
    reg = Registry(broken)
    reg.cache = ManifestCache()  # in memory only: every parse is counted
    snap = reg.snapshot(rev)
    res = snap.resolve(f"{NAMES[7]}:prod")
    assert (res.model, res.version.version) == (NAMES[7], VERSIONS)
    assert res.chain == (f"{NAMES[7]}:prod", f"{NAMES[7]}:v{VERSIONS}")
    # model.yaml, the pointer and the version it names: nothing else was parsed.
    assert reg.cache.parses == 3
    # The whole tree was never listed: only the model's own folders.
    assert getattr(snap.source, "_listing", None) is None
    assert reg.resolve(f"{NAMES[7]}:prod", rev).version.id == res.version.id
    with pytest.raises(ManifestError):
        snap.models()  # what a full read would have met


def test_a_version_id_resolves_through_the_ids_index_though_another_version_is_broken(
    broken: Path,
) -> None:
    """At a revision, `mv_...` is looked up in the ids index (kept per models/ tree), then
    only its model and its version file are read: an unrelated broken version is never met."""
    reg = Registry(broken)
    reg.cache = ManifestCache()
    wanted = reg.snapshot("HEAD").version(NAMES[7], 2)
    res = reg.snapshot("HEAD").resolve(wanted.id)  # the first lookup builds the index
    assert (res.model, res.version.version, res.version.id) == (NAMES[7], 2, wanted.id)
    snap = reg.snapshot("HEAD")
    assert snap.resolve(wanted.id).version.id == wanted.id
    assert getattr(snap.source, "_listing", None) is None  # the tree was never listed whole
    with pytest.raises(VersionNotFoundError, match="mv_00000000 not found"):
        snap.resolve("mv_00000000")


def test_pages_follow_the_cursor_and_stop_at_the_broken_model_only(broken: Path) -> None:
    snap = Registry(broken).snapshot("HEAD")
    seen: list[str] = []
    after = None
    while True:
        page = snap.models_page(limit=7, after=after)
        seen += [m.name for m in page.models]
        if page.next_after is None:
            break
        assert page.next_cursor == encode_cursor(page.models[-1].name)
        after = decode_cursor(page.next_cursor)
        if len(seen) == 14:
            break
    assert seen == NAMES[:14]
    assert getattr(snap.source, "_listing", None) is None
    with pytest.raises(ManifestError) as err:
        snap.models_page(limit=7, after=NAMES[13])  # the page that holds the broken model
    assert err.value.file == f"models/{NAMES[20]}/model.yaml"


def test_a_filtered_page_looks_further_than_one_chunk(repo: Path) -> None:
    snap = Registry(repo).snapshot()
    page = snap.models_page(limit=2, project="project-19")
    assert [m.name for m in page.models] == [NAMES[19]]
    assert page.next_after is None
    # The caller's own test (a server's viewer): a page of 2 that skips most models.
    page = snap.models_page(limit=2, keep=lambda m: m.name.endswith("3"))
    assert [m.name for m in page.models] == [NAMES[3], NAMES[13]]
    assert page.next_after == NAMES[13]


def run_cli(repo: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--repo", str(repo), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("warm", [False, True])
def test_cli_model_list_pages_with_the_apis_cursor(repo: Path, warm: bool) -> None:
    if warm:
        run_cli(repo, "model", "list")  # fills the parse cache: pages come from it
    names: list[str] = []
    cursor: str | None = None
    for _ in range(MODELS):
        args = ["model", "list", "--limit", "8", "--json"]
        code, out, _ = run_cli(repo, *args, *(["--cursor", cursor] if cursor else []))
        assert code == 0, out
        page = json.loads(out)
        names += [row["name"] for row in page["models"]]
        assert page["models"][0]["versions_count"] == VERSIONS  # the API's shape
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == NAMES
    code, out, err = run_cli(repo, "model", "list", "--limit", "2")
    assert code == 0
    assert NAMES[1] in out and NAMES[2] not in out
    assert f"next page: --cursor {encode_cursor(NAMES[1])}" in err
    code, _, err = run_cli(repo, "model", "list", "--cursor", "zz")
    assert code == 1
    assert err.strip() == "error: invalid cursor 'zz': pass next_cursor from a previous page"


def test_validate_base_finds_an_id_reused_from_an_untouched_model(repo: Path) -> None:
    reg = Registry(repo)
    taken = synth.version_id(NAMES[10], 1)
    text = synth.version_yaml(NAMES[3], VERSIONS + 1).replace(
        synth.version_id(NAMES[3], VERSIONS + 1), taken
    )
    commit(repo, {f"models/{NAMES[3]}/versions/{VERSIONS + 1}.yaml": text}, "reuse an id")
    for rev in ("HEAD", None):
        report = validate_registry(reg, rev, base="HEAD~1")
        dup = [f for f in report.findings if f.code == "duplicate-id"]
        assert [(f.file, f.message) for f in dup] == [
            (
                f"models/{NAMES[3]}/versions/{VERSIONS + 1}.yaml",
                f"id {taken} is already the id of {NAMES[10]}:v1",
            )
        ]
        assert report.models_checked == 1


def test_ids_index_is_updated_from_the_diff_not_read_again(repo: Path) -> None:
    reg = Registry(repo)
    first = IdIndex.at(reg.where, git(repo, "rev-parse", "HEAD"), reg.cache)
    assert first.read_in_full and first.files_read == MODELS * VERSIONS
    path = f"models/{NAMES[5]}/versions/2.yaml"
    text = (repo / path).read_text().replace(synth.version_id(NAMES[5], 2), "mv_" + "ab" * 8)
    commit(repo, {path: text}, "change one id")
    git(repo, "rm", "-q", f"models/{NAMES[6]}/versions/1.yaml")
    git(repo, "commit", "-q", "-m", "delete one version")
    second = IdIndex.at(reg.where, git(repo, "rev-parse", "HEAD"), reg.cache)
    assert not second.read_in_full and second.files_read == 1
    assert second.owner("mv_" + "ab" * 8) == path
    assert second.owner(synth.version_id(NAMES[5], 2)) is None
    assert second.owner(synth.version_id(NAMES[6], 1)) is None
    assert second.owner(synth.version_id(NAMES[6], 2)) == f"models/{NAMES[6]}/versions/2.yaml"
    # The same commit again: the stored index, nothing read.
    again = IdIndex.at(reg.where, git(repo, "rev-parse", "HEAD"), reg.cache)
    assert again.files_read == 0 and again.paths == second.paths
