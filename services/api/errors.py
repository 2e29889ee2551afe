"""Mapping errors to answers: bad input is never a 500, and every refusal says why.

Domain errors carry the field they concern; they become the same shape
FastAPI uses for its own validation errors, so clients parse one format.
"""

from __future__ import annotations

import logging

from eventsourcing.persistence import InterfaceError, OperationalError, RecordConflictError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from threadline.domain.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger("threadline.api")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInput)
    async def invalid_input(request: Request, error: InvalidInput) -> JSONResponse:
        log.info("422 %s %s: %s", request.method, request.url.path, error)
        return JSONResponse(
            status_code=422,
            content={
                "detail": [
                    {
                        "loc": ["body", *error.field.split(".")],
                        "msg": error.message,
                        "type": "value_error",
                    }
                ]
            },
        )

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(Conflict)
    async def conflict(request: Request, error: Conflict) -> JSONResponse:
        log.info("409 %s %s: %s", request.method, request.url.path, error)
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.exception_handler(RecordConflictError)
    async def record_conflict(request: Request, error: RecordConflictError) -> JSONResponse:
        log.info("409 %s %s: concurrent change", request.method, request.url.path)
        return JSONResponse(
            status_code=409,
            content={"detail": "someone changed this at the same time; reload and try again"},
        )

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
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=503, headers=headers)
        return PlainTextResponse(message.capitalize() + ".", status_code=503, headers=headers)

    app.add_exception_handler(OperationalError, store_unavailable)
    app.add_exception_handler(InterfaceError, store_unavailable)
