"""The tasks screen and the client card in Chromium: live reminders, editing in place.

A task made through the API while the tasks page is open must appear without a
reload (the page's SSE stream says "changed", HTMX reloads the lists). On the
client card, an attribute is edited in place and a value the registry refuses
comes back inline, which needs the card's handler that lets HTMX swap a 422.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from tests.e2e.browser import LiveServer, screenshot
from tests.web.helpers import PASSWORD, create_user

pytestmark = pytest.mark.slow

WAIT_MS = 10_000


def log_in(server: LiveServer, page: Any, email: str) -> None:
    page.goto(f"{server.url}/login?next=/tasks")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}/tasks")


def wait_for_event_stream(server: LiveServer) -> None:
    """The page's SSE stream is open once the server has answered /ui/events."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if any(r.path == "/ui/events" and r.status == 200 for r in server.seen):
            return
        time.sleep(0.05)
    raise AssertionError("the page never opened its event stream")


def edit_attribute(page: Any, key: str, act: Any) -> None:
    """Open the attribute's editor and `act` on it; once more if a card reload beat the click.

    The page's card reloads itself after every change of the views; a click that lands
    while such a reload is being swapped in is lost, as it would be for a person.
    """
    for attempt in range(3):
        page.click(f"#attr-{key} a.attr-value")
        editor = page.locator(f"#attr-{key}.attr-editor")
        try:
            editor.wait_for(timeout=WAIT_MS)
            act(editor)
            return
        except Exception:
            if attempt == 2:
                raise


def seed_client(server: LiveServer, user_id: UUID) -> str:
    for attribute in (
        {"key": "staff_size", "label": "Staff size", "type": "number"},
        {"key": "plan", "label": "Plan", "type": "choice", "options": ["basic", "pro"]},
        {"key": "vip", "label": "VIP", "type": "boolean"},
    ):
        assert server.api("POST", "/api/attributes", json=attribute).status_code == 201
    contact = {
        "name": "Olga Smirnova",
        "identities": [{"kind": "email", "value": "olga@example.com"},
                       {"kind": "phone", "value": "+7 912 345-67-89"}],
        "tags": ["webinar", "hot"],
        "attributes": {"staff_size": 40, "plan": "basic"},
        "source": {"referrer": "https://example.com/blog", "utm_source": "google", "utm_campaign": "spring",
                   "acquisition_cost": 1500},
    }  # fmt: skip
    created = server.api("POST", "/api/contacts", json=contact)
    assert created.status_code == 201, created.text
    contact_id: str = created.json()["id"]
    twin = {"name": "Smirnova Olga", "identities": [{"kind": "email", "value": "olga@corp.ru"}]}
    assert server.api("POST", "/api/contacts", json=twin).status_code == 201
    task = {"title": "Send the offer", "type": "proposal", "contact_id": contact_id,
            "assignee_id": str(user_id), "due_at": datetime.now(UTC).isoformat()}  # fmt: skip
    assert server.api("POST", "/api/tasks", json=task).status_code == 201
    return contact_id


def test_a_new_task_appears_live_and_the_card_edits_in_place(
    live_server: LiveServer, page: Any
) -> None:
    server = live_server
    user_id = create_user(server.runtime, "anna@example.com", "operator", name="Anna")
    contact_id = seed_client(server, user_id)
    log_in(server, page, "anna@example.com")
    wait_for_event_stream(server)
    page.evaluate("window.__still_the_same_page = true")
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    task = {"title": "Call the new lead", "type": "call", "assignee_id": str(user_id),
            "due_at": noon.isoformat()}  # fmt: skip
    assert server.api("POST", "/api/tasks", json=task).status_code == 201
    page.locator("#tasks-today").get_by_text("Call the new lead").wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.__still_the_same_page === true")  # no reload happened
    screenshot(page, "tasks")
    offer = page.locator("#tasks-today tr.task", has_text="Send the offer")
    offer.locator("button", has_text="Complete").click()
    offer.wait_for(state="detached", timeout=WAIT_MS)
    assert page.locator("#tasks-today").get_by_text("Call the new lead").is_visible()

    page.goto(f"{server.url}/contacts/{contact_id}")

    def choose_pro(editor: Any) -> None:
        editor.locator("select[name=value]").select_option("pro", timeout=2000)
        editor.locator("button[type=submit]").click(timeout=2000)

    edit_attribute(page, "plan", choose_pro)
    page.locator("#attr-plan a.attr-value").get_by_text("pro").wait_for(timeout=WAIT_MS)

    # A value the registry refuses: the editor stays, with the registry's message.
    def type_words(editor: Any) -> None:
        field = editor.locator("input[name=value]")
        field.evaluate("input => { input.type = 'text'; }", timeout=2000)
        field.fill("lots", timeout=2000)
        editor.locator("button[type=submit]").click(timeout=2000)

    edit_attribute(page, "staff_size", type_words)
    page.get_by_text("expected a number, got 'lots'").wait_for(timeout=WAIT_MS)
    page.click("#attr-staff_size a:has-text('Cancel')")
    page.locator("#attr-staff_size a.attr-value").get_by_text("40").wait_for(timeout=WAIT_MS)
    card = server.api("GET", f"/api/contacts/{contact_id}").json()
    assert card["attributes"]["plan"] == "pro" and card["attributes"]["staff_size"] == 40
    page.locator("#duplicates").get_by_text("Smirnova Olga").wait_for(timeout=WAIT_MS)
    screenshot(page, "client-card")
