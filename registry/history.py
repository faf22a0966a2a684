"""The registry's history, read from git: commit subjects and `Mreg-*` trailers, pointer moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry import plumbing
from registry.base import RegistryBase
from registry.errors import InvalidNameError, RegistryError
from registry.layout import pointer_path
from registry.names import parse_ref
from registry.snapshot import Snapshot
from registry.source import GitSource, resolve_revision

_FIELD = "\x1f"
_RECORD = "\x1e"


@dataclass(frozen=True)
class LogEntry:
    """One commit that changed the registry."""

    commit: str
    author: str
    date: datetime
    subject: str
    action: str | None
    """`Mreg-Action`, or None for a commit made by hand (a pull request, an edit)."""
    model: str | None
    trailers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def version(self) -> int | None:
        values = self.trailers.get("Mreg-Version")
        return int(values[0]) if values and values[0].isdigit() else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "author": self.author,
            "date": self.date,
            "subject": self.subject,
            "action": self.action,
            "model": self.model,
            "version": self.version,
            "trailers": self.trailers,
        }


def _trailers(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("Mreg-"):
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@dataclass(frozen=True)
class PointerState:
    """The pointer as one commit left it: its target and the version it resolved to then."""

    commit: str
    author: str
    date: datetime
    subject: str
    target: str | None
    """None: the commit deleted the pointer."""
    version: int | None
    previous_target: str | None
    previous_version: int | None
    targets: tuple[tuple[str, int], ...] = ()
    """(target, weight) of each arm when the pointer was weighted then; `target` is the heaviest."""
    previous_targets: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        weighted = [{"target": t, "weight": w} for t, w in self.targets]
        was = [{"target": t, "weight": w} for t, w in self.previous_targets]
        return {
            "commit": self.commit,
            "author": self.author,
            "date": self.date,
            "subject": self.subject,
            "target": self.target,
            "version": self.version,
            "from_target": self.previous_target,
            "from_version": self.previous_version,
            **({"targets": weighted} if weighted else {}),
            **({"from_targets": was} if was else {}),
        }


@dataclass(frozen=True)
class VersionTag:
    """The annotated tag `<model>@v<n>` of a register commit, and whether the repository has it."""

    name: str
    commit: str
    present: bool
    made: bool = False
    """True: `sync_tags` made it now."""

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.name, "commit": self.commit, "present": self.present, "made": self.made}


class History(RegistryBase):
    """The registry's history: every write is a commit, so git log is the registry's log."""

    def log(
        self,
        model: str | None = None,
        *,
        rev: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """The registry's history, newest first, from commit subjects and trailers."""
        root = self.root
        start = (
            resolve_revision(self.repo, rev or "HEAD")
            if rev or plumbing.rev_sha(root, "HEAD")
            else None
        )
        if start is None:
            return []
        if model is not None:
            paths = [f"models/{model}", f"pointers/{model}"]
        else:
            paths = ["registry.yaml", "models", "pointers"]
        fmt = _FIELD.join(["%H", "%an <%ae>", "%aI", "%s", "%(trailers:only,unfold)"]) + _RECORD
        args = ["log", f"--format={fmt}", start]
        if limit is not None:
            args.append(f"-n{limit}")
        out = plumbing.git(root, *args, "--", *paths).stdout.decode()
        entries: list[LogEntry] = []
        for record in out.split(_RECORD):
            record = record.strip("\n")
            if not record:
                continue
            sha, who, when, subject, trailer_text = (record.split(_FIELD) + [""] * 5)[:5]
            trailers = _trailers(trailer_text)
            action = trailers.get("Mreg-Action", [None])[0]
            owner = trailers.get("Mreg-Model", [model])[0]
            entries.append(
                LogEntry(sha, who, datetime.fromisoformat(when), subject, action, owner, trailers)
            )
        return entries

    def pointer_history(self, ref: str, *, rev: str | None = None) -> list[PointerState]:
        """Every state of the pointer `model:tag` over the history, newest first, with from -> to."""
        return pointer_states(self, ref, rev=rev)

    def version_tags(self, *, rev: str | None = None) -> list[VersionTag]:
        """The `<model>@v<n>` tag of every register commit reachable from `rev` (default HEAD),
        oldest first, and whether it exists (tags do not travel with every clone)."""
        root = self.root
        present = set(plumbing.git(root, "tag", "--list", "*@v*").stdout.decode().split())
        tags = []
        for entry in reversed(self.log(rev=rev)):
            if entry.action != "register" or entry.model is None or entry.version is None:
                continue
            name = f"{entry.model}@v{entry.version}"
            tags.append(VersionTag(name, entry.commit, name in present))
        return tags

    def sync_tags(self, *, rev: str | None = None, push: str | None = None) -> list[VersionTag]:
        """Recreate the missing `<model>@v<n>` tags from the register commits' trailers (the
        commit and subject `register` tagged), and with `push` (a git remote) push them all."""
        tags = []
        for tag in self.version_tags(rev=rev):
            if not tag.present:
                fields = plumbing.git_out(
                    self.root,
                    "log",
                    "-1",
                    f"--format=%cn{_FIELD}%ce{_FIELD}%cI{_FIELD}%s",
                    tag.commit,
                ).split(_FIELD)
                # Tagged as the commit's committer at its date: no identity needed (a CI
                # checkout), and every clone that syncs makes the same tag.
                tagger = dict(
                    zip(
                        ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE"),
                        fields,
                        strict=False,
                    )
                )
                made = plumbing.git(
                    self.root,
                    "tag",
                    "-a",
                    "-m",
                    fields[3],
                    tag.name,
                    tag.commit,
                    env=tagger,
                    check=False,
                )
                # A concurrent `register` may have just made it: then it is present all the same.
                if made.returncode != 0 and not plumbing.tag_exists(self.root, tag.name):
                    raise RegistryError(
                        f"cannot create tag {tag.name}: {made.stderr.decode(errors='replace').strip()}"
                    )
                tag = VersionTag(tag.name, tag.commit, True, made=made.returncode == 0)
            tags.append(tag)
        if push is not None and tags:
            pushed = plumbing.git(
                self.root,
                "push",
                "--quiet",
                push,
                *(f"refs/tags/{t.name}" for t in tags),
                check=False,
            )
            if pushed.returncode != 0:
                raise RegistryError(
                    f"cannot push the version tags to {push}:"
                    f" {pushed.stderr.decode(errors='replace').strip()}"
                )
        return tags


