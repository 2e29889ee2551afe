"""The deals screens: the board per pipeline, moving a deal, the deal's page, the client's deals.

Money on the pages is checked against figures computed by hand in each test (Babel's
formatting of them, in English "RUB1,234.50" and in Russian "1 234,50 ₽").
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.deals import (
    StageHistoryFilter,
    deal,
    linked_conversations,
    stage_history,
)
from threadline.projections.tasks import tasks_of_deal
from threadline.services.runtime import Runtime
from threadline.services.web.live_feed import ChangeFeed

HX = {"HX-Request": "true"}
NEW_CLIENTS = str(seeded_pipeline_id("new-clients"))


def stage(key: str) -> str:
    return seeded_stage_id("new-clients", key)


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        rt.wait_for_views(rt.app.seed_pipelines("test").notification_id)
        yield rt
    finally:
        rt.close()


def settle(runtime: Runtime, committed: Any) -> Any:
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def new_contact(runtime: Runtime, name: str) -> UUID:
    contact: UUID = settle(runtime, runtime.app.create_contact(actor="test", name=name))
    return contact


def new_deal(runtime: Runtime, title: str, contact_id: UUID, **kw: Any) -> str:
    kw.setdefault("pipeline_id", seeded_pipeline_id("new-clients"))
    return str(
        settle(
            runtime, runtime.app.create_deal(actor="test", title=title, contact_id=contact_id, **kw)
        )
    )


def text_of(page: str) -> str:
    """The page's visible text, one space between words (Babel's no-break spaces kept)."""
    plain = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"[ \t\r\n]+", " ", plain)


def column(page: str, stage_id: str) -> str:
    found = re.search(rf'id="stage-{stage_id}".*?</section>', page, re.S)
    assert found, f"no column {stage_id}"
    return found.group(0)


def test_the_board_shows_columns_in_order_with_counts_and_sums_per_currency(
    runtime: Runtime,
) -> None:
    client, _csrf, _me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    new_deal(runtime, "Boxes", olga, amount="1000.00")
    new_deal(runtime, "Tape", olga, amount="2500.50")
    new_deal(runtime, "Import", olga, amount="300", currency="USD")
    new_deal(runtime, "Later", olga, amount="10", stage_id=stage("confirmation"))

    page = client.get("/deals")
    assert page.status_code == 200
    names = re.findall(
        r'<section class="board-column[^"]*" id="stage-[^"]+"[^>]*aria-label="([^"]+)"', page.text
    )
    assert names == [
        "Mutual intent",
        "Invoice or documents",
        "Confirmation",
        "Commercial proposal",
        "All operations done",
        "Paid",
        "Lost",
    ]
    first = text_of(column(page.text, stage("mutual-intent")))
    # 1000.00 + 2500.50 = 3500.50 roubles, and the dollars apart: never one sum.
    assert "Mutual intent 3" in first
    assert "RUB3,500.50" in first and "$300.00" in first
    assert "Boxes" in first and "Tape" in first and "Import" in first and "Olga Smirnova" in first
    third = text_of(column(page.text, stage("confirmation")))
    assert "Confirmation 1" in third and "RUB10.00" in third and "Boxes" not in third
    assert "New clients" in page.text and "Repeat sales" in page.text  # the pipeline switcher

    other = client.get(f"/deals?pipeline={seeded_pipeline_id('repeat-sales')}")
    assert other.status_code == 200 and "Boxes" not in other.text and "Offer" in other.text


def test_moving_with_a_cards_form_changes_the_stage_and_the_history(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    deal_id = new_deal(runtime, "Boxes", olga, amount="1000")

    moved = client.post(
        f"/deals/{deal_id}/move",
        data={"csrf_token": csrf, "stage_id": stage("confirmation"), "pipeline": NEW_CLIENTS},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert deal(runtime.views, deal_id).stage_id == stage("confirmation")  # type: ignore[union-attr]
    stays = stage_history(runtime.views, StageHistoryFilter(deal_id=deal_id))
    assert [(s.from_stage_id, s.stage_id) for s in stays] == [
        (None, stage("mutual-intent")),
        (stage("mutual-intent"), stage("confirmation")),
    ]
    board = client.get(moved.headers["location"])
    assert "Boxes" in column(board.text, stage("confirmation"))
    assert "Boxes" not in column(board.text, stage("mutual-intent"))

    page = text_of(client.get(f"/deals/{deal_id}").text)
    assert "Moved from Mutual intent to Confirmation" in page
    assert "still here" in page  # the current stay, with its time so far

    # HTMX (the drag and drop's form): the answer is the board, already showing the move.
    answer = client.post(
        "/deals/move",
        data={
            "deal_id": deal_id,
            "stage_id": stage("commercial-proposal"),
            "pipeline": NEW_CLIENTS,
        },
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert answer.status_code == 200
    assert 'id="deal-board"' in answer.text
    assert "Boxes" in column(answer.text, stage("commercial-proposal"))


def test_a_lost_stage_needs_a_reason_from_the_pipelines_list(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    deal_id = new_deal(runtime, "Boxes", olga, amount="1000")

    refused = client.post(
        "/deals/move",
        data={"deal_id": deal_id, "stage_id": stage("lost"), "pipeline": NEW_CLIENTS},
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert refused.status_code == 422
    assert "a lost deal needs a reason" in refused.text
    assert deal(runtime.views, deal_id).status == "open"  # type: ignore[union-attr]

    made_up = client.post(
        f"/deals/{deal_id}/lost", data={"csrf_token": csrf, "reason": "Bad weather"}
    )
    assert made_up.status_code == 422 and deal(runtime.views, deal_id).status == "open"  # type: ignore[union-attr]

    lost = client.post(
        "/deals/move",
        data={
            "deal_id": deal_id,
            "stage_id": stage("lost"),
            "pipeline": NEW_CLIENTS,
            "reason": "Too expensive",
        },
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert lost.status_code == 200
    row = deal(runtime.views, deal_id)
    assert row is not None and row.status == "lost" and row.lost_reason == "Too expensive"
    page = text_of(client.get(f"/deals/{deal_id}").text)
    assert "Lost in Lost" in page and "Too expensive" in page
    # The board's drag and drop dialog offers the pipeline's reasons.
    board = client.get("/deals").text
    assert 'id="deal-lost-dialog"' in board and "Chose a competitor" in board


def test_the_deal_page_shows_line_and_total_figures(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    deal_id = new_deal(
        runtime,
        "Office chairs",
        olga,
        expected_close="2026-01-15",  # VAT of 2026: the standard rate is 22 %
        lines=[
            # 2 x 1200.00 = 2400.00 - 10 % = 2160.00 with VAT; VAT = 2160 x 22 / 122 = 389.51;
            # net 1770.49; cost 2 x 500 = 1000.00; profit 770.49
            {
                "name": "Chair",
                "quantity": 2,
                "price": "1200",
                "cost": "500",
                "discount": "10",
                "vat": "standard",
                "vat_included": True,
            },
            # 3 x 1000.00 = 3000.00 net, VAT 10 % added = 300.00, total 3300.00;
            # cost 3 x 400 = 1200.00; profit 1800.00
            {
                "name": "Delivery",
                "quantity": 3,
                "price": "1000",
                "cost": "400",
                "vat": "reduced",
                "vat_included": False,
            },
        ],
    )
    page = client.get(f"/deals/{deal_id}")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="line".*?</tr>', page.text, re.S)
    chair, delivery = (text_of(r) for r in rows)
    for figure in (
        "22%",
        "RUB1,770.49",
        "RUB389.51",
        "RUB2,160.00",
        "RUB1,000.00",
        "RUB770.49",
    ):
        assert figure in chair, (figure, chair)
    for figure in (
        "10%",
        "RUB3,000.00",
        "RUB300.00",
        "RUB3,300.00",
        "RUB1,200.00",
        "RUB1,800.00",
    ):
        assert figure in delivery, (figure, delivery)
    totals = text_of(re.search(r'<tr class="lines-totals".*?</tr>', page.text, re.S).group(0))  # type: ignore[union-attr]
    # net 1770.49 + 3000.00 = 4770.49; VAT 389.51 + 300.00 = 689.51; total 2160.00 + 3300.00 =
    # 5460.00; cost 1000.00 + 1200.00 = 2200.00; profit 770.49 + 1800.00 = 2570.49
    for figure in ("RUB4,770.49", "RUB689.51", "RUB5,460.00", "RUB2,200.00", "RUB2,570.49"):
        assert figure in totals, (figure, totals)
    summary = text_of(re.search(r'id="deal-summary".*?</section>', page.text, re.S).group(0))  # type: ignore[union-attr]
    assert "Olga Smirnova" in summary and "Mutual intent" in summary and "10%" in summary

    # The line editor: one line instead of two; the figures follow.
    edited = client.post(
        f"/deals/{deal_id}/lines",
        data={
            "csrf_token": csrf,
            "rows": "2",
            "line-0-name": "Chair",
            "line-0-quantity": "1",
            "line-0-price": "610",
            "line-0-vat": "standard",
            "line-0-vat_included": "1",
            "line-1-name": "Delivery",
            "line-1-price": "1000",
            "line-1-remove": "1",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303
    row = deal(runtime.views, deal_id)
    # 610.00 with 22 % VAT included: VAT = 610 x 22 / 122 = 110.00, net 500.00
    assert row is not None and (row.total_minor, row.vat_minor, row.net_minor) == (
        61000,
        11000,
        50000,
    )
    again = text_of(client.get(f"/deals/{deal_id}").text)
    assert "Delivery" not in again and "RUB610.00" in again and "RUB110.00" in again

    bad = client.post(
        f"/deals/{deal_id}/lines",
        data={"csrf_token": csrf, "rows": "2", "line-0-name": "", "line-1-name": "Chair",
              "line-1-price": "-5"},
    )  # fmt: skip
    assert bad.status_code == 422 and "Row 2:" in bad.text and 'class="lines-editor"' in bad.text


def test_details_tasks_and_a_logged_call(runtime: Runtime) -> None:
    client, csrf, me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    deal_id = new_deal(runtime, "Boxes", olga, amount="1000")

    saved = client.post(
        f"/deals/{deal_id}/details",
        data={"csrf_token": csrf, "title": "Boxes, 500 pcs", "expected_close": "2026-03-01",
              "probability": "55", "manager_id": str(me)},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    row = deal(runtime.views, deal_id)
    assert row is not None
    assert (row.title, row.expected_close, row.probability, row.probability_manual) == (
        "Boxes, 500 pcs", "2026-03-01", 55, True)  # fmt: skip
    assert row.manager_id == str(me)
    back = client.post(
        f"/deals/{deal_id}/details",
        data={"csrf_token": csrf, "title": "Boxes, 500 pcs", "expected_close": "2026-03-01",
              "probability": "", "manager_id": str(me)},
        follow_redirects=False,
    )  # fmt: skip
    assert back.status_code == 303
    row = deal(runtime.views, deal_id)
    assert row is not None and (row.probability, row.probability_manual) == (10, False)

    task = client.post(
        f"/deals/{deal_id}/tasks",
        data={"csrf_token": csrf, "title": "Send the invoice", "type": "proposal",
              "due_at": "2030-05-01T09:00", "assignee_id": str(me)},
        follow_redirects=False,
    )  # fmt: skip
    assert task.status_code == 303
    call = client.post(
        f"/deals/{deal_id}/calls",
        data={"csrf_token": csrf, "direction": "outbound", "outcome": "answered",
              "minutes": "12", "note": "Agreed on the price"},
        follow_redirects=False,
    )  # fmt: skip
    assert call.status_code == 303
    tasks = {t.title: t for t in tasks_of_deal(runtime.views, deal_id)}
    assert tasks["Send the invoice"].status == "open"
    assert tasks["Send the invoice"].contact_id == str(olga)
    logged = tasks["Outbound call · answered · 12 min"]
    assert (logged.type, logged.status, logged.notes) == (
        "call",
        "done",
        "Agreed on the price",
    )
    page = text_of(client.get(f"/deals/{deal_id}").text)
    assert "Send the invoice" in page and "Outbound call · answered · 12 min" in page
    assert "Probability set to 55%" in page

    refused = client.post(
        f"/deals/{deal_id}/details",
        data={"csrf_token": csrf, "title": "x", "expected_close": "1st of May", "probability": ""},
    )
    assert refused.status_code == 422 and "expected a date as YYYY-MM-DD" in refused.text


def test_the_client_card_and_the_company_page_list_deals_with_won_money(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    company = settle(runtime, runtime.app.create_company(actor="test", name="Horns and Hooves"))
    olga = new_contact(runtime, "Olga Smirnova")
    won_id = new_deal(
        runtime, "Boxes", olga, company_id=company,
        lines=[{"name": "Box", "quantity": 10, "price": "150", "cost": "90", "vat": "none"}],
    )  # fmt: skip
    won = client.post(f"/deals/{won_id}/won", data={"csrf_token": csrf}, follow_redirects=False)
    assert won.status_code == 303
    new_deal(runtime, "Tape", olga, amount="49.90", currency="USD")

    card = text_of(client.get(f"/contacts/{olga}/card").text)
    assert "No deals yet" not in card
    assert "Boxes" in card and "Tape" in card and "Won" in card and "Paid" in card
    # won: 10 x 150.00 = 1500.00 without VAT, cost 10 x 90.00 = 900.00, profit 600.00;
    # the open dollars stay apart: 49.90
    assert "RUB1,500.00" in card and "RUB600.00" in card and "$49.90" in card

    page = text_of(client.get(f"/companies/{company}").text)
    assert "Boxes" in page and "RUB1,500.00" in page and "RUB600.00" in page
    assert "Tape" not in page  # that deal is the contact's alone


def test_a_new_deal_from_a_conversation_takes_the_inquirys_source(runtime: Runtime) -> None:
    client, csrf, me = web_client(runtime, "manager")
    received = runtime.app.ingest(
        InboundMessage.create(
            channel="telegram",
            dedup_key="deals-web-1",
            identities=[("telegram", "7700100")],
            sender_name="Ivan Petrov",
            text="How much for 500 boxes?",
            source={"utm_source": "yandex", "utm_campaign": "boxes-spring"},
        )
    )
    assert runtime.wait_for_views(received.notification_id, timeout=60)
    message = received.value
    form = client.get(
        f"/deals/new?conversation_id={message.conversation_id}&contact_id={message.contact_id}"
    )
    assert form.status_code == 200
    assert "Ivan Petrov" in form.text and "boxes-spring" in form.text
    created = client.post(
        "/deals",
        data={"csrf_token": csrf, "title": "500 boxes", "stage": f"{NEW_CLIENTS}/{stage('mutual-intent')}",
              "contact_id": str(message.contact_id), "conversation_id": str(message.conversation_id),
              "manager_id": str(me), "currency": "RUB", "amount": "75000"},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303, created.text
    deal_id = created.headers["location"].split("/deals/", 1)[1].split("?", 1)[0]
    row = deal(runtime.views, deal_id)
    assert row is not None and row.source_utm_campaign == "boxes-spring"
    assert row.total_minor == 7_500_000 and row.contact_id == str(message.contact_id)
    assert linked_conversations(runtime.views, deal_id) == [str(message.conversation_id)]

    nobody = client.post(
        "/deals",
        data={"csrf_token": csrf, "title": "Orphan", "stage": f"{NEW_CLIENTS}/{stage('mutual-intent')}",
              "client": "nobody-like-this@example.com"},
    )  # fmt: skip
    assert nobody.status_code == 422 and "no client matches" in nobody.text


def test_russian_locale_renders_the_board_and_the_deal(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "manager", locale="ru")
    olga = new_contact(runtime, "Ольга Смирнова")
    deal_id = new_deal(runtime, "Коробки", olga, amount="3500.50")
    board = text_of(client.get("/deals").text)
    assert "Сделки" in board and "Коробки" in board
    assert "3\u00a0500,50\u00a0₽" in board  # Babel's Russian: no-break spaces, a decimal comma
    assert "Move to" not in board and "All managers" not in board
    page = text_of(client.get(f"/deals/{deal_id}").text)
    assert "История этапов" in page and "Позиции" in page and "Валовая прибыль" in page
    assert "Stage history" not in page and "Gross profit" not in page


def test_an_auditor_sees_the_board_but_cannot_move(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "auditor")
    olga = new_contact(runtime, "Olga Smirnova")
    deal_id = new_deal(runtime, "Boxes", olga, amount="1000")
    board = client.get("/deals")
    assert board.status_code == 200 and 'draggable="true"' not in board.text
    refused = client.post(
        f"/deals/{deal_id}/move", data={"csrf_token": csrf, "stage_id": stage("confirmation")}
    )
    assert refused.status_code == 403
    assert deal(runtime.views, deal_id).stage_id == stage("mutual-intent")  # type: ignore[union-attr]


def test_a_move_names_the_deal_its_board_and_its_client_in_the_change_feed(
    runtime: Runtime,
) -> None:
    feed = ChangeFeed(runtime, position_ttl=0)
    olga = new_contact(runtime, "Olga Smirnova")
    deal_id = new_deal(runtime, "Boxes", olga, amount="1000")
    start = feed.changes(0)[0]
    settle(runtime, runtime.app.move_deal(UUID(deal_id), stage("confirmation"), "test"))
    position, keys = feed.changes(start)
    assert {f"deal:{deal_id}", f"deals:{NEW_CLIENTS}", f"contact:{olga}"} <= keys
    assert "*" not in keys
    assert f"deals:{seeded_pipeline_id('repeat-sales')}" not in keys

    renamed = runtime.app.change_stage(
        seeded_pipeline_id("new-clients"), stage("confirmation"), "test", name="Confirmed"
    )
    settle(runtime, renamed)
    _later, keys = feed.changes(position)
    assert f"deals:{NEW_CLIENTS}" in keys and "*" not in keys  # the board shows the new name


def test_the_more_link_opens_the_list_filtered_to_the_stage(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    for number in range(32):
        new_deal(runtime, f"Deal {number:02}", olga, amount="1")
    page = client.get("/deals").text
    first = column(page, stage("mutual-intent"))
    assert first.count("data-deal-card") == 30 and "2 more" in first
    link = html.unescape(re.search(r'class="column-more" href="([^"]+)"', first).group(1))  # type: ignore[union-attr]
    listed = client.get(link)
    assert listed.status_code == 200
    assert len(re.findall(r"<tr data-deal-id=", listed.text)) == 32


def test_the_line_editor_picks_a_product_from_the_catalogue(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    olga = new_contact(runtime, "Olga Smirnova")
    chair = settle(
        runtime,
        runtime.app.create_product(
            actor="test", name="Office chair", price="1220", cost="700", vat="standard"
        ),
    )
    settle(
        runtime,
        runtime.app.create_product(actor="test", name="Import lamp", price="30", currency="USD"),
    )
    deal_id = new_deal(runtime, "Chairs", olga, amount="1", expected_close="2026-02-01")
    editor = client.get(f"/deals/{deal_id}?edit=lines")
    assert editor.status_code == 200 and 'class="lines-editor"' in editor.text
    assert (
        "Office chair" in editor.text and "Import lamp" not in editor.text
    )  # dollars: not offered
    saved = client.post(
        f"/deals/{deal_id}/lines",
        data={"csrf_token": csrf, "rows": "1", "line-0-product_id": str(chair),
              "line-0-quantity": "2", "line-0-vat": ""},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    row = deal(runtime.views, deal_id)
    # 2 x 1220.00 = 2440.00 with 22 % VAT included: VAT = 2440 x 22 / 122 = 440.00, net 2000.00;
    # cost 2 x 700.00 = 1400.00; profit 2000.00 - 1400.00 = 600.00
    assert row is not None
    assert (row.total_minor, row.vat_minor, row.net_minor, row.cost_minor, row.profit_minor) == (
        244000, 44000, 200000, 140000, 60000)  # fmt: skip
    page = text_of(client.get(f"/deals/{deal_id}").text)
    assert "Office chair" in page and "RUB600.00" in page
