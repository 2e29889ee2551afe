"""The money flow feeds the trigger engine: contracts expiring, invoices and supplier payments
due or overdue and supplier orders not confirmed fire once at the right time on the business
calendar (a due day on a weekend or a holiday moves, reminders come when the office opens),
never before and never twice; a prolonged contract fires again, a paid invoice never; the
facts are the rows' real values; the shipped reminder rules make their tasks; and the money
flow's events (documents, contracts, payments, supplier orders) set rules off with their facts.
SQLite and PostgreSQL."""

# Russian company names on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.triggers.test_runner import firings, rule
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.money import Money
from threadline.domain.model.payment import Direction, TargetKind, payment_id_for
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.domain.model.rule import rule_id_for
from threadline.domain.model.supplier_order import SupplierOrderState
from threadline.projections import automation
from threadline.projections.supplier_orders import supplier_order
from threadline.projections.tasks import TaskRow, task
from threadline.services.runtime import Runtime
from threadline.triggers.business_hours import BusinessCalendar
from threadline.triggers.date_scans import DateScans
from threadline.triggers.defaults import MONEY_RULE_KEYS, SHIPPED_DISABLED, seed_defaults
from threadline.triggers.money_scans import Days
from threadline.triggers.rules import RuleError, validate_rule

ACTOR = "user:test"
RUB = "RUB"
NEW = seeded_pipeline_id("new-clients")
# Moscow office hours, closed on 8 March and on Monday 15 March 2027 (a made-up holiday).
OFFICE = {
    "tz": "Europe/Moscow",
    "week": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2027-03-08", "2027-03-15"],
}


def done(committed: Committed[Any]) -> Any:
    return committed.value


def handled(runtime: Runtime) -> None:
    """The runner has handled the whole log (its own firings' effects too) and the views
    show it all."""

    def at_head() -> bool:
        return runtime.triggers.position() >= (runtime.app.recorder.max_notification_id() or 0)

    wait_for(at_head, "the runner to reach the log's head")
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0)


def at(text: str) -> datetime:
    """A UTC moment written briefly: "2027-03-12 06:01"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def scan(runtime: Runtime, moment: str) -> None:
    handled(runtime)
    runtime.triggers.scan_dates(at(moment))
    handled(runtime)


def made_tasks(runtime: Runtime, rule_id: UUID) -> list[TaskRow]:
    """The tasks a rule's firings created, in firing order."""
    found = []
    for fired in firings(runtime, rule_id):
        for effect in fired.effects:
            if "task_id" in effect:
                row = task(runtime.views, effect["task_id"])
                assert row is not None
                found.append(row)
    return found


def keys(runtime: Runtime, rule_id: UUID) -> list[str]:
    return sorted(f.cause["key"] for f in firings(runtime, rule_id))


def rendering(runtime: Runtime):  # type: ignore[no-untyped-def]
    """A render that stores a small file naming the number, as the real one stores the PDF."""
    store = runtime.attachment_access.store

    def render(numbered: Numbered) -> RenderedFile:
        data = f"document {numbered.display_number}".encode()
        meta = store.put(data, f"{numbered.display_number}.pdf", "application/pdf")
        return RenderedFile({**meta.public(), "filename": meta.filename}, "0" * 64)

    return render