def pointer_states(
    registry: RegistryBase, ref: str, *, rev: str | None = None
) -> list[PointerState]:
    """`History.pointer_history`, for any registry reader (validation and promotion rules use it)."""
    parsed = parse_ref(ref)
    if parsed.model is None or parsed.tag is None:
        raise InvalidNameError(f"expected MODEL:TAG, got {ref!r}")
    model, tag = parsed.model, parsed.tag
    path = pointer_path(model, tag)
    root = registry.root
    start = resolve_revision(registry.repo, rev or "HEAD")
    fmt = _FIELD.join(["%H", "%an <%ae>", "%aI", "%s"]) + _RECORD
    out = plumbing.git(root, "log", f"--format={fmt}", start, "--", path).stdout.decode()
    raw = [r.strip("\n").split(_FIELD) for r in out.split(_RECORD) if r.strip("\n")]
    if not raw:
        raise RegistryError(f"pointer {model}:{tag} has no history at {rev or 'HEAD'}", ref=ref)
    oldest_first: list[PointerState] = []
    prev_target: str | None = None
    prev_version: int | None = None
    prev_targets: tuple[tuple[str, int], ...] = ()
    for sha, who, when, subject in reversed(raw):
        snap = Snapshot(GitSource(registry.repo, sha), registry.cache)
        target: str | None = None
        version: int | None = None
        targets: tuple[tuple[str, int], ...] = ()
        if tag in snap.pointer_tags(model):
            try:
                pointer = snap.pointer(model, tag)
                target, targets = pointer.target, pointer.targets
                version = snap.resolve(f"{model}:{tag}").version.version
            except RegistryError:
                pass  # a broken state in history is still history: keep the target text
        oldest_first.append(
            PointerState(
                sha,
                who,
                datetime.fromisoformat(when),
                subject,
                target,
                version,
                prev_target,
                prev_version,
                targets,
                prev_targets,
            )
        )
        prev_target, prev_version, prev_targets = target, version, targets
    return list(reversed(oldest_first))
