"""Serving without HTTP: the served revision and pins, the model pool, following a branch, auth,
metrics, and the one invoker (resolve -> permission -> predict -> usage record) every protocol calls.
"""

from __future__ import annotations

from server.runtime.auth import OPEN, Auth, Token, Viewer
from server.runtime.invoker import Call, InvokeResponse
from server.runtime.pins import LATEST, Pin, PinKind
from server.runtime.runtime import Runtime
from server.runtime.served import Served

__all__ = [
    "LATEST",
    "OPEN",
    "Auth",
    "Call",
    "InvokeResponse",
    "Pin",
    "PinKind",
    "Runtime",
    "Served",
    "Token",
    "Viewer",
]
