"""The `/v1` API: a Controller per resource (reads, and the writes that are commits), inference."""

from __future__ import annotations

from server.v1.health import HealthController
from server.v1.inference import InferenceController
from server.v1.models import ModelsController
from server.v1.pointers import PointersController
from server.v1.rollout import RolloutController
from server.v1.usage import UsageController
from server.v1.versions import VersionsController
from server.v1.webhooks import WebhooksController

V1_ROUTES = [
    HealthController,
    ModelsController,
    VersionsController,
    PointersController,
    RolloutController,
    InferenceController,
    UsageController,
    WebhooksController,
]

__all__ = ["V1_ROUTES"]
