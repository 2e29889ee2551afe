"""A small local Telegram Bot API server that speaks the real wire format, for tests.

python-telegram-bot talks to it exactly as to api.telegram.org: `POST /bot<token>/<method>`
with form, multipart or JSON bodies (GET with a query string works too), answered with
`{"ok": true, "result": ...}` in the Bot API's own shapes, or with the error bodies Telegram
sends (403 "Forbidden: bot was blocked by the user", 400 "Bad Request: chat not found",
429 with `parameters.retry_after`, 401 for a wrong token, 409 for getUpdates while a
webhook is set). Tests queue updates for long polling, mark chats as blocked or unknown,
script one-off errors, and assert on every recorded call.

It listens on 127.0.0.1 on a free port; a long poll waits at most `max_poll_seconds`, so
nothing in a test can hang on it.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

BOT_ID = 7_000_000_001
TOKEN = f"{BOT_ID}:AAH-test-token_abcdefghijklmnopqrstuvw"
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Threadline Test",
    "username": "threadline_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
INT_PARAMS = {"chat_id", "offset", "limit", "timeout", "message_id", "max_connections"}
JSON_PARAMS = {"allowed_updates", "reply_markup", "reply_parameters", "link_preview_options"}
BOOL_PARAMS = {"drop_pending_updates", "disable_notification", "protect_content"}


class ApiError(Exception):
    """An error answer in Telegram's shape."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            answer["parameters"] = {"retry_after": self.retry_after}
        return answer


@dataclass
class Call:
    """One request the server received (the token is checked, not recorded)."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    name: str
    mime_type: str
    data: bytes
    folder: str = "documents"

    @property
    def path(self) -> str:
        """The `file_path` getFile answers, in Telegram's shape (`photos/file_3.jpg`)."""
        return f"{self.folder}/{self.file_unique_id}_{self.name}"


