"""The web page (`/ui/`): routes over the runtime, and the views they render."""

from __future__ import annotations

from server.ui.routes import UI_ROUTES
from server.ui.templating import TEMPLATE_CONFIG

__all__ = ["TEMPLATE_CONFIG", "UI_ROUTES"]
