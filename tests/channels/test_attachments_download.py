"""Attachments that can be seen: Telegram photos and voice messages (getFile, then the file URL)
and MMS media (MediaUrl with the account's basic auth, through Twilio's redirect) are downloaded
into the attachment store by the real channel code against the local fakes, and served only to
those allowed: an API token or a logged-in session, never an anonymous caller.

A download that fails keeps the message, marked "not downloaded: <reason>", and the file is
fetched again when someone opens it.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.channels.fake_telegram import TOKEN, FakeTelegram, message_update, running_fake_telegram
from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, signed_post
from tests.channels.test_webforms import define
from tests.conftest import make_runtime
from tests.waiting import wait_for
from tests.web.helpers import create_user, login
from threadline.projections.inbox import channel_messages
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ADMIN = {"Authorization": "Bearer admin-secret"}
SECRET = "hook-secret_0123456789"
PUBLIC = "http://testserver"
OUR_NUMBER = "+15017122661"
CLIENT = "+14155552671"
USER = 300_400_500


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG image (so a browser can decode it), built without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


VOICE = b"OggS\x00\x02" + bytes(range(200))  # the bytes only have to arrive unchanged


@dataclass
class Env:
    client: TestClient
    runtime: Runtime
    telegram: FakeTelegram
    twilio: FakeTwilio


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    try:
        yield fake
    finally:
        fake.stop()


def make_env(
    url: str, tmp_path: Path, telegram: FakeTelegram, twilio: FakeTwilio, **overrides: Any
) -> tuple[Runtime, TestClient]:
    runtime = make_runtime(
        url,
        admin_token="admin-secret",
        public_url=PUBLIC,
        telegram_api_url=telegram.url,
        twilio_api_url=twilio.url,
        attachments_dir=str(tmp_path / "attachments"),
        **overrides,
    )
    runtime.channels.configure(
        "tg", "telegram", "Telegram", {"bot_token": TOKEN, "webhook_secret": SECRET}, actor="test"
    )
    runtime.channels.configure(
        "sms", "twilio", "SMS",
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": OUR_NUMBER},
        actor="test",
    )  # fmt: skip
    return runtime, TestClient(create_app(runtime))


@pytest.fixture
def env_factory(tmp_path: Path, twilio: FakeTwilio) -> Iterator[Callable[..., Env]]:
    opened: list[tuple[Runtime, TestClient, Any]] = []

    def factory(url: str | None = None, **overrides: Any) -> Env:
        fake = running_fake_telegram()
        telegram = fake.__enter__()
        runtime, client = make_env(
            url or f"sqlite:///{tmp_path}/threadline.db", tmp_path, telegram, twilio, **overrides
        )
        client.__enter__()
        opened.append((runtime, client, fake))
        return Env(client, runtime, telegram, twilio)

    yield factory
    for runtime, client, fake in opened:
        client.__exit__(None, None, None)
        runtime.close()
        fake.__exit__(None, None, None)


def telegram_post(env: Env, update: dict[str, Any]) -> dict[str, Any]:
    response = env.client.post(
        "/hooks/telegram/tg", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def mms(sid: str, *media: tuple[str, str]) -> list[tuple[str, str]]:
    params = [
        ("AccountSid", ACCOUNT_SID), ("MessageSid", sid), ("From", CLIENT), ("To", OUR_NUMBER),
        ("Body", "See the photo"), ("NumMedia", str(len(media))),
    ]  # fmt: skip
    for index, (url, content_type) in enumerate(media):
        params += [(f"MediaUrl{index}", url), (f"MediaContentType{index}", content_type)]
    return params


def message(env: Env, message_id: str) -> dict[str, Any]:
    found = env.runtime.queries.message(message_id)
    assert found is not None
    return found


def photo_update(file_id: str, unique: str, size: int, message_id: int = 1) -> dict[str, Any]:
    sizes = [
        {"file_id": file_id + "-small", "file_unique_id": unique + "s", "width": 2, "height": 1},
        {"file_id": file_id, "file_unique_id": unique, "width": 4, "height": 3, "file_size": size},
    ]
    return message_update(USER, message_id, photo=sizes, caption="The crack in the vase")


def voice_update(file_id: str, unique: str, size: int, message_id: int = 2) -> dict[str, Any]:
    voice = {
        "file_id": file_id,
        "file_unique_id": unique,
        "duration": 3,
        "mime_type": "audio/ogg",
        "file_size": size,
    }
    return message_update(USER, message_id, voice=voice)


def served(env: Env, message_id: str, index: int = 0, **headers: str) -> Any:
    return env.client.get(
        f"/api/messages/{message_id}/attachments/{index}", headers=headers or ADMIN
    )


# -- Telegram ---------------------------------------------------------------------------------


def test_telegram_photo_and_voice_are_downloaded_and_served_to_allowed_users_only(
    database_url: str, env_factory: Callable[..., Env]
) -> None:
    env = env_factory(database_url)
    image = png()
    photo = env.telegram.add_file(image, "image/jpeg", kind="photo")
    voice = env.telegram.add_file(VOICE, "audio/ogg", kind="voice")
    photo_id = telegram_post(env, photo_update(photo.file_id, photo.file_unique_id, len(image)))[
        "message_id"
    ]
    voice_id = telegram_post(env, voice_update(voice.file_id, voice.file_unique_id, len(VOICE)))[
        "message_id"
    ]

    # getFile, then GET /file/bot<token>/<file_path>: the real wire format, through the fake.
    assert [c["file_id"] for c in env.telegram.calls_of("getFile")] == [
        photo.file_id,
        voice.file_id,
    ]
    assert env.telegram.file_downloads() == [photo.path, voice.path]
    [recorded_photo] = message(env, photo_id)["attachments"]
    assert recorded_photo["stored"] is True and "error" not in recorded_photo
    assert recorded_photo["sha256"] == hashlib.sha256(image).hexdigest()
    assert recorded_photo["reference"] == photo.file_id and recorded_photo["size"] == len(image)
    [recorded_voice] = message(env, voice_id)["attachments"]
    assert recorded_voice["stored"] is True and recorded_voice["content_type"] == "audio/ogg"

    # The API with a token: the bytes, inline (a previewable type), never sniffed.
    answer = served(env, photo_id)
    assert answer.status_code == 200, answer.text
    assert answer.content == image
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["content-disposition"].startswith("inline")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in answer.headers["content-security-policy"]
    audio = served(env, voice_id)
    assert audio.status_code == 200 and audio.content == VOICE
    assert audio.headers["content-type"] == "audio/ogg"

    # Anonymous callers get nothing: no token is 401, a session-less page goes to the login.
    assert served(env, photo_id, Authorization="Bearer wrong").status_code == 401
    anonymous = TestClient(create_app(env.runtime))
    assert anonymous.get(f"/api/messages/{photo_id}/attachments/0").status_code == 401
    page = anonymous.get(f"/attachments/{photo_id}/0", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert image not in page.content

    # A logged-in operator gets the file from the web app, and the thread shows the previews.
    create_user(env.runtime, "olga@example.com", "operator", name="Olga")
    operator = TestClient(create_app(env.runtime))
    login(operator, "olga@example.com")
    assert operator.get(f"/attachments/{photo_id}/0").content == image
    conversation_id = message(env, photo_id)["conversation_id"]
    thread = operator.get(f"/inbox/{conversation_id}/thread")
    assert thread.status_code == 200, thread.text
    assert f'<img class="attachment-image" src="/attachments/{photo_id}/0"' in thread.text
    assert (
        f'<audio class="attachment-audio" controls preload="metadata" src="/attachments/{voice_id}/0"'
        in thread.text
    )

    # The route is documented in the OpenAPI.
    operations = env.client.get("/openapi.json").json()["paths"]
    assert "get" in operations["/api/messages/{message_id}/attachments/{index}"]

    # What does not exist is a 404 to everyone allowed, the same for a message and an index.
    assert served(env, photo_id, 5).status_code == 404
    assert served(env, "00000000-0000-0000-0000-000000000000").status_code == 404
    assert operator.get(f"/attachments/{photo_id}/5").status_code == 404
    assert operator.get("/attachments/not-a-uuid/0").status_code == 404


def test_a_failed_download_keeps_the_message_and_is_fetched_again_when_opened(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory()
    image = png(rgb=(10, 120, 40))
    photo = env.telegram.add_file(image, "image/jpeg", kind="photo")
    env.telegram.fail_next("getFile", 400, "Bad Request: temporarily unavailable")
    message_id = telegram_post(env, photo_update(photo.file_id, photo.file_unique_id, len(image)))[
        "message_id"
    ]

    [recorded] = message(env, message_id)["attachments"]
    assert recorded["stored"] is False and recorded["reference"] == photo.file_id
    assert recorded["error"].startswith("not downloaded: getFile failed")
    assert "Temporarily unavailable" in recorded["error"]
    assert TOKEN not in recorded["error"]
    create_user(env.runtime, "ivan@example.com", "operator")
    operator = TestClient(create_app(env.runtime))
    login(operator, "ivan@example.com")
    conversation_id = message(env, message_id)["conversation_id"]
    thread = operator.get(f"/inbox/{conversation_id}/thread").text
    assert "Not downloaded" in thread and "Temporarily unavailable" in thread
    assert "attachment-image" not in thread

    # Opening it fetches it again (the provider answers now); the log still says what it said.
    answer = served(env, message_id)
    assert answer.status_code == 200 and answer.content == image
    assert len(env.telegram.calls_of("getFile")) == 2
    assert message(env, message_id)["attachments"][0]["stored"] is False
    thread = operator.get(f"/inbox/{conversation_id}/thread").text
    assert f'src="/attachments/{message_id}/0"' in thread and "Not downloaded" not in thread
    # Kept: the next opening does not ask Telegram again.
    assert served(env, message_id).content == image
    assert len(env.telegram.calls_of("getFile")) == 2


def test_a_file_that_cannot_be_fetched_again_says_why(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    env.telegram.fail_next("getFile", 400, "Bad Request: invalid file_id")
    message_id = telegram_post(env, photo_update("AgAC-gone", "AQADgone", 10))["message_id"]
    answer = served(env, message_id)
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith("not downloaded: getFile failed")
    # Failures are remembered for a while: a reload does not hammer the provider.
    calls = len(env.telegram.calls_of("getFile"))
    assert served(env, message_id).status_code == 502
    assert len(env.telegram.calls_of("getFile")) == calls


# -- Twilio MMS --------------------------------------------------------------------------------


def test_mms_image_is_downloaded_with_basic_auth_through_the_redirect(
    database_url: str, env_factory: Callable[..., Env]
) -> None:
    env = env_factory(database_url)
    image = png(rgb=(30, 30, 200))
    url = env.twilio.add_media(image, "image/png")
    assert signed_post(env.client, "/hooks/twilio/sms", mms("MM" + "a" * 32, (url, "image/png")))
    rows = channel_messages(env.runtime.views, "sms")
    [message_id] = [row.id for row in rows]

    [recorded] = message(env, message_id)["attachments"]
    assert recorded["stored"] is True and recorded["reference"] == url
    assert recorded["sha256"] == hashlib.sha256(image).hexdigest()
    first, second = env.twilio.media_requests()
    assert first.auth == (ACCOUNT_SID, AUTH_TOKEN) and first.status == 307
    # Twilio's redirect goes to its media store: the credentials do not follow it.
    assert second.path.startswith("/media-store/") and second.auth is None
    assert second.status == 200

    answer = served(env, message_id)
    assert answer.status_code == 200 and answer.content == image
    assert answer.headers["content-type"] == "image/png"
    anonymous = TestClient(create_app(env.runtime))
    assert anonymous.get(f"/api/messages/{message_id}/attachments/0").status_code == 401
    assert anonymous.get(f"/attachments/{message_id}/0", follow_redirects=False).status_code == 303


def test_media_off_the_twilio_api_is_not_fetched_with_the_credentials(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory()
    elsewhere = "http://127.0.0.1:9/2010-04-01/Accounts/x/Messages/MM1/Media/ME1"
    signed_post(env.client, "/hooks/twilio/sms", mms("MM" + "b" * 32, (elsewhere, "image/png")))
    [row] = channel_messages(env.runtime.views, "sms")
    [recorded] = message(env, row.id)["attachments"]
    assert recorded["stored"] is False
    assert recorded["error"] == (
        "not downloaded: not a media URL of the Twilio API (THREADLINE_TWILIO_API_URL)"
    )
    assert served(env, row.id).status_code == 502


def test_svg_and_html_are_downloads_never_pages_and_oversized_files_are_not_kept(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory(max_attachment_bytes=4096)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    page = b"<html><script>alert(1)</script></html>"
    big = b"x" * 5000
    params = mms(
        "MM" + "c" * 32,
        (env.twilio.add_media(svg, "image/svg+xml"), "image/svg+xml"),
        (env.twilio.add_media(page, "text/html"), "text/html"),
        (env.twilio.add_media(big, "image/jpeg"), "image/jpeg"),
    )
    signed_post(env.client, "/hooks/twilio/sms", params)
    [row] = channel_messages(env.runtime.views, "sms")
    message_id = row.id
    for index, body in ((0, svg), (1, page)):
        answer = served(env, message_id, index)
        assert answer.status_code == 200 and answer.content == body
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert answer.headers["x-content-type-options"] == "nosniff"
    oversized = message(env, message_id)["attachments"][2]
    assert oversized["over_limit"] is True and oversized["stored"] is False
    requests_before = len(env.twilio.media_requests())
    assert served(env, message_id, 2).status_code == 404  # never fetched again
    assert len(env.twilio.media_requests()) == requests_before


# -- form uploads ------------------------------------------------------------------------------


def test_a_form_upload_is_previewed_and_served(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    define(
        env.client,
        slug="damage",
        fields=[
            {"name": "email", "label": "E-mail", "type": "email", "required": True},
            {"name": "photo", "label": "Photo", "type": "file", "required": True},
        ],
        mapping={"email": "email"},
    )
    image = png(rgb=(0, 0, 0))
    response = env.client.post(
        "/forms/damage",
        data={"email": "vera@example.com"},
        files={"photo": ("damage.png", image, "image/png")},
    )
    assert response.status_code == 201, response.text
    message_id = str(response.json()["message_id"])
    assert served(env, message_id).content == image
    create_user(env.runtime, "nina@example.com", "operator")
    operator = TestClient(create_app(env.runtime))
    login(operator, "nina@example.com")
    thread = operator.get(f"/inbox/{message(env, message_id)['conversation_id']}/thread").text
    assert f'<img class="attachment-image" src="/attachments/{message_id}/0"' in thread
    assert operator.get(f"/attachments/{message_id}/0").content == image


# -- long polling ------------------------------------------------------------------------------


def test_a_telegram_file_over_the_limit_is_described_not_fetched(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory(max_attachment_bytes=1000)
    message_id = telegram_post(env, voice_update("AwAC-big", "AQADbig", 50_000, 3))["message_id"]
    [recorded] = message(env, message_id)["attachments"]
    assert recorded["over_limit"] is True and recorded["stored"] is False
    assert env.telegram.calls_of("getFile") == []
    assert served(env, message_id).status_code == 404


def test_a_polled_photo_is_downloaded_too(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    image = png(rgb=(90, 90, 0))
    photo = env.telegram.add_file(image, "image/jpeg", kind="photo")
    env.runtime.channels.configure(
        "poll", "telegram", "Polling", {"bot_token": TOKEN, "mode": "polling"}, actor="test"
    )
    env.telegram.queue_update(photo_update(photo.file_id, photo.file_unique_id, len(image), 9))
    env.runtime.channels.start(delivery=False)
    rows = wait_for(
        lambda: channel_messages(env.runtime.views, "telegram"),
        "the polled update in the inbox",
    )
    [recorded] = message(env, rows[0].id)["attachments"]
    assert recorded["stored"] is True
    assert served(env, rows[0].id).content == image
