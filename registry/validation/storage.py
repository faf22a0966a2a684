"""What `.dvc` files say (the part mreg checks) and where DVC keeps the artifacts they name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from registry.artifacts import cache_file, verified_in_cache
from registry.errors import RegistryError
from registry.remotes import corrupt_local_copy, open_dvc, remote_file

if TYPE_CHECKING:
    from registry.snapshot import Snapshot


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

    def problem_of(self, md5: str) -> str | None:
        """Why the artifact `md5` could not be served, or None: a cached copy must match its
        md5; without one, the default remote must have it (a local remote's copy is md5-checked)."""
        if cache_file(self.root, md5).is_file():
            if verified_in_cache(self.root, md5):
                return None
            return "the copy in the DVC cache is corrupt: md5 mismatch"
        if self.has(md5):
            return corrupt_local_copy(self.root, md5)
        where = f" ({self.problem})" if self.problem else ""
        return f"it is in neither the DVC cache nor the default remote{where}"


@dataclass(frozen=True)
class ServedArtifactProblem:
    """An artifact that a served ref (latest, a pointer) resolves to and that cannot be served."""

    ref: str
    model: str
    version: int
    message: str

    def __str__(self) -> str:
        return f"{self.ref} -> {self.model}:v{self.version}: {self.message}"


def served_artifact_problems(snap: Snapshot, store: ArtifactStore) -> list[ServedArtifactProblem]:
    """Check the artifacts that `latest` and every pointer of each active model resolve to.

    The server runs it before it swaps a new revision in (and keeps the old
    one when it finds anything); `mreg validate --check-artifacts` reports it.
    """
    problems = []
    checked: dict[str, str | None] = {}
    for model in snap.models():
        refs = [
            f"{model.name}:latest",
            *(f"{model.name}:{p.tag}" for p in snap.pointers(model.name)),
        ]
        for ref in refs:
            try:
                res = snap.resolve(ref)
            except RegistryError:
                continue  # nothing servable there: the other rules report broken refs
            art = res.version.artifact
            if art is None:
                continue
            if art.md5 not in checked:
                checked[art.md5] = store.problem_of(art.md5)
            message = checked[art.md5]
            if message is not None:
                problems.append(ServedArtifactProblem(ref, res.model, res.version.version, message))
    return problems


def check_served_artifacts(root: Path, snap: Snapshot) -> list[ServedArtifactProblem]:
    """`served_artifact_problems` against the DVC cache and default remote of the repository at `root`."""
    return served_artifact_problems(snap, ArtifactStore(root))
