"""The demo seed: varied, bilingual, on every channel, and idempotent."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from threadline.domain.commands.passwords import verify_password
from threadline.domain.commands.pipelines import SEEDED_PIPELINES
from threadline.domain.model.identities import normalise_email, normalise_phone
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections import deals as deal_views
from threadline.projections.base import parse_ts, ts
from threadline.projections.deals import DealFilter, StageHistoryFilter
from threadline.projections.queries import ContactFilter, InboxFilter
from threadline.projections.tasks import open_tasks_of_deal
from threadline.services.demo import (
    CHANNELS,
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DemoSummary,
    plan_contacts,
    seed_demo,
)
from threadline.services.demo_documents import OWN, SUPPLIERS
from threadline.services.demo_sales import CATALOGUE, demo_deal_id
from threadline.services.demo_service import PLAN as SERVICE_PLAN
from threadline.services.demo_sources import FORM_LEADS
from threadline.services.runtime import Runtime

MONEY_FLOW_COMPANIES = {OWN.name, *(supplier.party.name for supplier in SUPPLIERS)}
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
LATIN = re.compile(r"[A-Za-z]")


def _caught_up(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=30)


def _all_contacts(runtime: Runtime) -> tuple[list[dict], int]:
    return runtime.queries.contacts(ContactFilter(), limit=1000)


def test_demo_fills_contacts_inbox_users_and_tasks(runtime: Runtime) -> None:
    summary = seed_demo(runtime, contacts=12)
    _caught_up(runtime)

    assert summary.users == len(DEMO_ACCOUNTS)
    assert summary.contacts == 12
    contacts, total = _all_contacts(runtime)
    assert total >= 12
    names = [contact["display_name"] for contact in contacts]
    assert any(CYRILLIC.search(name) for name in names)
    assert any(LATIN.search(name) and not CYRILLIC.search(name) for name in names)
    assert any(contact["tags"] for contact in contacts)
    assert any(contact["attributes"] for contact in contacts)
    assert any(contact["company_id"] for contact in contacts)

    conversations, _ = runtime.queries.inbox(InboxFilter(), limit=500)
    assert len({row["channel"] for row in conversations}) >= 4

    for account in DEMO_ACCOUNTS:
        user = runtime.queries.user_by_email(normalise_email(account.email))
        assert user is not None, account.email
        assert user["role"] == account.role
        assert user["locale"] == account.locale
        assert verify_password(runtime.credentials.password_hash(user["id"]), DEMO_PASSWORD)

    tasks = runtime.queries.tasks(status=None, limit=500)
    now = ts(datetime.now(UTC))
    assert any(task["status"] == "open" and task["due_at"] < now for task in tasks)
    assert any(task["status"] == "done" for task in tasks)


def test_second_run_appends_nothing(runtime: Runtime) -> None:
    seed_demo(runtime, contacts=12)
    _caught_up(runtime)
    before = runtime.app.recorder.max_notification_id()
    _, contacts_before = _all_contacts(runtime)

    again = seed_demo(runtime, contacts=12)

    assert runtime.app.recorder.max_notification_id() == before
    assert again == DemoSummary()
    _caught_up(runtime)
    assert _all_contacts(runtime)[1] == contacts_before


def test_a_bigger_demo_adds_only_the_new_clients(sqlite_runtime: Runtime) -> None:
    seed_demo(sqlite_runtime, contacts=7)
    more = seed_demo(sqlite_runtime, contacts=11)

    assert more.users == 0
    assert more.contacts == 4
    _caught_up(sqlite_runtime)
    # + each supplier's contact, the service demo's clients and the web-form leads
    extra = len(SUPPLIERS) + len(SERVICE_PLAN) + len(FORM_LEADS)
    assert _all_contacts(sqlite_runtime)[1] == 11 + extra
    # Client 10 works for a company client 6 brought in: the second run finds it by name.
    wanted = {plan.company[0] for plan in plan_contacts(11) if plan.company}
    wanted |= MONEY_FLOW_COMPANIES  # our company and the suppliers (services/demo_documents.py)
    companies = [row["name"] for row in sqlite_runtime.queries.companies()]
    assert sorted(companies) == sorted(wanted)


def test_existing_accounts_and_attributes_are_left_alone(sqlite_runtime: Runtime) -> None:
    app = sqlite_runtime.app
    app.create_user(DEMO_ACCOUNTS[0].email, "admin", "cli", password="someone-elses")
    summary = seed_demo(sqlite_runtime, contacts=2)

    assert summary.users == len(DEMO_ACCOUNTS) - 1
    _caught_up(sqlite_runtime)
    admin = sqlite_runtime.queries.user_by_email(normalise_email(DEMO_ACCOUNTS[0].email))
    assert admin is not None
    assert verify_password(sqlite_runtime.credentials.password_hash(admin["id"]), "someone-elses")


def test_default_demo_on_sqlite(sqlite_runtime: Runtime) -> None:
    calls: list[tuple[int, int]] = []
    summary = seed_demo(sqlite_runtime, progress=lambda done, total: calls.append((done, total)))
    _caught_up(sqlite_runtime)

    assert calls == [(done, 60) for done in range(1, 61)]
    assert summary.contacts == 60
    contacts, total = _all_contacts(sqlite_runtime)
    assert total >= 60
    russian = [c for c in contacts if CYRILLIC.search(c["display_name"])]
    assert 20 <= len(russian) <= 40
    conversations, _ = sqlite_runtime.queries.inbox(InboxFilter(), limit=500)
    # every demo channel, and calls (the channels report's inbound history)
    assert {row["channel"] for row in conversations} == {*CHANNELS, "voice"}
    assert {row["status"] for row in conversations} >= {"open", "pending", "resolved"}
    assert any(row["assignee_id"] for row in conversations)
    assert len(sqlite_runtime.queries.companies()) <= 8 + len(MONEY_FLOW_COMPANIES)
    tags = {tag for contact in contacts for tag in contact["tags"]}
    assert tags >= {"vip", "wholesale", "b2b", "newsletter", "complaint"}


def test_plan_is_the_same_every_time_and_identities_are_distinct() -> None:
    first, second = plan_contacts(200), plan_contacts(200)
    assert first == second

    emails = [plan.persona.email for plan in first]
    phones = [plan.persona.phone for plan in first]
    telegrams = [plan.persona.telegram for plan in first]
    for values in (emails, phones, telegrams):
        assert len(set(values)) == len(values)
    assert all(normalise_phone(phone) == phone for phone in phones)
    assert all(normalise_email(email) == email for email in emails)
    for plan in first:
        assert 1 <= sum(len(c.messages) for c in plan.conversations) <= 4
        assert 1 <= len(plan.conversations) <= 2


def test_demo_deals_fill_every_pipeline_with_months_of_history(runtime: Runtime) -> None:
    """The issue's acceptance: deals in all three pipelines, several managers, stage moves
    over past months, so the board, the deal page and the client card show real figures."""
    summary = seed_demo(runtime, contacts=12)
    _caught_up(runtime)
    db = runtime.views
    now = datetime.now(UTC)

    assert summary.products == len(CATALOGUE) == 16
    deals, total = deal_views.deals_page(db, DealFilter(), limit=1000)
    assert total == summary.deals >= 45
    by_pipeline = Counter((row.pipeline_id, row.status) for row in deals)
    for key, *_ in SEEDED_PIPELINES:
        pipeline_id = str(seeded_pipeline_id(key))
        assert by_pipeline[(pipeline_id, "open")] >= 5, key
        assert by_pipeline[(pipeline_id, "won")] + by_pipeline[(pipeline_id, "lost")] >= 2, key
        # The board shows every deal of the pipeline, with money in its columns.
        columns = deal_views.board(db, pipeline_id)
        in_pipeline = [row for row in deals if row.pipeline_id == pipeline_id]
        assert sum(column.count for column in columns) == len(in_pipeline)
        assert sum(column.totals_minor.get("RUB", 0) for column in columns) == sum(
            row.total_minor for row in in_pipeline if row.currency == "RUB"
        )
        assert sum(1 for column in columns if column.totals_minor.get("RUB", 0) > 0) >= 3
    statuses = Counter(row.status for row in deals)
    assert statuses["won"] >= 6 and statuses["lost"] >= 6 and statuses["open"] > statuses["won"]
    managers = Counter(row.manager_id for row in deals)
    assert len(managers) >= 3 and None not in managers

    # Stage history spans months, and some deal went back a stage and forward again.
    stays = deal_views.stage_history(db, StageHistoryFilter(), limit=5000, now=now)
    entered = [parse_ts(stay.entered_at) for stay in stays]
    assert min(entered) < now - timedelta(days=120)
    assert max(entered) <= now
    assert Counter(stay.kind for stay in stays)["moved"] >= len(deals)
    twice = [
        deal_id
        for deal_id in {stay.deal_id for stay in stays}
        if max(Counter(s.stage_id for s in stays if s.deal_id == deal_id).values()) >= 2
    ]
    assert len(twice) >= 3

    # Both VAT rates: the December 2025 deals at 20 %, deals closing after 2026-01-01 at 22 %.
    lines = [line for row in deals for line in deal_views.deal_lines(db, row.id)]
    rates = Counter(line.vat_rate for line in lines if line.vat == "standard")
    assert rates["20"] >= 1 and rates["22"] >= 10
    assert {line.vat for line in lines} >= {"standard", "reduced", "none", "zero"}
    assert any(line.discount not in ("0", "0.00") for line in lines)

    # A deal in dollars: N scanners at 340.00 USD (VAT included) less 5 %, plus 85.00 USD
    # shipping at 0 %: the total is N x 323.00 + 85.00 USD.
    dollar = [row for row in deals if row.currency == "USD"]
    assert dollar
    for row in dollar:
        scanners = deal_views.deal_lines(db, row.id)[0]
        quantity = int(scanners.quantity)
        assert scanners.price in ("340", "340.00") and scanners.discount in ("5", "5.00")
        assert row.total_minor == quantity * 32300 + 8500

    # Won deals made their contacts customers; the card shows the client's money.
    won_contacts = {row.contact_id for row in deals if row.status == "won" and row.contact_id}
    assert won_contacts
    for contact_id in won_contacts:
        card = runtime.queries.contact(contact_id)
        assert card is not None and card["lifecycle"] == "customer", contact_id
        money = deal_views.client_money(db, contact_id=contact_id)
        rub = [m for m in money if m.won_deals]
        assert rub and all(m.revenue_minor > m.profit_minor > 0 for m in rub)

    # Some deals came from a conversation: they carry its source and link it.
    linked = [row for row in deals if deal_views.linked_conversations(db, row.id)]
    assert len(linked) >= 10
    assert all(row.source.get("channel") for row in linked)
    # Most open deals have an open task.
    open_deals = [row for row in deals if row.status == "open"]
    with_task = [row for row in open_deals if open_tasks_of_deal(db, row.id) > 0]
    assert len(with_task) >= len(open_deals) * 0.6
    assert deal_views.deal(db, demo_deal_id(0)) is not None


def test_demo_deals_are_not_seeded_twice(sqlite_runtime: Runtime) -> None:
    seed_demo(sqlite_runtime, contacts=6)
    _caught_up(sqlite_runtime)
    before = sqlite_runtime.app.recorder.max_notification_id()
    _, deals = deal_views.deals_page(sqlite_runtime.views, DealFilter(), limit=1)

    again = seed_demo(sqlite_runtime, contacts=6)

    assert (again.deals, again.products) == (0, 0)
    assert sqlite_runtime.app.recorder.max_notification_id() == before
    _caught_up(sqlite_runtime)
    assert deal_views.deals_page(sqlite_runtime.views, DealFilter(), limit=1)[1] == deals > 0
