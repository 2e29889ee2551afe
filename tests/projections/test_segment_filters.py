"""The segment language's newer keys, on SQLite and PostgreSQL, against a data set by hand.

Contacts (T0 = 2 March 2026 09:00 UTC):

- company K "ООО Ромашка" with contacts k1 and k2;
- a (utm yandex / spring), b (google / spring), c (yandex / autumn), d: no company.

Last contact (one inbound e-mail each): a 10 Jan 2026 10:00, k1 1 Feb 10:00, b 20 Feb 10:00,
c 1 Mar 10:00; k2 and d never wrote (NULL).

Won deals (one line each, no VAT): K (through k1) 7,000 in March with a cost of 6,500
(profit 500); a 2,000 in March; b 1,000 in March; c 4,000 in January 2026; c also has an open
March deal of 3,000 (no revenue).

- ABC by revenue, March: total 10,000; K 70 % (A), a cumulative 90 % (past 80: B), b
  cumulative 100 % (past 95: C). So A = {k1, k2}, B = {a}, C = {b, c, d}.
- ABC by profit, March: K 500, a 2,000, b 1,000; total 3,500: a 57.1 % (A), b cumulative
  85.7 % (B), K cumulative 100 % (C). So A = {a}, B = {b}, C = {k1, k2, c, d}.
- ABC by revenue over the 12 months before 15 March 2026 (the default period): K 7,000,
  c 4,000, a 2,000, b 1,000, total 14,000: K 50 % (A), c cumulative 78.6 % (A), a 92.9 %
  (B), b 100 % (C).

Balances in RUB (issued invoices less incoming payments): K invoice 1,000 paid 400 → 600;
a invoice 500 → 500; b invoice 300 paid 300 → 0; c paid 200 ahead, no invoice → −200;
d nothing → 0.
"""

# ruff: noqa: RUF001, RUF002

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind, payment_id_for
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.segments import build_contact_filter
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
RUB = "RUB"
MID_MARCH = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _render(runtime: Runtime):  # type: ignore[no-untyped-def]
    store = runtime.attachment_access.store

    def render(numbered: Numbered) -> RenderedFile:
        meta = store.put(f"doc {numbered.display_number}".encode(), "d.pdf", "application/pdf")
        return RenderedFile({**meta.public(), "filename": meta.filename}, "0" * 64)

    return render


def _invoice(
    runtime: Runtime, total: str, company: UUID | None = None, contact: UUID | None = None
) -> UUID:
    draft = DocumentDraft(
        kind=DocumentKind.INVOICE,
        series="СЧ",
        language="ru",
        issued_on=date(2026, 3, 2),
        due_on=date(2026, 3, 12),
        amount=Money(Decimal(total), RUB),
        vat=Money(Decimal(0), RUB),
        personal={"title": "Счёт"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        company_id=company,
        contact_id=contact,
    )
    value: UUID = runtime.app.issue_document(draft, _render(runtime), "user:test").value
    return value


def _pay(
    runtime: Runtime,
    amount: str,
    *,
    company: UUID | None = None,
    contact: UUID | None = None,
    invoice: UUID | None = None,
) -> None:
    allocations = (
        (
            Allocation(
                TargetKind.INVOICE, invoice, Money(Decimal(amount), RUB), AllocationHow.MANUAL
            ),
        )
        if invoice
        else ()
    )
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id_for(str(uuid4())),
            direction=Direction.IN,
            amount=Money(Decimal(amount), RUB),
            paid_on=date(2026, 3, 5),
            counterparty={"name": "Плательщик", "inn": "7707083893"},
            purpose="Оплата",
            company_id=company,
            contact_id=contact,
        ),
        allocations,
        (),
    )
    runtime.app.record_payments([entry], "user:test")


