"""The mreg CLI over real repositories: exit codes, output, files, commits, tags, the DVC remote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import git
from tests.showcase import Showcase
from tool.cli import cli


def mreg(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(root), *args], catch_exceptions=False)


def ok(root: Path, *args: str) -> Result:
    result = mreg(root, *args)
    assert result.exit_code == 0, result.output
    return result


def status(root: Path) -> str:
    out = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "reg"
    ok(path, "init", str(path))
    ok(path, "model", "create", "iris", "--library", "sklearn", "--public", "--label", "team=ml")
    return path


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.skops"
    path.write_bytes(b"model bytes")
    return path


def test_init_then_register_end_to_end(root: Path, artifact: Path, tmp_path: Path) -> None:
    info = tmp_path / "input.yaml"
    info.write_text("features: [a, b]\n")
    result = ok(
        root,
        "register",
        "iris",
        str(artifact),
        "--metric",
        "accuracy=0.97",
        "--param",
        "C=1",
        "--input-info",
        str(info),
        "--point",
        "prod",
    )
    assert result.stdout.startswith("registered iris:v1 (mv_")
    assert result.stdout.rstrip().endswith("point prod, tag iris@v1")
    vid = result.stdout.split("(")[1].split(")")[0]
    assert git(root, "log", "-1", "--format=%s") == f"iris: register v1 ({vid}), point prod"
    assert "Mreg-Action: register" in git(root, "log", "-1", "--format=%b")
    assert git(root, "describe", "--tags", "--exact-match") == "iris@v1"
    manifest = (root / "models/iris/versions/1.yaml").read_text()
    assert "accuracy: 0.97" in manifest and "features:" in manifest
    md5 = manifest.split("md5: ")[1].split()[0]
    assert f"md5: {md5}" in (root / "models/iris/artifacts/v1/model.skops.dvc").read_text()
    pushed = root / ".dvc/storage/files/md5" / md5[:2] / md5[2:]
    assert pushed.read_bytes() == artifact.read_bytes()
    assert status(root) == ""


def test_reads_print_tables_and_json(root: Path, artifact: Path) -> None:
    ok(root, "register", "iris", str(artifact), "--point", "prod")
    ok(root, "register", "iris", str(artifact))
    out = ok(root, "model", "list").stdout.splitlines()
    assert out[0].split() == [
        "NAME",
        "LIBRARY",
        "PROJECT",
        "VERSIONS",
        "LATEST",
        "POINTERS",
        "PUBLIC",
        "ARCHIVED",
    ]
    assert out[1].split() == ["iris", "sklearn", "-", "2", "v2", "prod", "yes", "no"]
    rows = json.loads(ok(root, "model", "list", "--json").stdout)
    assert rows[0]["name"] == "iris" and rows[0]["latest"]["version"] == 2
    assert rows[0]["versions_count"] == 2
    resolved = json.loads(ok(root, "resolve", "iris:prod", "--json").stdout)
    assert {k: resolved[k] for k in ("ref", "model", "version", "chain")} == {
        "ref": "iris:prod",
        "model": "iris",
        "version": 1,
        "chain": ["iris:prod", "iris:v1"],
    }
    assert resolved["id"].startswith("mv_")
    listing = ok(root, "version", "list", "iris").stdout
    assert "latest" in listing.splitlines()[2] and "prod" in listing.splitlines()[1]
    shown = json.loads(ok(root, "version", "show", "iris:prod", "--json").stdout)
    assert shown["version"] == 1 and shown["artifact"]["format"] == "skops"
    pointers = json.loads(ok(root, "pointer", "list", "--json").stdout)
    assert [(p["ref"], p["version"]) for p in pointers] == [("iris:prod", 1)]
    model = json.loads(ok(root, "model", "show", "iris", "--json").stdout)
    assert model["labels"] == {"team": "ml"} and len(model["versions"]) == 2
    assert model["pointers"][0]["resolves_to"]["version"] == 1


def test_model_json_is_the_apis_shape(showcase: Showcase) -> None:
    """`model list --json` and `model show --json` print a model as GET /v1/models[/{m}] does
    (the API adds `last_used_at`, from the server's usage records)."""
    listed = json.loads(ok(showcase.root, "model", "list", "--json").stdout)
    api = json.loads(ok(showcase.root, "serve", "--get", "/v1/models?limit=100").stdout)["models"]
    assert api, "the showcase has public models"
    by_name = {m["name"]: m for m in listed}
    for model in api:
        assert model.pop("last_used_at") is None
        assert by_name[model["name"]] == model
    shown = json.loads(ok(showcase.root, "model", "show", "iris", "--json").stdout)
    served = json.loads(ok(showcase.root, "serve", "--get", "/v1/models/iris").stdout)
    served.pop("last_used_at")
    assert shown == served
    assert shown["latest"] == {"version": 3, "id": shown["versions"][2]["id"]}


def test_resolve_at_a_revision(showcase: Showcase) -> None:
    assert ok(showcase.root, "resolve", "iris:prod").stdout.startswith("iris:v2 ")
    ok(showcase.root, "point", "iris:prod", "v3")
    assert ok(showcase.root, "resolve", "iris:prod").stdout.startswith("iris:v3 ")
    old = ok(showcase.root, "resolve", "iris:prod", "--rev", showcase.release)
    assert old.stdout.startswith("iris:v2 ")


def test_point_and_pointer_history(showcase: Showcase) -> None:
    ok(showcase.root, "point", "iris:prod", "v3", "--description", "production traffic")
    assert git(showcase.root, "log", "-1", "--format=%s") == "iris: move prod v2 -> v3"
    history = json.loads(ok(showcase.root, "pointer", "history", "iris:prod", "--json").stdout)
    assert [(h["from_version"], h["version"]) for h in history] == [(2, 3), (None, 2)]
    table = ok(showcase.root, "pointer", "history", "iris:prod").stdout.splitlines()
    assert table[0].split()[:5] == ["DATE", "COMMIT", "AUTHOR", "FROM", "TO"]
    shown = ok(showcase.root, "pointer", "show", "iris:champion").stdout
    assert "iris:champion -> iris:prod -> iris:v3" in shown


def test_log_reads_the_trailers(showcase: Showcase) -> None:
    entries = json.loads(ok(showcase.root, "log", "iris", "--json").stdout)
    assert entries[0]["action"] == "point" and entries[0]["model"] == "iris"
    registered = [e["version"] for e in entries if e["action"] == "register"]
    assert registered == [3, 2, 1]
    table = ok(showcase.root, "log", "-n", "2").stdout.splitlines()
    assert len(table) == 3 and "legacy: archive model" in table[1]


def test_model_lifecycle(root: Path) -> None:
    ok(root, "model", "update", "iris", "--description", "Iris", "--remove-label", "team")
    assert git(root, "log", "-1", "--format=%s") == "iris: update model (description, labels)"
    ok(root, "model", "archive", "iris")
    assert "iris" not in ok(root, "model", "list").stdout
    assert "iris" in ok(root, "model", "list", "--archived").stdout
    ok(root, "model", "restore", "iris")
    ok(root, "model", "delete", "iris", "--yes")
    assert git(root, "log", "-1", "--format=%s") == "iris: delete model"
    assert not (root / "models/iris").exists()
    assert status(root) == ""


def test_untrained_then_trained(root: Path, artifact: Path) -> None:
    ok(root, "register", "iris", "--untrained")
    ok(root, "version", "status", "iris:v1", "training")
    out = ok(root, "version", "status", "iris:v1", "trained", "--artifact", str(artifact))
    assert "iris: v1 training -> trained" in out.stdout
    assert (root / "models/iris/artifacts/v1/model.skops.dvc").is_file()


def test_version_update(root: Path, artifact: Path) -> None:
    ok(root, "register", "iris", str(artifact))
    ok(root, "register", "iris", str(artifact))
    ok(root, "version", "update", "iris:v2", "--notes", "bad data", "--deprecate")
    assert json.loads(ok(root, "resolve", "iris", "--json").stdout)["version"] == 1
    ok(root, "version", "update", "iris:v2", "--undeprecate", "--metadata", "run=42")
    assert "run: '42'" in (root / "models/iris/versions/2.yaml").read_text()


def test_no_commit_and_branch(root: Path, artifact: Path) -> None:
    before = git(root, "rev-parse", "HEAD")
    out = ok(root, "register", "iris", str(artifact), "--no-commit").stdout
    assert "staged 3 file(s), not committed" in out
    assert git(root, "rev-parse", "HEAD") == before
    assert "A  models/iris/versions/1.yaml" in status(root)
    git(root, "commit", "-qm", "by hand")
    out = ok(root, "point", "iris:prod", "v1", "--branch", "promote").stdout
    assert "on branch promote" in out
    assert git(root, "branch", "--show-current") == "main"
    assert not (root / "pointers/iris/prod.yaml").exists()
    assert git(root, "log", "-1", "--format=%s", "promote") == "iris: point prod -> v1"


def test_pull(showcase: Showcase) -> None:
    target = showcase.root / "models/churn/artifacts/v1/churn.joblib"
    target.unlink()
    out = ok(showcase.root, "pull", "churn:v1").stdout.splitlines()
    assert out[1].split() == ["churn:v1", "models/churn/artifacts/v1/churn.joblib", "pulled"]
    assert target.is_file()


BAD = [
    pytest.param(["register", "nope", "{artifact}"], "model 'nope' not found", id="missing-model"),
    pytest.param(["register", "iris", "{tmp}/missing.skops"], "does not exist", id="missing-file"),
    pytest.param(["register", "iris", "{tmp}/empty.skops"], "is empty", id="empty-file"),
    pytest.param(["register", "iris", "{tmp}/model.weird"], "--format", id="unknown-format"),
    pytest.param(["register", "iris"], "give an artifact", id="no-artifact"),
    pytest.param(["point", "iris:prod", "v7"], "v7, which does not exist", id="missing-version"),
    pytest.param(["point", "iris:latest", "v1"], "reserved", id="reserved-latest"),
    pytest.param(["point", "iris:v3", "v1"], "reserved", id="reserved-vn"),
    pytest.param(["point", "iris:b", "a"], "cycle", id="cycle"),
    pytest.param(["model", "create", "Bad Name"], "invalid model name", id="invalid-name"),
    pytest.param(["model", "create", "iris"], "exists already", id="model-exists"),
    pytest.param(["model", "delete", "iris"], "needs --yes", id="delete-without-yes"),
    pytest.param(
        ["version", "update", "iris:v1", "--set", "id=mv_12345678"], "immutable", id="immutable"
    ),
    pytest.param(
        ["version", "status", "iris:v1", "training"], "cannot become training", id="status-back"
    ),
    pytest.param(["pointer", "delete", "iris:nope"], "not found", id="missing-pointer"),
    pytest.param(["resolve", "iris:nope"], "pointer iris:nope not found", id="resolve-missing"),
    pytest.param(
        ["model", "update", "iris", "--set", "bogus=1"], "unknown model field", id="unknown-field"
    ),
    pytest.param(
        ["register", "iris", "{artifact}", "--branch", "a..b"], "invalid branch", id="bad-branch"
    ),
    pytest.param(
        ["register", "iris", "{artifact}", "--input-info", "{tmp}/none.yaml"],
        "--input-info: cannot read",
        id="missing-input-info",
    ),
    pytest.param(
        ["point", "iris:prod", "v1", "--branch", "x", "--no-commit"],
        "cannot be used together",
        id="branch-and-no-commit",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_exit_1_and_changes_nothing(
    root: Path, artifact: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    ok(root, "register", "iris", str(artifact))
    ok(root, "point", "iris:a", "v1")
    ok(root, "point", "iris:b", "v1")
    ok(root, "point", "iris:a", "b")
    (tmp_path / "empty.skops").write_bytes(b"")
    (tmp_path / "model.weird").write_bytes(b"x")
    before = git(root, "rev-parse", "HEAD")
    tags = git(root, "tag")
    filled = [a.format(artifact=artifact, tmp=tmp_path) for a in args]
    result = mreg(root, *filled)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert git(root, "rev-parse", "HEAD") == before and git(root, "tag") == tags
    assert status(root) == ""


def test_outside_a_registry(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--repo", str(tmp_path), "model", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "mreg init" in result.stderr


def test_a_hand_edited_manifest_that_no_longer_validates(root: Path) -> None:
    path = root / "models/iris/model.yaml"
    path.write_text(path.read_text() + "colour: blue\n")
    result = mreg(root, "model", "update", "iris", "--description", "x")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: models/iris/model.yaml: uncommitted changes")
    listing = mreg(root, "model", "list")
    assert listing.exit_code == 1
    assert listing.stderr.strip() == "error: models/iris/model.yaml:7: unknown key 'colour'"


def test_two_cli_processes_register_at_once(root: Path, artifact: Path) -> None:
    import sys

    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tool.cli import main; main()",
                "--repo",
                str(root),
                "register",
                "iris",
                str(artifact),
            ],
            cwd=Path(__file__).parent.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    numbers = sorted(o[0].split()[1] for o in outs)
    assert numbers == ["iris:v1", "iris:v2"]
    assert status(root) == ""
