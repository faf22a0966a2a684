"""The package users get: the wheel built from the project's files, installed without the source tree.

The test suite imports the source tree (`pythonpath = ["."]`), so a module missing from the
wheel goes unnoticed there. Here the wheel is built from the files git would ship, installed
`--no-deps` into a fresh venv whose only way to the third-party dependencies is a `.pth` line
naming the shared venv's site-packages (lines of a `.pth` join `sys.path` but the `.pth` files in
that directory are not processed, so nothing there can point back at the source tree), and every
command runs from a directory outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.processes import ROOT

SHARED_SITE = Path(sysconfig.get_paths()["purelib"])


def shipped_tree(dest: Path) -> Path:
    """A copy of the files a clone would hold (tracked and new, not ignored)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(name))
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel and nothing of the source tree; returns its bin/ directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = shipped_tree(tmp / "src")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(src),
            "-w",
            str(tmp / "dist"),
        ],
        check=True,
        cwd=tmp,
    )
    (wheel,) = (tmp / "dist").glob("mreg-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "shared-deps.pth").write_text(f"{SHARED_SITE}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        cwd=tmp,
    )
    return venv / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    if ok:
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


@pytest.mark.slow
def test_the_wheel_runs_without_the_source_tree(installed: Path, tmp_path: Path) -> None:
    where = run(
        installed,
        tmp_path,
        "python",
        "-c",
        "import registry, server, tool; print(registry.__file__)",
    )
    assert str(installed.parent) in where.stdout and str(ROOT) not in where.stdout
    # Every subpackage of the source tree is in the wheel.
    for pkg in sorted({p.parent for p in ROOT.glob("[rst]*/**/__init__.py")}):
        dotted = ".".join(pkg.relative_to(ROOT).parts)
        if dotted.split(".")[0] in {"registry", "server", "tool"}:
            run(installed, tmp_path, "python", "-c", f"import {dotted}")

    repo = tmp_path / "reg"
    run(installed, tmp_path, "mreg", "init", str(repo))
    run(
        installed,
        repo,
        "python",
        "-c",
        "import skops.io; from sklearn.datasets import load_iris;"
        "from sklearn.linear_model import LogisticRegression;"
        "x, y = load_iris(return_X_y=True);"
        "skops.io.dump(LogisticRegression(max_iter=300).fit(x, y), '../model.skops')",
    )
    run(installed, repo, "mreg", "model", "create", "iris", "--library", "sklearn", "--public")
    assert (
        "register v1" in run(installed, repo, "mreg", "register", "iris", "../model.skops").stdout
    )
    assert "iris" in run(installed, repo, "mreg", "model", "list").stdout
    run(installed, repo, "mreg", "validate")
    assert '"version": 1' in run(installed, repo, "mreg", "resolve", "iris:latest", "--json").stdout
    assert '"revision"' in run(installed, repo, "mreg", "serve", "--get", "/v1/registry").stdout
    page = run(installed, repo, "mreg", "serve", "--get", "/ui/").stdout
    assert "iris" in page and "<html" in page.lower()
    for static in ("ui.css", "ui.js"):
        body = run(installed, repo, "mreg", "serve", "--get", f"/ui/static/{static}").stdout
        assert body.strip(), static


@pytest.mark.slow
def test_the_shipped_pre_commit_hooks_install_and_check(installed: Path, tmp_path: Path) -> None:
    repo = tmp_path / "reg"
    run(installed, tmp_path, "mreg", "init", str(repo))
    run(installed, repo, "mreg", "model", "create", "iris", "--library", "sklearn")
    manifest = repo / "models" / "iris" / "model.yaml"
    good = manifest.read_text()
    manifest.write_text(good.replace("library: sklearn", "library: [not, a, library]"))
    run(installed, repo, "git", "add", "-A")
    # pre-commit installs the hooks' repository with `pip install .` into an env of its own: give
    # it the shared dependencies (PYTHONPATH) and only the project itself to install.
    hook_env = [
        "env",
        f"PRE_COMMIT_HOME={tmp_path / 'pre-commit-home'}",
        f"PYTHONPATH={SHARED_SITE}",
        "PIP_NO_DEPS=1",
        "PIP_NO_BUILD_ISOLATION=0",
    ]
    precommit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert precommit, "pre-commit is a dev dependency (pyproject.toml)"
    src = shipped_tree(tmp_path / "hooks-src")
    run(installed, src, "git", "init", "-q")
    run(installed, src, "git", "add", "-A")
    run(installed, src, "git", "commit", "-q", "-m", "hooks")
    for hook in ("mreg-validate", "mreg-validate-change"):
        failed = run(installed, repo, *hook_env, precommit, "try-repo", str(src), hook, ok=False)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "models/iris/model.yaml" in failed.stdout, failed.stdout
        assert "ModuleNotFoundError" not in failed.stdout
    manifest.write_text(good)
    run(installed, repo, "git", "add", "-A")
    for hook in ("mreg-validate", "mreg-validate-change"):
        passed = run(installed, repo, *hook_env, precommit, "try-repo", str(src), hook, ok=False)
        assert passed.returncode == 0, passed.stdout + passed.stderr
