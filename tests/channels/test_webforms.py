"""Web forms end to end through the HTTP API (TestClient over a real runtime).

A form is defined through /api/forms, submitted to the public POST /forms/{slug}
as urlencoded, multipart and JSON, and the lead is then read back through the
operator API: the conversation in the inbox, the contact's mapped attributes,
its source (utm, referrer). Bots (honeypot), floods (rate limit), other sites
(CORS) and bad input each get their own answer and leave nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import make_runtime
from threadline.channels.webforms import (
    SlidingWindowLimiter,
    Submission,
    client_address,
    dedup_key,
    origin_allowed,
)
from threadline.domain.model.form import FormDefinition, clean_origin
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SHOP = "https://shop.example"


def open_api(url: str, tmp_path: Path, **overrides: Any) -> tuple[TestClient, Runtime]:
    runtime = make_runtime(
        url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "attachments"),
        **overrides,
    )
    return TestClient(create_app(runtime)), runtime


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    client, runtime = open_api(sqlite_url, tmp_path)
    try:
        with client:
            yield client, runtime
    finally:
        runtime.close()


def define_attributes(client: TestClient) -> None:
    for attribute in (
        {"key": "plan", "label": "Plan", "type": "choice", "options": ["basic", "pro"]},
        {"key": "company_size", "label": "Company size", "type": "number"},
        {"key": "newsletter", "label": "Newsletter", "type": "boolean"},
    ):
        response = client.post("/api/attributes", json=attribute, headers=ADMIN)
        assert response.status_code == 201, response.text


def contact_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "slug": "contact",
        "name": "Contact us",
        "fields": [
            {"name": "full_name", "label": "Your name", "required": True},
            {"name": "email", "label": "E-mail", "type": "email"},
            {"name": "phone", "label": "Phone", "type": "phone"},
            {"name": "plan", "label": "Plan", "type": "select", "options": ["basic", "pro"]},
            {"name": "company_size", "label": "Company size", "type": "number"},
            {"name": "newsletter", "label": "Send me news", "type": "checkbox"},
            {"name": "message", "label": "Message", "type": "textarea", "max_length": 2000},
            {"name": "campaign_id", "type": "hidden", "default": "c-42"},
        ],
        "mapping": {
            "full_name": "name",
            "email": "email",
            "phone": "phone",
            "plan": "attributes.plan",
            "company_size": "attributes.company_size",
            "newsletter": "attributes.newsletter",
        },
        "allowed_origins": [SHOP],
        "rate_limit_per_minute": 1000,
    }
    form.update(overrides)
    return form


def define(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """Define a form (and, when its mapping needs them and they are missing, the attributes)."""
    form = contact_form(**overrides)
    needs_attributes = any(t.startswith("attributes.") for t in form["mapping"].values())
    if needs_attributes and not client.get("/api/attributes", headers=ADMIN).json()["items"]:
        define_attributes(client)
    response = client.post("/api/forms", json=form, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def inbox_items(client: TestClient) -> list[dict[str, Any]]:
    return client.get("/api/inbox?limit=200", headers=ADMIN).json()["items"]


def contact(client: TestClient, contact_id: str) -> dict[str, Any]:
    response = client.get(f"/api/contacts/{contact_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def conversation(client: TestClient, conversation_id: str) -> dict[str, Any]:
    return client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()


def token_for(client: TestClient, role: str) -> dict[str, str]:
    response = client.post(
        "/api/users", json={"email": f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def field_errors(response: Any) -> dict[str, str]:
    return {item["loc"][-1]: item["msg"] for item in response.json()["detail"]}


# -- the three body types ------------------------------------------------------------------------


def test_a_browser_form_post_becomes_a_lead_with_attributes_and_source(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    define_attributes(client)
    define(client)
    page = client.get(
        "/forms/contact?utm_source=google&utm_campaign=spring",
        headers={"Referer": "https://search.example/?q=crm"},
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'name="utm_source" value="google"' in html
    assert 'name="utm_campaign" value="spring"' in html
    assert 'name="referrer" value="https://search.example/?q=crm"' in html
    assert 'name="website"' in html and 'tabindex="-1"' in html and 'autocomplete="off"' in html
    token = html.split('name="_token" value="')[1].split('"')[0]
    assert len(token) == 36
    assert page.headers["cache-control"] == "no-store"

    response = client.post(
        "/forms/contact",
        data={
            "full_name": "Anna Petrova",
            "email": "Anna@Example.com",
            "plan": "pro",
            "company_size": "120",
            "newsletter": "yes",
            "message": "Please call me\nafter 5 pm",
            "campaign_id": "c-42",
            "website": "",
            "_token": token,
            "referrer": "https://search.example/?q=crm",
            "utm_source": "google",
            "utm_campaign": "spring",
        },
        headers={**HTML, "Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/forms/contact/thanks"
    thanks = client.get("/forms/contact/thanks")
    assert thanks.status_code == 200 and "Thank you" in thanks.text

    [row] = inbox_items(client)
    assert row["channel"] == "web" and row["subject"] == "Form: Contact us"
    assert row["contact_name"] == "Anna Petrova" and row["thread_key"] == "form:contact"
    card = contact(client, row["contact_id"])
    assert card["attributes"] == {"plan": "pro", "company_size": 120, "newsletter": True}
    assert card["source"] == {
        "channel": "web",
        "form": "contact",
        "utm_source": "google",
        "utm_campaign": "spring",
        "referrer": "https://search.example/?q=crm",
    }
    assert {"kind": "email", "value": "anna@example.com"} in card["identities"]
    [message] = conversation(client, row["conversation_id"])["messages"]
    assert message["text"].splitlines() == [
        "Your name: Anna Petrova",
        "E-mail: anna@example.com",
        "Plan: pro",
        "Company size: 120",
        "Send me news: yes",
        "Message: Please call me",
        "after 5 pm",
        "campaign_id: c-42",
    ]
    assert message["metadata"] == {"form": "contact", "kind": "form"}

    # The same page (same token) sent again: the same message, nothing new.
    again = client.post(
        "/forms/contact",
        data={"full_name": "Anna Petrova", "email": "anna@example.com", "_token": token},
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["message_id"] == message["id"]
    assert len(conversation(client, row["conversation_id"])["messages"]) == 1


def test_multipart_with_a_file_stores_the_attachment(
    api: tuple[TestClient, Runtime], tmp_path: Path
) -> None:
    client, _ = api
    define(
        client,
        slug="cv",
        fields=[
            {"name": "email", "label": "E-mail", "type": "email", "required": True},
            {"name": "cv", "label": "Your CV", "type": "file", "required": True},
        ],
        mapping={"email": "email"},
    )
    missing = client.post("/forms/cv", data={"email": "a@example.com"}, files={"x": ("", b"")})
    assert missing.status_code == 422 and "cv" in field_errors(missing)

    content = b"%PDF-1.4 a tiny cv"
    response = client.post(
        "/forms/cv",
        data={"email": "bob@example.com", "utm_medium": "cpc"},
        files={"cv": ("cv.pdf", content, "application/pdf")},
    )
    assert response.status_code == 201, response.text
    [row] = inbox_items(client)
    [message] = conversation(client, row["conversation_id"])["messages"]
    digest = hashlib.sha256(content).hexdigest()
    assert [a["sha256"] for a in message["attachments"]] == [digest]
    assert message["attachments"][0]["content_type"] == "application/pdf"
    stored = tmp_path / "attachments" / digest[:2] / digest
    assert stored.read_bytes() == content
    assert "Your CV: cv.pdf" in message["text"]
    assert contact(client, row["contact_id"])["source"]["utm_medium"] == "cpc"


def test_json_submissions_are_idempotent_on_both_stores(database_url: str, tmp_path: Path) -> None:
    client, runtime = open_api(database_url, tmp_path)
    try:
        with client:
            define_attributes(client)
            define(client)
            body = {
                "full_name": "Ivan",
                "phone": "+7 903 123-45-67",
                "plan": "basic",
                "newsletter": False,
                "company_size": 7,
                "_token": "tok-123456789",
                "referrer": "https://blog.example/post",
            }
            first = client.post(
                "/forms/contact?utm_source=newsletter&utm_medium=email",
                json=body,
                headers={"Origin": SHOP, "Referer": "https://ignored.example/"},
            )
            assert first.status_code == 201, first.text
            created = first.json()
            assert created["ok"] is True and created["duplicate"] is False
            assert first.headers["access-control-allow-origin"] == SHOP
            again = client.post("/forms/contact", json=body, headers={"Origin": SHOP})
            assert again.status_code == 200
            assert again.json() == {**created, "duplicate": True}

            [row] = inbox_items(client)
            assert row["channel"] == "web" and row["message_count"] == 1
            card = contact(client, created["contact_id"])
            assert card["identities"] == [{"kind": "phone", "value": "+79031234567"}]
            assert card["attributes"] == {"plan": "basic", "company_size": 7, "newsletter": False}
            assert card["source"] == {
                "channel": "web",
                "form": "contact",
                "utm_source": "newsletter",
                "utm_medium": "email",
                "referrer": "https://blog.example/post",
            }
    finally:
        runtime.close()


def test_without_a_token_the_same_values_are_one_message(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define(client, fields=contact_form()["fields"][:3], mapping={"email": "email"})
    values = {"full_name": "Eva", "email": "eva@example.com"}
    first = client.post("/forms/contact", json=values)
    second = client.post("/forms/contact", json=dict(reversed(list(values.items()))))
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["message_id"] == first.json()["message_id"]
    other = client.post("/forms/contact", json={**values, "full_name": "Eva K."})
    assert other.status_code == 201
    assert inbox_items(client)[0]["message_count"] == 2
    card = contact(client, first.json()["contact_id"])
    # no utm, no referrer: nothing invented (the form it came by is known)
    assert card["source"] == {"channel": "web", "form": "contact"}


def test_referer_header_is_the_referrer_when_the_body_has_none(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    define(client, fields=contact_form()["fields"][:3], mapping={"email": "email"})
    response = client.post(
        "/forms/contact",
        json={"full_name": "Ref", "email": "ref@example.com"},
        headers={"Referer": "https://landing.example/spring"},
    )
    assert response.status_code == 201
    card = contact(client, response.json()["contact_id"])
    assert card["source"]["referrer"] == "https://landing.example/spring"


# -- what stops bots and floods ------------------------------------------------------------------


def test_a_filled_honeypot_looks_like_success_but_ingests_nothing(
    api: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = api
    define(client)
    position = runtime.app.recorder.max_notification_id()
    bot = {"full_name": "Bot", "email": "bot@example.com", "website": "http://spam.example"}
    with caplog.at_level(logging.WARNING, logger="threadline.channels.webforms"):
        as_json = client.post("/forms/contact", json=bot)
        as_browser = client.post("/forms/contact", data=bot, headers=HTML, follow_redirects=False)
    assert as_json.status_code == 201 and as_json.json()["ok"] is True
    assert set(as_json.json()) == {"ok", "message_id", "contact_id", "duplicate"}
    assert as_browser.status_code == 303
    assert runtime.app.recorder.max_notification_id() == position
    assert inbox_items(client) == []
    assert sum("honeypot" in r.getMessage() for r in caplog.records) == 2


def test_the_rate_limit_is_per_form_and_client_address(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define(client, rate_limit_per_minute=3)
    answers = [
        client.post(
            "/forms/contact",
            json={"full_name": f"N{i}", "email": f"n{i}@example.com"},
            headers={"X-Forwarded-For": f"10.9.9.{i}"},  # not trusted: no way around the limit
        )
        for i in range(5)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60
    assert len(inbox_items(client)) == 3

    # another address (same app, so the same limiter) has its own allowance
    other = TestClient(client.app, client=("10.0.0.2", 5000))
    lead = {"full_name": "X", "email": "x@example.com"}
    assert other.post("/forms/contact", json=lead).status_code == 201
    # a form with a higher limit is not affected by the first one's
    define(client, slug="other", rate_limit_per_minute=10)
    assert (
        client.post("/forms/other", json={"full_name": "Y", "email": "y@example.com"})
    ).status_code == 201


def test_behind_a_proxy_the_opt_in_rate_limits_by_forwarded_address(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    define(client, rate_limit_per_minute=1)
    runtime.channels.configure(
        "web-leads", "webforms", "Web leads", {"trust_forwarded_for": True}, actor="test"
    )
    for address in ("203.0.113.1", "203.0.113.2"):
        response = client.post(
            "/forms/contact",
            json={"full_name": "P", "email": f"p{address[-1]}@example.com"},
            headers={"X-Forwarded-For": f"1.1.1.1, {address}"},
        )
        assert response.status_code == 201, response.text
    repeated = client.post(
        "/forms/contact",
        json={"full_name": "P", "email": "p3@example.com"},
        headers={"X-Forwarded-For": "9.9.9.9, 203.0.113.1"},
    )
    assert repeated.status_code == 429
    # the webforms inbox files the new conversations
    row = inbox_items(client)[0]
    inbox = runtime.channels.inbox("web-leads")
    assert inbox is not None
    assert runtime.app.repository.get(UUID(row["conversation_id"])).inbox_id == inbox.id


def test_sliding_window_limiter_frees_a_slot_when_the_oldest_hit_ages_out() -> None:
    now = [1000.0]
    limiter = SlidingWindowLimiter(window=60, max_keys=3, clock=lambda: now[0])
    assert [limiter.hit("a", 2) for _ in range(2)] == [None, None]
    assert limiter.hit("a", 2) == pytest.approx(60)
    now[0] += 30
    assert limiter.hit("a", 2) == pytest.approx(30)  # refused hits are not counted
    now[0] += 30.5
    assert limiter.hit("a", 2) is None
    for key in "bcdef":  # memory stays bounded
        limiter.hit(key, 1)
    assert len(limiter._hits) <= 3


# -- CORS ----------------------------------------------------------------------------------------


def test_cors_allows_listed_origins_and_refuses_the_rest(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define(client)
    lead = {"full_name": "C", "email": "c@example.com"}

    preflight = client.options(
        "/forms/contact",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["vary"] == "Origin"

    evil = "https://evil.example"
    refused_preflight = client.options(
        "/forms/contact", headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
    )
    assert refused_preflight.status_code == 403
    assert "access-control-allow-origin" not in refused_preflight.headers
    refused = client.post("/forms/contact", json=lead, headers={"Origin": evil})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert client.post("/forms/contact", json=lead, headers={"Origin": "null"}).status_code == 403
    assert inbox_items(client) == []

    allowed = client.post("/forms/contact", json=lead, headers={"Origin": SHOP})
    assert allowed.status_code == 201
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert allowed.headers["vary"] == "Origin"
    # the form's own page is always allowed, and a post without Origin is not a CORS request
    own = client.post("/forms/contact", json=lead, headers={"Origin": "http://testserver"})
    assert own.status_code == 200  # the same values again: a duplicate
    assert client.post("/forms/contact", json=lead).status_code == 200

    changed = client.patch("/api/forms/contact", json={"allowed_origins": ["*"]}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["allowed_origins"] == ["*"]
    anywhere = client.post(
        "/forms/contact", json={**lead, "full_name": "D"}, headers={"Origin": evil}
    )
    assert anywhere.status_code == 201 and anywhere.headers["access-control-allow-origin"] == evil


def test_origin_rules() -> None:
    assert clean_origin("HTTPS://Shop.Example:443/") == "https://shop.example"
    assert clean_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    for bad in ("null", "https://shop.example/path", "ftp://x", "https://u@x.example", ""):
        with pytest.raises(ValueError):
            clean_origin(bad)
    form = FormDefinition.create(contact_form())
    assert origin_allowed(form, "https://shop.example:443", [])
    assert not origin_allowed(form, "https://shop.example.evil.com", [])
    assert origin_allowed(form, "http://own.example", ["http://own.example"])
    assert client_address("10.0.0.1", "1.2.3.4", trust_forwarded_for=False) == "10.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4, 5.6.7.8", trust_forwarded_for=True) == "5.6.7.8"
    assert client_address(None, "", trust_forwarded_for=True) == "unknown"
    values: dict[str, str | bool] = {"a": "1", "b": True}
    assert dedup_key("f", "", values) == dedup_key("f", "", dict(reversed(values.items())))
    assert dedup_key("f", "tok", values) == "form:f:tok"
    assert Submission(values={"website": " x "}).honeypot_filled
    assert not Submission(values={"website": " "}).honeypot_filled


# -- bad input -----------------------------------------------------------------------------------


def test_validation_errors_name_every_field(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define_attributes(client)
    define(client)
    response = client.post(
        "/forms/contact",
        json={
            "email": "not an email",
            "plan": "gold",
            "company_size": "many",
            "message": "x" * 2001,
            "tags": ["a", "list"],
            "_token": "bad token!",
        },
    )
    assert response.status_code == 422
    errors = field_errors(response)
    assert set(errors) == {
        "full_name",
        "email",
        "plan",
        "company_size",
        "message",
        "tags",
        "_token",
    }
    assert "required" in errors["full_name"] and "e-mail" in errors["email"]
    # neither an email nor a phone: a lead needs one of them
    nobody = client.post("/forms/contact", json={"full_name": "Nobody"})
    assert nobody.status_code == 422 and set(field_errors(nobody)) == {"email", "phone"}
    assert client.post("/forms/contact", json=["not", "an", "object"]).status_code == 422
    assert (
        client.post(
            "/forms/contact", content=b"{broken", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert inbox_items(client) == []


def test_a_browser_gets_the_page_again_with_the_messages(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define(client)
    response = client.post(
        "/forms/contact",
        data={
            "full_name": "<script>alert(1)</script>",
            "email": "nope",
            "_token": "keep-this-token-1",
            "utm_source": "google",
        },
        headers=HTML,
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "Please correct the marked fields" in html
    assert "E-mail: is not a valid e-mail address" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # kept, escaped
    assert 'name="_token" value="keep-this-token-1"' in html
    assert 'name="utm_source" value="google"' in html


def test_control_characters_and_lone_surrogates_are_dropped(
    database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL text refuses NUL: a view fed one would stop, so none gets that far."""
    client, runtime = open_api(database_url, tmp_path)
    try:
        with client:
            define(client, mapping={"full_name": "name", "email": "email"})
            raw = (
                b'{"full_name": "Ann\\u0000a\\ud800", "email": "s@example.com",'
                b' "message": "a\\u0007b", "utm_source": "x\\u0000y"}'
            )
            response = client.post(
                "/forms/contact", content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 201, response.text
            [row] = inbox_items(client)
            assert row["contact_name"] == "Anna"
            [message] = conversation(client, row["conversation_id"])["messages"]
            assert "Message: ab" in message["text"]
            assert contact(client, row["contact_id"])["source"]["utm_source"] == "xy"
            assert runtime.views_healthy()
    finally:
        runtime.close()


def test_other_content_types_are_415(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define(client)
    for content_type in ("text/plain", "application/xml", ""):
        response = client.post(
            "/forms/contact", content=b"email=a@example.com", headers={"Content-Type": content_type}
        )
        assert response.status_code == 415, content_type


def test_unknown_and_disabled_forms_are_404(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    lead = {"full_name": "Z", "email": "z@example.com"}
    for slug in ("nope", "Bad Slug!"):
        assert client.get(f"/forms/{slug}").status_code == 404
        assert client.post(f"/forms/{slug}", json=lead).status_code == 404
    assert client.get("/forms/nope/embed.js").status_code == 404
    assert client.get("/forms/nope/thanks").status_code == 404
    assert client.options("/forms/nope", headers={"Origin": SHOP}).status_code == 404

    define(client, enabled=False)
    assert client.get("/forms/contact").status_code == 404
    assert client.post("/forms/contact", json=lead).status_code == 404
    switched_on = client.patch("/api/forms/contact", json={"enabled": True}, headers=ADMIN)
    assert switched_on.status_code == 200 and switched_on.json()["enabled"] is True
    assert client.post("/forms/contact", json=lead).status_code == 201


# -- defining forms ------------------------------------------------------------------------------


def test_a_mapping_to_an_undefined_attribute_is_refused_naming_the_field(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    response = client.post("/api/forms", json=contact_form(), headers=ADMIN)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "mapping", "plan"] and "POST /api/attributes" in error["msg"]
    define_attributes(client)
    assert client.post("/api/forms", json=contact_form(), headers=ADMIN).status_code == 201


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"slug": "Not A Slug"}, ["slug"]),
        ({"name": " "}, ["name"]),
        ({"fields": []}, ["fields"]),
        ({"fields": [{"name": "Bad-Name", "label": "x"}]}, ["fields", "0", "name"]),
        ({"fields": [{"name": "website", "label": "x"}]}, ["fields", "0", "name"]),
        ({"fields": [{"name": "a", "label": "A", "type": "color"}]}, ["fields", "0", "type"]),
        ({"fields": [{"name": "a", "label": "A", "type": "select"}]}, ["fields", "0", "options"]),
        ({"fields": [{"name": "a", "label": "A"}, {"name": "a", "label": "B"}]}, ["fields", "1", "name"]),
        ({"mapping": {"full_name": "name"}}, ["mapping"]),
        ({"mapping": {"email": "email", "nope": "phone"}}, ["mapping", "nope"]),
        ({"mapping": {"email": "email", "message": "address"}}, ["mapping", "message"]),
        ({"mapping": {"email": "phone"}}, ["mapping", "email"]),
        ({"thank_you_url": "javascript:alert(1)"}, ["thank_you_url"]),
        ({"allowed_origins": ["https://shop.example/page"]}, ["allowed_origins", "0"]),
        ({"allowed_origins": ["*", SHOP]}, ["allowed_origins"]),
        ({"rate_limit_per_minute": 0}, ["rate_limit_per_minute"]),
    ],
)  # fmt: skip
def test_bad_definitions_are_422_naming_the_field(
    api: tuple[TestClient, Runtime], change: dict[str, Any], loc: list[str]
) -> None:
    client, _ = api
    form = contact_form(**change)
    if "mapping" not in change:
        form["mapping"] = {"email": "email"} if "fields" not in change else {"a": "email"}
    response = client.post("/api/forms", json=form, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert [str(part) for part in response.json()["detail"][0]["loc"][1:]] == loc


def test_form_administration_roles_conflicts_and_changes(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    operator = token_for(client, "operator")
    manager = token_for(client, "manager")
    simple = contact_form(mapping={"email": "email"})
    assert client.post("/api/forms", json=simple, headers=operator).status_code == 403
    created = client.post("/api/forms", json=simple, headers=manager)
    assert created.status_code == 201
    form = created.json()
    assert form["embed_snippet"] == (
        '<script src="http://127.0.0.1:8000/forms/contact/embed.js" '
        'data-threadline-form="contact" async></script>'
    )
    assert client.post("/api/forms", json=simple, headers=manager).status_code == 409
    assert (
        client.post("/api/forms", json={**simple, "extra": 1}, headers=manager).status_code == 422
    )

    listed = client.get("/api/forms", headers=operator).json()
    assert listed["total"] == 1 and listed["items"][0]["slug"] == "contact"
    one = client.get("/api/forms/contact", headers=operator).json()
    assert one["id"] == form["id"]
    assert one["created_at"] == listed["items"][0]["created_at"] == form["created_at"]
    assert client.get("/api/forms/missing", headers=operator).status_code == 404
    assert (
        client.patch("/api/forms/contact", json={"name": "X"}, headers=operator).status_code == 403
    )
    assert client.get("/api/forms").status_code == 401

    patched = client.patch(
        "/api/forms/contact",
        json={"name": "Call me back", "thank_you_url": "https://shop.example/thanks"},
        headers=manager,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Call me back"
    assert patched.json()["fields"] == form["fields"]
    listed = client.get("/api/forms", headers=operator).json()["items"]
    assert listed[0]["name"] == "Call me back"
    assert (
        client.patch(
            "/api/forms/contact", json={"mapping": {"full_name": "name"}}, headers=manager
        ).status_code
        == 422
    )
    assert (
        client.patch("/api/forms/contact", json={"slug": "x"}, headers=manager).status_code == 422
    )

    redirected = client.post(
        "/forms/contact",
        data={"full_name": "R", "email": "r@example.com"},
        headers=HTML,
        follow_redirects=False,
    )
    assert redirected.status_code == 303
    assert redirected.headers["location"] == "https://shop.example/thanks"


def test_the_embed_script(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    define(
        client,
        name="</script><script>alert(1)</script>",
        fields=[{"name": "email", "label": "E-mail </script>", "type": "email"}],
        mapping={"email": "email"},
    )
    response = client.get("/forms/contact/embed.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    script = response.text
    assert "</script>" not in script.split("*/", 1)[1]  # the config cannot close a script tag
    config = json.loads(script.split("var config = ", 1)[1].split(";\n", 1)[0])
    assert config["slug"] == "contact" and config["honeypot"] == "website"
    assert config["fields"][0]["label"] == "E-mail </script>"
    assert "data-threadline-form" in script and "fetch(action" in script


# -- open-ended input ----------------------------------------------------------------------------

OK_STATUSES = {200, 201, 303, 413, 415, 422, 429}
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
)
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
)
field_names = st.sampled_from(
    ["full_name", "email", "phone", "plan", "company_size", "newsletter", "message",
     "campaign_id", "_token", "referrer", "utm_source", "tl_visitor", "other"]
)  # fmt: skip


@pytest.fixture
def fuzz_api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    client, runtime = open_api(sqlite_url, tmp_path, max_body_bytes=20_000)
    try:
        with client:
            define_attributes(client)
            define(client, rate_limit_per_minute=10_000)
            yield client
    finally:
        runtime.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.dictionaries(field_names, json_value, max_size=10),
        st.dictionaries(st.text(max_size=50), json_value, max_size=5),
        json_value,
    ),
    lead=st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"full_name": st.text(min_size=1, max_size=60), "email": st.emails()}
        ),
    ),
)
def test_any_json_body_gets_a_clear_answer(
    fuzz_api: TestClient, body: Any, lead: dict[str, str] | None
) -> None:
    if isinstance(body, dict) and lead is not None:
        body = {**body, **lead}  # a valid lead among arbitrary other values: often ingested
    raw = json.dumps(body, allow_nan=True).encode()  # NaN and Infinity too, as JS could send
    response = fuzz_api.post(
        "/forms/contact", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in OK_STATUSES, response.text
    event(f"status {response.status_code}")
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"][0] == "body"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(st.tuples(field_names | st.text(max_size=20), st.text(max_size=200)), max_size=12),
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data",
         "multipart/form-data; boundary=xyz", "application/json", "text/plain", ""]
    ),
    browser=st.booleans(),
)  # fmt: skip
def test_any_form_body_gets_a_clear_answer(
    fuzz_api: TestClient,
    pairs: list[tuple[str, str]],
    raw: bytes,
    content_type: str,
    browser: bool,
) -> None:
    headers = HTML if browser else {}
    encoded = fuzz_api.post(
        "/forms/contact", data=dict(pairs), headers=headers, follow_redirects=False
    )
    assert encoded.status_code in OK_STATUSES, encoded.text
    raw_response = fuzz_api.post(
        "/forms/contact",
        content=raw,
        headers={**headers, "Content-Type": content_type},
        follow_redirects=False,
    )
    assert raw_response.status_code in OK_STATUSES, raw_response.text


