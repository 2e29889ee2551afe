"""Web forms in a real browser: Chromium fills the hosted page and an embedded form.

The embedded form is served from a second origin, so its fetch is a real CORS
request with a preflight: it succeeds while that origin is on the form's
allow-list, and the browser refuses it (nothing ingested) once it is not.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser import LiveServer, screenshot, serve_pages

pytestmark = pytest.mark.slow

THANKS = "Thanks, we will call you back today."


def define_form(server: LiveServer, **overrides: Any) -> dict[str, Any]:
    attribute = {"key": "plan", "label": "Plan", "type": "choice", "options": ["basic", "pro"]}
    assert server.api("POST", "/api/attributes", json=attribute).status_code == 201
    form = {
        "slug": "contact",
        "name": "Talk to sales",
        "description": "Leave your details and we will call you.",
        "fields": [
            {"name": "full_name", "label": "Your name", "required": True},
            {"name": "email", "label": "E-mail", "type": "email", "required": True},
            {"name": "plan", "label": "Plan", "type": "select", "options": ["basic", "pro"]},
            {"name": "consent", "label": "I agree to be contacted", "type": "checkbox",
             "required": True},
            {"name": "message", "label": "Message", "type": "textarea"},
        ],
        "mapping": {"full_name": "name", "email": "email", "plan": "attributes.plan"},
        "thank_you_text": THANKS,
        **overrides,
    }  # fmt: skip
    response = server.api("POST", "/api/forms", json=form)
    assert response.status_code == 201, response.text
    return response.json()


def inbox(server: LiveServer) -> list[dict[str, Any]]:
    response = server.api("GET", "/api/inbox")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_the_hosted_page_in_chromium(live_server: LiveServer, page: Any) -> None:
    server = live_server
    define_form(server)
    page.goto(f"{server.url}/forms/contact?utm_source=google&utm_campaign=spring")
    assert page.title() == "Talk to sales"
    screenshot(page, "webform-page")
    page.fill("#tl-full_name", "Olga Smirnova")
    page.fill("#tl-email", "olga@example.com")
    page.select_option("#tl-plan", "pro")
    page.check("#tl-consent")
    page.fill("#tl-message", "We have 40 seats <b>and</b> need a demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/forms/contact/thanks")
    assert page.inner_text("#threadline-message") == THANKS
    screenshot(page, "webform-thanks")

    posts = [r for r in server.seen if r.method == "POST" and r.path == "/forms/contact"]
    assert [(r.origin, r.status) for r in posts] == [(server.url, 303)]
    [row] = inbox(server)
    assert row["channel"] == "web" and row["contact_name"] == "Olga Smirnova"
    card = server.api("GET", f"/api/contacts/{row['contact_id']}").json()
    assert card["source"]["utm_source"] == "google"
    assert card["source"]["utm_campaign"] == "spring"
    assert card["attributes"] == {"plan": "pro"}
    thread = server.api("GET", f"/api/conversations/{row['conversation_id']}").json()
    text = thread["messages"][0]["text"]
    assert "Message: We have 40 seats <b>and</b> need a demo" in text
    assert "I agree to be contacted: yes" in text


def test_the_embedded_form_posts_across_origins_only_when_allowed(
    live_server: LiveServer, browser: Any
) -> None:
    server = live_server
    landing = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Shop</title></head><body>"
        "<h1>Our shop</h1><div id='slot'></div>"
        f"<script src='{server.url}/forms/contact/embed.js' data-threadline-form='contact'"
        " data-threadline-target='#slot' async></script></body></html>"
    )
    with serve_pages({"/landing": landing}) as shop:
        define_form(server, allowed_origins=[shop])
        context = browser.new_context()
        context.set_default_timeout(15_000)
        try:
            tab = context.new_page()
            tab.goto(f"{shop}/landing?utm_source=partner&utm_medium=banner")
            fill_embedded(tab, "Pavel Orlov", "pavel@")
            tab.click("#slot button[type=submit]")
            tab.wait_for_selector("#slot[data-threadline-state=invalid]")
            error = tab.inner_text("[data-field=email] .threadline-error")
            assert "e-mail" in error  # the server's 422, shown at the field
            tab.fill("#threadline-contact-email", "pavel@example.com")
            screenshot(tab, "webform-embedded")
            tab.click("#slot button[type=submit]")
            tab.wait_for_selector("#slot[data-threadline-state=sent] .threadline-thanks")
            assert tab.inner_text("#slot .threadline-thanks") == THANKS
        finally:
            context.close()

        seen = [r for r in server.seen if r.path == "/forms/contact"]
        assert [(r.method, r.origin, r.status) for r in seen] == [
            ("OPTIONS", shop, 204),  # the browser's preflight for a JSON post (then cached)
            ("POST", shop, 422),
            ("POST", shop, 201),
        ]
        [row] = inbox(server)
        assert row["channel"] == "web" and row["contact_name"] == "Pavel Orlov"
        card = server.api("GET", f"/api/contacts/{row['contact_id']}").json()
        assert card["source"]["utm_source"] == "partner"
        assert card["source"]["utm_medium"] == "banner"
        assert card["source"]["referrer"].startswith(f"{shop}/landing?")

        # Off the allow-list: the browser itself refuses, and nothing reaches the inbox.
        changed = server.api("PATCH", "/api/forms/contact", json={"allowed_origins": []})
        assert changed.status_code == 200, changed.text
        context = browser.new_context()  # a fresh preflight cache
        context.set_default_timeout(15_000)
        try:
            tab = context.new_page()
            tab.goto(f"{shop}/landing")
            fill_embedded(tab, "Mallory", "mallory@example.com")
            tab.click("#slot button[type=submit]")
            tab.wait_for_selector("#slot[data-threadline-state=error]")
            assert "could not be sent" in tab.inner_text("#slot .threadline-status")
        finally:
            context.close()
        refused = [r for r in server.seen if r.path == "/forms/contact"][3:]
        assert [(r.method, r.status) for r in refused] == [("OPTIONS", 403)]
        assert len(inbox(server)) == 1
        lookup = server.api("GET", "/api/contacts", params={"q": "mallory"}).json()
        assert lookup["total"] == 0


def fill_embedded(tab: Any, name: str, email: str) -> None:
    tab.wait_for_selector("#slot form[data-threadline-form=contact]")
    tab.fill("#threadline-contact-full_name", name)
    tab.fill("#threadline-contact-email", email)
    tab.select_option("#threadline-contact-plan", "basic")
    tab.check("#threadline-contact-consent")
