"""The sales API end to end: pipelines, deals, stage moves, stage history (FastAPI TestClient
over a real runtime, SQLite and PostgreSQL). Money figures are worked out by hand below."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
NEW = str(seeded_pipeline_id("new-clients"))
REPEAT = str(seeded_pipeline_id("repeat-sales"))


def stage(key: str, pipeline: str = "new-clients") -> str:
    return seeded_stage_id(pipeline, key)


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(database_url, admin_token="admin-secret", max_body_bytes=64_000)
    try:
        committed = runtime.app.seed_pipelines("test")
        runtime.wait_for_views(committed.notification_id, timeout=30)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def user(client: TestClient, role: str, email: str | None = None) -> tuple[str, dict[str, str]]:
    response = client.post(
        "/api/users", json={"email": email or f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


def contact(client: TestClient, name: str = "Мария") -> str:
    response = client.post("/api/contacts", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def new_deal(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"title": "Поставка", "pipeline_id": NEW, **fields}
    response = client.post("/api/deals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def money(amount: str, currency: str = "RUB") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


# -- pipelines ----------------------------------------------------------------------------------


def test_pipelines_are_listed_with_stages_in_order_and_managed_by_managers(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    _, operator = user(client, "operator")
    _, manager = user(client, "manager")

    listed = client.get("/api/pipelines", headers=operator).json()["items"]
    assert [p["name"] for p in listed] == ["New clients", "Repeat sales", "Inbound requests"]
    first = listed[0]
    assert [s["name"] for s in first["stages"]] == [
        "Mutual intent",
        "Invoice or documents",
        "Confirmation",
        "Commercial proposal",
        "All operations done",
        "Paid",
        "Lost",
    ]
    assert [s["position"] for s in first["stages"]] == list(range(7))
    assert "Too expensive" in first["lost_reasons"]
    assert client.get(f"/api/pipelines/{NEW}", headers=operator).json() == first
    missing = client.get(f"/api/pipelines/{seeded_pipeline_id('nope')}", headers=operator)
    assert missing.status_code == 404

    body = {
        "name": "Tenders",
        "stages": [
            {"name": "Bid", "probability": 20, "stale_days": 10},
            {"name": "Signed", "meaning": "won"},
            {"name": "Rejected", "meaning": "lost"},
        ],
        "lost_reasons": ["Price"],
    }
    assert client.post("/api/pipelines", json=body, headers=operator).status_code == 403
    created = client.post("/api/pipelines", json=body, headers=manager)
    assert created.status_code == 201, created.text
    tender = created.json()
    pid = tender["id"]
    bid, signed, rejected = (s["id"] for s in tender["stages"])
    assert tender["stages"][0]["probability"] == 20 and tender["stages"][0]["stale_days"] == 10
    assert [s["meaning"] for s in tender["stages"]] == ["open", "won", "lost"]

    patched = client.patch(
        f"/api/pipelines/{pid}",
        json={"name": "Public tenders", "lost_reasons": ["Price", "Deadline"]},
        headers=manager,
    ).json()
    assert (patched["name"], patched["lost_reasons"]) == ("Public tenders", ["Price", "Deadline"])

    added = client.post(
        f"/api/pipelines/{pid}/stages",
        json={"name": "Review", "probability": 55, "position": 1},
        headers=manager,
    )
    assert added.status_code == 201, added.text
    review = added.json()["id"]
    assert added.json()["position"] == 1
    now = client.get(f"/api/pipelines/{pid}", headers=operator).json()
    assert [s["id"] for s in now["stages"]] == [bid, review, signed, rejected]

    renamed = client.patch(
        f"/api/pipelines/{pid}/stages/{bid}",
        json={"name": "Bid sent", "stale_days": 3},
        headers=manager,
    ).json()
    assert (renamed["stages"][0]["id"], renamed["stages"][0]["name"]) == (bid, "Bid sent")
    assert renamed["stages"][0]["stale_days"] == 3 and renamed["stages"][0]["probability"] == 20

    order = [review, bid, rejected, signed]
    reordered = client.put(
        f"/api/pipelines/{pid}/stage-order", json={"order": order}, headers=manager
    )
    assert reordered.status_code == 200, reordered.text
    assert [s["id"] for s in reordered.json()["stages"]] == order
    partial = client.put(
        f"/api/pipelines/{pid}/stage-order", json={"order": [review]}, headers=manager
    )
    assert partial.status_code == 422
    unknown = client.patch(
        f"/api/pipelines/{pid}/stages/no-such-stage", json={"name": "X"}, headers=manager
    )
    assert unknown.status_code in (404, 422)

    archived = client.patch(f"/api/pipelines/{pid}", json={"archived": True}, headers=manager)
    assert archived.json()["archived"] is True
    names = [p["name"] for p in client.get("/api/pipelines", headers=operator).json()["items"]]
    assert "Public tenders" not in names
    everything = client.get("/api/pipelines?include_archived=true", headers=operator).json()
    assert "Public tenders" in [p["name"] for p in everything["items"]]


# -- deals --------------------------------------------------------------------------------------


def test_a_deal_with_lines_shows_its_figures_as_decimal_money(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    manager_id, manager = user(client, "manager")
    client_id = contact(client)
    lines = [
        # 2 x 1000 less 10 % = 1800.00 net; VAT 22 % (2026) added: 396.00; cost 2 x 300 = 600
        {
            "name": "Насосы",
            "quantity": 2,
            "price": "1000",
            "cost": "300",
            "discount": "10",
            "vat": "standard",
            "vat_included": False,
            "unit": "шт",
        },
        # without VAT: 500.00 net and total, no cost
        {"name": "Доставка", "quantity": "1", "price": "500.00", "vat": "none"},
    ]
    deal = new_deal(
        client,
        manager,
        contact_id=client_id,
        manager_id="me",
        lines=lines,
        expected_close="2026-03-01",
    )
    assert deal["manager_id"] == manager_id and deal["contact_id"] == client_id
    assert (deal["pipeline"], deal["stage"], deal["stage_meaning"]) == (
        "New clients",
        "Mutual intent",
        "open",
    )
    assert deal["stage_id"] == stage("mutual-intent") and deal["status"] == "open"
    assert deal["probability"] == 10
    assert deal["net"] == money("2300.00") and deal["vat"] == money("396.00")
    assert deal["total"] == money("2696.00")
    assert deal["cost"] == money("600.00") and deal["profit"] == money("1700.00")
    pump, delivery = deal["lines"]
    assert pump["net"] == money("1800.00") and pump["vat_amount"] == money("396.00")
    assert pump["total"] == money("2196.00") and pump["profit"] == money("1200.00")
    assert pump["cost_total"] == money("600.00") and pump["vat_rate"] == "22"
    assert delivery["total"] == money("500.00") and delivery["vat_rate"] is None
    assert "minor" not in str(deal)
    fetched = client.get(f"/api/deals/{deal['id']}", headers=manager).json()
    assert fetched == deal

    # the same pump line closing in 2025 carries 20 %: 360.00 VAT, 2160.00 total
    old = new_deal(
        client, manager, contact_id=client_id, lines=lines[:1], expected_close="2025-12-31"
    )
    assert old["vat"] == money("360.00") and old["total"] == money("2160.00")

    # an amount without lines is one line without VAT, in the deal's currency
    euro = new_deal(client, manager, contact_id=client_id, amount="99.90", currency="EUR")
    assert euro["total"] == money("99.90", "EUR") and euro["lines"][0]["name"] == "Поставка"

    # lines replaced: a refund of one pump (-1 x 1000, 22 % included, closing in 2026):
    # net -1000 / 1.22 = -819.67, VAT -1000 + 819.67 = -180.33
    put = client.put(
        f"/api/deals/{deal['id']}/lines",
        json={"lines": [{"name": "Возврат", "quantity": -1, "price": 1000, "vat": "standard"}]},
        headers=manager,
    )
    assert put.status_code == 200, put.text
    refund = put.json()
    assert refund["total"] == money("-1000.00")
    assert refund["net"] == money("-819.67") and refund["vat"] == money("-180.33")


def test_deal_changes_moves_wins_and_losses(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    operator_id, operator = user(client, "operator")
    other_id, _ = user(client, "manager", "other@example.com")
    client_id = contact(client)
    deal = new_deal(client, operator, contact_id=client_id, amount="1000")
    url = f"/api/deals/{deal['id']}"

    patched = client.patch(
        url,
        json={"title": "Большая поставка", "expected_close": "2026-05-01", "probability": 45},
        headers=operator,
    ).json()
    assert (patched["title"], patched["expected_close"]) == ("Большая поставка", "2026-05-01")
    assert (patched["probability"], patched["probability_manual"]) == (45, True)
    reset = client.patch(url, json={"probability": None}, headers=operator).json()
    assert (reset["probability"], reset["probability_manual"]) == (10, False)
    assert reset["title"] == "Большая поставка"  # left out: unchanged
    mine = client.patch(url, json={"manager_id": "me"}, headers=operator).json()
    assert mine["manager_id"] == operator_id
    theirs = client.patch(url, json={"manager_id": other_id}, headers=operator).json()
    assert theirs["manager_id"] == other_id
    cleared = client.patch(url, json={"expected_close": None}, headers=operator).json()
    assert cleared["expected_close"] is None
    bad_date = client.patch(url, json={"expected_close": "01.05.2026"}, headers=operator)
    assert bad_date.status_code == 422

    moved = client.post(
        f"{url}/stage", json={"stage_id": stage("confirmation")}, headers=operator
    ).json()
    assert moved["outcome"] == "moved"
    assert (moved["deal"]["stage"], moved["deal"]["probability"]) == ("Confirmation", 50)
    same = client.post(f"{url}/stage", json={"stage_id": stage("confirmation")}, headers=operator)
    assert same.json()["outcome"] == "unchanged"
    unknown = client.post(f"{url}/stage", json={"stage_id": "no-such"}, headers=operator)
    assert unknown.status_code == 422
    no_reason = client.post(f"{url}/stage", json={"stage_id": stage("lost")}, headers=operator)
    assert no_reason.status_code == 422
    assert client.get(url, headers=operator).json()["status"] == "open"
    not_listed = client.post(f"{url}/lost", json={"reason": "Weather"}, headers=operator)
    assert not_listed.status_code == 422
    assert not_listed.json()["detail"][0]["loc"] == ["body", "reason"]
    missing = client.post(f"{url}/lost", json={}, headers=operator)
    assert missing.status_code == 422

    lost = client.post(
        f"{url}/stage", json={"stage_id": stage("lost"), "reason": "No budget"}, headers=operator
    ).json()
    assert lost["outcome"] == "lost"
    assert (lost["deal"]["status"], lost["deal"]["lost_reason"]) == ("lost", "No budget")
    assert lost["deal"]["closed_at"] is not None and lost["deal"]["probability"] == 0
    closed = client.put(f"{url}/lines", json={"lines": []}, headers=operator)
    assert closed.status_code == 409

    won = client.post(f"{url}/won", headers=operator)
    assert won.status_code == 200, won.text
    assert (won.json()["status"], won.json()["stage"]) == ("won", "Paid")
    assert client.post(f"{url}/won", headers=operator).status_code == 409
    card = client.get(f"/api/contacts/{client_id}", headers=operator).json()
    assert card["lifecycle"] == "customer"

    reopened = client.post(
        f"{url}/stage", json={"stage_id": stage("offer", "repeat-sales"), "pipeline_id": REPEAT},
        headers=operator,
    ).json()  # fmt: skip
    assert reopened["outcome"] == "moved"
    assert (reopened["deal"]["pipeline"], reopened["deal"]["status"]) == ("Repeat sales", "open")

    other = new_deal(client, operator, contact_id=client_id, amount="10")
    by_lost = client.post(
        f"/api/deals/{other['id']}/lost", json={"reason": "Too expensive"}, headers=operator
    ).json()
    assert (by_lost["stage"], by_lost["lost_reason"]) == ("Lost", "Too expensive")

    ghost = "/api/deals/00000000-0000-0000-0000-000000000001"
    assert client.get(ghost, headers=operator).status_code == 404
    assert client.post(f"{ghost}/won", headers=operator).status_code == 404
    assert client.get(f"{ghost}/history", headers=operator).status_code == 404


def test_create_refusals(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    _, operator = user(client, "operator")
    client_id = contact(client)
    nobody = client.post(
        "/api/deals", json={"title": "X", "pipeline_id": NEW, "amount": "1"}, headers=operator
    )
    assert nobody.status_code == 422
    closed_stage = client.post(
        "/api/deals",
        json={"title": "X", "pipeline_id": NEW, "contact_id": client_id, "stage_id": stage("paid")},
        headers=operator,
    )
    assert closed_stage.status_code == 422
    unknown_pipeline = client.post(
        "/api/deals",
        json={
            "title": "X",
            "pipeline_id": str(seeded_pipeline_id("nope")),
            "contact_id": client_id,
        },
        headers=operator,
    )
    assert unknown_pipeline.status_code == 404
    negative = client.post(
        "/api/deals",
        json={
            "title": "X",
            "pipeline_id": NEW,
            "contact_id": client_id,
            "lines": [{"name": "A", "price": "-5"}],
        },
        headers=operator,
    )
    assert negative.status_code == 422
    assert negative.json()["detail"][0]["loc"][:2] == ["body", "lines[0]"]


def test_the_auditor_reads_and_changes_nothing(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    _, auditor = user(client, "auditor")
    _, operator = user(client, "operator")
    deal = new_deal(client, operator, contact_id=contact(client), amount="5")
    url = f"/api/deals/{deal['id']}"
    assert client.get(url, headers=auditor).status_code == 200
    assert client.get("/api/deals", headers=auditor).status_code == 200
    assert client.get("/api/stage-history", headers=auditor).status_code == 200
    refused = [
        client.post("/api/deals", json={"title": "X", "pipeline_id": NEW}, headers=auditor),
        client.patch(url, json={"title": "Y"}, headers=auditor),
        client.put(f"{url}/lines", json={"lines": []}, headers=auditor),
        client.post(f"{url}/stage", json={"stage_id": stage("confirmation")}, headers=auditor),
        client.post(f"{url}/won", headers=auditor),
        client.post(f"{url}/lost", json={"reason": "No budget"}, headers=auditor),
        client.post(
            f"{url}/conversations",
            json={"conversation_id": "00000000-0000-0000-0000-000000000001"},
            headers=auditor,
        ),
        client.patch(f"/api/pipelines/{NEW}", json={"name": "Z"}, headers=auditor),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert client.get(url, headers=auditor).json()["status"] == "open"
    assert client.get(url, headers=auditor).json()["title"] == "Поставка"


def test_deal_filters(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    me_id, me = user(client, "manager")
    other_id, other = user(client, "operator")
    maria, ivan = contact(client, "Мария"), contact(client, "Иван")
    company = client.post("/api/companies", json={"name": "Ромашка"}, headers=ADMIN)
    assert company.status_code == 201, company.text
    company_id = company.json()["id"]
    small = new_deal(
        client, me, title="Small pumps", contact_id=maria, amount="100", manager_id="me"
    )
    big = new_deal(client, other, title="Big pumps", contact_id=ivan, amount="5000.50")
    euro = new_deal(
        client, other, title="Euro", company_id=company_id, amount="5000.50", currency="EUR"
    )
    repeat = new_deal(client, me, title="Again", contact_id=maria, amount="700", pipeline_id=REPEAT)
    client.post(f"/api/deals/{small['id']}/won", headers=me)
    client.post(f"/api/deals/{big['id']}/lost", json={"reason": "No answer"}, headers=me)
    client.post(
        f"/api/deals/{repeat['id']}/stage",
        json={"stage_id": stage("order", "repeat-sales")},
        headers=me,
    )

    def ids(query: str, headers: dict[str, str] = me) -> set[str]:
        response = client.get(f"/api/deals?{query}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] >= len(body["items"])
        return {d["id"] for d in body["items"]}

    every = {small["id"], big["id"], euro["id"], repeat["id"]}
    assert ids("") == every
    assert ids(f"pipeline_id={REPEAT}") == {repeat["id"]}
    assert ids(f"stage_id={stage('order', 'repeat-sales')}") == {repeat["id"]}
    assert ids("manager_id=me") == {small["id"]}
    assert ids("manager_id=me", other) == set()
    assert ids(f"manager_id={me_id}") == {small["id"]}
    assert ids(f"manager_id={other_id}") == set()
    assert client.get("/api/deals?manager_id=nobody", headers=me).status_code == 422
    assert ids(f"contact_id={maria}") == {small["id"], repeat["id"]}
    assert ids(f"company_id={company_id}") == {euro["id"]}
    assert ids("status=open") == {euro["id"], repeat["id"]}
    assert ids("status=won") == {small["id"]}
    assert ids("status=lost") == {big["id"]}
    assert client.get("/api/deals?status=maybe", headers=me).status_code == 422
    assert ids("q=PUMPS") == {small["id"], big["id"]}
    assert ids("created_from=2000-01-01") == every
    assert ids("created_to=2000-01-01") == set()
    assert ids("closed_from=2000-01-01") == {small["id"], big["id"]}
    assert ids("closed_to=2000-01-01") == set()
    # amounts compare within one currency only: 5000.50 RUB and 5000.50 EUR are not one figure
    assert ids("amount_min=5000.50&currency=RUB") == {big["id"]}
    assert ids("amount_min=5000.51&currency=RUB") == set()
    assert ids("amount_max=700&currency=RUB") == {small["id"], repeat["id"]}
    assert ids("amount_min=5000&amount_max=6000&currency=EUR") == {euro["id"]}
    no_currency = client.get("/api/deals?amount_min=5", headers=me)
    assert no_currency.status_code == 422
    assert client.get("/api/deals?amount_min=lots&currency=RUB", headers=me).status_code == 422

    page = client.get("/api/deals?limit=2&offset=0", headers=me).json()
    rest = client.get("/api/deals?limit=2&offset=2", headers=me).json()
    assert page["total"] == rest["total"] == 4
    assert {d["id"] for d in page["items"] + rest["items"]} == every
    assert page["items"][0]["total"]["amount"] in {"100.00", "5000.50", "700.00"}


def test_deal_filter_by_source_and_a_deal_from_a_conversation(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    _, operator = user(client, "operator")
    first = {
        "channel": "api",
        "external_id": "first",
        "from": {"name": "Ольга", "email": "olga@example.com"},
        "text": "Нужен насос",
        "source": {"utm_source": "yandex", "utm_campaign": "spring"},
    }
    again = {
        **first,
        "external_id": "again",
        "text": "И ещё один",
        "source": {"utm_source": "newsletter", "utm_campaign": "autumn"},
    }
    made = client.post("/api/inbound", json=first, headers=operator).json()
    later = client.post("/api/inbound", json=again, headers=operator).json()
    assert later["conversation_id"] == made["conversation_id"]

    deal = new_deal(client, operator, conversation_id=made["conversation_id"], amount="300")
    # the newest inquiry of the conversation, not the contact's first touch
    assert deal["source"]["utm_source"] == "newsletter"
    assert deal["source"]["utm_campaign"] == "autumn"
    assert deal["contact_id"] == made["contact_id"]
    assert deal["conversations"] == [made["conversation_id"]]
    plain = new_deal(client, operator, contact_id=made["contact_id"], amount="1")
    assert plain["source"].get("utm_source") == "yandex"  # the first touch

    def ids(query: str) -> set[str]:
        return {
            d["id"] for d in client.get(f"/api/deals?{query}", headers=operator).json()["items"]
        }

    assert ids("source=newsletter") == {deal["id"]}
    assert ids("source=autumn") == {deal["id"]}
    assert ids("source=yandex") == {plain["id"]}

    linked = client.post(
        f"/api/deals/{plain['id']}/conversations",
        json={"conversation_id": made["conversation_id"]},
        headers=operator,
    )
    assert linked.status_code == 200 and linked.json()["conversations"] == [made["conversation_id"]]
    ghost = client.post(
        f"/api/deals/{plain['id']}/conversations",
        json={"conversation_id": "00000000-0000-0000-0000-000000000001"},
        headers=operator,
    )
    assert ghost.status_code == 404

    history = client.get(f"/api/deals/{plain['id']}/history", headers=operator)
    assert history.status_code == 200, history.text
    items = history.json()["items"]
    kinds = [(i["source"], i["kind"]) for i in items]
    assert ("deal", "created") in kinds and ("deal", "conversation_linked") in kinds
    texts = [i["data"].get("body") for i in items if i["source"] == "communication"]
    assert "Нужен насос" in texts and "И ещё один" in texts  # linked: whenever it happened
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)


def test_stage_history_endpoint(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    manager_id, manager = user(client, "manager")
    deal = new_deal(client, manager, contact_id=contact(client), amount="1200", manager_id="me")
    other = new_deal(client, manager, contact_id=contact(client, "Пётр"), amount="10")
    url = f"/api/deals/{deal['id']}"
    client.post(f"{url}/stage", json={"stage_id": stage("confirmation")}, headers=manager)
    client.put(
        f"{url}/lines", json={"lines": [{"name": "A", "price": "1500", "vat": "none"}]},
        headers=manager,
    )  # fmt: skip
    client.post(f"{url}/stage", json={"stage_id": stage("mutual-intent")}, headers=manager)
    client.post(f"{url}/lost", json={"reason": "No answer"}, headers=manager)
    renamed = client.patch(
        f"/api/pipelines/{NEW}/stages/{stage('confirmation')}",
        json={"name": "Confirmed by client"},
        headers=manager,
    )
    assert renamed.status_code == 200

    rows = client.get(f"/api/stage-history?deal_id={deal['id']}", headers=manager).json()["items"]
    assert [r["kind"] for r in rows] == ["created", "moved", "moved", "lost"]
    assert [r["stage_id"] for r in rows] == [
        stage("mutual-intent"),
        stage("confirmation"),
        stage("mutual-intent"),
        stage("lost"),
    ]
    assert [r["from_stage_id"] for r in rows] == [
        None,
        stage("mutual-intent"),
        stage("confirmation"),
        stage("mutual-intent"),
    ]
    assert rows[1]["stage"] == "Confirmed by client"  # today's name, the same id
    assert rows[2]["from_stage"] == "Confirmed by client"
    assert [r["amount"] for r in rows] == [
        money("1200.00"),
        money("1200.00"),
        money("1500.00"),
        money("1500.00"),
    ]
    assert [r["probability"] for r in rows] == [10, 50, 10, 0]
    assert rows[3]["reason"] == "No answer"
    assert all(r["actor"] == f"user:{manager_id}" for r in rows)
    assert [r["left_at"] for r in rows[:3]] == [r["entered_at"] for r in rows[1:]]
    assert rows[3]["left_at"] is None and rows[3]["seconds_in_stage"] >= 0
    assert all(r["manager_id"] == manager_id for r in rows)

    def count(query: str) -> int:
        response = client.get(f"/api/stage-history?{query}", headers=manager)
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    assert count(f"pipeline_id={NEW}") == 5
    assert count(f"stage_id={stage('confirmation')}") == 1
    assert count(f"from_stage_id={stage('confirmation')}") == 1
    assert count("kind=created") == 2
    assert count("kind=lost") == 1
    assert count("manager_id=me") == 4
    assert count(f"actor=user:{manager_id}") == 5
    assert count("entered_from=2000-01-01") == 5
    assert count("entered_to=2000-01-01") == 0
    assert count("limit=2") == 2
    assert count("limit=2&offset=4") == 1
    assert client.get("/api/stage-history?kind=teleported", headers=manager).status_code == 422
    assert other["id"] in {
        r["deal_id"]
        for r in client.get("/api/stage-history?kind=created", headers=manager).json()["items"]
    }


def test_the_clients_timeline_page_names_deal_rows_in_russian(sqlite_runtime: Runtime) -> None:
    from tests.web.helpers import web_client

    runtime = sqlite_runtime
    runtime.app.seed_pipelines("test").value  # noqa: B018 - waits for the pipelines
    person = runtime.app.create_contact("test", "Мария").value
    deal_id = runtime.app.create_deal(
        "test", "Насосы для дачи", seeded_pipeline_id("new-clients"), contact_id=person, amount="10"
    ).value
    runtime.app.lose_deal(deal_id, "No budget", "test").value  # noqa: B018
    runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    client, _, _ = web_client(runtime, "auditor", locale="ru")
    page = client.get(f"/contacts/{person}/timeline")
    assert page.status_code == 200
    assert "Открыта сделка" in page.text and "Сделка проиграна" in page.text
    assert "Насосы для дачи" in page.text and f'href="/deals/{deal_id}"' in page.text
    assert 'data-kind="deal.lost"' in page.text and "deal.created<" not in page.text


# -- logged calls -------------------------------------------------------------------------------


def test_a_call_logged_for_a_deal_shows_in_its_history_and_tasks(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    deal = new_deal(client, ADMIN, contact_id=contact(client))
    refused = client.post(
        "/api/calls", json={"direction": "outbound", "outcome": "answered"}, headers=ADMIN
    )
    assert refused.status_code == 422 and "contact_id" in refused.text
    logged = client.post(
        "/api/calls",
        json={
            "direction": "outbound",
            "outcome": "answered",
            "duration": 245,
            "deal_id": deal["id"],
        },
        headers=ADMIN,
    )
    assert logged.status_code == 201, logged.text
    task = client.get(f"/api/tasks/{logged.json()['id']}", headers=ADMIN).json()
    assert (task["type"], task["status"], task["deal_id"]) == ("call", "done", deal["id"])
    assert task["title"] == "Outbound call, answered, 4:05"
    history = client.get(f"/api/deals/{deal['id']}/history", headers=ADMIN).json()
    entries = history if isinstance(history, list) else history["items"]
    assert any(e.get("title") == "Outbound call, answered, 4:05" for e in entries)


def test_a_nul_typed_in_any_search_finds_nothing_instead_of_failing(
    api: tuple[TestClient, Runtime],
) -> None:
    """PostgreSQL refuses a NUL in any text: a search box must not turn it into a 500."""
    client, _ = api
    for path in ("/api/contacts", "/api/companies", "/api/products", "/api/deals"):
        response = client.get(path, params={"q": "a\x00b"}, headers=ADMIN)
        assert response.status_code == 200, (path, response.text)


def test_a_company_shows_its_deals_and_its_won_money_per_currency(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    created = client.post("/api/companies", json={"name": "Ромашка"}, headers=ADMIN)
    company_id = created.json()["id"]
    won = new_deal(client, ADMIN, company_id=company_id, amount="1000", currency="RUB")
    assert client.post(f"/api/deals/{won['id']}/won", headers=ADMIN).status_code == 200
    new_deal(client, ADMIN, company_id=company_id, amount="250.50", currency="USD")
    body = client.get(f"/api/companies/{company_id}", headers=ADMIN).json()
    assert {d["total"]["currency"] for d in body["deals"]} == {"RUB", "USD"}
    # one line of 1,000 without VAT and without cost: revenue 1,000.00, profit 1,000.00
    assert body["money"] == [
        {
            "won_deals": 1,
            "revenue": money("1000.00"),
            "gross_profit": money("1000.00"),
            "open_deals": 0,
            "open_total": money("0.00"),
        },
        {
            "won_deals": 0,
            "revenue": money("0.00", "USD"),
            "gross_profit": money("0.00", "USD"),
            "open_deals": 1,
            "open_total": money("250.50", "USD"),
        },
    ]