def issue(
    runtime: Runtime,
    total: str,
    due: date | None,
    *,
    kind: DocumentKind = DocumentKind.INVOICE,
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    deal_id: UUID | None = None,
    supplier_order_id: UUID | None = None,
) -> UUID:
    draft = DocumentDraft(
        kind=kind,
        series="СЧ" if kind == DocumentKind.INVOICE else "ЗП",
        language="ru",
        issued_on=date(2027, 3, 1),
        due_on=due,
        amount=Money(Decimal(total), RUB),
        vat=Money(Decimal(0), RUB),
        personal={"title": "Счёт на оплату"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        company_id=company_id,
        contact_id=contact_id,
        deal_id=deal_id,
        supplier_order_id=supplier_order_id,
    )
    committed = runtime.app.issue_document(draft, rendering(runtime), ACTOR)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    document_id: UUID = committed.value
    return document_id


def pay(
    runtime: Runtime,
    amount: str,
    target: tuple[TargetKind, UUID] | None = None,
    *,
    direction: Direction = Direction.IN,
    company_id: UUID | None = None,
) -> UUID:
    payment_id = payment_id_for(str(uuid4()))
    shares = () if target is None else (Allocation(*target, Money(Decimal(amount), RUB)),)
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id,
            direction=direction,
            amount=Money(Decimal(amount), RUB),
            paid_on=date(2027, 3, 1),
            counterparty={"name": "ООО Ромашка", "inn": "7707083893"},
            purpose="Оплата по счёту",
            company_id=company_id,
        ),
        shares,
        (),
    )
    committed = runtime.app.record_payments([entry], ACTOR)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return payment_id


def task_rule(runtime: Runtime, name: str, when: dict[str, Any], title: str) -> UUID:
    return rule(
        runtime,
        {"name": name, "when": when,
         "then": [{"create_task": {"title": title, "assignee": "unassigned"}}]},
    )  # fmt: skip


@pytest.fixture
def client(engine: Runtime) -> tuple[UUID, UUID]:
    """A client company and its contact."""
    company = engine.app.create_company(ACTOR, "ООО Ромашка").value
    contact = engine.app.create_contact(ACTOR, "Ivan Petrov", [("email", "ivan@example.com")]).value
    return company, contact


# -- the rule's day count -----------------------------------------------------------------------


def test_the_day_count_belongs_to_the_money_dates_and_is_checked() -> None:
    def when(**given: Any) -> dict[str, Any]:
        definition = {"name": "R", "when": given, "then": [{"add_tag": "x"}]}
        return dict(validate_rule(definition)["when"])

    assert when(event="contract.expiring") == {"event": "contract.expiring"}
    # As the web form sends them (text) and as the API does (JSON), one stored form.
    assert when(event="payment.due", days_before="3", business_days="1", calendar="office") == {
        "event": "payment.due", "days_before": 3, "business_days": True, "calendar": "office",
    }  # fmt: skip
    assert when(event="payment.overdue", days_after=0, business_days=False) == {
        "event": "payment.overdue", "days_after": 0,
    }  # fmt: skip
    refused = [
        ({"event": "deal.created", "days_before": 3}, "when.days_before",
         "only for contract.expiring, payment.due, supplier_payment.due, payment.overdue,"
         " supplier_payment.overdue, supplier_order.unconfirmed"),
        ({"event": "payment.due", "days_after": 3}, "when.days_after",
         "payment.due counts days_before"),
        ({"event": "payment.overdue", "days_before": 3}, "when.days_before",
         "payment.overdue counts days_after"),
        ({"event": "payment.due", "days_before": -1}, "when.days_before",
         "a whole number of days from 0 to 366"),
        ({"event": "payment.due", "days_before": "3.5"}, "when.days_before",
         "a whole number of days from 0 to 366"),
        ({"event": "payment.due", "days_before": True}, "when.days_before",
         "a whole number of days from 0 to 366"),
        ({"event": "payment.due", "business_days": "maybe"}, "when.business_days",
         "true or false"),
        ({"event": "payment.due", "calendar": 5}, "when.calendar", "text"),
    ]  # fmt: skip
    for given_when, path, message in refused:
        with pytest.raises(RuleError) as error:
            validate_rule({"name": "R", "when": given_when, "then": [{"add_tag": "x"}]})
        assert (error.value.path, error.value.message) == (path, message)


CALENDAR = BusinessCalendar.from_dict(OFFICE)


