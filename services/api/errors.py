"""Mapping errors to answers: bad input is never a 500, and every refusal says why.

One shape for every error body, documented in the OpenAPI of every operation:
- 422: `{"detail": [{"loc": [...], "msg": "...", "type": "..."}, ...]}`, FastAPI's own
  validation shape; domain errors (`InvalidInput`) carry the field they concern and take the
  same form, and so does any `HTTPException(422, "why")` a route raises.
- every other 4xx and 503: `{"detail": "why"}`.
Nothing the client sent is echoed in a form JSON cannot carry: a lone surrogate, a NaN or
bytes that are not UTF-8 in the echoed `input` are replaced, never a 500 while refusing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, RecordConflictError
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.inbound import without_surrogates
from threadline.services.api.schemas import ErrorOut, ValidationErrorOut

log = logging.getLogger("threadline.api")

_MAX_ECHO_DEPTH = 16
_MAX_ECHO_BITS = 4096


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as JSON can carry it: lone surrogates become U+FFFD, NaN and bytes strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, int):
        return value if value.bit_length() <= _MAX_ECHO_BITS else "<a very large number>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray):
        return json_safe(bytes(value).decode("utf-8", "replace"), depth)
    if isinstance(value, BaseException):  # pydantic's `ctx.error`: its message, not `{}`
        return json_safe(str(value), depth)
    if depth >= _MAX_ECHO_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {str(json_safe(k, depth + 1)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, depth + 1) for item in value]
    try:  # a UUID, a date, an exception in `ctx`: as FastAPI would encode it
        return json_safe(jsonable_encoder(value), depth + 1)
    except Exception:
        return json_safe(str(value), depth)


def validation_detail(
    message: str, loc: Sequence[str | int] = ("body",), kind: str = "value_error"
) -> list[dict[str, Any]]:
    """One entry of the 422 shape."""
    return [{"loc": list(loc), "msg": message, "type": kind}]


def error_response(
    status_code: int,
    message: str,
    *,
    loc: Sequence[str | int] = ("body",),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A refusal in the documented shape: the 422 list for 422, a sentence for the rest."""
    detail: Any = validation_detail(message, loc) if status_code == 422 else message
    return JSONResponse({"detail": json_safe(detail)}, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        detail = json_safe(list(error.errors()))
        log.info("422 %s %s: %s", request.method, request.url.path, _summary(detail))
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        """Routes raise `HTTPException(422, "why")`; the answer still has the 422 shape."""
        if error.status_code == 422 and isinstance(error.detail, str):
            log.info("422 %s %s: %s", request.method, request.url.path, error.detail)
            return error_response(422, error.detail, loc=(), headers=error.headers)
        if isinstance(error.detail, str) and not error.detail.isascii():
            error.detail = json_safe(error.detail)
        return await http_exception_handler(request, error)

    @app.exception_handler(InvalidInput)
    async def invalid_input(request: Request, error: InvalidInput) -> JSONResponse:
        log.info("422 %s %s: %s", request.method, request.url.path, error)
        return error_response(422, error.message, loc=["body", *error.field.split(".")])

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> JSONResponse:
        return error_response(404, str(error))

    @app.exception_handler(Conflict)
    async def conflict(request: Request, error: Conflict) -> JSONResponse:
        log.info("409 %s %s: %s", request.method, request.url.path, error)
        return error_response(409, str(error))

    @app.exception_handler(RecordConflictError)
    async def record_conflict(request: Request, error: RecordConflictError) -> JSONResponse:
        log.info("409 %s %s: concurrent change", request.method, request.url.path)
        return error_response(409, "someone changed this at the same time; reload and try again")

    async def store_unavailable(request: Request, error: Exception) -> Response:
        """The database went away (restart, failover): 503 with Retry-After, never a 500.

        Nothing was accepted, so the client's retry loses nothing; the pools' dead
        connections are replaced before answering, so the retry finds live ones.
        """
        log.warning("503 %s %s: database unavailable: %s", request.method, request.url.path, error)
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            await run_in_threadpool(runtime.recover_connections)
        headers = {"Retry-After": "2"}
        message = "the database is unavailable; try again in a few seconds"
        if _json_path(request.url.path):
            return JSONResponse({"detail": message}, status_code=503, headers=headers)
        return PlainTextResponse(message.capitalize() + ".", status_code=503, headers=headers)

    app.add_exception_handler(OperationalError, store_unavailable)
    app.add_exception_handler(InterfaceError, store_unavailable)


def _json_path(path: str) -> bool:
    """Machines call these and read JSON; people's pages get a sentence."""
    return path.startswith(("/api/", "/hooks/"))


def _summary(detail: list[Any]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}"
        for item in detail
        if isinstance(item, dict)
    )


