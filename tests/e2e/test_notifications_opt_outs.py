"""Issue 11, items 4 and 5 in Chromium: a reminder that names and links its task and client,
and a client card that shows an opt-out and opts the client back in with a reason.

Screenshots at 1,440 px and 390 px go to tests/e2e/artifacts/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.browser import LiveServer, screenshot
from tests.waiting import wait_for
from tests.web.helpers import PASSWORD, create_user
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.automation import notifications
from threadline.triggers.defaults import RULES
from threadline.triggers.opt_outs import opt_out
from threadline.triggers.rules import validate_rule

pytestmark = pytest.mark.slow

WAIT_MS = 10_000
WIDTHS = {"wide": 1440, "narrow": 390}


def log_in(server: LiveServer, page: Any, email: str) -> None:
    page.goto(f"{server.url}/login?next=/tasks")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}/tasks")


def shots(page: Any, name: str) -> None:
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"{name}-{label}")
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})


def test_a_reminder_links_its_task_and_client_and_the_card_opts_back_in(
    live_server: LiveServer, page: Any
) -> None:
    server, runtime = live_server, live_server.runtime
    user = create_user(runtime, "anna@example.com", "operator", name="Anna")
    runtime.app.save_rule(validate_rule(dict(RULES)["task-due-soon"], lambda slug: True), "test")
    message = runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key="olga-1", identities=[("email", "olga@example.com")],
            sender_name="Olga Smirnova", subject="Delivery question", text="When?",
        )
    ).value  # fmt: skip
    task = runtime.app.create_task(
        "test", "Send the offer", due_at=datetime.now(UTC) + timedelta(minutes=30),
        assignee_id=user, contact_id=message.contact_id, conversation_id=message.conversation_id,
    ).value  # fmt: skip
    opt_out(runtime.app, message.contact_id, "email", "the unsubscribe link")
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    runtime.start_triggers()
    runtime.triggers.scan_dates()
    wait_for(lambda: notifications(runtime.views), "the reminder")

    log_in(server, page, "anna@example.com")
    note = page.locator("#notifications li.notification").first
    note.wait_for(timeout=WAIT_MS)
    text = " ".join(note.inner_text().split())
    assert "A task is due within the hour" in text
    assert "Task: Send the offer" in text and "Client: Olga Smirnova" in text
    assert "ClientConversation" not in text
    assert "Open the conversation: Delivery question" in text
    shots(page, "notification-reminder")

    note.get_by_role("link", name="Send the offer").click()
    page.wait_for_url(f"**/tasks?scope=all#task-{task}")
    page.locator(f"#task-{task}").wait_for(timeout=WAIT_MS)

    page.goto(f"{server.url}/tasks")
    page.locator("#notifications").get_by_role("link", name="Olga Smirnova").click()
    page.wait_for_url(f"{server.url}/contacts/{message.contact_id}")
    consent = page.locator("#opt-outs")
    entry = consent.locator("li.opt-out[data-channel=email]")
    entry.wait_for(timeout=WAIT_MS)
    assert "the unsubscribe link" in entry.inner_text()
    shots(page, "client-card-opt-out")

    # The reason is required: the browser does not send the form without one.
    entry.get_by_role("button", name="Opt back in").click()
    assert entry.is_visible() and runtime.app.repository.get(message.contact_id).has_opted_out(
        "email"
    )
    entry.locator("input[name=reason]").fill("Asked by phone to get the newsletter again")
    entry.get_by_role("button", name="Opt back in").click()
    page.locator("#opt-outs li.opt-out").first.wait_for(state="detached", timeout=WAIT_MS)
    page.locator("#opt-outs").get_by_text("Not opted out on any channel").wait_for(timeout=WAIT_MS)
    assert not runtime.app.repository.get(message.contact_id).has_opted_out("email")
    page.locator("#recent").get_by_text("Opted back in to automatic messages").wait_for(
        timeout=WAIT_MS
    )
    shots(page, "client-card-opted-in")