@given(
    day=st.dates(date(2026, 12, 1), date(2027, 6, 1)),
    count=st.integers(0, 15),
)
def test_working_days_are_counted_around_weekends_and_holidays(day: date, count: int) -> None:
    days = Days(CALENDAR, business=True)
    last = days.effective(day)
    # A term ending on a closed day ends on the next working day (ГК РФ ст. 193).
    assert days.working(last) and last >= day
    assert all(not days.working(day + timedelta(n)) for n in range((last - day).days))
    before, after = days.shift(last, -count), days.shift(last, count)
    for moved, first, end in ((before, before, last), (after, last, after)):
        assert days.working(moved)
        between = [first + timedelta(n) for n in range(1, (end - first).days + 1)]
        assert sum(days.working(d) for d in between) == count
    # Reminders come when the office opens (09:00 in Moscow), never at midnight.
    opening = days.opening(before)
    assert CALENDAR.is_open(opening)
    assert opening.astimezone(CALENDAR.zone).strftime("%H:%M") == "09:00"
    # Counted in calendar days the same date moves by exactly `count`.
    plain = Days(CALENDAR, business=False)
    assert plain.effective(day) == day and plain.shift(day, -count) == day - timedelta(count)


# -- invoices ----------------------------------------------------------------------------------


def test_payment_due_and_overdue_fire_once_on_the_business_calendar(
    engine: Runtime, client: tuple[UUID, UUID]
) -> None:
    company, contact = client
    done(engine.app.save_calendar("office", OFFICE, ACTOR))
    facts = (
        "{{ event.number }} {{ event.outstanding_text }} {{ event.currency }} of"
        " {{ event.amount_text }} to {{ company.name }}, due {{ event.due_on }}"
        " (counted from {{ event.date }}), {{ event.days_overdue }} days overdue"
    )
    office = {"business_days": True, "calendar": "office"}
    due = task_rule(engine, "Due", {"event": "payment.due", **office}, "Due: " + facts)
    overdue = task_rule(engine, "Overdue", {"event": "payment.overdue", **office}, facts)
    plain = task_rule(engine, "Overdue by the calendar", {"event": "payment.overdue"}, facts)
    # Due on Saturday 13 March; Monday 15 March is a holiday: it is due on Tuesday the 16th.
    saturday = date(2027, 3, 13)
    unpaid = issue(engine, "1000.00", saturday, company_id=company, contact_id=contact)
    paid = issue(engine, "500.00", saturday, company_id=company, contact_id=contact)
    partly = issue(engine, "800.00", saturday, company_id=company, contact_id=contact)
    pay(engine, "500.00", (TargetKind.INVOICE, paid), company_id=company)
    pay(engine, "300.00", (TargetKind.INVOICE, partly), company_id=company)

    # One working day before Tuesday (the Monday holiday does not count) is Friday the 12th,
    # at 09:00 in Moscow (06:00 UTC): not a minute before.
    scan(engine, "2027-03-11 12:00")
    scan(engine, "2027-03-12 05:59")
    assert firings(engine, due) == []
    scan(engine, "2027-03-12 06:01")
    scan(engine, "2027-03-12 07:00")  # a later scan: nothing twice
    assert keys(engine, due) == sorted(
        [f"payment.due:{unpaid}:2027-03-13", f"payment.due:{partly}:2027-03-13"]
    )
    assert sorted(t.title for t in made_tasks(engine, due)) == [
        "Due: СЧ-1 1000.00 RUB of 1000.00 to ООО Ромашка, due 2027-03-13"
        " (counted from 2027-03-16), 0 days overdue",
        "Due: СЧ-3 500.00 RUB of 800.00 to ООО Ромашка, due 2027-03-13"
        " (counted from 2027-03-16), 0 days overdue",
    ]
    assert {t.contact_id for t in made_tasks(engine, due)} == {str(contact)}

    # Counted in calendar days, Sunday is the day after and the office opens on Monday
    # 09:00 UTC (the default calendar): that rule fires, the working-day one does not.
    scan(engine, "2027-03-15 08:59")
    assert firings(engine, plain) == []
    scan(engine, "2027-03-15 09:01")
    assert len(firings(engine, plain)) == 2
    scan(engine, "2027-03-16 12:00")  # the due day itself (Tuesday): not overdue yet
    assert firings(engine, overdue) == []
    scan(engine, "2027-03-17 06:01")  # Wednesday 09:01 in Moscow
    assert keys(engine, overdue) == sorted(
        [f"payment.overdue:{unpaid}:2027-03-13", f"payment.overdue:{partly}:2027-03-13"]
    )
    titles = sorted(t.title for t in made_tasks(engine, overdue))
    assert titles[1] == (
        "СЧ-3 500.00 RUB of 800.00 to ООО Ромашка, due 2027-03-13 (counted from 2027-03-16),"
        " 4 days overdue"
    )
    # Later scans and a scanner that starts afresh (a restart) fire nothing again; the paid
    # invoice never fired.
    scan(engine, "2027-03-18 10:00")
    restarted = DateScans(
        engine.triggers.book, engine.views, engine.triggers.state, engine.triggers
    )
    restarted.scan(at("2027-03-19 10:00"))
    handled(engine)
    assert len(firings(engine, overdue)) == 2 and len(firings(engine, plain)) == 2
    assert len(firings(engine, due)) == 2
    assert not any(str(paid) in key for r in (due, overdue, plain) for key in keys(engine, r))

    # Paid in full after it fired: no later rule reminds of it; the unpaid one still does.
    pay(engine, "500.00", (TargetKind.INVOICE, partly), company_id=company)
    late = task_rule(engine, "Late", {"event": "payment.overdue", "days_after": 10}, facts)
    scan(engine, "2027-03-24 10:00")
    assert keys(engine, late) == [f"payment.overdue:{unpaid}:2027-03-13"]


