"""The inbox in Chromium: a new message appears live, the keyboard opens it, answers and resolves it.

The app runs under uvicorn (`live_server`); the operator logs in through the
login form. A `window` marker set before the message arrives must survive until
the end, which proves the list, the reply and the status change all happened
without a page reload (SSE + HTMX swaps), except the one navigation `j` makes.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import LiveServer, screenshot
from tests.web.helpers import PASSWORD, create_user

pytestmark = pytest.mark.slow

QUESTION = "Where is my parcel? Order 4711"
ANSWER = "It left our warehouse this morning."


def log_in(server: LiveServer, page: Any, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_url(f"{server.url}/inbox")


def wait_for_event_stream(server: LiveServer, opened_before: int) -> None:
    """The page's SSE stream is open (a change made earlier would not be announced)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(1 for r in server.seen if r.path == "/ui/events") > opened_before:
            return
        time.sleep(0.05)
    raise AssertionError("the page never opened /ui/events")


def test_a_new_message_appears_live_and_is_answered_from_the_keyboard(
    live_server: LiveServer, page: Any
) -> None:
    server = live_server
    create_user(server.runtime, "olga@example.com", "operator", name="Olga")
    log_in(server, page, "olga@example.com")
    wait_for_event_stream(server, 0)
    assert "No conversations match" in page.inner_text("#inbox-list")
    page.evaluate("window.__notReloaded = true")

    inbound = {
        "channel": "telegram",
        "external_id": "update-1",
        "from": {"name": "Pavel Sidorov", "telegram_id": "5550001"},
        "text": QUESTION,
    }
    response = server.api("POST", "/api/inbound", json=inbound)
    assert response.status_code == 201, response.text
    conversation_id = response.json()["conversation_id"]
    row = page.locator("#inbox-list .inbox-row", has_text="Pavel Sidorov")
    row.wait_for()
    assert QUESTION in row.inner_text()
    assert row.locator(".badge").inner_text() == "1"  # unread
    assert page.evaluate("window.__notReloaded") is True

    page.keyboard.press("j")  # the next conversation: the first row
    page.wait_for_url(f"{server.url}/inbox/{conversation_id}")
    wait_for_event_stream(server, 1)
    assert page.locator("#thread").get_by_text(QUESTION).is_visible()
    assert page.locator(".inbox-row.on .badge").count() == 0  # opening it marked it read
    page.evaluate("window.__notReloaded = true")

    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reply-text"
    page.keyboard.type(ANSWER)
    page.click('#composer button[type="submit"]')
    reply = page.locator("#thread article.message-outbound", has_text=ANSWER)
    reply.wait_for()
    assert reply.locator(".delivery").inner_text() == "requested"
    assert page.input_value("#reply-text") == ""  # a fresh box for the next answer
    stored = server.api("GET", f"/api/conversations/{conversation_id}").json()
    sent = [m for m in stored["messages"] if m["direction"] == "outbound"]
    assert [(m["text"], m["channel"]) for m in sent] == [(ANSWER, "telegram")]
    page.locator(".inbox-row.on", has_text="Pending").wait_for()  # replied: waiting for the client
    screenshot(page, "inbox")

    page.locator("#reply-text").blur()
    page.keyboard.press("e")  # resolve
    page.locator("#thread .thread-state", has_text="Resolved").wait_for()
    page.locator(".inbox-row.on", has_text="Resolved").wait_for()  # the list follows live
    assert page.evaluate("window.__notReloaded") is True


def test_templates_fill_the_box_and_notes_stay_internal(live_server: LiveServer, page: Any) -> None:
    server = live_server
    runtime = server.runtime
    greeting = {"default": {"text": "Hello {{ contact.first_name }}, thanks for writing."}}
    runtime.wait_for_views(
        runtime.app.save_template("hello", "Greeting", greeting, "test").notification_id
    )
    # Saved past the API's checks, so it fails when rendered: the error must show in the box.
    broken = {"default": {"text": "Dear {{ nope }}"}}
    runtime.wait_for_views(
        runtime.app.save_template("broken", "Broken", broken, "test").notification_id
    )
    response = server.api(
        "POST",
        "/api/inbound",
        json={"channel": "email", "external_id": "m-1", "subject": "Refund",
              "from": {"name": "Irina Volkova", "email": "irina@example.com"}, "text": "Refund?"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    conversation_id = response.json()["conversation_id"]
    create_user(runtime, "oleg@example.com", "operator", name="Oleg")
    log_in(server, page, "oleg@example.com")
    page.goto(f"{server.url}/inbox/{conversation_id}")

    page.select_option('select[name="slug"]', "hello")
    # (not wait_for_function: its string predicate is an eval, which the page's CSP refuses)
    expect(page.locator("#reply-text")).to_have_value(re.compile(r"^Hello Irina"))
    page.select_option('select[name="slug"]', "broken")
    page.locator("#reply-body .error").wait_for()
    assert "nope" in page.inner_text("#reply-body .error")

    page.locator("#reply-text").blur()
    page.keyboard.press("n")
    assert page.evaluate("document.activeElement.id") == "note-text"
    page.keyboard.type("Refund approved by finance")
    page.click('#note-form button[type="submit"]')
    page.locator("#thread article.message-internal", has_text="Refund approved").wait_for()
    assert page.input_value("#note-text") == ""
    stored = server.api("GET", f"/api/conversations/{conversation_id}").json()
    assert [m["direction"] for m in stored["messages"]] == ["inbound", "internal"]
