"""What `.dvc` files say (the part mreg checks) and where DVC keeps the artifacts they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from registry.artifacts import cache_file
from registry.remotes import open_dvc, remote_file


class DvcOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str
    md5: str | None = None
    size: int | None = None


class DvcFile(BaseModel):
    """The part of a `.dvc` file mreg checks (DVC writes more keys; they are ignored)."""

    model_config = ConfigDict(extra="ignore")

    outs: list[DvcOut]


class ArtifactStore:
    """Where DVC keeps artifacts for this repository: the local cache and the default remote.

    A local-directory remote is checked on disk; any other remote through DVC's API.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problem: str | None = None
        self._odb: Any = None

    def has(self, md5: str) -> bool:
        """The object is in the local cache or the default remote."""
        if cache_file(self.root, md5).is_file():
            return True
        where = remote_file(self.root, md5)
        if where is None:
            self.problem = "no default DVC remote"
            return False
        if "://" not in where:
            return Path(where).is_file()
        try:
            if self._odb is None:
                self._odb = open_dvc(self.root).cloud.get_remote_odb(None)
            return bool(self._odb.exists(md5))
        except Exception as exc:  # DVC and its filesystems raise many types: all mean "unknown"
            self.problem = f"cannot query the DVC remote: {exc}"
            return False