# -- contracts ---------------------------------------------------------------------------------


def test_a_contract_expiring_fires_once_per_end_date_and_again_when_prolonged(
    engine: Runtime, client: tuple[UUID, UUID]
) -> None:
    company, contact = client
    expiring = task_rule(
        engine, "Expiring", {"event": "contract.expiring"},
        "{{ event.number }} ({{ event.title }}) with {{ company.name }} ends on"
        " {{ event.ends_on }}, in {{ event.days_left }} days; {{ event.amount_text }}",
    )  # fmt: skip
    contract_id = engine.app.register_contract(
        "Д-7/2027", date(2027, 1, 10), ACTOR, ends_on=date(2027, 6, 30),
        amount=Money(Decimal("120000"), RUB), company_id=company, contact_id=contact,
        title="Поставка мебели",
    ).value  # fmt: skip
    closed = engine.app.register_contract(
        "Д-8/2027", date(2027, 1, 10), ACTOR, ends_on=date(2027, 6, 30), company_id=company
    ).value
    done(engine.app.close_contract(closed, "terminated", ACTOR))
    # 30 days before Wednesday 30 June is Monday 31 May, at the default calendar's 09:00 UTC.
    scan(engine, "2027-05-30 12:00")
    scan(engine, "2027-05-31 08:59")
    assert firings(engine, expiring) == []
    scan(engine, "2027-05-31 09:01")
    scan(engine, "2027-06-15 09:01")
    [first] = made_tasks(engine, expiring)
    assert first.title == (
        "Д-7/2027 (Поставка мебели) with ООО Ромашка ends on 2027-06-30, in 30 days; 120000.00"
    )
    assert first.contact_id == str(contact)
    assert keys(engine, expiring) == [f"contract.expiring:{contract_id}:2027-06-30"]

    # Prolonged to the end of the year: reminded again 30 days before the new end.
    done(engine.app.change_contract(contract_id, ACTOR, changes={"ends_on": "2027-12-31"}))
    scan(engine, "2027-06-20 09:01")
    scan(engine, "2027-12-01 08:59")
    assert len(firings(engine, expiring)) == 1
    scan(engine, "2027-12-01 09:01")
    assert keys(engine, expiring) == sorted(
        [
            f"contract.expiring:{contract_id}:2027-06-30",
            f"contract.expiring:{contract_id}:2027-12-31",
        ]
    )
    # A "before" reminder that would come after the date is not sent (a rule made late).
    late = task_rule(engine, "Late", {"event": "contract.expiring", "days_before": 5}, "late")
    scan(engine, "2028-01-03 09:01")
    assert firings(engine, late) == []


