"""A local Twilio REST server and signed-webhook helper, for tests that must not reach Twilio.

`FakeTwilio` listens on a free 127.0.0.1 port and speaks the wire format of
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: HTTP basic auth with the
account SID and auth token, a urlencoded body (To, From or MessagingServiceSid,
Body, StatusCallback), a 201 with the Message resource as Twilio returns it, and
Twilio's JSON error shape for 400/401/404/5xx. Failures are configurable per
recipient (`fail_recipient`, e.g. 21610 for a recipient who replied STOP) or
for the next requests (`fail_next`, e.g. 503). Every request is recorded.

MMS media work as at Twilio: `add_media` gives a MediaUrl under
`/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}`, which
answers only with the account's basic auth, by a 307 redirect to a short-lived
URL of the media store (another origin: a second port, as Twilio's is another
host) that serves the bytes without credentials.

`signed_post` sends a webhook the way Twilio does, signed with the SDK's own
`RequestValidator.compute_signature`, so the code under test never signs its
own input. The `twilio_server` fixture is what other test modules reuse.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
API_VERSION = "2010-04-01"
_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MEDIA = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages/(?P<message>MM[0-9a-f]+)"
    r"/Media/(?P<media>ME[0-9a-f]+)$"
)
_MEDIA_STORE = re.compile(r"^/media-store/(?P<token>[0-9a-f]+)$")
UNSUBSCRIBED = {
    "code": 21610,
    "message": "Attempt to send to unsubscribed recipient",
    "more_info": "https://www.twilio.com/docs/errors/21610",
    "status": 400,
}


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error body: code, message, more_info, status."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class RecordedRequest:
    method: str
    path: str
    auth: tuple[str, str] | None
    form: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class FakeTwilio:
    """The fake server; `url` is what THREADLINE_TWILIO_API_URL points at."""

    accounts: dict[str, str] = field(default_factory=lambda: {ACCOUNT_SID: AUTH_TOKEN})
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    recipient_failures: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    queued_failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # MediaSid -> file
    media_tokens: dict[str, str] = field(default_factory=dict)  # store token -> MediaSid

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # The media store is another origin, as Twilio's is another host: the same handler
        # on a second port.
        self._store = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._store.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def store_url(self) -> str:
        host, port = self._store.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilio:
        for server in (self._server, self._store):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        # shutdown() waits for serve_forever, so only for the servers that run.
        for server, thread in zip((self._server, self._store), self._threads, strict=False):
            server.shutdown()
            thread.join(timeout=5)
        self._server.server_close()
        self._store.server_close()

    # -- configuring failures -----------------------------------------------------------------

    def fail_recipient(self, number: str, status: int = 400, error: dict[str, Any] | None = None):
        """Every message to `number` answers `status` with `error` (default: unsubscribed)."""
        with self._lock:
            self.recipient_failures[number] = (status, error or dict(UNSUBSCRIBED))

    def fail_next(self, status: int = 503, times: int = 1, code: int | None = None) -> None:
        """The next `times` message requests answer `status` (a transient outage)."""
        body = twilio_error(status, code or status, "Service Unavailable")
        with self._lock:
            self.queued_failures.extend([(status, body)] * times)

    def add_media(self, data: bytes, content_type: str, message_sid: str = "") -> str:
        """A media file of an incoming MMS; returns its MediaUrl (what the webhook carries)."""
        message_sid = message_sid or "MM" + secrets.token_hex(16)
        media_sid = "ME" + secrets.token_hex(16)
        with self._lock:
            self.media[media_sid] = (content_type, data)
        account = next(iter(self.accounts))
        return (
            f"{self.url}/{API_VERSION}/Accounts/{account}/Messages/{message_sid}/Media/{media_sid}"
        )

    def media_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if "/Media/" in r.path or "/media-store/" in r.path]

    # -- reading what happened ----------------------------------------------------------------

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        """The created messages to `number` (with or without the whatsapp: prefix)."""
        with self._lock:
            return [m for m in self.messages if m["to"] in (number, f"whatsapp:{number}")]

    def message_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/Messages.json")]

    # -- the protocol -------------------------------------------------------------------------

    def handle_media(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes] | None:
        """A media request (status, headers, body), or None when the path is not one."""
        stored = _MEDIA_STORE.match(request.path)
        if stored is not None:
            with self._lock:
                media_sid = self.media_tokens.pop(stored.group("token"), "")
                found = self.media.get(media_sid)
            if found is None:
                return 403, {"Content-Type": "application/xml"}, b"<Error>AccessDenied</Error>"
            return 200, {"Content-Type": found[0]}, found[1]
        match = _MEDIA.match(request.path)
        if match is None:
            return None
        account = match.group("account")
        if (
            request.auth is None
            or request.auth[0] != account
            or self.accounts.get(account) != request.auth[1]
        ):
            body = json.dumps(twilio_error(401, 20003, "Authenticate")).encode()
            return 401, {"Content-Type": "application/json"}, body
        with self._lock:
            if match.group("media") not in self.media:
                body = json.dumps(twilio_error(404, 20404, "not found")).encode()
                return 404, {"Content-Type": "application/json"}, body
            token = secrets.token_hex(16)
            self.media_tokens[token] = match.group("media")
        return 307, {"Location": f"{self.store_url}/media-store/{token}"}, b""

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        match = _MESSAGES.match(request.path)
        if request.method != "POST" or match is None:
            return 404, twilio_error(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        account = match.group("account")
        if (
            request.auth is None
            or request.auth[0] != account
            or self.accounts.get(account) != request.auth[1]
        ):
            return 401, twilio_error(401, 20003, "Authenticate")
        form = request.form
        to = form.get("To", "")
        if not to:
            return 400, twilio_error(400, 21604, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl"):
            return 400, twilio_error(400, 21602, "Message body is required.")
        with self._lock:
            if self.queued_failures:
                return self.queued_failures.pop(0)
            bare = to.removeprefix("whatsapp:")
            if bare in self.recipient_failures:
                return self.recipient_failures[bare]
            created = self._message(account, form)
            self.messages.append(created)
        return 201, created

    @staticmethod
    def _message(account: str, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}"
        body = form.get("Body", "")
        return {
            "account_sid": account,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From") or None,
            "messaging_service_sid": form.get("MessagingServiceSid") or None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 160))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if form.get("From") else "accepted",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form.get("To"),
            "uri": f"{uri}.json",
        }


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            request = RecordedRequest(
                method=self.command,
                path=self.path.split("?", 1)[0],
                auth=_basic_auth(self.headers.get("Authorization", "")),
                form=form,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            media = fake.handle_media(request)
            if media is not None:
                request.status = media[0]
                with fake._lock:
                    fake.requests.append(request)
                self.send_response(media[0])
                for name, value in media[1].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(media[2])))
                self.end_headers()
                self.wfile.write(media[2])
                return
            status, payload = fake.handle(request)
            request.status = status
            with fake._lock:
                fake.requests.append(request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


# -- signed webhooks ----------------------------------------------------------------------------


class _Params(dict[str, list[str]]):
    def getall(self, name: str) -> list[str]:
        return self[name]


def signature_for(
    auth_token: str, url: str, params: Mapping[str, str] | Sequence[tuple[str, str]]
) -> str:
    """X-Twilio-Signature as Twilio computes it, by the SDK's RequestValidator."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    grouped = _Params()
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    signature: str = RequestValidator(auth_token).compute_signature(url, grouped)
    return signature


def signed_post(
    client: Any,
    path: str,
    params: Mapping[str, str] | Sequence[tuple[str, str]],
    auth_token: str = AUTH_TOKEN,
    public_url: str = "http://testserver",
    headers: Mapping[str, str] | None = None,
) -> Any:
    """POST a urlencoded webhook to `path` (query string included) signed for `public_url`."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    signature = signature_for(auth_token, public_url.rstrip("/") + path, pairs)
    return client.post(
        path,
        content=urlencode(pairs).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            **(headers or {}),
        },
    )


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    """A running fake Twilio REST API (account ACCOUNT_SID, token AUTH_TOKEN)."""
    fake = FakeTwilio().start()
    try:
        yield fake
    finally:
        fake.stop()
