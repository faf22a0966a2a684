"""Snapshots at a revision or the work tree, queries, resolution and the blob-id cache."""

from __future__ import annotations

import pytest

from registry import (
    ManifestCache,
    ManifestError,
    ModelNotFoundError,
    NotServableError,
    PointerNotFoundError,
    Registry,
    ResolutionError,
    RevisionNotFoundError,
    VersionNotFoundError,
)
from tests.conftest import RepoBuilder


@pytest.fixture
def reg(builder: RepoBuilder) -> Registry:
    b = builder
    b.model("iris", library="sklearn", project="botany", description="Iris species")
    b.write(
        "models/iris/model.yaml",
        (b.root / "models/iris/model.yaml").read_text() + "labels: {tier: gold}\n",
    )
    b.version("iris", 1)
    b.version("iris", 2)
    b.version("iris", 3)
    b.version("iris", 4, status="untrained")
    b.version("iris", 5, status="failed")
    b.pointer("iris", "prod", "v2")
    b.pointer("iris", "staging", "v3")
    b.pointer("iris", "stable", "prod")
    b.model("wine", library="onnx", project="drinks")
    b.version("wine", 1)
    b.model("old", library="sklearn", archived_at="2026-11-24T06:00:00Z")
    b.version("old", 1)
    b.commit("first")
    return Registry(b.root)


def test_list_models_with_filters(reg: Registry) -> None:
    snap = reg.snapshot("HEAD")
    assert [m.name for m in snap.models()] == ["iris", "wine"]
    assert [m.name for m in snap.models(archived=True)] == ["old"]
    assert [m.name for m in snap.models(archived=None)] == ["iris", "old", "wine"]
    assert [m.name for m in snap.models(library="onnx")] == ["wine"]
    assert [m.name for m in snap.models(project="botany")] == ["iris"]
    assert [m.name for m in snap.models(labels={"tier": "gold"})] == ["iris"]
    assert [m.name for m in snap.models(q="SPECIES")] == ["iris"]


@pytest.mark.parametrize(
    ("ref", "version", "chain"),
    [
        ("iris", 3, ["iris", "iris:latest", "iris:v3"]),
        ("iris:latest", 3, ["iris:latest", "iris:v3"]),
        ("iris:v1", 1, ["iris:v1"]),
        ("iris:v4", 4, ["iris:v4"]),
        ("iris:prod", 2, ["iris:prod", "iris:v2"]),
        ("iris:stable", 2, ["iris:stable", "iris:prod", "iris:v2"]),
    ],
)
def test_resolve_every_form(reg: Registry, ref: str, version: int, chain: list[str]) -> None:
    res = reg.snapshot("HEAD").resolve(ref)
    assert (res.model, res.version.version, list(res.chain)) == ("iris", version, chain)


def test_resolve_version_id_and_pointer_to_id(reg: Registry, builder: RepoBuilder) -> None:
    vid = reg.snapshot("HEAD").version("iris", 1).id
    assert reg.snapshot("HEAD").resolve(vid).to_dict()["version"] == 1
    builder.pointer("iris", "pinned", vid)
    builder.commit("pin")
    res = reg.snapshot("HEAD").resolve("iris:pinned")
    assert res.version.id == vid and res.chain == ("iris:pinned", "iris:v1")


def test_latest_skips_untrained_failed_and_deprecated(reg: Registry, builder: RepoBuilder) -> None:
    builder.version("iris", 3, deprecated_at="2026-11-24T07:00:00Z")
    builder.commit("deprecate v3")
    assert reg.snapshot("HEAD").resolve("iris").version.version == 2
    # A deprecated version is still served when pinned.
    assert reg.snapshot("HEAD").resolve("iris:v3").version.version == 3


def test_model_without_trained_version_has_no_latest(builder: RepoBuilder) -> None:
    builder.model("empty")
    builder.version("empty", 1, status="untrained")
    builder.commit()
    builder.model("bare")
    builder.commit()
    snap = Registry(builder.root).snapshot("HEAD")
    with pytest.raises(NotServableError, match="no trained, non-deprecated version") as info:
        snap.resolve("empty")
    assert info.value.status == 409
    with pytest.raises(VersionNotFoundError, match="no trained, non-deprecated version"):
        snap.resolve("bare")


def test_archived_models_do_not_resolve(reg: Registry) -> None:
    with pytest.raises(ModelNotFoundError, match="archived"):
        reg.snapshot("HEAD").resolve("old")


def test_cycle_names_the_chain(reg: Registry, builder: RepoBuilder) -> None:
    builder.pointer("iris", "a", "b")
    builder.pointer("iris", "b", "c")
    builder.pointer("iris", "c", "a")
    builder.commit("cycle")
    with pytest.raises(ResolutionError) as info:
        reg.snapshot("HEAD").resolve("iris:a")
    assert "pointer cycle: iris:a -> iris:b -> iris:c -> iris:a" in str(info.value)


def test_chain_deeper_than_16_is_refused(builder: RepoBuilder) -> None:
    builder.model("deep")
    builder.version("deep", 1)
    for i in range(20):
        builder.pointer("deep", f"p{i}", f"p{i + 1}")
    builder.pointer("deep", "p20", "v1")
    builder.commit()
    snap = Registry(builder.root).snapshot("HEAD")
    assert snap.resolve("deep:p5").version.version == 1  # 16 links: fine
    with pytest.raises(ResolutionError, match="deeper than 16"):
        snap.resolve("deep:p0")


