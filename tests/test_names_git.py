"""Names git cannot use are refused before any commit; odd artifact file names are escaped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import InvalidNameError, Registry, check_model_name, check_tag
from registry.names import MODEL_NAME_RE, TAG_RE
from tests.conftest import RepoBuilder, git
from tool.cli import cli

GIT_REFUSES = ["a..b", "iris.", "iris.lock", "a...b", "x..", "v1..2"]


def mreg(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(root), *args])


def ref_ok(ref: str) -> bool:
    return subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode == 0


@pytest.mark.parametrize("name", GIT_REFUSES)
def test_names_git_cannot_tag_are_invalid(name: str) -> None:
    assert MODEL_NAME_RE.fullmatch(name)  # the alphabet alone would take them
    assert not ref_ok(f"refs/tags/{name}")  # git refuses it as a ref name
    with pytest.raises(InvalidNameError, match="git"):
        check_model_name(name)
    with pytest.raises(InvalidNameError, match="git"):
        check_tag(name)


@settings(max_examples=150, deadline=None)
@given(st.from_regex(MODEL_NAME_RE, fullmatch=True))
def test_every_accepted_model_name_makes_a_valid_git_tag(name: str) -> None:
    try:
        check_model_name(name)
    except InvalidNameError:
        return
    assert ref_ok(f"refs/tags/{name}@v1"), name
    assert ref_ok(f"refs/tags/{name}@v123"), name


@settings(max_examples=150, deadline=None)
@given(st.from_regex(TAG_RE, fullmatch=True))
def test_every_accepted_tag_is_a_valid_git_ref_name(tag: str) -> None:
    try:
        check_tag(tag, allow_reserved=True)
    except InvalidNameError:
        return
    assert ref_ok(f"refs/tags/{tag}"), tag


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "reg"
    Registry.init(path)
    return path


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.skops"
    path.write_bytes(b"model bytes")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["model", "create", "a..b"],
        ["register", "a..b", "{artifact}", "--create"],
        ["register", "iris.lock", "{artifact}", "--create"],
    ],
)
def test_cli_refuses_before_committing(root: Path, artifact: Path, args: list[str]) -> None:
    head = git(root, "rev-parse", "HEAD")
    result = mreg(root, *(a.format(artifact=artifact) for a in args))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error: invalid model name")
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "tag") == ""


def test_a_pointer_tag_git_refuses_is_refused(root: Path, artifact: Path) -> None:
    Registry(root).register("iris", artifact, create=True)
    head = git(root, "rev-parse", "HEAD")
    result = mreg(root, "point", "iris:prod..old", "v1")
    assert result.exit_code == 1 and "invalid" in result.output
    assert git(root, "rev-parse", "HEAD") == head


def test_validate_reports_such_names(builder: RepoBuilder) -> None:
    builder.model("a..b")
    builder.version("a..b", 1, status="untrained")
    builder.model("iris")
    builder.version("iris", 1, status="untrained")
    builder.pointer("iris", "x.lock", "v1")
    builder.commit()
    result = mreg(builder.root, "validate", "--rev", "HEAD")
    assert result.exit_code == 1
    assert "models/a..b/model.yaml: error [invalid-name]" in result.output
    assert "pointers/iris/x.lock.yaml: error [invalid-name]" in result.output


ODD_NAMES = ["model[1]:v2.skops", "#notes!.skops", "star*?.skops", "a: b.skops", "- x.skops"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_artifact_file_names_are_escaped(root: Path, tmp_path: Path, name: str) -> None:
    src = tmp_path / "src" / name
    src.parent.mkdir()
    src.write_bytes(b"odd model bytes")
    result = mreg(root, "register", "m", str(src), "--format", "skops", "--create")
    assert result.exit_code == 0, result.output
    folder = root / "models" / "m" / "artifacts" / "v1"
    dvc = yaml.safe_load((folder / f"{name}.dvc").read_text())
    assert dvc["outs"][0]["path"] == name
    assert (folder / name).read_bytes() == b"odd model bytes"
    # The .gitignore pattern matches exactly the artifact: it stays out of git.
    assert git(root, "status", "--porcelain") == ""
    ignored = git(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "models")
    assert ignored.split("\0") == [f"models/m/artifacts/v1/{name}", ""]
    assert mreg(root, "validate", "--rev", "HEAD").exit_code == 0
    (folder / name).unlink()
    pulled = mreg(root, "pull")
    assert pulled.exit_code == 0, pulled.output
    assert (folder / name).read_bytes() == b"odd model bytes"


@pytest.mark.parametrize(
    "name", ["new\nline.skops", " lead.skops", "trail.skops ", "back\\slash.skops"]
)
def test_artifact_file_names_that_cannot_be_written_safely_are_refused(
    root: Path, tmp_path: Path, name: str
) -> None:
    src = tmp_path / "src" / name
    src.parent.mkdir()
    src.write_bytes(b"bytes")
    head = git(root, "rev-parse", "HEAD")
    result = mreg(root, "register", "m", str(src), "--format", "skops", "--create")
    assert result.exit_code == 1
    assert result.output.startswith("error: artifact file name") and result.output.count("\n") == 1
    assert git(root, "rev-parse", "HEAD") == head
