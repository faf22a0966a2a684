"""The Litestar inference server: `create_app(repo, rev)` serves one git revision of a registry."""

from server.app import create_app

__all__ = ["create_app"]