def test_an_oversized_body_is_413(sqlite_url: str, tmp_path: Path) -> None:
    client, runtime = open_api(sqlite_url, tmp_path, max_body_bytes=2_000)
    try:
        with client:
            define(client, mapping={"email": "email"})
            response = client.post(
                "/forms/contact", json={"email": "a@example.com", "message": "x" * 5000}
            )
            assert response.status_code == 413
    finally:
        runtime.close()


def test_each_submission_keeps_its_form_and_campaign_as_its_source(
    api: tuple[TestClient, Runtime],
) -> None:
    """Every inquiry keeps its source: the second submission's campaign is on its message,
    while the contact keeps the first touch."""
    client, _ = api
    define(client, fields=contact_form()["fields"][:3], mapping={"email": "email"})
    first = client.post(
        "/forms/contact?utm_source=google&utm_campaign=spring",
        json={"full_name": "Ida", "email": "ida@example.com", "_token": "t" * 32},
    )
    second = client.post(
        "/forms/contact?utm_source=yandex&utm_campaign=autumn",
        json={"full_name": "Ida", "email": "ida@example.com", "utm_term": "crm price"},
        headers={"Referer": "https://blog.example/crm"},
    )
    assert first.status_code == 201 and second.status_code == 201, second.text
    assert second.json()["contact_id"] == first.json()["contact_id"]
    spring = {"channel": "web", "form": "contact", "utm_source": "google", "utm_campaign": "spring"}
    assert contact(client, first.json()["contact_id"])["source"] == spring
    [row] = inbox_items(client)
    thread = conversation(client, row["conversation_id"])
    assert [m["source"] for m in thread["messages"]] == [
        spring,
        {
            "channel": "web",
            "form": "contact",
            "utm_source": "yandex",
            "utm_campaign": "autumn",
            "utm_term": "crm price",
            "referrer": "https://blog.example/crm",
        },
    ]
