"""Writes through the Python API: one commit each, with subject, trailers, tag, files and a clean tree."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from registry import (
    ArtifactError,
    ConflictError,
    ImmutableFieldError,
    InvalidNameError,
    ManifestError,
    ModelNotFoundError,
    NotARegistryError,
    Registry,
    RegistryError,
    ResolutionError,
    VersionNotFoundError,
)
from tests.conftest import git, head


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry.init(tmp_path / "reg")
    r.create_model("iris", library="sklearn")
    return r


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.skops"
    path.parent.mkdir()
    path.write_bytes(b"fake model bytes")
    return path


def status(r: Registry) -> str:
    """`git status --porcelain`, unstripped (its first column may be a space)."""
    out = subprocess.run(
        ["git", "status", "--porcelain"], cwd=r.root, capture_output=True, text=True, check=True
    )
    return out.stdout.rstrip("\n")


def trailers(r: Registry, rev: str = "HEAD") -> str:
    return git(r.root, "log", "-1", "--format=%(trailers:only,unfold)", rev)


def subject(r: Registry, rev: str = "HEAD") -> str:
    return git(r.root, "log", "-1", "--format=%s", rev)


def test_init_makes_one_commit_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "new"
    Registry.init(root)
    assert git(root, "log", "--format=%s") == "mreg: init registry"
    assert (root / "registry.yaml").is_file() and (root / "models").is_dir()
    assert "autostage = False" in (root / ".dvc" / "config").read_text()
    assert str(root / ".dvc" / "storage") in (root / ".dvc" / "config").read_text()
    Registry.init(root)
    assert git(root, "rev-list", "--count", "HEAD") == "1"
    assert git(root, "status", "--porcelain") == ""


def test_init_refuses_a_subdirectory_of_another_repository(tmp_path: Path) -> None:
    Registry.init(tmp_path / "outer")
    with pytest.raises(NotARegistryError, match="inside the git repository"):
        Registry.init(tmp_path / "outer" / "inner")


def test_register_commits_manifest_dvc_file_and_tag(reg: Registry, artifact: Path) -> None:
    result = reg.register(
        "iris", artifact, metrics={"accuracy": "0.97"}, params={"C": "1"}, point=["prod"]
    )
    v = result.value
    assert (v.version, v.status.value) == (1, "trained")
    assert result.commit == head(reg)
    assert subject(reg) == f"iris: register v1 ({v.id}), point prod"
    assert trailers(reg).splitlines() == [
        "Mreg-Action: register",
        "Mreg-Model: iris",
        "Mreg-Version: 1",
        f"Mreg-Version-Id: {v.id}",
        "Mreg-Pointer: prod",
    ]
    assert git(reg.root, "tag", "--points-at", "HEAD") == "iris@v1"
    assert git(reg.root, "cat-file", "-t", "iris@v1") == "tag"  # annotated
    assert git(reg.root, "tag", "-l", "--format=%(contents:subject)", "iris@v1") == subject(reg)
    text = (reg.root / "models/iris/versions/1.yaml").read_text()
    assert "path: artifacts/v1/model.skops" in text
    assert "accuracy: 0.97" in text and "C: 1" in text
    assert "created_by: Test User <test@example.com>" in text
    dvc = (reg.root / "models/iris/artifacts/v1/model.skops.dvc").read_text()
    assert f"md5: {v.artifact.md5}" in dvc and "path: model.skops" in dvc
    assert (reg.root / "models/iris/artifacts/v1/model.skops").read_bytes() == artifact.read_bytes()
    assert reg.snapshot("HEAD").resolve("iris:prod").version.id == v.id
    assert status(reg) == ""


def test_numbers_go_up_and_untrained_versions_have_no_artifact(
    reg: Registry, artifact: Path
) -> None:
    reg.register("iris", artifact)
    second = reg.register("iris", untrained=True)
    assert (second.value.version, second.value.status.value) == (2, "untrained")
    assert second.value.artifact is None
    assert not (reg.root / "models/iris/artifacts/v2").exists()


def test_status_moves_forward_and_trained_needs_an_artifact(reg: Registry, artifact: Path) -> None:
    reg.register("iris", untrained=True)
    reg.set_status("iris:v1", "training")
    assert subject(reg) == "iris: v1 untrained -> training"
    with pytest.raises(ArtifactError, match="needs an artifact"):
        reg.set_status("iris:v1", "trained")
    done = reg.set_status("iris:v1", "trained", artifact=artifact)
    assert done.value.artifact is not None and done.value.artifact.format == "skops"
    assert (reg.root / "models/iris/artifacts/v1/model.skops.dvc").is_file()
    with pytest.raises(ConflictError, match="cannot become failed"):
        reg.set_status("iris:v1", "failed")
    assert status(reg) == ""


def test_update_model_keeps_comments_and_never_touches_versions(
    reg: Registry, artifact: Path
) -> None:
    reg.register("iris", artifact)
    path = reg.root / "models/iris/model.yaml"
    path.write_text("# the flower model\n" + path.read_text())
    git(reg.root, "commit", "-qam", "comment")
    result = reg.update_model("iris", description="Iris", labels={"team": "ml"})
    assert result.paths == ("models/iris/model.yaml",)
    assert subject(reg) == "iris: update model (description, labels)"
    assert path.read_text().startswith("# the flower model\n")
    with pytest.raises(ImmutableFieldError):
        reg.update_model("iris", created_at="2020-01-01T00:00:00Z")


def test_update_version_patches_and_refuses_immutable_fields(reg: Registry, artifact: Path) -> None:
    reg.register("iris", artifact)
    reg.update_version("iris:v1", notes="retrained", deprecate=True)
    v = reg.snapshot().version("iris", 1)
    assert v.notes == "retrained" and v.deprecated
    assert subject(reg) == "iris: update v1 (notes, deprecated)"
    for field in ("id", "version", "created_at", "created_by", "artifact", "status"):
        with pytest.raises(ImmutableFieldError):
            reg.update_version("iris:v1", **{field: "x"})


def test_archive_restore_and_delete(reg: Registry, artifact: Path) -> None:
    reg.register("iris", artifact, point=["prod"])
    reg.archive_model("iris")
    assert reg.snapshot().model("iris").archived
    with pytest.raises(ConflictError, match="archived"):
        reg.register("iris", artifact)
    reg.restore_model("iris")
    assert not reg.snapshot().model("iris").archived
    before = head(reg)
    reg.delete_model("iris")
    assert git(reg.root, "rev-list", "--count", f"{before}..HEAD") == "1"
    assert not reg.snapshot().has_model("iris")
    assert not (reg.root / "models/iris").exists() and not (reg.root / "pointers/iris").exists()
    assert reg.snapshot(before).has_model("iris")  # history keeps it
    assert status(reg) == ""


def test_point_moves_and_records_history(reg: Registry, artifact: Path) -> None:
    reg.register("iris", artifact)
    reg.register("iris", artifact)
    reg.point("iris:prod", "v1", description="production")
    assert subject(reg) == "iris: point prod -> v1"
    reg.point("iris:prod", "v2")
    assert subject(reg) == "iris: move prod v1 -> v2"
    assert "Mreg-From: v1" in trailers(reg) and "Mreg-To: v2" in trailers(reg)
    assert "description: production" in (reg.root / "pointers/iris/prod.yaml").read_text()
    history = reg.pointer_history("iris:prod")
    assert [(h.previous_version, h.version) for h in history] == [(1, 2), (None, 1)]
    again = reg.point("iris:prod", "v2")
    assert again.commit is None and again.paths == ()  # no empty commit


@pytest.mark.parametrize(
    ("ref", "target", "error", "message"),
    [
        ("iris:prod", "v9", VersionNotFoundError, "targets v9, which does not exist"),
        ("iris:latest", "v1", InvalidNameError, "reserved"),
        ("iris:v2", "v1", InvalidNameError, "reserved"),
        ("iris:Prod", "v1", RegistryError, "invalid"),
        ("iris:a", "a", ConflictError, "cannot target itself"),
        ("iris:a", "missing", RegistryError, "does not exist"),
        ("nope:a", "v1", ModelNotFoundError, "not found"),
        ("iris:a", "mv_00000000deadbeef", VersionNotFoundError, "does not exist"),
    ],
)
def test_bad_pointers_change_nothing(
    reg: Registry, artifact: Path, ref: str, target: str, error: type[Exception], message: str
) -> None:
    reg.register("iris", artifact)
    before = head(reg)
    with pytest.raises(error, match=message):
        reg.point(ref, target)
    assert head(reg) == before and status(reg) == ""


def test_pointer_cycle_is_refused(reg: Registry, artifact: Path) -> None:
    reg.register("iris", artifact)
    reg.point("iris:a", "v1")
    reg.point("iris:b", "a")
    before = head(reg)
    with pytest.raises(ResolutionError, match="cycle"):
        reg.point("iris:a", "b")
    assert head(reg) == before and status(reg) == ""


def test_delete_pointer_refuses_when_another_targets_it(reg: Registry, artifact: Path) -> None:
    reg.register("iris", artifact)
    reg.point("iris:a", "v1")
    reg.point("iris:b", "a")
    with pytest.raises(ConflictError, match="targets iris:a"):
        reg.delete_pointer("iris:a")
    reg.delete_pointer("iris:b")
    assert subject(reg) == "iris: delete pointer b (was a)"
    assert not (reg.root / "pointers/iris/b.yaml").exists()


def test_unrelated_changes_are_left_alone(reg: Registry, artifact: Path) -> None:
    (reg.root / "notes.txt").write_text("staged, not mine\n")
    git(reg.root, "add", "notes.txt")
    (reg.root / "registry.yaml").write_text("schema_version: 1\nname: edited\n")
    reg.register("iris", artifact)
    assert "notes.txt" not in git(reg.root, "show", "--name-only", "--format=", "HEAD")
    assert sorted(status(reg).splitlines()) == [" M registry.yaml", "A  notes.txt"]


def test_dirty_touched_file_is_refused_and_nothing_written(reg: Registry) -> None:
    path = reg.root / "models/iris/model.yaml"
    path.write_text(path.read_text() + "bogus: 1\n")
    before = head(reg)
    with pytest.raises(ConflictError, match=r"models/iris/model.yaml: uncommitted changes"):
        reg.update_model("iris", description="x")
    assert head(reg) == before
    assert status(reg) == " M models/iris/model.yaml"


def test_broken_hand_edit_in_the_written_model_stops_the_write(
    reg: Registry, artifact: Path
) -> None:
    path = reg.root / "models/iris/model.yaml"
    path.write_text(path.read_text() + "oops: [\n")
    before = head(reg)
    with pytest.raises(ManifestError) as info:
        reg.register("iris", artifact)
    assert info.value.file == "models/iris/model.yaml"
    assert "uncommitted edit" in str(info.value)
    assert head(reg) == before
    assert status(reg) == " M models/iris/model.yaml"


def test_failed_write_leaves_git_status_clean(reg: Registry, artifact: Path) -> None:
    before = head(reg)
    with pytest.raises(ModelNotFoundError):
        reg.register("other", artifact)
    with pytest.raises(ArtifactError, match="empty"):
        (artifact.parent / "empty.skops").write_bytes(b"")
        reg.register("iris", artifact.parent / "empty.skops")
    with pytest.raises(ArtifactError, match="format"):
        (artifact.parent / "model.bin").write_bytes(b"x")
        reg.register("iris", artifact.parent / "model.bin")
    assert head(reg) == before and status(reg) == ""
    assert not (reg.root / "models/iris/versions").exists()
    assert git(reg.root, "tag") == ""
    assert not [p for p in (reg.root / ".dvc/storage").rglob("*") if p.is_file()]  # nothing pushed


def test_no_commit_stages_the_change(reg: Registry, artifact: Path) -> None:
    before = head(reg)
    first = reg.register("iris", artifact, commit=False)
    second = reg.register("iris", artifact, commit=False)
    assert (first.commit, first.value.version, second.value.version) == (None, 1, 2)
    assert head(reg) == before
    assert "A  models/iris/versions/2.yaml" in status(reg).splitlines()
    assert git(reg.root, "tag") == ""


def test_delete_without_commit_stages_every_removal(reg: Registry, artifact: Path) -> None:
    reg.register("iris", artifact, point=["prod"])
    reg.delete_model("iris", commit=False)
    assert not (reg.root / "models/iris").exists() and not (reg.root / "pointers/iris").exists()
    assert sorted(status(reg).splitlines()) == [
        "D  models/iris/artifacts/v1/.gitignore",
        "D  models/iris/artifacts/v1/model.skops.dvc",
        "D  models/iris/model.yaml",
        "D  models/iris/versions/1.yaml",
        "D  pointers/iris/prod.yaml",
    ]


def test_branch_commits_elsewhere_and_leaves_the_work_tree(reg: Registry, artifact: Path) -> None:
    before = head(reg)
    result = reg.register("iris", artifact, point=["prod"], branch="add-v1")
    assert head(reg) == before and status(reg) == ""
    assert git(reg.root, "branch", "--show-current") == "main"
    assert git(reg.root, "rev-parse", "add-v1") == result.commit
    assert git(reg.root, "rev-parse", "add-v1~1") == before
    assert reg.snapshot("add-v1").resolve("iris:prod").version.version == 1
    assert not (reg.root / "models/iris/versions").exists()
    assert result.tag is None
    with pytest.raises(ConflictError, match="exists already"):
        reg.point("iris:prod", "v1", branch="add-v1")


def test_deploy_saves_a_fitted_estimator_with_skops(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from registry import ensure_local, load_model

    r = Registry.init(tmp_path / "reg")
    x, y = load_iris(return_X_y=True)
    result = r.deploy(LogisticRegression(max_iter=300).fit(x, y), name="flowers", point=["prod"])
    v = result.value
    assert v.artifact is not None and (v.artifact.format, v.artifact.library) == (
        "skops",
        "sklearn",
    )
    assert r.snapshot().model("flowers").library == "sklearn"
    snap = r.snapshot("HEAD")
    path = ensure_local(r, snap, "flowers", v)
    assert load_model(path, "skops").predict([x[0].tolist()]) == [0]


CONCURRENT = textwrap.dedent(
    """
    import sys
    from registry import Registry
    reg = Registry(sys.argv[1])
    for i in range(3):
        reg.register("iris", sys.argv[2], description=sys.argv[3])
    """
)


def test_two_processes_registering_at_once_get_distinct_numbers(
    reg: Registry, tmp_path: Path
) -> None:
    sources = []
    for name in ("a", "b"):
        src = tmp_path / f"{name}.skops"
        src.write_bytes(f"model {name}".encode())
        sources.append(src)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(reg.root), str(src), src.stem],
            cwd=Path(__file__).parent.parent,
            stderr=subprocess.PIPE,
        )
        for src in sources
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    versions = reg.snapshot("HEAD").versions("iris")
    assert [v.version for v in versions] == [1, 2, 3, 4, 5, 6]
    assert sorted(v.description or "" for v in versions) == ["a"] * 3 + ["b"] * 3
    assert len({v.id for v in versions}) == 6
    assert git(reg.root, "tag").split() == [f"iris@v{n}" for n in range(1, 7)]
    assert status(reg) == ""
    assert git(reg.root, "fsck", "--no-dangling") == ""


def test_a_concurrent_commit_is_not_overwritten(
    reg: Registry, artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that does not take mreg's lock (a plain git commit) makes the swap retry."""
    from registry import commits

    calls = {"n": 0}
    real = commits.swap_ref

    def racing_swap(root: Path, ref: str, new: str, old: str | None) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            (reg.root / "README").write_text("someone else\n")
            git(reg.root, "add", "README")
            git(reg.root, "commit", "-qm", "concurrent commit")
        return real(root, ref, new, old)

    monkeypatch.setattr(commits, "swap_ref", racing_swap)
    reg.register("iris", artifact)
    assert calls["n"] == 2
    assert git(reg.root, "log", "--format=%s", "-2").splitlines()[1] == "concurrent commit"
    assert status(reg) == ""
