"""CLI reads start fast: lazy command modules, a lazy core, and answers from the parse cache.

No timings here (bench/ measures them): these tests pin what makes reads fast
(what a read imports, that a warm read is answered from the cache) and that
the fast answers are exactly the full reader's, errors included.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import registry
from registry import Registry, RegistryError, list_models_cached, resolve_cached
from tests.conftest import RepoBuilder, git
from tests.showcase import Showcase
from tool.cli import cli

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pydantic", "git", "yaml", "ruamel.yaml", "dvc", "litestar", "importlib.metadata")


def mreg(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--repo", str(root), *args])
    return result.exit_code, result.stdout, result.stderr


def drop_cache(root: Path) -> None:
    for name in ("cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"):
        (root / ".git" / "mreg" / name).unlink(missing_ok=True)


def fresh_process(*argv: str) -> tuple[str, list[str]]:
    """Run `mreg ARGV` in a new interpreter; its stdout and which HEAVY modules it imported."""
    code = (
        "import sys\n"
        "from tool.cli import main\n"
        f"sys.argv = ['mreg', *{list(argv)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print('IMPORTED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    text, _, imported = out.rpartition("IMPORTED ")
    return text, json.loads(imported.replace("'", '"'))


def test_version_imports_nothing_heavy() -> None:
    out, imported = fresh_process("--version")
    assert out.strip() == f"mreg, version {importlib.import_module('tool').__version__}"
    assert imported == []


@pytest.mark.parametrize("rev", [None, "HEAD"])
def test_warm_resolve_and_list_import_neither_pydantic_nor_gitpython(
    showcase: Showcase, rev: str | None
) -> None:
    at = ["--rev", rev] if rev else []
    resolve = ["--repo", str(showcase.root), "resolve", "iris:champion", "--json", *at]
    listing = ["--repo", str(showcase.root), "model", "list", "--json", "--archived", *at]
    drop_cache(showcase.root)
    cold_resolve, cold_imports = fresh_process(*resolve)
    cold_list, _ = fresh_process(*listing)
    assert "pydantic" in cold_imports  # a cold read parses and validates

    warm_resolve, imported = fresh_process(*resolve)
    assert imported == []
    assert json.loads(warm_resolve) == json.loads(cold_resolve)
    assert json.loads(warm_resolve)["chain"] == ["iris:champion", "iris:prod", "iris:v2"]
    warm_list, imported = fresh_process(*listing)
    assert imported == []
    assert json.loads(warm_list) == json.loads(cold_list)
    assert [m["name"] for m in json.loads(warm_list)] == ["churn", "iris", "legacy"]


def test_help_lists_every_command_with_its_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    for name in cli.lazy_commands:
        assert f"\n  {name} " in commands
    assert "Print the version REF resolves to" in commands


def test_every_command_is_in_the_lazy_map_under_its_module() -> None:
    cli.load_all_commands()
    assert sorted(cli.commands) == sorted(cli.lazy_commands)
    for name, command in cli.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == cli.lazy_commands[name], name


def test_an_unknown_command_is_still_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["resolv", "iris"])
    assert result.exit_code == 1
    assert result.output.startswith("error: No such command 'resolv'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "error: No such option '--bogus'"),
        (["register"], "error: Missing argument 'MODEL'"),
        (["model", "show"], "error: Missing argument 'NAME'"),
        (["register", "iris", "m.skops", "--metric", "auc"], "error: Invalid value for --metric"),
    ],
)
def test_a_usage_mistake_is_one_error_line_and_exit_code_1(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args, prog_name="mreg")
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and "Usage:" not in result.output
    assert "(see 'mreg " in result.output


def test_every_public_name_is_importable_lazily() -> None:
    assert sorted(registry._LAZY) == sorted(registry.__all__)
    for name in registry.__all__:
        assert getattr(registry, name) is getattr(
            importlib.import_module(registry._LAZY[name]), name
        )
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        registry.nope  # noqa: B018


def test_fast_path_constants_agree_with_the_full_reader() -> None:
    from registry import journal, layout, quick

    assert quick.MAX_CHAIN == layout.MAX_CHAIN
    assert quick.JOURNAL == journal.JOURNAL
    assert quick.VERSION_FILE_RE.pattern == layout.VERSION_FILE_RE.pattern


def full_resolve(root: Path, ref: str, rev: str | None = None) -> dict[str, object] | str:
    try:
        return Registry(root).resolve(ref, rev).to_dict()
    except RegistryError as exc:
        return f"{type(exc).__name__}: {exc}"


SHOWCASE_REFS = [
    "iris",
    "iris:latest",
    "iris:prod",
    "iris:champion",
    "iris:staging",
    "iris:v1",
    "iris:v03",
    "iris:v9",
    "iris:nope",
    "churn",
    "churn:v2",
    "churn:latest",
    "legacy",
    "legacy:v1",
    "nope:prod",
    "IRIS",
]


@pytest.mark.parametrize("rev", [None, "HEAD", "release-1"])
def test_cached_resolution_is_the_full_readers(showcase: Showcase, rev: str | None) -> None:
    refs = [*SHOWCASE_REFS, showcase.ids["iris:v1"]]
    expected = {ref: full_resolve(showcase.root, ref, rev) for ref in refs}  # warms the cache
    answered = 0
    for ref in refs:
        fast = resolve_cached(showcase.root, ref, rev)
        if fast is None:
            continue
        answered += 1
        assert fast == expected[ref], ref
    # Every ref that resolves by name is answered from the cache; errors never are.
    assert answered == sum(
        1 for ref, e in expected.items() if isinstance(e, dict) and not ref.startswith("mv_")
    )
    # The CLI prints the full reader's error when the fast path declines.
    for ref in ("legacy", "iris:nope"):
        code, _, err = mreg(showcase.root, "resolve", ref, *(["--rev", rev] if rev else []))
        assert (code, err) == (1, f"error: {str(expected[ref]).split(': ', 1)[1]}\n")
    if rev is None:
        assert "is archived" in str(expected["legacy"])


def test_cached_reads_follow_uncommitted_edits(showcase: Showcase) -> None:
    root = showcase.root
    assert mreg(root, "resolve", "iris:prod")[1].startswith("iris:v2 ")
    assert resolve_cached(root, "iris:prod") is not None
    (root / "pointers/iris/prod.yaml").write_text("target: v1\n")
    assert resolve_cached(root, "iris:prod") is None  # never parsed: the full reader's turn
    assert mreg(root, "resolve", "iris:prod")[1].startswith("iris:v1 ")
    assert resolve_cached(root, "iris:prod") == full_resolve(root, "iris:prod")
    (root / "pointers/iris/prod.yaml").write_text("target: v2\n")
    assert mreg(root, "resolve", "iris:prod")[1].startswith("iris:v2 ")
    # At a revision, the committed pointer (v2) whatever the work tree says.
    (root / "pointers/iris/prod.yaml").write_text("target: v3\n")
    assert mreg(root, "resolve", "iris:prod", "--rev", "HEAD")[1].startswith("iris:v2 ")
    assert mreg(root, "resolve", "iris:prod")[1].startswith("iris:v3 ")


def test_hand_written_chains_resolve_or_fail_as_before(builder: RepoBuilder) -> None:
    root = builder.root
    builder.model("m")
    for n in (1, 2, 3):
        builder.version("m", n, status="trained" if n < 3 else "untrained")
    builder.pointer("m", "a", "b")
    builder.pointer("m", "b", "v2")
    builder.pointer("m", "loop1", "loop2")
    builder.pointer("m", "loop2", "loop1")
    builder.pointer("m", "zero", "v02")
    builder.pointer("m", "gone", "v7")
    builder.pointer("m", "dangling", "nobody")
    builder.commit()
    refs = ["m", "m:a", "m:b", "m:loop1", "m:zero", "m:gone", "m:dangling", "m:v3", "m:v02"]
    for ref in refs:
        expected = full_resolve(root, ref)
        fast = resolve_cached(root, ref)
        assert fast is None or fast == expected, ref
        assert (fast is not None) == isinstance(expected, dict), ref
        code, out, err = mreg(root, "resolve", ref, "--json")
        if isinstance(expected, dict):
            assert (code, json.loads(out)) == (0, expected)
        else:
            assert code == 1 and err.strip() == f"error: {expected.split(': ', 1)[1]}"


LIST_FILTERS = [
    [],
    ["--archived"],
    ["--library", "sklearn"],
    ["--project", "crm"],
    ["--label", "team=ml"],
    ["--label", "team=none"],
]


@pytest.mark.parametrize("rev", [None, "release-1"])
def test_cached_listing_is_the_full_readers(
    showcase: Showcase, rev: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = ["--rev", rev] if rev else []
    drop_cache(showcase.root)
    assert list_models_cached(showcase.root, rev) is None
    for filters in LIST_FILTERS:
        for output in (["--json"], []):
            with monkeypatch.context() as m:  # the full reader only (it also warms the cache)
                m.setattr("tool.models_cmd.list_models_cached", lambda *a, **k: None)
                full = mreg(showcase.root, "model", "list", *output, *filters, *at)
            assert full[0] == 0
            assert mreg(showcase.root, "model", "list", *output, *filters, *at) == full, filters
        archived = None if "--archived" in filters else False
        assert list_models_cached(showcase.root, rev, archived=archived) is not None
    rows = json.loads(mreg(showcase.root, "model", "list", "--json", *at)[1])
    expected = [("churn", 2, 1), ("iris", 3, 3)]
    if rev == "release-1":
        expected = [("iris", 2, 2)]
    assert [(r["name"], r["versions_count"], r["latest"]["version"]) for r in rows] == expected


def test_a_pending_write_is_finished_by_the_full_reader(showcase: Showcase) -> None:
    root = showcase.root
    mreg(root, "resolve", "iris:prod")
    assert resolve_cached(root, "iris:prod") is not None
    journal = root / ".git" / "mreg" / "pending-write.json"
    journal.write_text("{}")
    try:
        assert resolve_cached(root, "iris:prod") is None
        assert list_models_cached(root) is None
    finally:
        journal.unlink()


def test_not_a_registry_is_one_clear_line(tmp_path: Path) -> None:
    code, _, err = mreg(tmp_path, "resolve", "iris")
    assert code == 1
    assert (
        err == f"error: {tmp_path} is not inside a git repository: run 'mreg init' or pass --repo\n"
    )
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    code, _, err = mreg(bare, "model", "list")
    assert code == 1
    assert err == f"error: {bare} is a bare repository: mreg needs a work tree\n"