# -- the error answers in the OpenAPI document -------------------------------------------------

ERROR_STATUSES_ATTR = "threadline_error_statuses"
"""Dependencies (deps.py) name the statuses they refuse with in this attribute."""

DESCRIPTIONS = {
    400: "the body cannot be read (not UTF-8, or not the form it should be)",
    401: "no valid bearer token",
    403: "the caller's role may not do this",
    404: "what the path (or the body) names does not exist",
    409: "a conflict: a duplicate, or someone changed it at the same time",
    413: "the body is larger than THREADLINE_MAX_BODY_BYTES",
    415: "the body is not of a type this operation reads",
    422: "the request is not valid: each entry names a field and why",
    503: "the database is unavailable; retry after Retry-After seconds",
}


def _dependency_statuses(dependant: Dependant) -> set[int]:
    found: set[int] = set()
    pending: list[Dependant] = [dependant]
    while pending:
        current = pending.pop()
        found |= set(getattr(current.call, ERROR_STATUSES_ATTR, ()))
        pending.extend(current.dependencies)
    return found


def error_statuses(route: APIRoute) -> set[int]:
    """The error statuses an operation can answer, read from what it is made of.

    Its dependencies say which (401 from the bearer check, 403 from a role check); a path
    parameter can name what does not exist (404); a write's body may not be readable (400,
    not UTF-8), can conflict (409) and is bounded in size (413); any parameter or body can
    be invalid (422); and every operation reads the database (503).
    """
    statuses = _dependency_statuses(route.dependant) | {503}
    writes = bool((route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})
    if route.dependant.path_params or writes:
        statuses.add(404)
    if writes:
        statuses |= {400, 409, 413}
    if writes or route.dependant.query_params or route.dependant.path_params:
        statuses.add(422)
    return statuses


def _error_content(path: str, status_code: int) -> dict[str, Any]:
    model = "HTTPValidationError" if status_code == 422 else "ErrorOut"
    json_content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}
    if status_code == 503 and not _json_path(path):
        return {"text/plain": {"schema": {"type": "string"}}}
    return json_content


def _add_schemas(components: dict[str, Any]) -> None:
    """ErrorOut, and the 422 shape under FastAPI's own names (if no route made them)."""
    template = "#/components/schemas/{model}"
    for name, model in (("ErrorOut", ErrorOut), ("HTTPValidationError", ValidationErrorOut)):
        if name in components:
            continue
        schema = model.model_json_schema(ref_template=template)
        for inner, definition in schema.pop("$defs", {}).items():
            components.setdefault(inner, definition)
        components[name] = schema


def document_errors(app: FastAPI) -> None:
    """Extend the app's OpenAPI with every error answer of every operation, and its shape.

    Run once the routes are included; the document is built on its first request, so
    routes added later are documented too. An operation's own description of a status
    is kept (its content gains the shared schema).
    """
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        _add_schemas(document.setdefault("components", {}).setdefault("schemas", {}))
        for route in _documented_routes(app.routes):
            item = document["paths"].get(route.path_format, {})
            for method in route.methods or ():
                operation = item.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for status_code in sorted(error_statuses(route) | _declared(route)):
                    entry = responses.setdefault(
                        str(status_code), {"description": DESCRIPTIONS.get(status_code, "")}
                    )
                    own = route.responses.get(status_code) or route.responses.get(str(status_code))
                    if status_code < 400 or (own and ("content" in own or "model" in own)):
                        continue  # the operation describes this body itself
                    entry["content"] = _error_content(route.path_format, status_code)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _declared(route: APIRoute) -> set[int]:
    return {int(code) for code in route.responses if str(code).isdigit() and int(code) >= 400}


def _documented_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every documented APIRoute, also inside included routers.

    FastAPI 0.16x keeps an included router whole (its routes under `original_router`);
    older releases copy its routes into the app. The app includes routers without a prefix
    of its own, so a route's `path_format` is its path in the document either way.
    """
    for route in routes:
        if isinstance(route, APIRoute):
            if route.include_in_schema:
                yield route
            continue
        router = getattr(route, "original_router", None)
        if router is not None:
            yield from _documented_routes(router.routes)
