"""Consent records (152-FZ art. 9, GDPR art. 7): policies with versioned texts, each
client's consents and withdrawals, campaigns that need them, a person's data export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient

from tests.services.test_api import ADMIN, token_for
from tests.triggers.test_campaigns import (
    NEWS,
    Api,
    contact,
    create,
    finished,
    make_api,  # noqa: F401 (the fixture)
    recipients,
    wait_for,
)
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.consents import consents_of

POLICY = {
    "title": "I agree to receive news and offers",
    "text": "Shop LLC may send me news and offers by e-mail until I withdraw this consent.",
    "campaigns": True,
}


def statuses(client: TestClient, contact_id: UUID) -> dict[str, tuple[str, Any]]:
    answer = client.get(f"/api/contacts/{contact_id}/consents", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return {c["purpose"]: (c["status"], c["text_version"]) for c in answer.json()}


def test_a_consent_follows_the_text_it_was_given_to(
    database_url: str,
    make_api: Callable[..., Api],  # noqa: F811
) -> None:
    client, runtime = make_api(database_url)
    operator = token_for(client, "operator")
    assert (
        client.put("/api/consent-policies/marketing", json=POLICY, headers=operator).status_code
        == 403
    )
    made = client.put("/api/consent-policies/marketing", json=POLICY, headers=ADMIN)
    assert made.status_code == 200 and made.json()["text_version"] == 1, made.text
    assert (
        client.put("/api/consent-policies/Not A Slug", json=POLICY, headers=ADMIN).status_code
        == 422
    )

    anna = contact(runtime, "Anna Green", ("email", "anna@example.com"), tags=[])
    assert statuses(client, anna) == {"marketing": ("none", None)}
    given = client.post(
        f"/api/contacts/{anna}/consents", json={"purpose": "marketing"}, headers=operator
    )
    assert given.status_code == 200, given.text
    assert statuses(client, anna) == {"marketing": ("current", 1)}
    renamed = client.put(
        "/api/consent-policies/marketing", json={**POLICY, "title": "News, please"}, headers=ADMIN
    )
    assert renamed.json()["text_version"] == 1  # a new title alone is no new text
    revised = client.put(
        "/api/consent-policies/marketing", json={**POLICY, "text": "A new text."}, headers=ADMIN
    )
    assert revised.json()["text_version"] == 2
    assert statuses(client, anna) == {"marketing": ("outdated", 1)}
    withdrawn = client.post(
        f"/api/contacts/{anna}/consents/marketing/withdraw",
        json={"reason": "too many letters"},
        headers=operator,
    )
    assert withdrawn.status_code == 200 and statuses(client, anna)["marketing"][0] == "withdrawn"
    timeline = client.get(f"/api/contacts/{anna}/timeline", headers=ADMIN).json()["items"]
    kinds = [item["kind"] for item in timeline]
    assert "consent.given" in kinds and "consent.withdrawn" in kinds

    unknown = client.post(f"/api/contacts/{anna}/consents", json={"purpose": "nope"}, headers=ADMIN)
    assert unknown.status_code == 404
    assert client.get(f"/api/contacts/{uuid4()}/consents", headers=ADMIN).status_code == 404

    # a form's ticked box travels with the message and is recorded in the text in force
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="form", dedup_key="f-1", identities=[("email", "boris@example.com")],
            text="hello", source={"form": "contact"}, consents=["marketing"],
        )
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    [row] = consents_of(runtime.views, committed.value.contact_id)
    assert (row.status, row.text_version, row.via) == ("current", 2, "form:contact")


def test_a_campaign_skips_the_clients_without_a_current_consent(
    database_url: str,
    make_api: Callable[..., Api],  # noqa: F811
) -> None:
    client, runtime = make_api(database_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    assert (
        client.put("/api/consent-policies/marketing", json=POLICY, headers=ADMIN).status_code == 200
    )
    agreed = contact(runtime, "Anna Green", ("email", "anna@example.com"), tags=["news"])
    silent = contact(runtime, "Boris Brown", ("email", "boris@example.com"), tags=["news"])
    assert (
        client.post(
            f"/api/contacts/{agreed}/consents", json={"purpose": "marketing"}, headers=ADMIN
        ).status_code
        == 200
    )
    runtime.channels.start(pollers=False)
    news = create(client, segment={"tag": "news"}, start=True)
    wait_for(lambda: finished(client, news["id"]))
    rows = {UUID(r["contact_id"]): r for r in recipients(client, news["id"])}
    assert rows[agreed]["state"] in ("sent", "delivered"), rows[agreed]
    assert rows[silent]["state"] == "skipped"
    assert rows[silent]["reason"] == "no consent to marketing (text version 1)"


def test_a_person_gets_their_data(
    database_url: str,
    make_api: Callable[..., Api],  # noqa: F811
) -> None:
    client, runtime = make_api(database_url)
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key="p-1", identities=[("email", "vera@example.com")],
            sender_name="Vera Lee", text="what do you know about me?",
        )
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    vera = committed.value.contact_id
    operator = token_for(client, "operator")
    assert client.get(f"/api/contacts/{vera}/personal-data", headers=operator).status_code == 403
    answer = client.get(f"/api/contacts/{vera}/personal-data", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    tables = answer.json()["tables"]
    assert tables["contacts"][0]["display_name"] == "Vera Lee"
    assert {"kind": "email", "value": "vera@example.com", "contact_id": str(vera)} in tables[
        "contact_identities"
    ]
    assert any(m["text"] == "what do you know about me?" for m in tables["inbox_messages"])
    assert "audit_events" not in tables
    runtime.access_log.flush()
    logged = client.get("/api/audit/access", params={"kind": "export"}, headers=ADMIN).json()
    assert any(e["target_id"] == f"personal-data/{vera}" for e in logged["items"])
    assert client.get(f"/api/contacts/{uuid4()}/personal-data", headers=ADMIN).status_code == 404


def test_a_merge_keeps_the_duplicates_consent(
    database_url: str,
    make_api: Callable[..., Api],  # noqa: F811
) -> None:
    client, runtime = make_api(database_url)
    assert (
        client.put("/api/consent-policies/marketing", json=POLICY, headers=ADMIN).status_code == 200
    )
    survivor = contact(runtime, "Anna Green", ("email", "anna@example.com"), tags=[])
    duplicate = contact(runtime, "Anna G.", ("phone", "+79161234567"), tags=[])
    client.post(f"/api/contacts/{duplicate}/consents", json={"purpose": "marketing"}, headers=ADMIN)
    merged = client.post(
        f"/api/contacts/{survivor}/merge", json={"other_id": str(duplicate)}, headers=ADMIN
    )
    assert merged.status_code == 200, merged.text
    [row] = consents_of(runtime.views, survivor)
    assert (row.status, row.via) == ("current", f"merge:{duplicate}")


def test_a_client_agrees_again_through_the_link_in_a_message(
    database_url: str,
    make_api: Callable[..., Api],  # noqa: F811
) -> None:
    client, runtime = make_api(database_url)
    assert (
        client.put("/api/consent-policies/marketing", json=POLICY, headers=ADMIN).status_code == 200
    )
    anna = contact(runtime, "Anna Green", ("email", "anna@example.com"), tags=[])
    client.post(f"/api/contacts/{anna}/consents", json={"purpose": "marketing"}, headers=ADMIN)
    client.put(
        "/api/consent-policies/marketing", json={**POLICY, "text": "The new text."}, headers=ADMIN
    )
    assert statuses(client, anna)["marketing"] == ("outdated", 1)
    variants = {"email": {"subject": "Our terms", "text": 'Agree: {{ consent_urls["marketing"] }}'}}
    rendered = runtime.composer.preview(variants, "email", anna)
    link = rendered.text.split("Agree: ", 1)[1].strip()
    path = "/consent/" + link.rsplit("/consent/", 1)[1]
    page = client.get(path)
    assert page.status_code == 200 and "The new text." in page.text and "Version 2" in page.text
    assert "type=checkbox name=agree value=yes required" in page.text  # unticked, required
    assert statuses(client, anna)["marketing"] == ("outdated", 1)  # opening changes nothing
    assert client.post(path, data={}).status_code == 422
    agreed = client.post(path, data={"agree": "yes"})
    assert agreed.status_code == 200, agreed.text
    assert statuses(client, anna)["marketing"] == ("current", 2)
    [row] = consents_of(runtime.views, anna)
    assert row.via == "link"
    assert client.post(path, data={"withdraw": "yes"}).status_code == 200
    assert statuses(client, anna)["marketing"][0] == "withdrawn"
    forged = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    assert client.get(forged).status_code == 404
    other = path.replace(str(anna), str(uuid4()))
    assert client.get(other).status_code == 404