# -- supplier orders ---------------------------------------------------------------------------


def supplier_order_of_won_deal(runtime: Runtime) -> tuple[UUID, UUID, UUID, UUID]:
    """A won deal of 3 chairs from one supplier: (order, supplier, manager, deal)."""
    done(runtime.app.seed_pipelines("test"))
    manager, _ = runtime.app.create_user("manager@example.com", "manager", ACTOR).value
    supplier = runtime.app.create_company(ACTOR, "ООО Поставщик", roles=["supplier"]).value
    buyer = runtime.app.create_company(ACTOR, "ООО Клиент").value
    chair = runtime.app.create_product(ACTOR, "Chair", "1000", cost="600", supplier_id=supplier)
    deal_id = runtime.app.create_deal(
        ACTOR, "Chairs", NEW, company_id=buyer, manager_id=manager,
        lines=[{"product_id": str(chair.value), "quantity": 3}],
    ).value  # fmt: skip
    done(runtime.app.move_deal(deal_id, seeded_stage_id("new-clients", "paid"), ACTOR))
    # Ordered on 1 March with 14 days to pay: due on Monday 15 March.
    made = runtime.app.create_supplier_orders(deal_id, ACTOR, date(2027, 3, 1), payment_days=14)
    (order_id,) = made.value.order_ids
    assert runtime.wait_for_views(made.notification_id, timeout=60)
    return order_id, supplier, manager, deal_id


def send_order(runtime: Runtime, order_id: UUID, supplier: UUID, moment: datetime) -> None:
    contact = runtime.app.create_contact(ACTOR, "Pyotr Supplier", [("email", "p@supplier.ru")])
    document_id = issue(
        runtime, "1800.00", None, kind=DocumentKind.PURCHASE_ORDER, company_id=supplier,
        supplier_order_id=order_id,
    )  # fmt: skip
    with recorded_at(moment):
        done(runtime.app.send_supplier_order(order_id, document_id, contact.value, "Order", ACTOR))
    handled(runtime)


