"""The web app's acceptance in Chromium, with the real Telegram path.

An operator logs in; a Telegram update posted to the webhook appears in the
open inbox without a reload; the operator replies and the reply reaches the
local Bot API server and shows as delivered. An e-mail whose HTML carries
scripts shows its text and runs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.channels.conftest import telegram_server  # noqa: F401  (fixture)
from tests.channels.fake_telegram import FakeTelegram, message_update
from tests.e2e.browser import running_app, screenshot
from tests.e2e.test_inbox_live import log_in, wait_for_event_stream
from tests.waiting import wait_for
from tests.web.helpers import create_user

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SECRET = "webapp-acceptance-secret"


def test_a_telegram_message_is_answered_from_the_open_inbox(
    tmp_path: Path,
    telegram_server: FakeTelegram,  # noqa: F811
    page: Any,
) -> None:
    with running_app(
        tmp_path, telegram_api_url=telegram_server.url, delivery_retry_seconds=0.2
    ) as server:
        runtime = server.runtime
        runtime.channels.configure(
            "bot", "telegram", "Bot",
            {"bot_token": telegram_server.token, "webhook_secret": SECRET}, "test",
        )  # fmt: skip
        runtime.channels.start(pollers=False)
        create_user(runtime, "nina@example.com", "operator", name="Nina")
        log_in(server, page, "nina@example.com")
        wait_for_event_stream(server, 0)
        page.evaluate("window.__notReloaded = true")

        update = message_update(7770001, 1, first_name="Timur", last_name="Bekov",
                                text="Do you deliver to Kazan?")  # fmt: skip
        posted = server.client.post(
            "/hooks/telegram/bot", json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )  # fmt: skip
        assert posted.status_code == 200, posted.text
        row = page.locator("#inbox-list .inbox-row", has_text="Timur Bekov")
        row.wait_for()
        assert page.evaluate("window.__notReloaded") is True  # it came live, not by reloading

        row.locator("a").first.click()
        page.locator("#thread").get_by_text("Do you deliver to Kazan?").wait_for()
        page.fill("#reply-text", "Yes, in two days.")
        page.click('#composer button[type="submit"]')
        wait_for(lambda: telegram_server.calls_of("sendMessage"), "the Bot API to get the reply")
        [sent] = telegram_server.calls_of("sendMessage")
        assert int(sent["chat_id"]) == 7770001 and sent["text"] == "Yes, in two days."
        reply = page.locator("#thread article.message-outbound", has_text="Yes, in two days.")
        reply.locator(".delivery", has_text="sent").wait_for(timeout=15_000)
        screenshot(page, "inbox-telegram-delivered")


def test_an_email_with_scripts_shows_its_text_and_runs_nothing(tmp_path: Path, page: Any) -> None:
    with running_app(tmp_path) as server:
        runtime = server.runtime
        hostile = (
            "<p>Please see the invoice.</p><script>window.__xss = 1; alert('xss')</script>"
            "<img src=x onerror=\"window.__xss = 2; alert('xss')\">"
            '<a href="javascript:window.__xss=3">link</a>'
        )
        response = server.api(
            "POST",
            "/api/inbound",
            json={"channel": "email", "external_id": "evil-1", "subject": "Invoice",
                  "from": {"name": "Mallory", "email": "mallory@example.com"},
                  "text": "Please see the invoice.", "html": hostile},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        conversation_id = response.json()["conversation_id"]
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        create_user(runtime, "sam@example.com", "operator", name="Sam")
        log_in(server, page, "sam@example.com")
        page.goto(f"{server.url}/inbox/{conversation_id}")
        # The sanitised HTML is shown in a sandboxed frame: its text is there, its scripts are not.
        body = page.frame_locator("#thread iframe").first.locator("body")
        body.get_by_text("Please see the invoice.").wait_for()
        assert "xss" not in body.inner_html()
        for frame in page.frames:
            frame.evaluate("1")  # every frame has loaded
        assert dialogs == []
        assert page.evaluate("window.__xss === undefined")
        assert all(f.evaluate("typeof window.__xss") == "undefined" for f in page.frames)
        screenshot(page, "inbox-hostile-html")
