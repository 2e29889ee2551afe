"""The rules screen in a real browser: a rule made there fires on the next inbound message,
and an auditor finds every form of the admin screens disabled (a forced POST is 403).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.browser import LiveServer, screenshot
from tests.web.helpers import PASSWORD, create_user

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

RULE_BODY = "then:\n  - add_tag: from-the-screen\n"
FORCED_POSTS = {
    "/admin/rules/new": "name=Forced&when_event=message.received&body=then%3A%20%5Badd_tag%3A%20x%5D",
    "/admin/templates/new": "slug=forced&name=Forced&default_text=x",
    "/admin/inboxes/new": "slug=forced&channel=sandbox&name=Forced&enabled=1",
}


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def log_in(page: Any, server: LiveServer, email: str, next_url: str) -> None:
    page.goto(f"{server.url}/login?next={next_url}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def test_a_rule_made_in_the_rules_screen_fires_on_the_next_message(
    live_server: LiveServer, page: Any
) -> None:
    server = live_server
    runtime = server.runtime
    create_user(runtime, "manager@example.com", "manager", name="Maria Manager")
    runtime.start_triggers()

    log_in(page, server, "manager@example.com", "/admin/rules/new")
    page.fill("input[name=name]", "Tag what comes in")
    page.select_option("select[name=when_event]", "message.received")
    page.fill("textarea[name=body]", RULE_BODY)
    page.click("#rule-form button[type=submit]")
    page.wait_for_url("**/admin/rules?done=saved")
    assert page.locator("#rules").inner_text().count("Tag what comes in") == 1

    inbound = server.api(
        "POST",
        "/api/inbound",
        json={"channel": "email", "external_id": "e2e-rules-1", "text": "Hello!",
              "from": {"email": "lena@example.com", "name": "Lena"}},
    )  # fmt: skip
    assert inbound.status_code == 201, inbound.text
    contact_id = inbound.json()["contact_id"]

    def tagged() -> bool:
        card = server.api("GET", f"/api/contacts/{contact_id}").json()
        return "from-the-screen" in card.get("tags", [])

    wait_for(tagged, "the tag the rule adds")
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    page.goto(f"{server.url}/admin/rules")
    row = page.locator("#rules tbody tr", has_text="Tag what comes in")
    assert row.locator("td").nth(3).inner_text().strip() == "1"  # fired once
    screenshot(page, "rules")


def test_an_auditor_cannot_submit_any_admin_form(live_server: LiveServer, browser: Any) -> None:
    server = live_server
    runtime = server.runtime
    create_user(runtime, "audit@example.com", "auditor", name="Alex Auditor")
    rule = server.api("POST", "/api/rules", json={"name": "Existing", "when": "message.received",
                                                  "then": [{"add_tag": "seen"}]})  # fmt: skip
    assert rule.status_code == 201, rule.text
    template = {"slug": "hello", "name": "Hello", "variants": {"default": {"text": "Hi"}}}
    assert server.api("POST", "/api/templates", json=template).status_code == 201
    inbox = {"slug": "box", "channel": "sandbox", "name": "Sandbox", "settings": {}}
    assert server.api("POST", "/api/inboxes", json=inbox).status_code == 201
    before = runtime.app.recorder.max_notification_id()

    context = browser.new_context()
    try:
        page = context.new_page()
        log_in(page, server, "audit@example.com", "/admin/rules")
        screens = [
            "/admin/rules", "/admin/rules/new", f"/admin/rules/{rule.json()['id']}",
            "/admin/templates/new", "/admin/templates/hello",
        ]  # fmt: skip
        for path in screens:
            page.goto(f"{server.url}{path}")
            buttons = page.locator("main button[type=submit]")
            assert buttons.count() > 0, path
            for index in range(buttons.count()):
                assert buttons.nth(index).is_disabled(), (path, index)
            fields = page.locator("main form textarea, main form input:not([type=hidden])")
            for index in range(fields.count()):
                assert fields.nth(index).is_disabled(), (path, index)
        for path, body in FORCED_POSTS.items():
            status = page.evaluate(
                """async ([path, body]) => {
                    const session = await (await fetch('/ui/session')).json();
                    const answer = await fetch(path, {method: 'POST', body: body, headers: {
                        'Content-Type': 'application/x-www-form-urlencoded',
                        'X-CSRF-Token': session.csrf}});
                    return answer.status;
                }""",
                [path, body],
            )
            assert status == 403, path
    finally:
        context.close()
    assert runtime.app.recorder.max_notification_id() == before
    assert server.api("GET", "/api/rules").json()["total"] == 1