def test_supplier_orders_unconfirmed_and_payables_fire_on_working_days(engine: Runtime) -> None:
    done(engine.app.save_calendar("office", OFFICE, ACTOR))
    office = {"business_days": True, "calendar": "office"}
    says = (
        "{{ event.number }} to {{ company.name }} ({{ deal.title }}): {{ event.payable_text }}"
        " {{ event.currency }} of {{ event.amount_text }} by {{ event.payment_due_on }}"
    )
    waiting = task_rule(
        engine, "Unconfirmed", {"event": "supplier_order.unconfirmed", **office},
        says + ", sent {{ event.sent_at }}, {{ event.days_waiting }} days",
    )  # fmt: skip
    waiting_plain = task_rule(engine, "Unconfirmed (days)", {"event": "supplier_order.unconfirmed"},
                              says)  # fmt: skip
    too_late = task_rule(
        engine, "Unconfirmed a week", {"event": "supplier_order.unconfirmed", "days_after": 7}, says
    )
    payable = task_rule(
        engine, "Pay", {"event": "supplier_payment.due", "days_before": 2, **office}, says
    )
    owed = task_rule(engine, "Owed", {"event": "supplier_payment.overdue", **office}, says)
    order_id, supplier, _, deal_id = supplier_order_of_won_deal(engine)
    # Sent on Friday 5 March at 17:00 in Moscow; Monday 8 March is a holiday.
    send_order(engine, order_id, supplier, at("2027-03-05 14:00"))
    row = supplier_order(engine.views, order_id)
    assert row is not None and row.state == "sent" and row.payment_due_on == "2027-03-15"

    # Two days by the calendar: Sunday 14:00, so when the office opens on Monday (UTC).
    scan(engine, "2027-03-08 08:59")
    assert firings(engine, waiting_plain) == []
    scan(engine, "2027-03-08 09:01")
    assert len(firings(engine, waiting_plain)) == 1
    # Two working days: Tuesday and Wednesday, so Wednesday at 17:00 in Moscow.
    scan(engine, "2027-03-09 14:01")
    scan(engine, "2027-03-10 13:59")
    assert firings(engine, waiting) == []
    scan(engine, "2027-03-10 14:01")
    [reminded] = made_tasks(engine, waiting)
    assert reminded.title == (
        "ЗП-1 to ООО Поставщик (Chairs): 1800.00 RUB of 1800.00 by 2027-03-15,"
        " sent 2027-03-05T14:00:00.000000Z, 5 days"
    )
    # Due on Monday 15 March, a holiday: the term ends on Tuesday the 16th. Two working days
    # before it is Thursday the 11th, 09:00 in Moscow.
    assert firings(engine, payable) == []
    scan(engine, "2027-03-11 05:59")
    assert firings(engine, payable) == []
    scan(engine, "2027-03-11 06:01")
    [to_pay] = made_tasks(engine, payable)
    assert to_pay.title == "ЗП-1 to ООО Поставщик (Chairs): 1800.00 RUB of 1800.00 by 2027-03-15"
    # Confirmed: a week after it was sent, nothing reminds of it any more.
    done(engine.app.change_supplier_order_state(order_id, SupplierOrderState.CONFIRMED, ACTOR))
    scan(engine, "2027-03-12 10:00")
    assert firings(engine, too_late) == [] and len(firings(engine, waiting)) == 1
    assert len(firings(engine, payable)) == 1

    # Partly paid, then overdue on Wednesday the 17th (the day after the term's last day).
    pay(engine, "1000.00", (TargetKind.SUPPLIER_ORDER, order_id), direction=Direction.OUT)
    scan(engine, "2027-03-16 12:00")
    assert firings(engine, owed) == []
    scan(engine, "2027-03-17 06:01")
    [late] = made_tasks(engine, owed)
    assert late.title == "ЗП-1 to ООО Поставщик (Chairs): 800.00 RUB of 1800.00 by 2027-03-15"
    assert keys(engine, owed) == [f"supplier_payment.overdue:{order_id}:2027-03-15"]
    # The order's deal is the trigger's (`deal.*`: the shipped rules give its manager the task).
    assert firings(engine, owed)[0].cause["deal_id"] == str(deal_id)


# -- the shipped reminders ----------------------------------------------------------------------


