"""Schema rules: every manifest and `.dvc` file parses, names fit, versions and artifacts agree."""

from __future__ import annotations

from pathlib import PurePosixPath

from registry.artifacts import artifact_path_problem
from registry.errors import InvalidNameError
from registry.format_policy import CODE_FORMATS
from registry.formats import FORMAT_ALIASES, infer_format
from registry.layout import VERSION_FILE_RE
from registry.manifests import RegistrySettings, Status, VersionManifest
from registry.names import check_tag
from registry.validation.findings import WARNING, Findings
from registry.validation.storage import DvcFile


class SchemaRules(Findings):
    """registry.yaml, a model's versions and their artifacts: each file on its own."""

    def check_settings(self) -> None:
        path = "registry.yaml"
        if not self.snap.source.blob_ids([path]):
            self.error("schema", path, None, "registry.yaml is missing: run 'mreg init'")
            return
        settings = self.parse_each(RegistrySettings, [path]).get(path)
        if settings is None:
            return
        for i, tag in enumerate(settings.protected_pointers):
            try:
                check_tag(tag)
            except InvalidNameError as exc:
                line = self.line(self.snap, path, "protected_pointers", i)
                self.error("schema", path, line, f"protected_pointers: {exc}")

    def check_versions(self, name: str) -> None:
        snap = self.snap
        files = snap.version_files(name)
        good = {}
        for fname, path in sorted(files.items()):
            if VERSION_FILE_RE.fullmatch(fname):
                good[int(fname[: -len(".yaml")])] = path
            else:
                self.error(
                    "version-number",
                    path,
                    None,
                    f"version file {fname!r} is not named <n>.yaml with n a positive integer",
                )
        parsed = self.parse_each(VersionManifest, list(good.values()))
        versions: dict[int, VersionManifest] = {}
        ids: dict[str, int] = {}
        for n, path in sorted(good.items()):
            v = parsed.get(path)
            if v is None:
                continue
            versions[n] = v
            if v.version != n:
                line = self.line(snap, path, "version")
                self.error(
                    "version-number", path, line, f"version {v.version} does not match file {n}"
                )
            if v.id in ids:
                self.error(
                    "duplicate-id",
                    path,
                    self.line(snap, path, "id"),
                    f"id {v.id} is already the id of v{ids[v.id]}",
                )
            ids.setdefault(v.id, n)
        self.versions[name] = versions
        self.check_artifacts(name, versions, good)

    def check_artifacts(
        self, name: str, versions: dict[int, VersionManifest], files: dict[int, str]
    ) -> None:
        snap = self.snap
        present = set(snap.dvc_files(name)) | set(snap.other_files(name))
        wanted: dict[str, tuple[int, VersionManifest]] = {}
        for n, v in versions.items():
            path = files[n]
            if v.artifact is None:
                if v.status == Status.trained:
                    line = self.line(snap, path, "status")
                    self.error(
                        "missing-artifact", path, line, "a trained version needs an artifact"
                    )
                continue
            self.check_format(path, v)
            rel = PurePosixPath(v.artifact.path)
            problem = artifact_path_problem(v.artifact.path)
            if problem is not None:
                self.error(
                    "artifact-path",
                    path,
                    self.line(snap, path, "artifact", "path"),
                    f"artifact.path {v.artifact.path!r} {problem}:"
                    f" it must stay under models/{name}/artifacts/",
                )
                continue
            if rel.parts[:2] != ("artifacts", f"v{n}") or len(rel.parts) < 3:
                self.add(
                    WARNING,
                    "artifact-path",
                    path,
                    self.line(snap, path, "artifact", "path"),
                    f"artifact.path {v.artifact.path!r} is not under artifacts/v{n}/",
                )
            dvc = f"models/{name}/{rel.as_posix()}.dvc"
            if dvc not in present:
                line = self.line(snap, path, "artifact", "path")
                self.error("dvc-missing", path, line, f"{dvc} does not exist")
                continue
            wanted[dvc] = (n, v)
        dvc_files = self.parse_each(DvcFile, sorted(wanted))
        for dvc, (n, v) in sorted(wanted.items()):
            parsed = dvc_files.get(dvc)
            if parsed is not None:
                self.check_dvc(dvc, parsed, files[n], v)
        for orphan in sorted(set(snap.dvc_files(name)) - set(wanted)):
            owner = orphan.split("/")[3][1:]  # models/M/artifacts/v<n>/...
            if f"{owner}.yaml" not in snap.version_files(name):
                self.add(WARNING, "dvc-orphan", orphan, None, "no version refers to this .dvc file")

    def check_format(self, path: str, v: VersionManifest) -> None:
        """registry.format_policy: a version in a format the registry does not trust."""
        assert v.artifact is not None
        fmt = FORMAT_ALIASES.get((v.artifact.format or "").lower()) or infer_format(v.artifact.path)
        if fmt is not None and fmt not in self.trusted_formats:
            runs = " (it runs code when loaded)" if fmt in CODE_FORMATS else ""
            self.error(
                "untrusted-format",
                path,
                self.line(self.snap, path, "artifact", "format"),
                f"format {fmt!r}{runs} is not in registry.yaml trusted_formats"
                f" ({', '.join(self.trusted_formats)}): the server will not load it",
            )

    def check_dvc(self, dvc: str, parsed: DvcFile, vpath: str, v: VersionManifest) -> None:
        assert v.artifact is not None
        if len(parsed.outs) != 1:
            line = self.line(self.snap, dvc, "outs")
            self.error("dvc-mismatch", dvc, line, "a version's .dvc file must have exactly one out")
            return
        out = parsed.outs[0]
        expected = {
            "md5": v.artifact.md5,
            "size": v.artifact.size,
            "path": PurePosixPath(v.artifact.path).name,
        }
        for key, want in expected.items():
            have = getattr(out, key)
            if have != want:
                self.error(
                    "dvc-mismatch",
                    dvc,
                    self.line(self.snap, dvc, "outs", 0, key),
                    f"{key} {have} does not match artifact.{key} {want} of {vpath}",
                )
        store = self.store
        if store is not None and v.status == Status.trained and not store.has(v.artifact.md5):
            where = f" ({store.problem})" if store.problem else ""
            self.error(
                "artifact-unavailable",
                vpath,
                self.line(self.snap, vpath, "artifact", "md5"),
                f"artifact {v.artifact.md5} is in neither the DVC cache nor the"
                f" default remote{where}",
            )