def build(runtime: Runtime) -> dict[str, str]:
    app = runtime.app
    app.seed_pipelines("test")
    k = app.create_company("test", "ООО Ромашка").value
    ids: dict[str, UUID] = {}
    for key, name, source in (
        ("k1", "Кира", None),
        ("k2", "Ким", None),
        ("a", "Анна", {"utm_source": "yandex", "utm_campaign": "spring"}),
        ("b", "Борис", {"utm_source": "google", "utm_campaign": "spring"}),
        ("c", "Вера", {"utm_source": "yandex", "utm_campaign": "autumn"}),
        ("d", "Глеб", None),
    ):
        ids[key] = app.create_contact(
            "test", name, identities=[("email", f"{key}@example.com")], source=source
        ).value
    for key in ("k1", "k2"):
        app.update_contact(ids[key], "test", company_id=k)
    for key, moment in (
        ("a", datetime(2026, 1, 10, 10, 0, tzinfo=UTC)),
        ("k1", datetime(2026, 2, 1, 10, 0, tzinfo=UTC)),
        ("b", datetime(2026, 2, 20, 10, 0, tzinfo=UTC)),
        ("c", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
    ):
        with recorded_at(moment):
            app.ingest(
                InboundMessage.create(
                    channel="email",
                    dedup_key=f"m-{key}",
                    identities=[("email", f"{key}@example.com")],
                    text="Здравствуйте",
                )
            )

    def won(when: datetime, title: str, price: str, cost: str = "0", **who: Any) -> None:
        with recorded_at(when):
            deal = app.create_deal(
                "test", title, NEW, lines=[{"name": title, "price": price, "cost": cost}], **who
            ).value
            app.win_deal(deal, "test")

    march = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    won(march, "K", "7000", "6500", contact_id=ids["k1"], company_id=k)
    won(march, "A", "2000", contact_id=ids["a"])
    won(march, "B", "1000", contact_id=ids["b"])
    won(datetime(2026, 1, 20, 12, 0, tzinfo=UTC), "C", "4000", contact_id=ids["c"])
    with recorded_at(march):
        app.create_deal("test", "C open", NEW, contact_id=ids["c"], amount="3000")

    k_invoice = _invoice(runtime, "1000.00", company=k)
    _pay(runtime, "400.00", company=k, invoice=k_invoice)
    _invoice(runtime, "500.00", contact=ids["a"])
    b_invoice = _invoice(runtime, "300.00", contact=ids["b"])
    _pay(runtime, "300.00", contact=ids["b"], invoice=b_invoice)
    _pay(runtime, "200.00", contact=ids["c"])
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {key: str(value) for key, value in ids.items()}


def names(runtime: Runtime, ids: dict[str, str], pairs: list[tuple[str, str]]) -> set[str]:
    flt = build_contact_filter(
        pairs, runtime.app.attribute_registry(), views=runtime.views, now=MID_MARCH
    )
    rows, total = runtime.queries.contacts(flt, 100, 0)
    by_id = {v: k for k, v in ids.items()}
    found = {by_id[str(r["id"])] for r in rows}
    assert total == len(found)
    return found


def test_every_new_key_by_hand(runtime: Runtime) -> None:
    ids = build(runtime)
    q = lambda *pairs: names(runtime, ids, list(pairs))  # noqa: E731

    # last contact: from inclusive, to exclusive; contacts who never wrote match neither
    assert q(("last_contact_from", "2026-02-01")) == {"k1", "b", "c"}
    assert q(("last_contact_to", "2026-02-20")) == {"a", "k1"}
    assert q(("last_contact_from", "2026-02-01"), ("last_contact_to", "2026-03-01")) == {
        "k1",
        "b",
    }
    assert q(("last_contact_from", "2026-02-20T10:00:00Z")) == {"b", "c"}
    # relative: `now` is 15 March 12:00, so -30d = 13 Feb 12:00 and -15d = 28 Feb 12:00
    assert q(("last_contact_to", "-30d")) == {"a", "k1"}
    assert q(("last_contact_from", "-15d")) == {"c"}

    # first touch
    assert q(("utm_source", "yandex")) == {"a", "c"}
    assert q(("utm_campaign", "spring")) == {"a", "b"}
    assert q(("utm_source", "yandex"), ("utm_campaign", "spring")) == {"a"}

    # ABC in March by revenue and by profit (see the module docstring)
    march = [("abc_from", "2026-03-01"), ("abc_to", "2026-04-01")]
    assert q(("abc_class", "A"), *march) == {"k1", "k2"}
    assert q(("abc_class", "b"), *march) == {"a"}
    assert q(("abc_class", "C"), *march) == {"b", "c", "d"}
    assert q(("abc_class", "A"), ("abc_by", "profit"), *march) == {"a"}
    assert q(("abc_class", "B"), ("abc_by", "profit"), *march) == {"b"}
    assert q(("abc_class", "C"), ("abc_by", "profit"), *march) == {"k1", "k2", "c", "d"}
    # the default: the 12 months before `now` (15 March 2026), which include c's January deal
    assert q(("abc_class", "A")) == {"k1", "k2", "c"}
    assert q(("abc_class", "B")) == {"a"}
    assert q(("abc_class", "C")) == {"b", "d"}

    # balances: K 600 (k1, k2), a 500, b 0, c -200, d 0
    assert q(("balance_gt", "100")) == {"k1", "k2", "a"}
    assert q(("balance_lt", "100")) == {"b", "c", "d"}
    assert q(("balance_lt", "0")) == {"c"}
    assert q(("balance_gt", "0"), ("balance_lt", "550")) == {"a"}
    assert q(("balance_gt", "500")) == {"k1", "k2"}  # strictly greater: a's 500 is not
    assert q(("balance_gt", "0"), ("balance_currency", "usd")) == set()
    assert q(("balance_lt", "1"), ("balance_currency", "USD")) == set(ids)

    # keys combine with each other and with the older ones
    assert q(("abc_class", "C"), *march, ("balance_lt", "0")) == {"c"}
    assert q(("utm_campaign", "spring"), ("last_contact_from", "2026-02-01")) == {"b"}


def test_saved_segments_nest_and_refuse_bad_values(runtime: Runtime) -> None:
    ids = build(runtime)
    app = runtime.app
    spring = app.save_segment("Spring", [("utm_campaign", "spring")], "user:test").value
    rich = app.save_segment(
        "Owe us", [("balance_gt", "100"), ("segment_id", str(spring))], "user:test"
    ).value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    # Spring = {a, b}; with yandex: {a}; "Owe us" = balance > 100 {k1, k2, a} and Spring = {a}
    assert names(runtime, ids, [("segment_id", str(spring))]) == {"a", "b"}
    assert names(runtime, ids, [("segment_id", str(spring)), ("utm_source", "yandex")]) == {"a"}
    assert names(runtime, ids, [("segment_id", str(rich))]) == {"a"}

    registry = app.attribute_registry()
    bad = [
        (("abc_class", "D"), "query.abc_class"),
        (("abc_by", "margin"), "query.abc_by"),
        (("balance_gt", "lots"), "query.balance_gt"),
        (("balance_currency", "rubles"), "query.balance_currency"),
        (("last_contact_from", "yesterday"), "query.last_contact_from"),
        (("segment_id", "not-an-id"), "query.segment_id"),
        (("segment_id", str(uuid4())), "query.segment_id"),
    ]
    for pair, field in bad:
        with pytest.raises(InvalidInput) as error:
            build_contact_filter([pair], registry, views=runtime.views)
        assert error.value.field == field, pair
    # keys that read the views are refused without them
    with pytest.raises(InvalidInput):
        build_contact_filter([("segment_id", str(spring))], registry)
    # a segment may not contain itself, even through another one
    with pytest.raises(InvalidInput, match="itself"):
        build_contact_filter(
            [("segment_id", str(rich))],
            registry,
            views=runtime.views,
            within=(str(spring),),
            replacing={str(spring): [("segment_id", str(rich))]},
        )
