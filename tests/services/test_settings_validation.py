"""Inbox settings are checked by their type when saved (issue 10, item 13).

Every value a provider would refuse, or that would hurt the server, is a 422
naming `settings.<field>`, through `POST /api/inboxes` and `PATCH
/api/inboxes/{slug}` alike, and nothing of it is stored; arbitrary JSON in any
field of any channel is a 201/200 or a 422, never a 500, and what is stored reads
back and saves back unchanged.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels.fake_telegram import TOKEN
from tests.conftest import make_runtime
from tests.run_apart import run_apart
from threadline.channels.base import (
    ChannelServices,
    DeliveryError,
    InboxConfig,
    OutboundMessage,
)
from threadline.channels.registry import load_adapters
from threadline.channels.sandbox import SandboxAdapter
from threadline.channels.settings import DATA_DIR, confined_path
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2

# The smallest settings each channel accepts; a test changes one field at a time.
VALID: dict[str, dict[str, Any]] = {
    "email": {"imap_host": "imap.example.com", "imap_password": "pw"},
    "telegram": {"bot_token": TOKEN, "webhook_secret": "hook_secret-1"},
    "twilio": {"account_sid": ACCOUNT_SID, "auth_token": "twilio-token"},
    "webforms": {},
    "sandbox": {},
}


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "a")
    )
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def inbox(channel: str, slug: str | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "slug": slug or f"{channel}-{uuid.uuid4().hex[:8]}",
        "channel": channel,
        "name": channel.title(),
        "settings": {**VALID[channel], **changes},
    }


def refused_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    location = response.json()["detail"][0]["loc"]
    return ".".join(str(part) for part in location[1:])


BAD_VALUES = [
    ("telegram", "webhook_secret", "has spaces and ünïcode"),
    ("telegram", "webhook_secret", "x" * 257),
    ("telegram", "bot_token", {"token": TOKEN}),
    ("telegram", "bot_token", ["123:abc"]),
    ("telegram", "bot_token", "not-a-bot-token"),
    ("telegram", "mode", "carrier-pigeon"),
    ("twilio", "forward_to", "call the office"),
    ("twilio", "forward_to", "12"),
    ("twilio", "ring_seconds", 10**18),
    ("twilio", "ring_seconds", "1" + "0" * 30),
    ("twilio", "ring_seconds", 1e30),
    ("twilio", "ring_seconds", 0),
    ("twilio", "ring_seconds", "twenty"),
    ("twilio", "ring_seconds", True),
    ("twilio", "account_sid", {"$gt": ""}),
    ("twilio", "voicemail", "perhaps"),
    ("sandbox", "path", "/etc/cron.d/threadline"),
    ("sandbox", "path", "../outside.jsonl"),
    ("sandbox", "path", "var/../../outside.jsonl"),
    ("sandbox", "path", "outbox.jsonl"),
    ("sandbox", "path", "var"),
    ("email", "imap_port", 70000),
    ("email", "smtp_port", 0),
    ("email", "imap_host", "not a host!"),
    ("email", "smtp_host", ["smtp.example.com"]),
    ("email", "from_address", "nobody"),
    ("email", "imap_security", "maybe"),
    ("email", "imap_folders", [{"name": "INBOX"}]),
    ("email", "from_name", "line\nbreak"),
    ("email", "imap_username", "x" * 400),
    ("webforms", "trust_forwarded_for", {"yes": True}),
]


@pytest.mark.parametrize(("channel", "name", "value"), BAD_VALUES)
def test_a_bad_setting_is_refused_at_save_and_nothing_is_stored(
    api: tuple[TestClient, Runtime], channel: str, name: str, value: Any
) -> None:
    client, runtime = api
    before = runtime.app.recorder.max_notification_id()
    body = inbox(channel, slug="bad", **{name: value})
    assert refused_field(client.post("/api/inboxes", json=body, headers=ADMIN)) == (
        f"settings.{name}"
    )
    assert runtime.app.recorder.max_notification_id() == before
    assert runtime.channels.inbox("bad") is None
    assert runtime.channels.secrets.get_all("bad") == {}

    # The same value in a change of a good inbox: refused, and the inbox stays as it was.
    good = client.post("/api/inboxes", json=inbox(channel, slug="good"), headers=ADMIN)
    assert good.status_code == 201, good.text
    stored = runtime.channels.inbox("good")
    before = runtime.app.recorder.max_notification_id()
    patch = client.patch("/api/inboxes/good", json={"settings": {name: value}}, headers=ADMIN)
    assert refused_field(patch) == f"settings.{name}"
    assert runtime.app.recorder.max_notification_id() == before
    assert runtime.channels.inbox("good") == stored


def test_good_values_are_stored_cleaned(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    twilio = inbox(
        "twilio",
        forward_to="+1 (415) 867-5309",
        phone_number="+1 501 712 2661",
        ring_seconds="45",
        voicemail="off",
    )
    created = client.post("/api/inboxes", json=twilio, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["settings"] == {
        "account_sid": ACCOUNT_SID,
        "forward_to": "+14158675309",
        "phone_number": "+15017122661",
        "ring_seconds": 45,
        "voicemail": False,
    }
    mail = inbox(
        "email",
        imap_host=" IMAP.Example.COM. ",
        imap_port=143,
        smtp_host="[::1]",
        imap_security="STARTTLS",
        imap_folders="INBOX, Support ,",
        from_address="Support@Example.com",
    )
    created = client.post("/api/inboxes", json=mail, headers=ADMIN)
    assert created.status_code == 201, created.text
    settings_ = created.json()["settings"]
    assert settings_["imap_host"] == "imap.example.com"
    assert settings_["smtp_host"] == "::1"
    assert settings_["imap_security"] == "starttls"
    assert settings_["imap_folders"] == ["INBOX", "Support"]
    assert settings_["from_address"] == "support@example.com"
    sandbox = client.post(
        "/api/inboxes", json=inbox("sandbox", path="var/staging/outbox.jsonl"), headers=ADMIN
    )
    assert sandbox.status_code == 201, sandbox.text


def test_the_channels_describe_their_bounds(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    channels = {c["channel"]: c for c in client.get("/api/channels", headers=ADMIN).json()}
    twilio = {f["name"]: f for f in channels["twilio"]["settings"]}
    assert (twilio["ring_seconds"]["minimum"], twilio["ring_seconds"]["maximum"]) == (5, 600)
    mail = {f["name"]: f for f in channels["email"]["settings"]}
    assert (mail["imap_port"]["minimum"], mail["imap_port"]["maximum"]) == (1, 65535)
    assert mail["smtp_security"]["choices"] == ["starttls", "tls", "none"]
    telegram = {f["name"]: f for f in channels["telegram"]["settings"]}
    assert telegram["webhook_secret"]["max_length"] == 256


# -- the sandbox file stays under var/ --------------------------------------------------------


@pytest.fixture
def escape_link(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A symbolic link inside var/ that leads out of it, removed afterwards."""
    DATA_DIR.mkdir(exist_ok=True)
    link = DATA_DIR / f"escape-{uuid.uuid4().hex[:8]}"
    outside = tmp_path / "outside"
    outside.mkdir()
    try:
        yield str(link), outside
    finally:
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        else:
            link.unlink(missing_ok=True)


