"""Attachments in the browser: a client's Telegram photo renders as an image, their voice message
as an audio player, and an MMS picture as an image, in Debian's Chromium under the app's CSP.

The files come in through the real channels (the Telegram webhook, a signed Twilio webhook)
from the local fakes, are downloaded into the attachment store and served by
`/attachments/{message_id}/{index}`. Screenshots at 1,440 and 390 px wide go to the test
artifacts.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.fake_telegram import TOKEN, FakeTelegram, message_update, running_fake_telegram
from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, signed_post
from tests.channels.test_attachments_download import png
from tests.e2e.browser import LiveServer, running_app, screenshot
from tests.web.helpers import PASSWORD, create_user
from threadline.projections.inbox import channel_messages

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

SECRET = "hook-secret_0123456789"
OUR_NUMBER = "+15017122661"
CLIENT = "+14155552671"
USER = 600_700_800


def wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A short silent PCM WAV: something Chromium can really play."""
    samples = int(seconds * rate)
    data = b"\x00\x00" * samples
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16,
        b"data", len(data),
    )  # fmt: skip
    return header + data


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeTwilio]]:
    twilio = FakeTwilio().start()
    try:
        with running_fake_telegram() as telegram:
            yield telegram, twilio
    finally:
        twilio.stop()


@pytest.fixture
def server(tmp_path: Path, fakes: tuple[FakeTelegram, FakeTwilio]) -> Iterator[LiveServer]:
    telegram, twilio = fakes
    with running_app(tmp_path, telegram_api_url=telegram.url, twilio_api_url=twilio.url) as live:
        live.runtime.channels.configure(
            "tg", "telegram", "Telegram", {"bot_token": TOKEN, "webhook_secret": SECRET},
            actor="test",
        )  # fmt: skip
        live.runtime.channels.configure(
            "sms", "twilio", "SMS",
            {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": OUR_NUMBER},
            actor="test",
        )  # fmt: skip
        yield live


def log_in(server: LiveServer, page: Any, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_url(f"{server.url}/inbox")


def telegram_post(server: LiveServer, update: dict[str, Any]) -> str:
    response = server.client.post(
        "/hooks/telegram/tg", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["message_id"])


def conversation_of(server: LiveServer, message_id: str) -> str:
    found = server.runtime.queries.message(message_id)
    assert found is not None
    return str(found["conversation_id"])


def image_rendered(page: Any, selector: str) -> int:
    """The natural width of the image once it has loaded (0: broken)."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete; }", arg=selector
    )
    width: int = page.eval_on_selector(selector, "i => i.naturalWidth")
    return width


def test_photo_voice_and_mms_image_show_in_the_thread(
    server: LiveServer, fakes: tuple[FakeTelegram, FakeTwilio], page: Any
) -> None:
    telegram, twilio = fakes
    picture, voice_bytes = png(24, 16, (220, 60, 60)), wav()
    photo = telegram.add_file(picture, "image/jpeg", kind="photo")
    voice = telegram.add_file(voice_bytes, "audio/ogg", kind="voice")
    sizes = [
        {"file_id": photo.file_id, "file_unique_id": photo.file_unique_id, "width": 24,
         "height": 16, "file_size": len(picture)},
    ]  # fmt: skip
    photo_id = telegram_post(
        server, message_update(USER, 1, photo=sizes, caption="The parcel arrived broken")
    )
    voice_id = telegram_post(
        server,
        message_update(
            USER, 2,
            voice={"file_id": voice.file_id, "file_unique_id": voice.file_unique_id,
                   "duration": 1, "mime_type": "audio/ogg", "file_size": len(voice_bytes)},
        ),
    )  # fmt: skip
    mms_picture = png(30, 20, (40, 80, 200))
    media_url = twilio.add_media(mms_picture, "image/png")
    response = signed_post(
        server.client,
        "/hooks/twilio/sms",
        [
            ("AccountSid", ACCOUNT_SID), ("MessageSid", "MM" + "e" * 32), ("From", CLIENT),
            ("To", OUR_NUMBER), ("Body", "Here is the label"), ("NumMedia", "1"),
            ("MediaUrl0", media_url), ("MediaContentType0", "image/png"),
        ],
        public_url=server.url,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    [mms_row] = channel_messages(server.runtime.views, "sms")
    mms_id = mms_row.id

    create_user(server.runtime, "olga@example.com", "operator", name="Olga")
    log_in(server, page, "olga@example.com")
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{server.url}/inbox/{conversation_of(server, photo_id)}")
        image = f'img.attachment-image[src="/attachments/{photo_id}/0"]'
        assert image_rendered(page, image) == 24
        audio = page.locator(f'audio.attachment-audio[src="/attachments/{voice_id}/0"]')
        assert audio.count() == 1 and audio.get_attribute("controls") is not None
        page.wait_for_function(
            "s => document.querySelector(s).readyState >= 1",
            arg=f'audio[src="/attachments/{voice_id}/0"]',
        )
        assert (
            page.eval_on_selector(f'audio[src="/attachments/{voice_id}/0"]', "a => a.duration") > 0
        )
        screenshot(page, f"attachments-telegram-{width}")

        page.goto(f"{server.url}/inbox/{conversation_of(server, mms_id)}")
        assert image_rendered(page, f'img.attachment-image[src="/attachments/{mms_id}/0"]') == 30
        screenshot(page, f"attachments-mms-{width}")

    # Logged out, the same file is refused (sent to the login page, no image).
    page.context.clear_cookies()
    answer = page.request.get(f"{server.url}/attachments/{photo_id}/0", max_redirects=0)
    assert answer.status == 303 and answer.headers["location"].startswith("/login")
