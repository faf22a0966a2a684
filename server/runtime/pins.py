"""How a request names a version: a `Pin` of one `PinKind` (latest, a version id, n, a pointer)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from registry import InvalidRefError, VersionManifest
from registry.names import VERSION_ID_RE, VERSION_TAG_RE
from server.runtime.errors import PinsDisagree


class PinKind(StrEnum):
    LATEST = "latest"
    MODEL_ID = "model_id"
    VERSION = "version"
    POINTER = "pointer"


# How each kind reads in a message: the query parameter that gives it.
_QUERY_NAMES = {
    PinKind.LATEST: "latest",
    PinKind.MODEL_ID: "modelId",
    PinKind.VERSION: "version",
    PinKind.POINTER: "pointer",
}


@dataclass(frozen=True)
class Pin:
    """A version as a request names it: latest, modelId, version or pointer."""

    kind: PinKind
    value: str = ""

    @classmethod
    def of_tag(cls, tag: str) -> Pin:
        """`latest`, `v<n>` or a pointer's tag."""
        if tag == "latest":
            return LATEST
        if VERSION_TAG_RE.fullmatch(tag):
            return cls(PinKind.VERSION, tag[1:])
        return cls(PinKind.POINTER, tag)

    def ref(self, model: str) -> str:
        """The reference the pin reads as: iris, iris:v3, iris:prod or the version id.

        What the core resolves, and how a job names what was asked for.
        """
        if self.kind is PinKind.MODEL_ID:
            return self.value
        if self.kind is PinKind.VERSION:
            return f"{model}:v{self.value}"
        if self.kind is PinKind.POINTER:
            return f"{model}:{self.value}"
        return model

    def __str__(self) -> str:
        return _QUERY_NAMES[self.kind] + (f"={self.value}" if self.value else "")


LATEST = Pin(PinKind.LATEST)


def query_pins(model_id: str | None, version: int | None, pointer: str | None) -> list[Pin]:
    """The pins a request gives, most specific first; none is latest.

    Several must agree: `?pointer=prod&modelId=mv_...` invokes prod only while it is that version.
    """
    pins: list[Pin] = []
    if model_id is not None:
        if not VERSION_ID_RE.fullmatch(model_id):
            raise InvalidRefError(f"invalid modelId {model_id!r}: expected mv_<hex>", ref=model_id)
        pins.append(Pin(PinKind.MODEL_ID, model_id))
    if version is not None:
        pins.append(Pin(PinKind.VERSION, str(version)))
    if pointer is not None:
        pins.append(Pin.of_tag(pointer))
    return pins or [LATEST]


def check_agreement(
    model: str, pin: Pin, version: VersionManifest, other: Pin, found: VersionManifest
) -> None:
    """409 when two pins of one request name different versions."""
    if found.id != version.id:
        raise PinsDisagree(
            f"{pin} names {model}:v{version.version} but {other} names {model}:v{found.version}"
        )
