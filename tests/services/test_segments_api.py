"""Saved segments over the API, and one saved segment used by a campaign's audience, a rule's
condition and a report's slice.

Contacts: Анна (tag vip, e-mail anna@example.com), Борис (tag vip), Вера (no tag), so the
segment "VIP" = {tag: vip} holds Анна and Борис; "VIP Анна" = VIP and q=анна holds Анна.
"""

# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.campaigns import recipients_page
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
NEW = seeded_pipeline_id("new-clients")


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(sqlite_url, admin_token="admin-secret", attachments_dir=str(tmp_path))
    runtime.start_triggers()
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def token_for(client: TestClient, role: str) -> dict[str, str]:
    made = client.post(
        "/api/users", json={"email": f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


def people(runtime: Runtime) -> dict[str, UUID]:
    app = runtime.app
    ids = {
        "anna": app.create_contact(
            "test", "Анна", identities=[("email", "anna@example.com")], tags=["vip"]
        ).value,
        "boris": app.create_contact(
            "test", "Борис", identities=[("email", "boris@example.com")], tags=["vip"]
        ).value,
        "vera": app.create_contact(
            "test", "Вера", identities=[("email", "vera@example.com")]
        ).value,
    }
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return ids


def loc(response: Any) -> str:
    assert response.status_code == 422, response.text
    return ".".join(str(p) for p in response.json()["detail"][0]["loc"][1:])


def test_crud_validation_and_contacts(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    ids = people(runtime)
    made = client.post(
        "/api/segments",
        json={"name": "VIP", "description": "Best clients", "filter": {"tag": ["vip"]}},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    vip = made.json()
    assert (vip["name"], vip["filter"], vip["count"]) == ("VIP", [["tag", "vip"]], 2)
    # the filter as [key, value] pairs, naming another segment
    anna = client.post(
        "/api/segments",
        json={"name": "VIP Анна", "filter": [["segment_id", vip["id"]], ["q", "анна"]]},
        headers=ADMIN,
    ).json()
    assert anna["count"] == 1

    # errors name the key; a taken name is a conflict
    assert loc(client.post("/api/segments", json={"name": "X", "filter": {"abc_class": "Z"}},
                           headers=ADMIN)) == "filter.abc_class"  # fmt: skip
    assert loc(client.post("/api/segments", json={"name": "X", "filter": {"colour": "red"}},
                           headers=ADMIN)) == "filter.colour"  # fmt: skip
    missing = "00000000-0000-0000-0000-000000000009"
    assert loc(client.post("/api/segments", json={"name": "X", "filter": {"segment_id": missing}},
                           headers=ADMIN)) == "filter.segment_id"  # fmt: skip
    assert loc(client.post("/api/segments", json={"name": "", "filter": {}}, headers=ADMIN)) == (
        "name"
    )
    taken = client.post("/api/segments", json={"name": "vip", "filter": {}}, headers=ADMIN)
    assert taken.status_code == 409, taken.text
    # a segment may not name itself
    looped = client.put(
        f"/api/segments/{vip['id']}",
        json={"name": "VIP", "filter": {"segment_id": anna["id"]}},
        headers=ADMIN,
    )
    assert loc(looped).startswith("filter.segment_id"), looped.text

    listed = client.get("/api/segments", headers=ADMIN).json()
    assert [(s["name"], s["count"]) for s in listed["items"]] == [("VIP", 2), ("VIP Анна", 1)]
    assert listed["total"] == 2
    page = client.get(f"/api/segments/{vip['id']}/contacts?limit=1", headers=ADMIN).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    both = client.get(f"/api/segments/{vip['id']}/contacts", headers=ADMIN).json()
    assert {c["id"] for c in both["items"]} == {str(ids["anna"]), str(ids["boris"])}

    changed = client.put(
        f"/api/segments/{vip['id']}",
        json={"name": "Everyone", "description": "", "filter": {}},
        headers=ADMIN,
    )
    assert changed.status_code == 200 and changed.json()["count"] == 3
    # still named by "VIP Анна": not deleted
    assert client.delete(f"/api/segments/{vip['id']}", headers=ADMIN).status_code == 409
    assert client.delete(f"/api/segments/{anna['id']}", headers=ADMIN).status_code == 204
    assert client.get(f"/api/segments/{anna['id']}", headers=ADMIN).status_code == 404
    assert client.delete(f"/api/segments/{vip['id']}", headers=ADMIN).status_code == 204

    # reading is for every role, writing for admins and managers
    operator = token_for(client, "operator")
    assert client.get("/api/segments", headers=operator).status_code == 200
    denied = client.post("/api/segments", json={"name": "Mine", "filter": {}}, headers=operator)
    assert denied.status_code == 403
    manager = token_for(client, "manager")
    mine = client.post("/api/segments", json={"name": "Mine", "filter": {}}, headers=manager)
    assert mine.status_code == 201, mine.text
    # the new keys work in GET /api/contacts too
    vera = client.get("/api/contacts?balance_lt=1&q=вера", headers=ADMIN).json()
    assert [c["id"] for c in vera["items"]] == [str(ids["vera"])]


def test_one_segment_for_a_campaign_a_rule_and_a_report(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    ids = people(runtime)
    app = runtime.app
    vip = client.post(
        "/api/segments", json={"name": "VIP", "filter": {"tag": "vip"}}, headers=ADMIN
    ).json()["id"]

    # a campaign: the audience is the segment's contacts when it starts (Анна, Борис)
    template = {"slug": "news", "name": "News",
                "variants": {"email": {"subject": "News", "text": "Hello"}}}  # fmt: skip
    assert client.post("/api/templates", json=template, headers=ADMIN).status_code == 201
    campaign = client.post(
        "/api/campaigns",
        json={"name": "VIP news", "template": "news", "segment": {"segment_id": vip}},
        headers=ADMIN,
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    bad = client.post(
        "/api/campaigns",
        json={"name": "Bad", "template": "news", "segment": {"segment_id": str(ids["vera"])}},
        headers=ADMIN,
    )
    assert loc(bad) == "segment.segment_id"
    assert client.post(f"/api/campaigns/{campaign_id}/start", headers=ADMIN).status_code == 200
    [sender] = [w for w in runtime.channels.workers() if type(w).__name__ == "CampaignSender"]
    sender.resolve(UUID(campaign_id), None)  # or the sender's own loop did it already
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    recipients, total = recipients_page(runtime.views, campaign_id, None, 10)
    assert total == 2
    assert {r.contact_id for r in recipients} == {str(ids["anna"]), str(ids["boris"])}

    # a rule: unknown segment ids are refused when it is saved
    rule = {"name": "VIP mail", "when": "message.received", "if": {"segment_id": vip},
            "then": [{"add_tag": "vip-wrote"}]}  # fmt: skip
    unknown = {**rule, "if": {"all": [{"segment_id": str(ids["vera"])}]}}
    refused = client.post("/api/rules", json=unknown, headers=ADMIN)
    assert refused.status_code == 422 and "no saved segment" in refused.text, refused.text
    in_segment = {**rule, "if": {"segment": {"segment_id": str(ids["vera"])}}}
    assert client.post("/api/rules", json=in_segment, headers=ADMIN).status_code == 422
    malformed = {**rule, "if": {"segment_id": "x"}}
    assert client.post("/api/rules", json=malformed, headers=ADMIN).status_code == 422
    assert client.post("/api/rules", json=rule, headers=ADMIN).status_code == 201, rule
    # Вера writes first, then Анна: when Анна's tag is there, Вера's message was decided too
    for key in ("vera", "anna"):
        runtime.channels.ingest(
            InboundMessage.create(
                channel="email", dedup_key=f"r-{key}",
                identities=[("email", f"{key}@example.com")], text="hi",
            )
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "vip-wrote" not in tags(runtime, ids["anna"]):
        runtime.wait_for_views(app.recorder.max_notification_id(), timeout=1)
    assert "vip-wrote" in tags(runtime, ids["anna"])
    assert "vip-wrote" not in tags(runtime, ids["vera"])

    # a report: the funnel's win rate over VIP deals only. Анна: one deal won; Вера: one
    # won and one lost. Everyone: 3 closed, 2 won; VIP: 1 closed, 1 won.
    app.seed_pipelines("test")
    for contact, outcome in (("anna", "won"), ("vera", "won"), ("vera", "lost")):
        deal = app.create_deal("test", f"{contact} {outcome}", NEW, contact_id=ids[contact],
                               amount="100").value  # fmt: skip
        if outcome == "won":
            app.win_deal(deal, "test")
        else:
            app.lose_deal(deal, "Too expensive", "test")
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    everyone = client.get("/api/reports/funnel", headers=ADMIN)
    assert everyone.status_code == 200, everyone.text
    assert win_rate(everyone.json()) == (3, 2)
    only_vip = client.get(f"/api/reports/funnel?segment_id={vip}", headers=ADMIN)
    assert only_vip.status_code == 200, only_vip.text
    assert win_rate(only_vip.json()) == (1, 1) and only_vip.json()["slice"]["segment"] is True
    assert loc(client.get(f"/api/reports/funnel?segment_id={ids['vera']}", headers=ADMIN)) == (
        "segment_id"
    )
    assert loc(client.get("/api/reports/funnel?segment_id=nope", headers=ADMIN)) == "segment_id"


def tags(runtime: Runtime, contact_id: UUID) -> list[str]:
    card = runtime.queries.contact(str(contact_id))
    return list(card["tags"]) if card else []


def win_rate(report: dict[str, Any]) -> tuple[int, int]:
    section = next(s for s in report["sections"] if s["name"] == "win_rate")
    closed = sum(int(r["values"]["closed"]) for r in section["rows"])
    won = sum(int(r["values"]["won"]) for r in section["rows"])
    return closed, won
