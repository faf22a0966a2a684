"""Import from an MLflow model registry: models, versions, aliases, descriptions and tags.

Each MLflow model becomes an mreg model (its name made a valid mreg name; the
original is kept in every version's ``import_info``), its description and
tags become the model's description and labels. Each version, oldest first,
becomes one commit: the artifact is downloaded from MLflow and stored as
``skops`` when it is a scikit-learn model whose types mreg trusts (a pickle's
globals are audited from its opcodes first, registry.pickle_audit: nothing
is unpickled during an import unless every global is trusted), otherwise
as the whole MLflow model directory packed into one ``.mlflow`` file (format
``mlflow``, served through ``mlflow.pyfunc``). The run's params and metrics,
the version's description and tags (as labels) and its aliases (as pointers)
come along; the original creation time, run and source are in
``import_info``. Running the import again skips the versions imported before.

MLflow is imported here, lazily, and nowhere else in the core.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from registry.errors import InvalidNameError, ModelNotFoundError, RegistryError
from registry.formats import pack_mlflow_dir
from registry.manifests import rfc3339
from registry.names import check_model_name, check_tag

if TYPE_CHECKING:
    from registry.registry import Registry

SOURCE = "mlflow"


@dataclass(frozen=True)
class ImportedVersion:
    """One MLflow version and what became of it in mreg."""

    model: str
    """The mreg model name."""
    version: int
    """The mreg version number."""
    source: str
    """`<MLflow model name>/<MLflow version>`."""
    format: str
    commit: str | None
    skipped: bool = False
    """True when an earlier import brought this version already."""
    pointers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "source": self.source,
            "format": self.format,
            "commit": self.commit,
            "skipped": self.skipped,
            "pointers": self.pointers,
        }


def mreg_name(name: str) -> str:
    """An MLflow model name as an mreg model name: `Iris Classifier` -> `iris-classifier`."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:64]
    try:
        check_model_name(slug)
    except InvalidNameError:
        raise InvalidNameError(
            f"MLflow model {name!r} has no usable mreg name (tried {slug!r})"
        ) from None
    return slug


def import_mlflow(
    registry: Registry,
    tracking_uri: str,
    models: Sequence[str] = (),
    *,
    registry_uri: str | None = None,
) -> list[ImportedVersion]:
    """Import `models` (default: every registered model) from the MLflow registry at `tracking_uri`."""
    client = _client(tracking_uri, registry_uri)
    out: list[ImportedVersion] = []
    with _mlflow_errors(tracking_uri):
        names = list(models) or [m.name for m in _registered_models(client)]
        for name in names:
            out.extend(_import_model(registry, client, tracking_uri, name))
    return out


def _client(tracking_uri: str, registry_uri: str | None) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise RegistryError("importing from MLflow needs MLflow: install mreg[mlflow]") from None
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


