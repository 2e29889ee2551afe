"""Pipelines and deals through the real store: what the aggregates refuse and what the commands do."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.deal import Deal
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.pipeline import Pipeline, Stage, seeded_pipeline_id, seeded_stage_id
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")


def stage(key: str) -> str:
    return seeded_stage_id("new-clients", key)


def client(runtime: Runtime, key: str = "4711") -> UUID:
    message = InboundMessage.create(
        channel="telegram", dedup_key=key, identities=[("telegram", key)], text="hello"
    )
    contact_id: UUID = runtime.app.ingest(message).value.contact_id
    return contact_id


def done(committed: Committed[Any]) -> Any:
    """Wait for a command's result (its events are in the log)."""
    return committed.value


def events_of(runtime: Runtime, deal_id: UUID) -> list[str]:
    return [type(e).__name__ for e in runtime.app.repository.event_store.get(deal_id)]


@pytest.fixture
def sales(runtime: Runtime) -> Runtime:
    assert runtime.app.seed_pipelines("test").value == 3
    return runtime


def test_shipped_pipelines_are_seeded_once_with_the_classic_sale(sales: Runtime) -> None:
    assert sales.app.seed_pipelines("test").value == 0
    pipeline = sales.app.repository.get(NEW)
    assert isinstance(pipeline, Pipeline)
    assert [s.name for s in pipeline.stages] == [
        "Mutual intent",
        "Invoice or documents",
        "Confirmation",
        "Commercial proposal",
        "All operations done",
        "Paid",
        "Lost",
    ]
    assert [s.meaning for s in pipeline.stages][-2:] == ["won", "lost"]
    names = {
        sales.app.repository.get(seeded_pipeline_id(k)).name
        for k in ("repeat-sales", "inbound-requests")
    }
    assert names == {"Repeat sales", "Inbound requests"}


def test_a_pipeline_needs_open_won_and_lost_stages_and_keeps_stage_ids(sales: Runtime) -> None:
    with pytest.raises(InvalidInput):
        sales.app.create_pipeline("test", "Bad", [{"name": "Only", "meaning": "open"}])
    pipeline_id = sales.app.create_pipeline(
        "test",
        "Projects",
        [
            {"name": "Brief", "probability": 20},
            {"name": "Done", "meaning": "won", "probability": 5},
            {"name": "Dropped", "meaning": "lost", "probability": 50},
        ],
        ["Budget"],
    ).value
    pipeline = sales.app.repository.get(pipeline_id)
    assert [(s.probability) for s in pipeline.stages] == [20, 100, 0]  # won 100, lost 0 always
    ids = [s.id for s in pipeline.stages]
    added = sales.app.add_stage(pipeline_id, "test", "Estimate", probability=40, position=1).value
    done(sales.app.change_stage(pipeline_id, ids[0], "test", name="Discovery"))
    done(sales.app.reorder_stages(pipeline_id, [added, ids[0], ids[1], ids[2]], "test"))
    pipeline = sales.app.repository.get(pipeline_id)
    assert [s.id for s in pipeline.stages] == [added, *ids]
    assert pipeline.stages[1] == Stage(ids[0], "Discovery", "open", 20, 0)
    with pytest.raises(InvalidInput):
        done(sales.app.reorder_stages(pipeline_id, [added, ids[0]], "test"))
    with pytest.raises(InvalidInput):
        pipeline.change_stage(Stage(ids[1], "Done", "open", 10, 0), "test", "c")


def test_a_move_is_decided_by_the_stage_meaning_and_winning_makes_a_customer(
    sales: Runtime,
) -> None:
    contact_id = client(sales)
    deal_id = sales.app.create_deal(
        "user:1", "Windows", NEW, contact_id=contact_id, amount="500"
    ).value
    assert sales.app.move_deal(deal_id, stage("confirmation"), "user:1").value == "moved"
    assert sales.app.move_deal(deal_id, stage("confirmation"), "user:1").value == "unchanged"
    assert sales.app.move_deal(deal_id, stage("paid"), "user:1").value == "won"
    assert events_of(sales, deal_id) == ["DealCreated", "DealStageChanged", "DealWon"]
    assert sales.app.repository.get(contact_id).lifecycle == "customer"
    with pytest.raises(Conflict):
        done(sales.app.win_deal(deal_id, "user:1"))
    # a won deal refuses new lines until it is reopened by a move to an open stage
    with pytest.raises(Conflict):
        done(sales.app.change_deal_lines(deal_id, [{"name": "x", "price": 1}], "user:1"))
    assert sales.app.move_deal(deal_id, stage("confirmation"), "user:1").value == "moved"
    deal = sales.app.repository.get(deal_id)
    assert isinstance(deal, Deal) and deal.status == "open" and deal.probability == 50


