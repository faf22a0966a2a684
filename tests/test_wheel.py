"""The built wheel holds every package of the source tree (an image installs it, not the tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.processes import ROOT

# What deploy/Dockerfile copies into the image before `pip install .`
SOURCES = ("pyproject.toml", "README.md", "registry", "tool", "server")


def test_the_wheel_has_every_subpackage(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip, "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mreg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = [
        init.relative_to(src).as_posix()
        for top in ("registry", "tool", "server")
        for init in (src / top).rglob("__init__.py")
    ]
    assert "server/mlserver/__init__.py" in packages
    assert [p for p in packages if p not in names] == []