def test_the_shipped_reminders_give_the_deal_manager_tasks(
    engine: Runtime, client: tuple[UUID, UUID]
) -> None:
    company, contact = client
    seed_defaults(engine.app)
    ids = {key: rule_id_for(key) for key in MONEY_RULE_KEYS}
    # The letter to the client is the business's decision: shipped, but disabled.
    assert {"invoice-due-reminder"} == SHIPPED_DISABLED
    assert engine.app.repository.get(ids["invoice-due-reminder"]).enabled is False
    assert all(engine.app.repository.get(ids[k]).enabled for k in ids if k not in SHIPPED_DISABLED)
    order_id, supplier, manager, _ = supplier_order_of_won_deal(engine)
    deal_id = engine.app.create_deal(
        ACTOR, "Sofa", NEW, contact_id=contact, company_id=company, manager_id=manager
    ).value
    invoice = issue(
        engine, "2500.00", date(2027, 3, 12), company_id=company, contact_id=contact,
        deal_id=deal_id,
    )  # fmt: skip
    done(
        engine.app.register_contract(
            "Д-1", date(2027, 1, 1), ACTOR, ends_on=date(2027, 6, 30), deal_id=deal_id
        )
    )
    send_order(engine, order_id, supplier, at("2027-03-05 14:00"))  # a Friday, 14:00 UTC

    scan(engine, "2027-03-09 14:01")  # two working days after it was sent
    scan(engine, "2027-03-11 09:01")  # two working days before Monday the 15th
    scan(engine, "2027-03-15 09:01")  # the invoice was due on Friday the 12th
    scan(engine, "2027-05-31 09:01")  # 30 days before the contract ends
    scan(engine, "2027-06-01 09:01")  # nothing twice
    made = {key: made_tasks(engine, rule_id) for key, rule_id in ids.items()}
    assert {key: [(t.title, t.assignee_id) for t in tasks] for key, tasks in made.items()} == {
        "contract-expiring-task": [
            ("Contract Д-1 with ООО Ромашка ends on 2027-06-30: renew or close it", str(manager))
        ],
        "invoice-overdue-task": [
            ("Invoice СЧ-1 of ООО Ромашка is overdue: 2500.00 RUB unpaid since 2027-03-12",
             str(manager))
        ],
        "supplier-order-unconfirmed-task": [
            ("Supplier order ЗП-1 to ООО Поставщик is not confirmed yet", str(manager))
        ],
        "supplier-payment-due-task": [
            ("Pay 1800.00 RUB for supplier order ЗП-1 to ООО Поставщик by 2027-03-15",
             str(manager))
        ],
        "invoice-due-reminder": [],
    }  # fmt: skip
    assert made["invoice-overdue-task"][0].type == "call"
    assert made["invoice-overdue-task"][0].contact_id == str(contact)
    assert keys(engine, ids["invoice-overdue-task"]) == [f"payment.overdue:{invoice}:2027-03-12"]
    assert seed_defaults(engine.app) == 0, "seeding again changes nothing, nor enables it"


# -- the money flow's events --------------------------------------------------------------------