def test_a_lost_deal_needs_a_reason_from_the_pipeline_list(sales: Runtime) -> None:
    deal_id = sales.app.create_deal("user:1", "Doors", NEW, contact_id=client(sales)).value
    with pytest.raises(InvalidInput) as error:
        done(sales.app.move_deal(deal_id, stage("lost"), "user:1"))
    assert error.value.field == "reason"
    with pytest.raises(InvalidInput):
        done(sales.app.lose_deal(deal_id, "The moon was full", "user:1"))
    done(sales.app.lose_deal(deal_id, "Too expensive", "user:1"))
    deal = sales.app.repository.get(deal_id)
    assert (deal.status, deal.stage_id, deal.probability) == ("lost", stage("lost"), 0)


def test_vat_follows_the_expected_close_date_and_stays_with_the_line(sales: Runtime) -> None:
    contact_id = client(sales)
    line = {"name": "Service", "quantity": 1, "price": "12200.00", "vat": "standard"}
    before = sales.app.create_deal(
        "user:1", "Dec", NEW, contact_id=contact_id, lines=[line], expected_close="2025-12-20"
    ).value
    after = sales.app.create_deal(
        "user:1", "Jan", NEW, contact_id=contact_id, lines=[line], expected_close=date(2026, 1, 10)
    ).value
    # 12,200 x 20 / 120 = 2,033.33; 12,200 x 22 / 122 = 2,200.00
    assert sales.app.repository.get(before).figures.vat == Decimal("2033.33")
    assert sales.app.repository.get(after).figures.vat == Decimal("2200.00")
    assert sales.app.repository.get(after).lines[0].vat_rate == Decimal(22)


def test_a_product_line_takes_the_catalogue_price_in_the_deal_currency(sales: Runtime) -> None:
    product = sales.app.create_product(
        "user:1", "Installation", price="3000", cost="1800", unit="h", vat="none"
    ).value
    imported = sales.app.create_product("user:1", "Lock", price="40", currency="USD").value
    deal_id = sales.app.create_deal(
        "user:1",
        "Install",
        NEW,
        contact_id=client(sales),
        lines=[{"product_id": str(product), "quantity": 2, "discount": 5}],
    ).value
    deal = sales.app.repository.get(deal_id)
    # 2 x 3,000 = 6,000 - 5 % = 5,700 net (without VAT); cost 3,600; profit 2,100
    assert (deal.figures.net, deal.figures.cost, deal.figures.profit) == (
        Decimal("5700.00"),
        Decimal("3600.00"),
        Decimal("2100.00"),
    )
    assert deal.lines[0].name == "Installation" and deal.lines[0].unit == "h"
    with pytest.raises(InvalidInput) as error:
        done(sales.app.change_deal_lines(deal_id, [{"product_id": str(imported)}], "user:1"))
    assert "USD" in error.value.message
    changed = sales.app.change_deal_lines(
        deal_id,
        [{"product_id": str(imported), "price": "3700", "cost": "2600", "quantity": 1}],
        "user:1",
    )
    assert changed.value is None
    assert sales.app.repository.get(deal_id).figures.total == Decimal("3700.00")


def test_a_manual_probability_survives_moves_until_reset(sales: Runtime) -> None:
    deal_id = sales.app.create_deal("user:1", "Roof", NEW, contact_id=client(sales)).value
    assert sales.app.repository.get(deal_id).probability == 10
    done(sales.app.update_deal(deal_id, "user:1", probability=35))
    done(sales.app.move_deal(deal_id, stage("confirmation"), "user:1"))
    deal = sales.app.repository.get(deal_id)
    assert (deal.probability, deal.probability_manual) == (35, True)
    done(sales.app.update_deal(deal_id, "user:1", probability=None))
    deal = sales.app.repository.get(deal_id)
    assert (deal.probability, deal.probability_manual) == (50, False)


def test_a_deal_needs_a_client_and_takes_the_inquiry_source(sales: Runtime) -> None:
    with pytest.raises(InvalidInput):
        done(sales.app.create_deal("user:1", "Nobody", NEW))
    company = sales.app.create_company("user:1", "Romashka LLC").value
    deal_id = sales.app.create_deal(
        "user:1", "Supply", NEW, company_id=company, source={"utm_campaign": "spring"}
    ).value
    deal = sales.app.repository.get(deal_id)
    assert (deal.company_id, deal.contact_id, deal.source) == (
        company,
        None,
        {"utm_campaign": "spring"},
    )


def test_exchange_rates_are_recorded_once_per_day_and_corrected(sales: Runtime) -> None:
    day = date(2026, 12, 4)
    assert sales.app.record_exchange_rate("cli", "USD", day, "92,1234").value is True
    assert sales.app.record_exchange_rate("cli", "USD", day, "92.1234").value is False
    assert sales.app.record_exchange_rate("cli", "USD", day, "93").value is True
    with pytest.raises(InvalidInput):
        done(sales.app.record_exchange_rate("cli", "RUB", day, "1"))