@contextlib.contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """Translate MLflow's errors into one line that names the registry."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        where = f"(MLflow at {_redact(uri)})"
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelNotFoundError(f"{exc.message} {where}") from None
        raise RegistryError(f"cannot read the MLflow registry {where}: {exc.message}") from None


def _registered_models(client: Any) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_registered_models(page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _model_versions(client: Any, name: str) -> list[Any]:
    if "'" in name:
        raise InvalidNameError(f"cannot import MLflow model {name!r}: its name has a quote")
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(f"name='{name}'", page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda v: int(v.version))


def _import_model(
    registry: Registry, client: Any, tracking_uri: str, name: str
) -> list[ImportedVersion]:
    source_model = client.get_registered_model(name)
    target = mreg_name(source_model.name)
    aliases: dict[str, list[str]] = {}
    for alias, number in (source_model.aliases or {}).items():
        tag = alias.lower()
        check_tag(tag)
        aliases.setdefault(str(number), []).append(tag)
    head = registry.snapshot("HEAD", models=[target])
    done: dict[str, int] = {}
    if head.has_model(target):
        for v in head.versions(target):
            info = v.import_info or {}
            if info.get("source") == SOURCE and info.get("model") == source_model.name:
                done[str(info.get("version"))] = v.version
    else:
        registry.create_model(
            target,
            description=source_model.description or None,
            labels={str(k): str(v) for k, v in (source_model.tags or {}).items()} or None,
        )
    out: list[ImportedVersion] = []
    for mv in _model_versions(client, source_model.name):
        number = str(mv.version)  # a string or an int, depending on the MLflow store
        source = f"{source_model.name}/{number}"
        tags = aliases.get(number, [])
        if number in done:
            n = done[number]
            for tag in tags:
                registry.point(f"{target}:{tag}", f"v{n}")
            out.append(ImportedVersion(target, n, source, "-", None, skipped=True, pointers=tags))
            continue
        with tempfile.TemporaryDirectory(prefix="mreg-mlflow-") as tmp:
            artifact, fmt, flavors = _download(client, source_model.name, number, Path(tmp))
            params, metrics = _run_data(client, mv.run_id)
            result = registry.register(
                target,
                artifact,
                format=fmt,
                description=mv.description or None,
                params=params or None,
                metrics=metrics or None,
                labels={str(k): str(v) for k, v in (mv.tags or {}).items()} or None,
                import_info={
                    "source": SOURCE,
                    "tracking_uri": _redact(tracking_uri),
                    "model": source_model.name,
                    "version": int(number),
                    "run_id": mv.run_id,
                    "artifact_uri": mv.source,
                    "created_at": rfc3339(_from_ms(mv.creation_timestamp)),
                    "flavors": flavors,
                },
                point=tags,
            )
        out.append(
            ImportedVersion(target, result.value.version, source, fmt, result.commit, pointers=tags)
        )
    return out


def _run_data(client: Any, run_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if not run_id:
        return {}, {}
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return {}, {}  # the run was deleted: the version keeps its artifact, not its run data
    return dict(run.data.params), dict(run.data.metrics)


def _download(client: Any, name: str, version: str, tmp: Path) -> tuple[Path, str, list[str]]:
    """The version's artifact as one file to register, its format, and the MLflow flavors."""
    import mlflow.artifacts

    uri = client.get_model_version_download_uri(name, version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp / "dl")))
    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        raise RegistryError(f"MLflow model {name} version {version} has no MLmodel file")
    flavors: dict[str, Any] = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}
    skops_file = _as_skops(local, flavors.get("sklearn"), tmp)
    if skops_file is not None:
        return skops_file, "skops", sorted(flavors)
    return pack_mlflow_dir(local, tmp / "model.mlflow"), "mlflow", sorted(flavors)


def _as_skops(local: Path, sklearn: dict[str, Any] | None, tmp: Path) -> Path | None:
    """The scikit-learn model as a skops file mreg will load, or None to keep the MLflow format."""
    if not sklearn:
        return None
    import skops.io

    from registry.pickle_audit import load_trusted
    from registry.skops_trust import SKOPS_TRUSTED_TYPES

    saved = local / str(sklearn.get("pickled_model") or "")
    target = tmp / "model.skops"
    if sklearn.get("serialization_format") == "skops" and saved.is_file():
        target.write_bytes(saved.read_bytes())
    elif saved.is_file():
        # Never unpickle what the audit has not cleared (registry.pickle_audit): a hostile
        # store's pickle would run code right here, during the import.
        try:
            skops.io.dump(load_trusted(saved), target)
        except Exception:  # untrusted globals, or any failure to convert: keep the MLflow dir
            return None
    else:
        return None
    untrusted = skops.io.get_untrusted_types(file=target)
    if set(untrusted) - SKOPS_TRUSTED_TYPES:
        return None
    return target


def _from_ms(ms: int | None) -> datetime:
    return datetime.fromtimestamp((ms or 0) / 1000, UTC)


def _redact(uri: str) -> str:
    """The URI without a password in it."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