def test_a_symbolic_link_out_of_var_is_refused_at_save(
    api: tuple[TestClient, Runtime], escape_link: tuple[str, Path]
) -> None:
    client, _ = api
    link, outside = escape_link
    Path(link).symlink_to(outside, target_is_directory=True)
    for path in (f"{link}/outbox.jsonl", link):
        body = inbox("sandbox", slug="linked", path=path)
        assert refused_field(client.post("/api/inboxes", json=body, headers=ADMIN)) == (
            "settings.path"
        )
    assert confined_path("var/ok.jsonl") == (Path.cwd() / "var" / "ok.jsonl").resolve()
    assert confined_path(str(Path.cwd() / "var" / "abs.jsonl")).name == "abs.jsonl"


class _Unused:
    """ChannelServices parts the sandbox never touches."""

    def get(self, key: str) -> None:
        return None

    def set(self, key: str, value: str) -> None:
        return None


def test_a_link_made_after_saving_is_refused_at_send(escape_link: tuple[str, Path]) -> None:
    """The check is repeated at each send: the file or a directory on its way may have
    become a symbolic link since the inbox was saved."""
    link, outside = escape_link
    config = InboxConfig(
        id=uuid.uuid4(), slug="sb", channel="sandbox", name="Sandbox",
        settings={"path": f"{link}/outbox.jsonl"},
    )  # fmt: skip

    async def ingest(message: Any) -> Any:
        raise AssertionError("the sandbox ingests nothing")

    services = ChannelServices(ingest=ingest, state=_Unused(), attachments=None)  # type: ignore[arg-type]
    adapter = SandboxAdapter(config, services)
    message = OutboundMessage(
        message_id=uuid.uuid4(), conversation_id=uuid.uuid4(), contact_id=uuid.uuid4(),
        channel="email", recipient="anna@example.com", text="hello",
    )  # fmt: skip
    Path(link).mkdir()
    try:
        assert run_apart(adapter.send(message)).startswith("sandbox-")
        assert "hello" in (Path(link) / "outbox.jsonl").read_text()
    finally:
        (Path(link) / "outbox.jsonl").unlink()
        Path(link).rmdir()
    Path(link).symlink_to(outside, target_is_directory=True)
    with pytest.raises(DeliveryError) as refused:
        run_apart(adapter.send(message))
    assert refused.value.permanent
    assert list(outside.iterdir()) == []


# -- arbitrary JSON in every field of every channel ---------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # beyond: the body is refused
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "65536",
            "true",
            "off",
            "none",
            "STARTTLS",
            "var/x.jsonl",
            "../x",
            "/etc/passwd",
            "+15017122661",
            "8 916 123 45 67",
            "a@b.example",
            "http://x.example/",
            "ftp://x",
            "[::1]",
            "imap.example.com",
            TOKEN,
            "AC" + "0" * 32,
            "x" * 600,
            "a,b,,c",
            "line\nbreak",
            "nul\x00",
        ]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
FIELDS = sorted(
    (name, spec.name)
    for name, adapter in load_adapters().items()
    if name in VALID
    for spec in adapter.settings_schema
)


@pytest.fixture
def sqlite_api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        sqlite_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "a")
    )
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_json_in_any_setting_is_stored_or_refused_never_a_500(
    sqlite_api: tuple[TestClient, Runtime], field: tuple[str, str], value: Any
) -> None:
    client, runtime = sqlite_api
    channel, name = field
    body = inbox(channel, **{name: value})
    created = client.post("/api/inboxes", json=body, headers=ADMIN)
    assert created.status_code in (201, 422), created.text
    if created.status_code == 422:
        assert refused_field(created) == f"settings.{name}"
        assert runtime.channels.inbox(body["slug"]) is None
        return
    stored = created.json()
    read = client.get(f"/api/inboxes/{body['slug']}", headers=ADMIN)
    assert read.status_code == 200 and read.json() == stored
    # Saved back as read, nothing changes: cleaning is idempotent.
    again = client.patch(
        f"/api/inboxes/{body['slug']}", json={"settings": stored["settings"]}, headers=ADMIN
    )
    assert again.status_code == 200, again.text
    assert again.json() == stored
