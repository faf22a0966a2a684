"""Which artifact formats a registry trusts: `registry.yaml` `trusted_formats`.

`pickle`, `joblib`, `torchscript` and `mlflow` run code when they are loaded
(an unpickled `__reduce__`, a TorchScript program, an MLflow model's pickled
flavour): whoever can write such a file can run code in the server. So they
are served only when the registry lists them in `trusted_formats`, a change
to registry.yaml that is itself reviewed. `skops`, `onnx`, `keras` and `h5`
build only data (skops checks the types, Keras refuses code in safe mode)
and are trusted by default. Over HTTP, a code-running format is accepted
only by a server started with `--allow-code-formats`, and only on a branch
(a pull request), never straight onto the served branch.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.errors import LoaderError, UntrustedFormatError

CODE_FORMATS: frozenset[str] = frozenset({"pickle", "joblib", "torchscript", "mlflow"})
"""Formats whose loading runs code that the file carries."""

DEFAULT_TRUSTED_FORMATS: tuple[str, ...] = ("skops", "onnx", "keras", "h5")
"""`trusted_formats` when registry.yaml does not say."""


def _policy(fmt: str, trusted: Iterable[str]) -> str:
    runs = " (it runs code when loaded)" if fmt in CODE_FORMATS else ""
    return (
        f"format {fmt!r}{runs} is not in registry.yaml trusted_formats"
        f" ({', '.join(trusted) or 'none'})"
    )


def check_loadable(fmt: str, trusted: Iterable[str], what: str) -> None:
    """Refuse to load `what` (a file name) when `fmt` is not a trusted format (a LoaderError)."""
    trusted = list(trusted)
    if fmt not in trusted:
        raise LoaderError(
            f"{what}: {_policy(fmt, trusted)}: add it there (a reviewed change) to serve it",
            detail={"policy": "trusted_formats", "format": fmt, "trusted_formats": trusted},
        )


def check_write_format(
    fmt: str, trusted: Iterable[str], *, branch: str | None, allow_code_formats: bool
) -> None:
    """The rule for artifacts written over HTTP: a trusted format anywhere; an untrusted one only
    on a branch of a server that allows code formats; otherwise UntrustedFormatError (403)."""
    trusted = list(trusted)
    if fmt in trusted:
        return
    if allow_code_formats and branch is not None:
        return
    how = (
        "write it to a branch with ?branch=NAME for review"
        if allow_code_formats
        else "this server accepts it only when started with --allow-code-formats, on a branch"
    )
    raise UntrustedFormatError(
        f"{_policy(fmt, trusted)}: {how}",
        detail={"policy": "trusted_formats", "format": fmt, "trusted_formats": trusted},
    )


def named_format(fmt: str | None, filename: str) -> str | None:
    """The canonical format an upload names (`format`, else the file name's suffix), if any."""
    from registry.formats import FORMAT_ALIASES, infer_format

    if fmt:
        return FORMAT_ALIASES.get(fmt.lower())
    return infer_format(filename)