class FakeTelegram:
    """The server state and its HTTP front; see the module docstring."""

    def __init__(self, token: str = TOKEN, max_poll_seconds: float = 1.0) -> None:
        self.token = token
        self.max_poll_seconds = max_poll_seconds
        self.calls: list[Call] = []
        self.blocked: set[int] = set()
        self.unknown_chats: set[int] = set()
        self.webhook: dict[str, Any] | None = None
        self.files: dict[str, StoredFile] = {}
        self._updates: list[dict[str, Any]] = []
        self._errors: dict[str, list[ApiError]] = {}
        self._update_ids = itertools.count(100_000)
        self._message_ids = itertools.count(500)
        self._file_ids = itertools.count(1)
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTelegram:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what tests do -----------------------------------------------------------------------

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue one update for getUpdates; an `update_id` is assigned when missing."""
        with self._cond:
            update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def add_file(
        self, data: bytes, mime_type: str, kind: str = "document", name: str = ""
    ) -> StoredFile:
        """A file a client sent (a photo, a voice message, a document): getFile finds it by
        its `file_id` and `GET /file/bot<token>/<file_path>` serves its bytes."""
        folder = {"photo": "photos", "voice": "voice", "audio": "music"}.get(kind, "documents")
        number = next(self._file_ids)
        extension = {"photo": ".jpg", "voice": ".oga"}.get(kind, "")
        stored = StoredFile(
            f"AgACAgI-{kind}-{number}",
            f"AQAD{kind}{number}",
            name or f"file_{number}{extension}",
            mime_type,
            data,
            folder,
        )
        with self._cond:
            self.files[stored.file_id] = stored
        return stored

    def file_downloads(self) -> list[str]:
        """The file paths downloaded so far (`GET /file/bot<token>/<path>`)."""
        with self._cond:
            return [c.params["path"] for c in self.calls if c.method == "<file>"]

    def next_update_id(self) -> int:
        with self._cond:
            return next(self._update_ids)

    def fail_next(
        self, method: str, code: int, description: str, retry_after: int | None = None
    ) -> None:
        """The next call of `method` answers this error (once)."""
        with self._cond:
            self._errors.setdefault(method, []).append(ApiError(code, description, retry_after))

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        with self._cond:
            return [c.params for c in self.calls if c.method == method]

    def pending_updates(self) -> int:
        with self._cond:
            return len(self._updates)

    # -- the Bot API -------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], files: dict[str, Any]) -> Any:
        with self._cond:
            self.calls.append(Call(method, dict(params), dict(files)))
            scripted = self._errors.get(method)
            if scripted:
                raise scripted.pop(0)
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params, files)

    def api_getMe(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return BOT_USER

    def api_setWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        url = str(params.get("url") or "")
        with self._cond:
            self.webhook = {"url": url, "secret_token": params.get("secret_token")} if url else None
        return True

    def api_deleteWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        with self._cond:
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        with self._cond:
            return {
                "url": (self.webhook or {}).get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }

    def api_getUpdates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 100))
        wait = min(float(params.get("timeout") or 0), self.max_poll_seconds)
        deadline = time.monotonic() + wait
        with self._cond:
            if self.webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            # An offset confirms every update below it: Telegram forgets them for good.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return [dict(u) for u in self._updates[:limit]]

    def api_sendMessage(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        text = str(params.get("text") or "")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._message(chat_id, text=text)

    def api_sendDocument(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        if "document" in files:
            name, mime_type, data = files["document"]
            number = next(self._file_ids)
            stored = StoredFile(f"BQACAgI-doc-{number}", f"AgADdoc{number}", name, mime_type, data)
            with self._cond:
                self.files[stored.file_id] = stored
        else:
            found = self.files.get(str(params.get("document") or ""))
            if found is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            stored = found
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.name,
            "mime_type": stored.mime_type,
            "file_size": len(stored.data),
        }
        extra: dict[str, Any] = {"document": document}
        if params.get("caption"):
            extra["caption"] = str(params["caption"])
        return self._message(chat_id, **extra)

    def api_getFile(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    def file_bytes(self, path: str) -> bytes | None:
        for stored in self.files.values():
            if stored.path == path:
                return stored.data
        return None

    def _chat(self, params: dict[str, Any]) -> int:
        raw = params.get("chat_id")
        try:
            chat_id = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id in self.unknown_chats:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "from": BOT_USER,
            "chat": {"id": chat_id, "type": "private", "first_name": "Client"},
            "date": int(time.time()),
            **content,
        }


def _decode(name: str, value: str) -> Any:
    """Form values arrive as strings (python-telegram-bot JSON-encodes non-string values)."""
    if name in INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in BOOL_PARAMS:
        return value.lower() in ("1", "true")
    return value


def _parse_body(
    content_type: str, body: bytes
) -> tuple[dict[str, Any], dict[str, tuple[str, str, bytes]]]:
    params: dict[str, Any] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    if not body:
        return params, files
    if content_type.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ApiError(400, "Bad Request: expected a JSON object")
        return decoded, files
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[str(name)] = (filename, part.get_content_type(), payload)
            else:
                params[str(name)] = _decode(str(name), payload.decode())
        return params, files
    for name, value in parse_qsl(body.decode(), keep_blank_values=True):
        params[name] = _decode(name, value)
    return params, files


def _handler_for(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            segments = unquote(parts.path).strip("/").split("/")
            if len(segments) >= 3 and segments[0] == "file" and segments[1].startswith("bot"):
                self._serve_file(segments[1][3:], "/".join(segments[2:]))
                return
            if len(segments) != 2 or not segments[0].startswith("bot"):
                self._answer(404, ApiError(404, "Not Found").body())
                return
            token, method = segments[0][3:], segments[1]
            if token != fake.token:
                self._answer(401, ApiError(401, "Unauthorized").body())
                return
            try:
                params = {k: _decode(k, v) for k, v in parse_qsl(parts.query)}
                body_params, files = _parse_body(self.headers.get("Content-Type") or "", body)
                params.update(body_params)
                result = fake.handle(method, params, files)
            except ApiError as error:
                self._answer(error.code, error.body())
                return
            except Exception as error:  # a bug in the fake: say so loudly
                self._answer(500, ApiError(500, f"fake server error: {error!r}").body())
                return
            self._answer(200, {"ok": True, "result": result})

        def _serve_file(self, token: str, path: str) -> None:
            with fake._cond:
                fake.calls.append(Call("<file>", {"path": path}))
            data = fake.file_bytes(path) if token == fake.token else None
            if data is None:
                self._answer(404, ApiError(404, "Not Found").body())
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def running_fake_telegram(
    token: str = TOKEN, max_poll_seconds: float = 1.0
) -> Iterator[FakeTelegram]:
    fake = FakeTelegram(token, max_poll_seconds).start()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def telegram_server() -> Iterator[FakeTelegram]:
    """A running fake Bot API server; point `telegram_api_url` at `telegram_server.url`."""
    with running_fake_telegram() as fake:
        yield fake


# -- update builders: the JSON Telegram posts to a webhook (or returns from getUpdates) ------

_UPDATE_IDS = itertools.count(1_000_000)


def user_json(user_id: int, first_name: str = "Анна", last_name: str = "Петрова") -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "last_name": last_name,
        "username": f"user{user_id}",
        "language_code": "ru",
    }


def message_update(
    user_id: int,
    message_id: int,
    update_id: int | None = None,
    first_name: str = "Анна",
    last_name: str = "Петрова",
    **content: Any,
) -> dict[str, Any]:
    """A private-chat `message` update; `content` is e.g. text=..., photo=[...], contact={...}.

    Without `update_id` the next one of a process-wide counter is used, so updates built one
    after another have increasing ids, as Telegram's do.
    """
    update: dict[str, Any] = {
        "update_id": next(_UPDATE_IDS) if update_id is None else update_id,
        "message": {
            "message_id": message_id,
            "from": user_json(user_id, first_name, last_name),
            "chat": {
                "id": user_id,
                "type": "private",
                "first_name": first_name,
                "last_name": last_name,
                "username": f"user{user_id}",
            },
            "date": 1_760_000_000 + message_id,
            **content,
        },
    }
    return update
