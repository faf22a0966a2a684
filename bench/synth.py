"""Synthetic registries, generated fast with `git fast-import` (never through CLI calls).

mreg: the layout of DESIGN.md section 1 (model.yaml, versions/<n>.yaml, the
.dvc pointer of each artifact, two pointers per model) in one commit.
GTO: the layout `gto register` / `gto assign` produce: one commit per version,
an annotated tag `<name>@v0.0.<n>` on it, annotated stage tags
`<name>#prod#1` / `<name>#staging#2`, and an artifacts.yaml listing the models.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench.common import FIXED_DATE, run

EPOCH = 1_795_928_400  # 2026-11-24T05:00:00Z
POINTERS = ("prod", "staging")


def model_name(i: int) -> str:
    return f"model-{i:05d}"


def version_id(model: str, n: int) -> str:
    return "mv_" + hashlib.sha1(f"{model}:{n}".encode()).hexdigest()[:16]


def fake_md5(model: str, n: int) -> str:
    return hashlib.md5(f"{model}:{n}:artifact".encode()).hexdigest()


def model_yaml(name: str, i: int) -> str:
    return (
        f"name: {name}\n"
        f"description: synthetic model {i} for the scale benchmark\n"
        f"project: project-{i % 20:02d}\n"
        "task: classification\n"
        "owner: bench\n"
        "library: sklearn\n"
        f"is_public: {'true' if i % 2 else 'false'}\n"
        "labels:\n"
        f"  team: team-{i % 7}\n"
        f"created_at: {FIXED_DATE}\n"
    )


def version_yaml(name: str, n: int) -> str:
    return (
        f"id: {version_id(name, n)}\n"
        f"version: {n}\n"
        "status: trained\n"
        "artifact:\n"
        f"  path: artifacts/v{n}/model.skops\n"
        f"  md5: {fake_md5(name, n)}\n"
        f"  size: {4000 + n}\n"
        "  library: sklearn\n"
        "  format: skops\n"
        "input_info:\n"
        "  feature_names: [sepal_length, sepal_width, petal_length, petal_width]\n"
        "output_info:\n"
        "  labels: [setosa, versicolor, virginica]\n"
        "train_info:\n"
        "  params:\n"
        "    C: '1.0'\n"
        "  metrics:\n"
        f"    accuracy: {0.9 + n / 1000:.3f}\n"
        f"description: version {n} of {name}\n"
        f"created_at: {FIXED_DATE}\n"
        "created_by: Bench User <bench@example.com>\n"
    )


def dvc_yaml(name: str, n: int) -> str:
    return (
        f"outs:\n- md5: {fake_md5(name, n)}\n  size: {4000 + n}\n  hash: md5\n  path: model.skops\n"
    )


def pointer_yaml(tag: str, versions: int) -> str:
    target = versions if tag == "prod" else max(1, versions - 1)
    return f"target: v{target}\ndescription: {tag} traffic\n"


def mreg_files(models: int, versions: int) -> Iterator[tuple[str, str]]:
    for i in range(models):
        name = model_name(i)
        yield f"models/{name}/model.yaml", model_yaml(name, i)
        for n in range(1, versions + 1):
            yield f"models/{name}/versions/{n}.yaml", version_yaml(name, n)
            yield f"models/{name}/artifacts/v{n}/model.skops.dvc", dvc_yaml(name, n)
        for tag in POINTERS:
            yield f"pointers/{name}/{tag}.yaml", pointer_yaml(tag, versions)


def _data(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return b"data %d\n" % len(raw) + raw + b"\n"


def _git(repo: Path, env: dict[str, str], *args: str) -> str:
    return run(["git", *args], cwd=repo, env=env).stdout.strip()


def _init_base(repo: Path, env: dict[str, str]) -> None:
    """A registry as `mreg init` makes it; written by hand when init is not available."""
    from bench.common import MREG

    made = run([MREG, "init", str(repo)], env=env, check=False)
    if made.returncode != 0 or not (repo / "registry.yaml").is_file():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, env, "init", "-q", "-b", "main")
        (repo / "registry.yaml").write_text("schema_version: 1\nname: bench\n")
        (repo / ".dvc").mkdir(exist_ok=True)
        (repo / ".dvc" / "config").write_text(
            "[core]\n    remote = local\n['remote \"local\"']\n    url = ../remote\n"
        )
        (repo / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    has_head = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo, env=env, capture_output=True
        ).returncode
        == 0
    )
    if not has_head:
        _git(repo, env, "add", "-A")
        _git(repo, env, "commit", "-q", "-m", "init registry")


def make_mreg_registry(repo: Path, models: int, versions: int, env: dict[str, str]) -> Path:
    """A checked-out mreg registry of `models` x `versions` (2 pointers each), in one commit."""
    _init_base(repo, env)
    parent = _git(repo, env, "rev-parse", "HEAD")
    ts = f"{EPOCH} +0000"
    msg = f"bench: {models} models x {versions} versions"
    chunks = [
        b"commit refs/heads/main\n",
        f"committer Bench User <bench@example.com> {ts}\n".encode(),
        _data(msg),
        f"from {parent}\n".encode(),
    ]
    for path, text in mreg_files(models, versions):
        chunks.append(f"M 100644 inline {path}\n".encode())
        chunks.append(_data(text))
    chunks.append(b"done\n")
    run(["git", "fast-import", "--quiet", "--done"], cwd=repo, env=env, input=b"".join(chunks))
    # Populate the work tree and index from the new commit (this repository is ours alone).
    _git(repo, env, "reset", "-q", "--hard", "refs/heads/main")
    return repo


def change_one_version(repo: Path, env: dict[str, str], model: str, n: int) -> str:
    """Commit one patchable edit (a version's description); returns the new commit sha."""
    path = repo / f"models/{model}/versions/{n}.yaml"
    text = path.read_text().replace(f"description: version {n} of", f"description: edited v{n} of")
    path.write_text(text)
    _git(repo, env, "commit", "-q", "-am", f"{model}: edit v{n} description")
    return _git(repo, env, "rev-parse", "HEAD")


def make_gto_registry(
    repo: Path, models: int, versions: int, env: dict[str, str], *, annotations: bool = False
) -> Path:
    """GTO's git-tag layout: a commit per version, annotated register and assign tags.

    With `annotations`, an artifacts.yaml listing every model is committed first;
    GTO then parses it again at every tagged commit, which is far slower (see BENCHMARKS.md).
    """
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, env, "init", "-q", "-b", "main")
    out: list[bytes] = []
    mark = 0
    when = EPOCH

    def commit(message: str, files: list[tuple[str, str]]) -> int:
        nonlocal mark, when
        mark += 1
        when += 1
        out.append(b"commit refs/heads/main\n")
        out.append(f"mark :{mark}\n".encode())
        out.append(f"committer Bench User <bench@example.com> {when} +0000\n".encode())
        out.append(_data(message))
        if mark > 1:
            out.append(f"from :{mark - 1}\n".encode())
        for path, text in files:
            out.append(f"M 100644 inline {path}\n".encode())
            out.append(_data(text))
        return mark

    def tag(name: str, target: int, message: str) -> None:
        nonlocal when
        when += 1
        out.append(f"tag {name}\n".encode())
        out.append(f"from :{target}\n".encode())
        out.append(f"tagger Bench User <bench@example.com> {when} +0000\n".encode())
        out.append(_data(message))

    listing = "".join(
        f"{model_name(i)}:\n  type: model\n  path: models/{model_name(i)}.pkl\n"
        for i in range(models)
    )
    if annotations:
        commit("add artifacts.yaml", [("artifacts.yaml", listing)])
    else:
        commit("start", [("README.md", "models\n")])
    for i in range(models):
        name = model_name(i)
        marks = {}
        for n in range(1, versions + 1):
            marks[n] = commit(f"{name}: train v{n}", [(f"models/{name}.txt", f"{name} v{n}\n")])
            tag(f"{name}@v0.0.{n}", marks[n], f"Registering artifact {name} version v0.0.{n}")
        for counter, stage in enumerate(POINTERS, start=1):
            n = versions if stage == "prod" else max(1, versions - 1)
            tag(
                f"{name}#{stage}#{counter}",
                marks[n],
                f"Assigning stage {stage} to artifact {name} version v0.0.{n}",
            )
    out.append(b"done\n")
    run(["git", "fast-import", "--quiet", "--done"], cwd=repo, env=env, input=b"".join(out))
    _git(repo, env, "reset", "-q", "--hard", "refs/heads/main")
    return repo
