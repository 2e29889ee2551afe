"""Sales plans in the log: one plan per manager and month, changed (not duplicated) when set
again, cleared and set again; refusals; what the events carry."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from threadline.domain.commands.application import Threadline
from threadline.domain.commands.sales_plans import clean_month
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.domain.model.sales_plan import SalesPlan, sales_plan_id


@pytest.fixture
def app() -> Iterator[Threadline]:
    application = Threadline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        yield application
    finally:
        application.close()


def rub(amount: str) -> Money:
    return Money.of(amount, "RUB")


def test_set_change_clear_and_set_again(app: Threadline) -> None:
    manager, _ = app.create_user("anna@example.com", "manager", "test", name="Анна").value
    plan_id = app.set_sales_plan(manager, "2026-03", rub("1000"), "user:boss").value
    assert plan_id == sales_plan_id(manager, "2026-03")  # uuid5 of manager and month
    # the same targets again record nothing; new ones change the same plan
    assert app.set_sales_plan(manager, "2026-03", rub("1000"), "user:boss").value == plan_id
    again = app.set_sales_plan(
        manager, "2026-03", rub("1500.5"), "user:boss", gross_profit=rub("300"), deals_won=5
    ).value
    assert again == plan_id
    _ = app.clear_sales_plan(manager, "2026-03", "user:boss").value
    with pytest.raises(NotFound):
        _ = app.clear_sales_plan(manager, "2026-03", "user:boss").value
    with pytest.raises(NotFound):
        _ = app.clear_sales_plan(manager, "2026-04", "user:boss").value
    # a cleared plan set again with the same targets is set again (one event)
    _ = app.set_sales_plan(manager, "2026-03", rub("1000"), "user:boss").value
    events = list(app.repository.event_store.get(plan_id))
    assert [type(e).__name__ for e in events] == [
        "SalesPlanSet",
        "SalesPlanChanged",
        "SalesPlanCleared",
        "SalesPlanChanged",
    ]
    changed = events[1]
    assert changed.revenue == {"amount": "1500.50", "currency": "RUB"}
    assert changed.gross_profit == {"amount": "300.00", "currency": "RUB"}
    assert changed.deals_won == 5 and changed.month == "2026-03"
    assert all(e.actor == "user:boss" and e.correlation_id for e in events)
    plan = app.repository.get(plan_id)
    assert isinstance(plan, SalesPlan) and not plan.cleared
    assert plan.revenue == {"amount": "1000.00", "currency": "RUB"} and plan.deals_won is None
    # another month is another plan
    assert app.set_sales_plan(manager, "2026-04", rub("1"), "t").value != plan_id


def test_refusals(app: Threadline) -> None:
    manager, _ = app.create_user("boris@example.com", "manager", "test").value

    def refused(field: str, **kw: object) -> None:
        args: dict[str, object] = {"month": "2026-03", "revenue": rub("10"), **kw}
        with pytest.raises(InvalidInput) as caught:
            _ = app.set_sales_plan(
                kw.pop("manager_id", manager),  # type: ignore[arg-type]
                args["month"],  # type: ignore[arg-type]
                args["revenue"],  # type: ignore[arg-type]
                "t",
                gross_profit=args.get("gross_profit"),  # type: ignore[arg-type]
                deals_won=args.get("deals_won"),  # type: ignore[arg-type]
            ).value
        assert caught.value.field == field

    refused("month", month="2026-13")
    refused("month", month="2026-3")
    refused("month", month="1999-12")
    refused("revenue", revenue=rub("-0.01"))
    refused("gross_profit", gross_profit=rub("-1"))
    refused("gross_profit", gross_profit=Money.of("5", "EUR"))  # another currency
    refused("deals_won", deals_won=-1)
    refused("manager_id", manager_id=uuid4())  # not a user
    assert clean_month(" 2026-03 ") == "2026-03"
