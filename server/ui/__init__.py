"""The web page (`/ui/`): routes over the runtime, and the views they render."""

from __future__ import annotations

from server.ui.routes import TEMPLATE_CONFIG, UI_ROUTES

__all__ = ["TEMPLATE_CONFIG", "UI_ROUTES"]