def test_the_money_flows_events_set_rules_off_with_their_facts(
    engine: Runtime, client: tuple[UUID, UUID]
) -> None:
    company, contact = client
    issued = rule(engine, {
        "name": "Issued", "when": "document.issued",
        "if": {"all": [{"field": "event.kind", "op": "eq", "value": "invoice"},
                       {"field": "event.amount", "op": "gt", "value": 900}]},
        "then": [{"create_task": {"title": "{{ event.display_number }} for {{ company.name }},"
                                  " due {{ event.due_on }}", "assignee": "unassigned"}}],
    })  # fmt: skip
    sent = task_rule(engine, "Sent", {"event": "document.sent"}, "Sent by {{ event.channel }}")
    registered = task_rule(
        engine, "Registered", {"event": "contract.registered"},
        "{{ event.number }} until {{ event.ends_on }} with {{ company.name }}",
    )  # fmt: skip
    received = task_rule(
        engine, "Received", {"event": "payment.received"},
        "{{ company.name }} paid: {{ event.purpose }}",
    )  # fmt: skip
    paid = rule(engine, {
        "name": "Paid", "when": "payment.allocated",
        "if": {"field": "event.paid_in_full", "op": "eq", "value": True},
        "then": [{"create_task": {"title": "{{ event.document_number }} is paid",
                                  "assignee": "unassigned"}}],
    })  # fmt: skip
    confirmed = task_rule(
        engine, "Confirmed", {"event": "supplier_order.confirmed"},
        "Confirmed, expected {{ event.expected_on }}",
    )  # fmt: skip

    small = issue(engine, "100.00", date(2027, 3, 12), company_id=company, contact_id=contact)
    big = issue(engine, "1000.00", date(2027, 3, 12), company_id=company, contact_id=contact)
    done(engine.app.send_document(big, contact, "email", "Your invoice", ACTOR))
    done(engine.app.register_contract(
        "Д-9", date(2027, 1, 1), ACTOR, ends_on=date(2027, 12, 31), company_id=company,
        contact_id=contact,
    ))  # fmt: skip
    pay(engine, "400.00", (TargetKind.INVOICE, big), company_id=company)  # partly
    pay(engine, "100.00", (TargetKind.INVOICE, small), company_id=company)  # in full
    pay(engine, "50.00", direction=Direction.OUT)  # money out is not "received"
    order_id, supplier, _, _ = supplier_order_of_won_deal(engine)
    send_order(engine, order_id, supplier, datetime.now(UTC))
    done(
        engine.app.change_supplier_order_state(
            order_id, SupplierOrderState.CONFIRMED, ACTOR, expected_on=date(2027, 3, 20)
        )
    )
    handled(engine)

    def titles(rule_id: UUID) -> list[str]:
        return sorted(t.title for t in made_tasks(engine, rule_id))

    assert titles(issued) == ["СЧ-2 for ООО Ромашка, due 2027-03-12"]  # the 100.00 one: no
    assert titles(sent) == ["Sent by email"] * 2  # the invoice and the purchase order
    assert {f.cause["names"][0] for f in firings(engine, sent)} == {"document.sent"}
    assert titles(registered) == ["Д-9 until 2027-12-31 with ООО Ромашка"]
    assert titles(received) == ["ООО Ромашка paid: Оплата по счёту"] * 2
    assert titles(paid) == ["СЧ-1 is paid"]
    assert titles(confirmed) == ["Confirmed, expected 2027-03-20"]
    [fired] = firings(engine, issued)
    assert fired.cause["names"] == ["document.issued"]
    assert [f.cause["names"] for f in firings(engine, received)] == [
        ["payment.received", "payment.recorded"]
    ] * 2
    assert [f.cause["names"] for f in firings(engine, confirmed)] == [
        ["supplier_order.confirmed", "supplier_order.state_changed"]
    ]


def test_the_rule_editor_sets_the_day_count(sqlite_url: str) -> None:
    runtime = make_runtime(sqlite_url)
    try:
        client, csrf, _ = web_client(runtime, "manager", "ru")
        page = client.get("/admin/rules/new")
        assert 'name="when_days_after"' in page.text and "Рабочие дни" in page.text
        saved = client.post("/admin/rules/new", data={
            "csrf_token": csrf, "name": "Overdue", "priority": "50",
            "when_event": "payment.overdue", "when_days_after": "3", "when_business_days": "1",
            "when_calendar": "office", "body": "then:\n  - add_tag: late\n", "enabled": "1",
        }, follow_redirects=False)  # fmt: skip
        assert saved.status_code == 303, saved.text
        runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0)
        [row] = [r for r in automation.rules(runtime.views) if r.name == "Overdue"]
        stored = runtime.app.repository.get(UUID(row.id)).definition
        assert stored["when"] == {
            "event": "payment.overdue", "days_after": 3, "business_days": True,
            "calendar": "office",
        }  # fmt: skip
        shown = client.get(f"/admin/rules/{row.id}").text
        assert 'name="when_days_after" value="3"' in shown
        assert 'name="when_business_days" value="1" checked' in shown
        wrong = client.post("/admin/rules/new", data={
            "csrf_token": csrf, "name": "Wrong", "priority": "50",
            "when_event": "payment.overdue", "when_days_before": "3",
            "body": "then:\n  - add_tag: late\n", "enabled": "1",
        })  # fmt: skip
        assert wrong.status_code == 422
        assert "when.days_before: payment.overdue counts days_after" in wrong.text
    finally:
        runtime.close()
