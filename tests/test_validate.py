"""`mreg validate`: each rule passes a good change and fails a bad one with the right file, line and code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FIXED_DATE, RepoBuilder, git
from tool.cli import cli

MD5 = {n: "a" + f"{n:x}" * 31 for n in range(1, 10)}
SAME_INPUT = "input_info:\n  feature_names: [a, b]\n"


def version_text(
    n: int,
    status: str = "trained",
    *,
    vid: str | None = None,
    md5: str | None = None,
    input_info: str = SAME_INPUT,
    extra: str = "",
) -> str:
    """A version manifest; its line numbers are what the tests expect:
    1 id, 2 version, 3 status, 4 created_at, 5 artifact, 6 path, 7 md5, 8 size, 9 format."""
    text = (
        f"id: {vid or f'mv_{n:016x}'}\nversion: {n}\nstatus: {status}\ncreated_at: {FIXED_DATE}\n"
    )
    if status == "trained":
        text += (
            f"artifact:\n  path: artifacts/v{n}/model.skops\n  md5: {md5 or MD5[n]}\n"
            "  size: 100\n  format: skops\n"
        )
    return text + input_info + f"train_info:\n  metrics:\n    accuracy: 0.{90 + n}\n" + extra


def dvc_text(n: int, md5: str | None = None, size: int = 100) -> str:
    """Lines: 1 outs, 2 md5, 3 size, 4 hash, 5 path."""
    return f"outs:\n- md5: {md5 or MD5[n]}\n  size: {size}\n  hash: md5\n  path: model.skops\n"


def add_version(b: RepoBuilder, n: int, status: str = "trained", **kw: str) -> None:
    b.write(f"models/iris/versions/{n}.yaml", version_text(n, status, **kw))
    if status == "trained":
        b.write(f"models/iris/artifacts/v{n}/model.skops.dvc", dvc_text(n, kw.get("md5")))


def remove_tree(b: RepoBuilder, rel: str) -> None:
    for path in sorted((b.root / rel).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (b.root / rel).rmdir()


@pytest.fixture
def base(builder: RepoBuilder) -> RepoBuilder:
    """main: iris v1, v2 trained, v3 untrained; prod -> v1 (protected), staging -> prod."""
    builder.write("registry.yaml", "schema_version: 1\nname: test\nprotected_pointers: [prod]\n")
    builder.model("iris")
    add_version(builder, 1)
    add_version(builder, 2)
    add_version(builder, 3, "untrained")
    builder.pointer("iris", "prod", "v1")
    builder.pointer("iris", "staging", "prod")
    builder.model("other")
    builder.commit("base")
    return builder


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--repo", str(root), *args])
    return result.exit_code, result.stdout, result.stderr


def findings(root: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    code, out, _ = run(root, "validate", "--format", "json", *args)
    return code, json.loads(out)


Change = Callable[[RepoBuilder], None]


def _set(path: str, old: str, new: str) -> Change:
    def change(b: RepoBuilder) -> None:
        target = b.root / path
        text = target.read_text()
        assert old in text, (old, text)
        target.write_text(text.replace(old, new, 1))

    return change


def _register_v4(input_info: str = SAME_INPUT, point: bool = True) -> Change:
    def change(b: RepoBuilder) -> None:
        add_version(b, 4, input_info=input_info)
        if point:
            b.pointer("iris", "prod", "v4")

    return change


def _delete_model(b: RepoBuilder) -> None:
    remove_tree(b, "models/iris")
    remove_tree(b, "pointers/iris")


def _without_dvc(b: RepoBuilder) -> None:
    _register_v4(point=False)(b)
    b.remove("models/iris/artifacts/v4/model.skops.dvc")


def _delete_v1(b: RepoBuilder) -> None:
    b.remove("models/iris/versions/1.yaml")
    b.remove("models/iris/artifacts/v1/model.skops.dvc")


V1, V2, V3 = (f"models/iris/versions/{n}.yaml" for n in (1, 2, 3))
PROD = "pointers/iris/prod.yaml"

# Changes every rule lets through.
GOOD: dict[str, Change] = {
    "register v4 and move prod": _register_v4(),
    "move prod to a compatible superset": _register_v4(SAME_INPUT + "  dtype: float32\n"),
    "edit a patchable field": _set(V2, "accuracy: 0.92", "accuracy: 0.93"),
    "deprecate a version": _set(
        V1, "status: trained\n", f"status: trained\ndeprecated_at: {FIXED_DATE}\n"
    ),
    "status forward": lambda b: add_version(b, 3, "trained"),
    "delete the whole model": _delete_model,
    "pointer to a tag": lambda b: b.pointer("iris", "champion", "staging"),
    "pointer to a version id": lambda b: b.pointer("iris", "pinned", "mv_0000000000000002"),
    "pointer to latest": lambda b: b.pointer("iris", "newest", "latest"),
    "archive a model": _set(
        "models/other/model.yaml", "created_at", f"archived_at: {FIXED_DATE}\ncreated_at"
    ),
}

# A bad change -> the finding it must produce: (code, file, line).
BAD: dict[str, tuple[Change, tuple[str, str, int | None]]] = {
    "artifact md5 edited": (
        lambda b: (
            _set(V2, MD5[2], MD5[7])(b),
            b.write("models/iris/artifacts/v2/model.skops.dvc", dvc_text(2, MD5[7])),
        ),
        ("immutable-field", V2, 7),
    ),
    "created_at edited": (
        _set(V2, f"created_at: {FIXED_DATE}", "created_at: 2020-01-01T00:00:00Z"),
        ("immutable-field", V2, 4),
    ),
    "version deleted": (_delete_v1, ("deleted-version", V1, None)),
    "version number reused": (
        _set(V2, "mv_0000000000000002", "mv_00000000000000ff"),
        ("version-reused", V2, 1),
    ),
    "new version below the base's highest": (
        lambda b: (
            b.remove(V2),
            b.remove("models/iris/artifacts/v2/model.skops.dvc"),
            b.commit("drop v2"),
            add_version(b, 2, vid="mv_00000000000000fe"),
        ),
        ("version-reused", V2, 2),
    ),
    "status backwards": (
        _set(V2, "status: trained", "status: training"),
        ("status-backwards", V2, 3),
    ),
    "status out of failed": (
        lambda b: (add_version(b, 3, "failed"), b.commit("fail v3"), add_version(b, 3, "trained")),
        ("status-backwards", V3, 3),
    ),
    "dangling pointer": (lambda b: b.pointer("iris", "prod", "v9"), ("dangling-pointer", PROD, 1)),
    "pointer to a missing tag": (
        lambda b: b.pointer("iris", "prod", "nope"),
        ("dangling-pointer", PROD, 1),
    ),
    "pointer to a missing id": (
        lambda b: b.pointer("iris", "prod", "mv_00000000000000aa"),
        ("dangling-pointer", PROD, 1),
    ),
    "pointer of a missing model": (
        lambda b: b.pointer("ghost", "prod", "v1"),
        ("dangling-pointer", "pointers/ghost/prod.yaml", None),
    ),
    "pointer cycle": (
        lambda b: (b.pointer("iris", "a", "b"), b.pointer("iris", "b", "a")),
        ("pointer-cycle", "pointers/iris/a.yaml", 1),
    ),
    "pointer to untrained": (
        lambda b: b.pointer("iris", "prod", "v3"),
        ("pointer-untrained", PROD, 1),
    ),
    "reserved tag v<n>": (
        lambda b: b.pointer("iris", "v2", "v1"),
        ("reserved-tag", "pointers/iris/v2.yaml", None),
    ),
    "reserved tag latest": (
        lambda b: b.pointer("iris", "latest", "v1"),
        ("reserved-tag", "pointers/iris/latest.yaml", None),
    ),
    "malformed YAML": (
        lambda b: b.write("models/iris/model.yaml", "name: iris\ndescription: [unclosed\n"),
        ("invalid-yaml", "models/iris/model.yaml", 3),
    ),
    "unknown key": (_set(V2, "train_info:", "acuracy: 0.9\ntrain_info:"), ("unknown-key", V2, 12)),
    "wrong type": (_set(V2, "size: 100", "size: big"), ("schema", V2, 8)),
    ".dvc md5 disagrees": (
        lambda b: b.write("models/iris/artifacts/v2/model.skops.dvc", dvc_text(2, MD5[8])),
        ("dvc-mismatch", "models/iris/artifacts/v2/model.skops.dvc", 2),
    ),
    ".dvc size disagrees": (
        lambda b: b.write("models/iris/artifacts/v2/model.skops.dvc", dvc_text(2, size=5)),
        ("dvc-mismatch", "models/iris/artifacts/v2/model.skops.dvc", 3),
    ),
    ".dvc missing": (_without_dvc, ("dvc-missing", "models/iris/versions/4.yaml", 6)),
    "name mismatch": (
        _set("models/iris/model.yaml", "name: iris", "name: irises"),
        ("name-mismatch", "models/iris/model.yaml", 1),
    ),
    "version field mismatch": (_set(V2, "version: 2", "version: 5"), ("version-number", V2, 2)),
    "version file name": (
        lambda b: b.write("models/iris/versions/04.yaml", version_text(4)),
        ("version-number", "models/iris/versions/04.yaml", None),
    ),
    "duplicate id": (
        lambda b: add_version(b, 4, vid="mv_0000000000000002"),
        ("duplicate-id", "models/iris/versions/4.yaml", 1),
    ),
    "trained without artifact": (
        lambda b: b.write(V3, version_text(3, "untrained").replace("untrained", "trained")),
        ("missing-artifact", V3, 3),
    ),
    "invalid model name": (
        lambda b: b.model("Bad_Name"),
        ("invalid-name", "models/Bad_Name/model.yaml", None),
    ),
    "model dir without model.yaml": (
        lambda b: b.write("models/lost/versions/1.yaml", version_text(1)),
        ("missing-model", "models/lost/model.yaml", None),
    ),
    "protected pointer to incompatible input": (
        _register_v4("input_info:\n  feature_names: [a, c]\n"),
        ("protected-pointer-schema", PROD, 1),
    ),
}

# Rules about the change itself need --base; the others fail in both modes.
CHANGE_ONLY = {
    "artifact md5 edited",
    "created_at edited",
    "version deleted",
    "version number reused",
    "new version below the base's highest",
    "status backwards",
    "status out of failed",
    "protected pointer to incompatible input",
}


@pytest.mark.parametrize("mode", ["full", "base"])
@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_change_passes(base: RepoBuilder, name: str, mode: str) -> None:
    GOOD[name](base)
    args = ["--base", "main"] if mode == "base" else []
    code, found = findings(base.root, *args)
    assert [f for f in found if f["severity"] == "error"] == []
    assert code == 0


# Rules about the change itself are only checked with --base.
BAD_CASES = [
    (n, m) for n in sorted(BAD) for m in ("full", "base") if m == "base" or n not in CHANGE_ONLY
]


@pytest.mark.parametrize(("name", "mode"), BAD_CASES)
def test_bad_change_fails_with_file_line_and_code(base: RepoBuilder, name: str, mode: str) -> None:
    change, (code, file, line) = BAD[name]
    change(base)
    args = ["--base", "main"] if mode == "base" else []
    exit_code, found = findings(base.root, *args)
    assert exit_code == 1
    assert {"severity": "error", "code": code, "file": file, "line": line} in [
        {k: f[k] for k in ("severity", "code", "file", "line")} for f in found
    ], found


def test_change_rules_pass_without_base(base: RepoBuilder) -> None:
    """Editing an immutable field is only wrong relative to a base: the snapshot itself is fine."""
    _set(V2, "status: trained", "status: training")(base)
    assert findings(base.root)[0] == 0


def test_committed_change_is_checked_with_rev(base: RepoBuilder) -> None:
    git(base.root, "checkout", "-q", "-b", "pr")
    _delete_v1(base)
    base.commit("delete v1")
    git(base.root, "checkout", "-q", "main")
    code, found = findings(base.root, "--rev", "pr", "--base", "main")
    assert code == 1
    assert [(f["code"], f["file"]) for f in found] == [
        ("deleted-version", V1),
        ("dangling-pointer", PROD),
    ]
    assert findings(base.root, "--rev", "main", "--base", "main") == (0, [])


def test_base_checks_only_what_the_change_touched(base: RepoBuilder) -> None:
    base.write("models/other/model.yaml", "name: other\ncreated_at: never\n")
    base.commit("break other")
    _register_v4()(base)
    code, out, _ = run(base.root, "validate", "--base", "main")
    assert code == 0, out
    assert "1 model(s)" in out.splitlines()[-1]
    code, found = findings(base.root)
    assert code == 1
    assert [f["file"] for f in found] == ["models/other/model.yaml"]


def test_one_bad_file_does_not_hide_another(base: RepoBuilder) -> None:
    base.write(V1, "id: [\n")
    _set(V2, "train_info:", "bogus: 1\ntrain_info:")(base)
    _, found = findings(base.root)
    assert [(f["file"], f["code"]) for f in found] == [(V1, "invalid-yaml"), (V2, "unknown-key")]


def test_text_output_and_summary(base: RepoBuilder) -> None:
    base.pointer("iris", "prod", "v9")
    code, out, _ = run(base.root, "validate")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (
        "pointers/iris/prod.yaml:1: error [dangling-pointer] iris:prod targets v9, which does not exist"
    )
    assert lines[-1].startswith("mreg validate work tree: failed: 1 error(s), 0 warning(s)")


def test_github_annotations(base: RepoBuilder) -> None:
    base.pointer("iris", "prod", "v9")
    _delete_v1(base)
    base.write("models/iris/stray.txt", "notes\n")
    code, out, _ = run(base.root, "validate", "--base", "main", "--format", "github")
    assert code == 1
    assert out.splitlines() == [
        "::warning file=models/iris/stray.txt,title=mreg stray-file::not part of the registry layout",
        f"::error file={V1},title=mreg deleted-version::v1 (mv_0000000000000001) was deleted:"
        " versions are never deleted; deprecate it, or archive the model",
        "::error file=pointers/iris/prod.yaml,line=1,title=mreg dangling-pointer::iris:prod targets v9,"
        " which does not exist",
        "mreg validate work tree against main: failed: 2 error(s), 1 warning(s)"
        " (1 model(s), 2 pointer(s) checked)",
    ]


def test_github_annotation_escapes_newlines_and_separators() -> None:
    from registry import Finding
    from tool.validate_cmd import github_annotation

    finding = Finding("error", "schema", "a,b:c.yaml", 3, "50% bad\nsecond line")
    assert github_annotation(finding) == (
        "::error file=a%2Cb%3Ac.yaml,line=3,title=mreg schema::50%25 bad%0Asecond line"
    )


def test_warnings_do_not_fail(base: RepoBuilder) -> None:
    base.write("models/iris/README.md", "notes\n")
    code, found = findings(base.root)
    assert code == 0
    assert [(f["severity"], f["code"]) for f in found] == [("warning", "stray-file")]


@pytest.mark.parametrize("option", ["--rev", "--base"])
def test_unknown_revision_is_one_error_line(base: RepoBuilder, option: str) -> None:
    code, _, err = run(base.root, "validate", option, "no-such-branch")
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: revision 'no-such-branch' not found in {base.root}"
    ]


def test_deep_pointer_chain(base: RepoBuilder) -> None:
    for i in range(20):
        base.pointer("iris", f"p{i}", f"p{i + 1}")
    base.pointer("iris", "p20", "v1")
    _, found = findings(base.root)
    assert {f["code"] for f in found} == {"pointer-too-deep"}


def test_check_artifacts(showcase: object) -> None:
    from tests.showcase import Showcase

    assert isinstance(showcase, Showcase)
    root = showcase.root
    code, out, _ = run(root, "validate", "--check-artifacts")
    assert code == 0, out
    reg = showcase.registry()
    version = reg.snapshot("HEAD").version("iris", 2)
    md5 = version.artifact.md5
    for store in (root / ".dvc" / "cache", showcase.storage):
        obj = store / "files" / "md5" / md5[:2] / md5[2:]
        if obj.exists():
            obj.chmod(0o644)
            obj.unlink()
    code, found = findings(root, "--check-artifacts")
    assert code == 1
    text = (root / "models/iris/versions/2.yaml").read_text().splitlines()
    md5_line = next(i for i, line in enumerate(text, 1) if line.strip().startswith("md5:"))
    assert [(f["code"], f["file"], f["line"]) for f in found] == [
        ("artifact-unavailable", "models/iris/versions/2.yaml", md5_line)
    ]
    # Without the flag the artifact bytes are not looked at.
    assert findings(root)[0] == 0


def test_showcase_is_valid_and_register_then_validate_with_base(showcase: object) -> None:
    from tests.showcase import Showcase

    assert isinstance(showcase, Showcase)
    assert findings(showcase.root) == (0, [])
    assert findings(showcase.root, "--base", showcase.release) == (0, [])


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "registry.yaml").is_file(), reason="no example registry yet")
def test_project_example_registry_is_valid() -> None:
    code, out, _ = run(ROOT, "validate", "--rev", "HEAD")
    assert code == 0, out
