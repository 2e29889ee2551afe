"""Refusing what a request body may not be, before a route reads it (413 / 422, never a 500).

Oversized bodies are refused before they are read into memory; JSON bodies are parsed
strictly first (no NaN, no lone surrogates, bounded depth and numbers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from typing import Any

log = logging.getLogger("threadline.api")

Scope = dict[str, Any]


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, and counts chunked bodies as they arrive.

    `larger` gives a path its own limit (exact path -> bytes): a file upload
    (`POST /api/attachments`) may be as large as the attachment store takes, while every
    other body stays small."""

    def __init__(self, app: Any, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") in self.larger:
            limit = self.larger[scope["path"]]
            await BodySizeLimit(self.app, limit)(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(send, 400, "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await self._too_large(scope, send)
                    return
        seen = 0
        response_started = False
        over = False

        async def counting_receive() -> Any:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal response_started
            if over:
                # The app caught BodyTooLarge while reading (FastAPI turns any error in a form
                # or body parse into "400 error parsing the body"): the answer is 413 anyway.
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._too_large(scope, send)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):  # answered below, whoever caught it first
            await self.app(scope, counting_receive, tracking_send)
        if over and not response_started:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Any) -> None:
        log.info(
            "413 %s %s: body over %d bytes", scope.get("method"), scope.get("path"), self.max_bytes
        )
        await self._reject(send, 413, f"the request body is larger than {self.max_bytes} bytes")

    @staticmethod
    async def _reject(send: Any, status: int, detail: str) -> None:
        await _send_json(send, status, {"detail": detail})


MAX_JSON_DEPTH = 64
"""Arrays and objects nested deeper than this are refused before they are parsed."""

INT64_MAX = 2**63 - 1
"""The largest integer a database column holds (SQLite and PostgreSQL `bigint`)."""

_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\Z)', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class JsonRefused(ValueError):
    """A JSON body the API does not take: malformed, too deep, or holding what cannot be stored.

    `malformed` says it is not JSON at all (bad syntax, not UTF-8), which each route answers
    in its own words; the rest is JSON that Python reads but the log and views cannot keep.
    """

    def __init__(self, reason: str, *, malformed: bool = False) -> None:
        super().__init__(reason)
        self.malformed = malformed


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # Python refuses more than 4300 digits itself
        raise JsonRefused("an integer is outside the 64-bit range") from None
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise JsonRefused("an integer is outside the 64-bit range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused("a number is too large to be stored")
    return value


def _too_deep(text: str) -> bool:
    """Whether arrays and objects nest deeper than allowed, counted outside strings.

    A loop over the brackets, not a recursive parse, so no depth can exhaust the stack; an
    unterminated string runs to the end, so the scan stays linear on malformed input.
    """
    brackets = _JSON_BRACKET.findall(_JSON_STRING.sub("", text))
    if len(brackets) <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for bracket in brackets:
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def strict_json_loads(body: bytes | str) -> Any:
    """Parse JSON as RFC 8259 has it, and only what the log and the views can store.

    Python's `json` takes `NaN`, `Infinity`, numbers past any column's range, lone UTF-16
    surrogates (`"\\ud800"`, which no UTF-8 store can encode) and nesting that ends in a
    `RecursionError`; each of those would become a 500 further in. They are refused here,
    with a `JsonRefused` that says which.
    """
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("the body is not UTF-8", malformed=True) from None
    else:
        text = body
    if _too_deep(text):
        raise JsonRefused(f"arrays and objects are nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(
            f"arrays and objects are nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as error:
        raise JsonRefused(f"the body is not valid JSON: {error}", malformed=True) from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused(
            "a string holds a lone UTF-16 surrogate (an escape like \\ud800)"
        ) from None
    return value


def is_json_content(content_type: str | None) -> bool:
    """Whether FastAPI reads a body with this Content-Type as JSON (it does when there is none)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class StrictJsonBodies:
    """Pure ASGI middleware: every JSON request body passes `strict_json_loads` first.

    A refused body gets 422 with `detail` in the validation-error shape (`loc: ["body"]`,
    `type: "json_invalid"`), as FastAPI answers malformed JSON itself; an accepted one, and
    one that is not JSON at all (each route has its answer to that already), is handed on
    unchanged. Bodies are already bounded by `BodySizeLimit`, which runs first.

    Paths under `own_parsers` read their JSON themselves and keep their own rules (public
    forms clean a lone surrogate out of a lead's text rather than lose the lead).
    """

    def __init__(self, app: Any, own_parsers: tuple[str, ...] = ()) -> None:
        self.app = app
        self.own_parsers = own_parsers

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") in ("GET", "HEAD", "OPTIONS")
            or str(scope.get("path", "")).startswith(self.own_parsers)
        ):
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                content_type = value.decode("latin-1")
        if not is_json_content(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                strict_json_loads(body)
            except JsonRefused as error:
                if error.malformed:
                    await self.app(scope, _replay([_whole(body)], receive), send)
                    return
                log.info("422 %s %s: %s", scope.get("method"), scope.get("path"), error)
                detail = [{"loc": ["body"], "msg": str(error), "type": "json_invalid"}]
                await _send_json(send, 422, {"detail": detail})
                return
        await self.app(scope, _replay([_whole(body)], receive), send)


def _whole(body: bytes) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": False}


def _replay(messages: list[Any], receive: Any) -> Any:
    pending = list(messages)

    async def replaying_receive() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying_receive


async def _send_json(send: Any, status: int, content: Any) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
