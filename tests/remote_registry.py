"""A showcase registry published as a real remote: a bare git repository and a local DVC remote.

What a pod sees: the registry at a git URL (`file://...` here), whose committed
`.dvc/config` names the DVC remote by an absolute path, so a fresh clone with
an empty cache fetches the artifacts from it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.showcase import Showcase


@dataclass
class RemoteRegistry:
    show: Showcase
    bare: Path

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def push(self) -> None:
        git(self.show.root, "push", "-q", "--follow-tags", "origin", "HEAD:refs/heads/main")


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def publish(show: Showcase, bare: Path) -> RemoteRegistry:
    """Commit the DVC remote's absolute path, push every branch and tag to a new bare repository."""
    root = show.root
    (root / ".dvc" / "config.local").unlink(missing_ok=True)
    config = root / ".dvc" / "config"
    lines = [
        f"    url = {show.storage}" if line.strip().startswith("url =") else line
        for line in config.read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")
    git(root, "add", ".dvc/config")
    git(root, "commit", "-q", "-m", "dvc: the remote by its absolute path")
    git(bare.parent, "init", "-q", "--bare", str(bare))
    git(root, "remote", "add", "origin", str(bare))
    git(root, "push", "-q", "origin", "HEAD:refs/heads/main", "--tags")
    return RemoteRegistry(show, bare)
