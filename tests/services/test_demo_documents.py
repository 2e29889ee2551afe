"""The money-flow demo: every document kind, contracts, a real statement import, supplier orders.

`make run`'s demo must show what issue 14 built: these tests seed the whole demo (as
`threadline serve --demo` does) and look at it through the views, the way the screens do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from threadline.domain.model.document import DocumentKind
from threadline.domain.model.requisites import (
    check_fits,
    inn_is_valid,
    ogrn_is_valid,
    parse_requisites,
    settlement_account_is_valid,
)
from threadline.projections import documents as document_views
from threadline.projections import payments as payment_views
from threadline.projections import supplier_orders as order_views
from threadline.projections.catalogue import products_page
from threadline.projections.companies import CompanyRow, company
from threadline.projections.deals import DealRow
from threadline.projections.documents import ContractFilter, DocumentFilter
from threadline.projections.payments import PaymentFilter
from threadline.projections.supplier_orders import SupplierOrderFilter
from threadline.services.demo import seed_demo
from threadline.services.demo_documents import (
    CLIENTS,
    OWN,
    SUPPLIERS,
    UNKNOWN_PAYER,
    DealRoles,
    company_inn,
    company_ogrn,
    near_miss_number,
    person_inn,
    plan_documents,
    settlement_account,
)
from threadline.services.documents.context import own_company
from threadline.services.runtime import Runtime

CONTACTS = 30


def _caught_up(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=30)


def test_demo_holds_every_document_kind_contracts_payments_and_orders(runtime: Runtime) -> None:
    summary = seed_demo(runtime, contacts=CONTACTS)
    _caught_up(runtime)
    views = runtime.views
    today = datetime.now(UTC).date()

    documents, total = document_views.documents_page(views, DocumentFilter(), limit=500)
    assert summary.documents == total
    assert {d.kind for d in documents} == {kind.value for kind in DocumentKind}
    assert all(d.file.get("stored") and d.file_sha256 for d in documents)
    assert {d.language for d in documents} == {"ru", "en"}
    store = runtime.attachment_access.store
    assert all(store.locate(d.file) is not None for d in documents)

    ours = own_company(views)
    assert ours is not None and ours.name == OWN.name
    assert ours.requisites[0]["inn"] == OWN.inn

    contracts, _ = document_views.contracts_page(views, ContractFilter(), limit=50)
    assert len(contracts) >= 2
    ending = document_views.contracts_ending_between(views, today, today + timedelta(days=30))
    assert [c.status for c in ending] == ["active"]
    invoices = [d for d in documents if d.kind == DocumentKind.INVOICE.value]
    states = {d.payment_state for d in invoices}
    assert {"paid", "partly_paid", "unpaid"} <= states
    overdue, _ = document_views.documents_page(
        views, DocumentFilter(kind="invoice", payment_state="overdue", today=today)
    )
    assert overdue
    assert any(d.sent_count for d in invoices)

    payments, _ = payment_views.payments_page(views, PaymentFilter(), limit=100)
    assert summary.payments == len(payments)
    assert {p.source_kind for p in payments} == {"statement"}
    incoming = [p for p in payments if p.direction == "in"]
    assert {p.state for p in incoming} == {"matched", "unmatched"}
    assert any(p.counterparty_name == UNKNOWN_PAYER.name for p in incoming)
    waiting = [p for p in payments if p.suggestion_count]
    assert len(waiting) == 1 and waiting[0].state == "unmatched"  # suggested, not applied
    (suggested,) = payment_views.suggestions_of_payment(views, waiting[0].id)
    near_miss = document_views.document(views, suggested.target_id)
    assert near_miss is not None and near_miss.payment_state == "unpaid"
    assert near_miss.total_minor == waiting[0].amount_minor

    orders, _ = order_views.supplier_orders_page(views, SupplierOrderFilter(), limit=50)
    assert {"sent", "confirmed"} <= {o.state for o in orders}
    confirmed = next(o for o in orders if o.state == "confirmed")
    (paid,) = payment_views.allocations_to(views, "supplier_order", confirmed.id)
    assert paid.direction == "out" and paid.amount_minor == confirmed.amount_minor
    order_documents = [d for d in documents if d.kind == DocumentKind.PURCHASE_ORDER.value]
    assert {d.display_number for d in order_documents} == {o.display_number for o in orders}

    supplied = {s.party.name for s in SUPPLIERS}
    products, _ = products_page(views, limit=200)
    assert any(p.supplier_id for p in products)
    suppliers = {p.supplier_id for p in products if p.supplier_id}
    names = {c.name for c in (_company(runtime, i) for i in suppliers)}
    assert names <= supplied


def _company(runtime: Runtime, company_id: str) -> CompanyRow:
    found = company(runtime.views, company_id)
    assert found is not None
    return found


def test_a_second_run_records_nothing(sqlite_runtime: Runtime) -> None:
    seed_demo(sqlite_runtime, contacts=CONTACTS)
    _caught_up(sqlite_runtime)
    before = sqlite_runtime.app.recorder.max_notification_id()

    again = seed_demo(sqlite_runtime, contacts=CONTACTS)

    assert sqlite_runtime.app.recorder.max_notification_id() == before
    assert (again.documents, again.payments) == (0, 0)


def test_the_demo_parties_have_requisites_that_pass_their_checks() -> None:
    parties = [OWN, *CLIENTS.values(), *(s.party for s in SUPPLIERS)]
    for party in parties:
        sets = parse_requisites(party.requisites())  # raises on a wrong check digit
        check_fits("company", sets)
    assert {party.inn for party in parties}.isdisjoint({UNKNOWN_PAYER.inn})
    assert len({party.inn for party in parties}) == len(parties)
    check_fits("sole_trader", parse_requisites([{"inn": UNKNOWN_PAYER.inn}]))


@given(st.text("0123456789", min_size=9, max_size=9))
def test_company_inn_gets_a_valid_check_digit(body: str) -> None:
    assert inn_is_valid(company_inn(body))


@given(st.text("0123456789", min_size=10, max_size=10))
def test_person_inn_gets_valid_check_digits(body: str) -> None:
    assert inn_is_valid(person_inn(body))


@given(st.text("0123456789", min_size=12, max_size=12))
def test_ogrn_gets_a_valid_check_digit(body: str) -> None:
    assert ogrn_is_valid(company_ogrn(body))


@given(
    st.text("0123456789", min_size=9, max_size=9), st.text("0123456789", min_size=19, max_size=19)
)
def test_settlement_account_gets_the_bank_key(bik: str, body: str) -> None:
    account = settlement_account(bik, body)
    assert len(account) == 20 and settlement_account_is_valid(bik, account)
    assert account[:8] + account[9:] == body


def _one_edit_apart(a: str, b: str) -> bool:
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


@given(st.integers(1, 10**6), st.sets(st.integers(1, 10**7), max_size=15))
def test_a_near_miss_is_one_typo_away_and_never_a_real_number(number: int, taken: set[int]) -> None:
    typo = near_miss_number(number, taken)
    assert typo != number and typo not in taken
    assert _one_edit_apart(str(number), str(typo))


def _deal(number: int, status: str, created: date, closed: date | None) -> DealRow:
    return DealRow(
        id=str(uuid4()),
        pipeline_id="p",
        stage_id="s",
        status=status,
        title=f"deal {number}",
        contact_id=None,
        company_id="c",
        manager_id=None,
        currency="RUB",
        net_minor=0,
        vat_minor=0,
        total_minor=0,
        cost_minor=0,
        profit_minor=0,
        probability=0,
        probability_manual=False,
        expected_close=None,
        source_channel=None,
        source_utm_source=None,
        source_utm_campaign=None,
        source_form=None,
        source={},
        lost_reason=None,
        stage_entered_at=created.isoformat(),
        created_at=f"{created.isoformat()}T09:00:00+00:00",
        updated_at=f"{(closed or created).isoformat()}T12:00:00+00:00",
        closed_at=f"{closed.isoformat()}T12:00:00+00:00" if closed else None,
        created_by="cli",
    )


@given(st.integers(0, 200), st.integers(0, 200))
def test_the_plan_covers_every_kind_and_dates_nothing_in_the_future(age: int, won_ago: int) -> None:
    today = date(2026, 12, 7)
    created = today - timedelta(days=age)
    closed = today - timedelta(days=min(age, won_ago))
    roles = DealRoles(
        won=[_deal(n, "won", created, closed) for n in range(3)],
        open=[_deal(n, "open", created, None) for n in range(3, 5)],
        foreign=_deal(5, "won", created, closed),
    )

    planned = plan_documents(roles, today)

    kinds = {item.kind for item in planned}
    assert kinds == set(DocumentKind) - {DocumentKind.PURCHASE_ORDER}
    assert all(item.issued_on <= today for item in planned)
    for item in planned:
        if item.kind is DocumentKind.INVOICE:
            assert item.due_on == item.issued_on + timedelta(days=5)
    contracts = [item for item in planned if item.contract_ends is not None]
    soon = [c for c in contracts if c.contract_ends and c.contract_ends <= today + timedelta(30)]
    assert len(contracts) == 2 and len(soon) == 1
    assert len({item.document_id for item in planned}) == len(planned)
