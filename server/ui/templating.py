"""The page's Jinja2 environment: links that keep the revision, times and sizes as people read them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from server.ui.views import human_size

HERE = Path(__file__).parent

# Field names as the page shows them (the manifests' keys are for YAML and the API).
LABELS = {
    "project": "Project",
    "task": "Task",
    "library": "Library",
    "owner": "Owner",
    "license": "License",
    "created_at": "Created",
    "created_by": "Author",
    "archived_at": "Archived",
    "deprecated_at": "Deprecated",
    "labels": "Labels",
    "metadata": "Metadata",
    "versions_count": "Versions",
    "last_used_at": "Last used",
    "notes": "Notes",
    "visibility": "Visibility",
    "format": "Format",
    "size": "Size",
    "md5": "MD5",
    "path": "Path",
    "input_info": "Input",
    "output_info": "Output",
    "train_info": "Training",
    "import_info": "Imported from",
}


def label(key: str) -> str:
    """A field's label: `created_at` -> Created; an unknown key in words (`max_depth` -> Max depth)."""
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def _link(path: str, rev: str | None = None, **params: Any) -> str:
    """A page URL that keeps the revision the user is looking at."""
    query = {k: v for k, v in {**params, "rev": rev}.items() if v not in (None, "", False)}
    return f"/ui{path}" + (f"?{urlencode(query)}" if query else "")


def when(value: str | None) -> str:
    """An RFC 3339 time as people read it: 2026-11-25 14:19 UTC."""
    if not value:
        return "never"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _engine(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.filters["label"] = label
    env.globals["link"] = _link
    env.filters["size"] = human_size
    env.filters["short"] = lambda sha: (sha or "")[:10]
    env.filters["when"] = when
    env.trim_blocks = env.lstrip_blocks = True


TEMPLATE_CONFIG = TemplateConfig(
    directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_engine
)
