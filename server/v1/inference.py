"""Inference over `/v1`: invoke a model, or run a pipeline reference; both through the invoker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, post

from registry import REF_PATTERN, parse_ref
from server.http.auth import Invoker
from server.http.errors import errors
from server.http.media import json_body
from server.http.openapi import ONE_OF_DATA_OR_INPUTS, json_response
from server.http.params import ModelIdQuery, ModelName, PointerQuery, VersionQuery
from server.runtime import LATEST, Call, InvokeResponse, Pin, PinKind, visibility
from server.runtime.invoker import one_or_batch
from server.runtime.pins import query_pins
from server.v1.schemas import RunAnswer

# A weighted pointer's arm is sticky per routing key (else the X-Mreg-Route-Key header's).
RouteKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
INFERENCE_ERRORS = errors(400, 401, 403, 404, 409, 413, 415, 422, 503)


class InvokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"data": x}` for one input or `{"inputs": [x, ...]}` for a batch."""

    data: Any | msgspec.UnsetType = msgspec.UNSET
    inputs: list[Any] | msgspec.UnsetType = msgspec.UNSET
    route_key: RouteKey | None = None


class RunRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"pipeline": "iris:prod", "inputs": [...]}` (or `"data"` for one input)."""

    pipeline: Annotated[str, msgspec.Meta(pattern=REF_PATTERN)]
    inputs: list[Any] | msgspec.UnsetType = msgspec.UNSET
    data: Any | msgspec.UnsetType = msgspec.UNSET
    route_key: RouteKey | None = None


class InferenceController(Controller):
    path = "/v1"
    tags = ["inference"]

    @post(
        "/models/{model:str}/invoke",
        status_code=200,
        summary="Predict with the latest version, or the one modelId, version or pointer names",
        opt={
            "expects": 'a JSON body {"data": x} for one input or {"inputs": [x, ...]}',
            "usage": "invoke",
        },
        guards=[json_body],
        responses=INFERENCE_ERRORS,
    )
    async def invoke(
        self,
        invoker: Invoker,
        model: ModelName,
        data: Annotated[InvokeRequest, ONE_OF_DATA_OR_INPUTS],
        model_id: ModelIdQuery = None,
        version: VersionQuery = None,
        pointer: PointerQuery = None,
    ) -> Response[InvokeResponse]:
        pin, *agree = query_pins(model_id, version, pointer)
        inputs = one_or_batch(data.data, data.inputs)
        call = Call("invoke", pin.ref(model))
        body, _ = await invoker(call, model, pin, inputs, agree=agree, route_key=data.route_key)
        return Response(body, headers={"X-Mreg-Model-Id": body.model_id})

    @post(
        "/runs",
        opt={
            "expects": 'a JSON body {"pipeline": "model[:tag]", "inputs": [x, ...]} (or "data": x)',
            "usage": "run",
        },
        status_code=200,
        summary="Run a pipeline reference (iris:prod) on inputs",
        guards=[json_body],
        responses=INFERENCE_ERRORS,
    )
    async def create_run(
        self, invoker: Invoker, data: Annotated[RunRequest, ONE_OF_DATA_OR_INPUTS]
    ) -> Response[RunAnswer]:
        inputs = one_or_batch(data.data, data.inputs)
        parsed = parse_ref(data.pipeline)
        if parsed.version_id is not None:
            model = visibility.owner(invoker.runtime.served, parsed.version_id, invoker.caller)
            pin = Pin(PinKind.MODEL_ID, parsed.version_id)
        else:
            assert parsed.model is not None
            model = parsed.model
            pin = Pin.of_tag(parsed.tag) if parsed.tag else LATEST
        start = datetime.now(UTC)
        call = Call("run", data.pipeline)
        body, record_id = await invoker(call, model, pin, inputs, route_key=data.route_key)
        run = {
            "id": record_id,
            "pipeline": data.pipeline,
            "status": "succeeded",
            "created_at": start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **msgspec.structs.asdict(body),
        }
        return json_response(run, headers={"X-Mreg-Model-Id": body.model_id})