def test_broken_link_is_named(reg: Registry, builder: RepoBuilder) -> None:
    builder.pointer("iris", "canary", "nowhere")
    builder.pointer("iris", "ghost", "v9")
    builder.commit()
    snap = reg.snapshot("HEAD")
    with pytest.raises(
        PointerNotFoundError, match=r"iris:canary -> iris:nowhere: pointer iris:nowhere"
    ):
        snap.resolve("iris:canary")
    with pytest.raises(VersionNotFoundError) as info:
        snap.resolve("iris:ghost")
    assert str(info.value).startswith("pointers/iris/ghost.yaml:1: pointer iris:ghost targets v9")


def test_pointer_to_another_models_version_is_refused(reg: Registry, builder: RepoBuilder) -> None:
    wine_id = reg.snapshot("HEAD").version("wine", 1).id
    builder.pointer("iris", "odd", wine_id)
    builder.commit()
    with pytest.raises(ResolutionError, match="a version of another model"):
        reg.snapshot("HEAD").resolve("iris:odd")


@pytest.mark.parametrize(
    ("path", "text", "needle", "line"),
    [
        (
            "models/iris/model.yaml",
            "name: wine\ncreated_at: 2026-11-24T05:00:00Z\n",
            "does not match its directory",
            1,
        ),
        ("models/iris/versions/2.yaml", None, "does not match its file name", 2),
        ("models/iris/versions/two.yaml", "id: mv_0000000000000009\n", "not named <n>.yaml", None),
        (
            "models/iris/model.yaml",
            "name: iris\ncreated_at: 2026-11-24T05:00:00Z\nowner: [x\n",
            "malformed YAML",
            4,
        ),
    ],
)
def test_bad_files_raise_with_location(
    reg: Registry, builder: RepoBuilder, path: str, text: str | None, needle: str, line: int | None
) -> None:
    if text is None:  # a version file whose number disagrees with its name
        text = (builder.root / "models/iris/versions/3.yaml").read_text()
    builder.write(path, text)
    builder.commit("break")
    snap = reg.snapshot("HEAD")
    with pytest.raises(ManifestError) as info:
        snap.model("iris")
        snap.versions("iris")
    assert needle in str(info.value)
    assert (info.value.file, info.value.line) == (path, line)


def test_unknown_revision_is_a_clear_error(reg: Registry) -> None:
    with pytest.raises(RevisionNotFoundError, match="revision 'release-9' not found"):
        reg.snapshot("release-9")


def test_older_revision_gives_older_answer(reg: Registry, builder: RepoBuilder) -> None:
    first = reg.repo.head.commit.hexsha
    builder.pointer("iris", "prod", "v3")
    builder.version("iris", 6)
    builder.commit("move prod")
    assert reg.snapshot(first).resolve("iris:prod").version.version == 2
    assert reg.snapshot("HEAD").resolve("iris:prod").version.version == 3
    assert reg.snapshot(first).resolve("iris").version.version == 3
    assert reg.snapshot("HEAD").resolve("iris").version.version == 6
    reg.repo.create_tag("release-1", ref=first)
    assert reg.snapshot("release-1").resolve("iris:stable").version.version == 2


def test_work_tree_snapshot_sees_uncommitted_edits(reg: Registry, builder: RepoBuilder) -> None:
    builder.pointer("iris", "prod", "v1")
    assert reg.snapshot().resolve("iris:prod").version.version == 1
    assert reg.snapshot("HEAD").resolve("iris:prod").version.version == 2


def test_cache_parses_an_unchanged_manifest_once(reg: Registry, builder: RepoBuilder) -> None:
    cache = ManifestCache()
    from registry import GitSource, Snapshot

    Snapshot(GitSource(reg.repo, "HEAD"), cache).models(archived=None)
    assert cache.parses == 3
    Snapshot(GitSource(reg.repo, "HEAD"), cache).models(archived=None)
    assert cache.parses == 3  # same revision: nothing parsed again
    builder.model("wine", library="onnx", project="cellar")
    builder.commit("edit wine")
    Snapshot(GitSource(reg.repo, "HEAD"), cache).models(archived=None)
    assert cache.parses == 4  # one changed file: one parse
    # The work tree shares the cache: identical content has the same blob id.
    from registry import WorkTreeSource

    Snapshot(WorkTreeSource(builder.root), cache).models(archived=None)
    assert cache.parses == 4


def test_persistent_cache_makes_a_new_process_warm(reg: Registry) -> None:
    reg.snapshot("HEAD").models(archived=None)
    fresh = Registry(reg.root)  # a new Registry opens the same .git/mreg/cache.sqlite
    fresh.snapshot("HEAD").models(archived=None)
    assert fresh.cache.parses == 0
    assert (reg.state_dir / "cache.sqlite").is_file()
    assert not reg.repo.is_dirty(untracked_files=True)


def test_work_tree_lists_untracked_and_drops_deleted_files(
    reg: Registry, builder: RepoBuilder
) -> None:
    builder.pointer("iris", "canary", "v1")  # untracked
    builder.remove("pointers/iris/staging.yaml")  # deleted, still in git's index
    snap = reg.snapshot()
    assert snap.pointer_tags("iris") == ["canary", "prod", "stable"]
    assert snap.resolve("iris:canary").version.version == 1


def test_partial_snapshot_holds_only_the_models_asked_for(reg: Registry) -> None:
    for rev in (None, "HEAD"):
        snap = reg.snapshot(rev, models=["iris"])
        assert snap.model_names() == ["iris"]
        assert reg.resolve("iris:stable", rev).chain == ("iris:stable", "iris:prod", "iris:v2")
    with pytest.raises(ModelNotFoundError):
        reg.resolve("nope:prod")
