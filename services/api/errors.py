"""Mapping errors to answers: bad input is never a 500, and every refusal says why.

Domain errors carry the field they concern; they become the same shape
FastAPI uses for its own validation errors, so clients parse one format.
"""

from __future__ import annotations

import logging

from eventsourcing.persistence import RecordConflictError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
