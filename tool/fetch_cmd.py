"""mreg fetch, and `mreg-storage-initializer` (the same for a KServe storage container)."""

from __future__ import annotations

import sys

import click

from registry import RegistryError
from tool.base import State, cli, echo_json, json_option


def _only_our_errors() -> None:
    """DVC's own warnings (a missing cache file) would add lines to mreg's one `error:` line."""
    import logging

    logging.disable(logging.WARNING)


REPO_URL_HELP = (
    "The registry as a git URL (one revision is fetched, shallow); default: $MREG_REPO_URL,"
    " else the local checkout (--repo or the enclosing repository)."
)


@cli.command()
@click.argument("uri")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--repo-url", envvar="MREG_REPO_URL", metavar="URL", help=REPO_URL_HELP)
@json_option
@click.pass_obj
def fetch(state: State, uri: str, dest: str, repo_url: str | None, as_json: bool) -> None:
    """Fetch the artifact of an mreg:// URI into DEST, with DEST/.mreg.json naming it.

    URI is mreg://MODEL[:TAG][@REV] or mreg://mv_<id>[@REV], read at REV
    (default: HEAD). The artifact comes from the registry's DVC remote,
    md5-checked; DEST ends complete or untouched.

    \b
    Example:
        mreg fetch mreg://iris:prod@release-2026-11 ./models/iris \\
            --repo-url https://git.example.com/ml/registry.git
    """
    from registry import fetch as fetch_uri

    _only_our_errors()
    got = fetch_uri(uri, dest, repo_url=repo_url or None, repo=state.repo_path)
    if as_json:
        echo_json(got.to_dict())
        return
    click.echo(
        f"fetched {got.model}:v{got.version} ({got.id}, {got.format}) at {got.commit[:12]}"
        f" into {dest}/{got.file}"
    )


def storage_initializer(argv: list[str] | None = None) -> None:
    """`mreg-storage-initializer URI DEST [URI DEST ...]`: what a KServe storage container runs.

    KServe passes each storage URI with its mount path (`/mnt/models`); the
    registry is $MREG_REPO_URL. One `error:` line and exit 1 on failure, so
    the pod is marked failed.
    """
    import os

    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) % 2 or args[0] in ("-h", "--help"):
        asked = args[:1] in (["-h"], ["--help"])
        print(
            "usage: mreg-storage-initializer URI DEST [URI DEST ...]\n"
            "  fetches each mreg://MODEL[:TAG][@REV] from the registry at $MREG_REPO_URL",
            file=sys.stdout if asked else sys.stderr,
        )
        sys.exit(0 if asked else 2)
    from registry import fetch as fetch_uri

    _only_our_errors()
    repo_url = os.environ.get("MREG_REPO_URL") or None
    for uri, dest in zip(args[::2], args[1::2], strict=True):
        try:
            got = fetch_uri(uri, dest, repo_url=repo_url)
        except RegistryError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        print(f"fetched {got.model}:v{got.version} ({got.id}) at {got.commit[:12]} into {dest}")
