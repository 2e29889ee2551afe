"""Marketing spend entries: recorded, corrected, removed; checked; imported ids from content;
the view's proration of an entry over a period (worked out by hand)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

import pytest

from threadline.domain.commands.marketing_spend import SpendEntry, clean_spend, imported_spend_id
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.marketing_spend import MarketingSpend
from threadline.domain.model.money import Money
from threadline.projections.marketing_spend import SpendFilter, spend_entries, spend_entry
from threadline.services.runtime import Runtime

RUB = "RUB"


def entry(
    source: str = "yandex",
    campaign: str = "spring",
    first: date = date(2026, 3, 1),
    last: date = date(2026, 3, 31),
    amount: str = "3100.00",
    note: str = "",
) -> SpendEntry:
    return clean_spend(source, campaign, first, last, Money.of(amount, RUB), note)


def test_record_correct_remove(runtime: Runtime) -> None:
    app = runtime.app
    spend_id = app.record_marketing_spend(entry(note="  Яндекс   Директ "), "user:1").value
    stored = app.repository.get(spend_id)
    assert isinstance(stored, MarketingSpend)
    assert stored.note == "Яндекс Директ"  # whitespace folded
    # a retry with the same id records nothing more
    again = app.record_marketing_spend(entry(), "user:1", spend_id=spend_id)
    assert again.value == spend_id and again.notification_id is None

    changed = app.correct_marketing_spend(
        spend_id, entry(amount="3000.00", note="Яндекс Директ"), "u"
    )
    assert changed.value is True
    same = app.correct_marketing_spend(spend_id, entry(amount="3000.00", note="Яндекс Директ"), "u")
    assert same.value is False and same.notification_id is None

    runtime.wait_for_views(changed.notification_id, timeout=60)
    row = spend_entry(runtime.views, str(spend_id))
    assert row is not None
    assert (row.amount_minor, row.currency, row.note, row.days) == (
        300000,
        RUB,
        "Яндекс Директ",
        31,
    )

    removed = app.remove_marketing_spend(spend_id, "u")
    runtime.wait_for_views(removed.notification_id, timeout=60)
    with pytest.raises(Conflict):
        app.remove_marketing_spend(spend_id, "u")
    with pytest.raises(Conflict):
        app.correct_marketing_spend(spend_id, entry(), "u")
    assert spend_entries(runtime.views, SpendFilter()) == []  # a removed entry counts nowhere
    row = spend_entry(runtime.views, str(spend_id))
    assert row is not None and row.removed  # but stays readable
    with pytest.raises(NotFound):
        app.remove_marketing_spend(uuid4(), "u")


def test_checks() -> None:
    with pytest.raises(InvalidInput) as blank:
        entry(source="   ")
    assert blank.value.field == "source"
    with pytest.raises(InvalidInput) as backwards:
        entry(first=date(2026, 3, 2), last=date(2026, 3, 1))
    assert backwards.value.field == "to"
    for amount in ("0", "-5"):
        with pytest.raises(InvalidInput) as bad:
            entry(amount=amount)
        assert bad.value.field == "amount"
    with pytest.raises(InvalidInput):
        entry(amount="10.005")  # finer than a kopeck
    one_day = entry(first=date(2026, 3, 1), last=date(2026, 3, 1))
    assert one_day.days == 1 and one_day.amount.amount == Decimal("3100.00")


def test_imported_ids_come_from_the_content() -> None:
    a, b = entry(), entry()
    assert imported_spend_id(a) == imported_spend_id(b)  # the same row again: the same id
    assert imported_spend_id(a, 1) != imported_spend_id(a, 0)  # a repeat in one file: another
    assert imported_spend_id(entry(amount="3100.01")) != imported_spend_id(a)


def test_overlap_and_proration(runtime: Runtime) -> None:
    """An entry of 3,100.00 for March (31 days) is 100.00 a day:
    - 10 to 19 March: 10 days = 1,000.00;
    - 25 March to 10 April: 25..31 = 7 days = 700.00;
    - the whole of 2026: 3,100.00;
    - February: nothing (and the entry is not found for it).
    A 100.00 entry over 3 days for 1 day: 33.333... rounded to 33.33; for 2 days 66.666...
    rounded half up to 66.67."""
    app = runtime.app
    app.record_marketing_spend(entry(), "u")
    small = app.record_marketing_spend(
        entry(
            source="vk", campaign="", first=date(2026, 3, 1), last=date(2026, 3, 3), amount="100"
        ),
        "u",
    )
    runtime.wait_for_views(small.notification_id, timeout=60)
    march = spend_entries(runtime.views, SpendFilter(source="yandex"))[0]
    assert march.prorated_minor(date(2026, 3, 10), date(2026, 3, 19)) == (10, 100000)
    assert march.prorated_minor(date(2026, 3, 25), date(2026, 4, 10)) == (7, 70000)
    assert march.prorated_minor(date(2026, 1, 1), date(2026, 12, 31)) == (31, 310000)
    assert march.prorated_minor(None, None) == (31, 310000)
    assert march.prorated_minor(date(2026, 2, 1), date(2026, 2, 28)) == (0, 0)
    february = SpendFilter(first=date(2026, 2, 1), last=date(2026, 2, 28))
    assert spend_entries(runtime.views, february) == []
    vk = spend_entries(runtime.views, SpendFilter(source="vk"))[0]
    assert vk.prorated_minor(date(2026, 3, 3), None) == (1, 3333)
    assert vk.prorated_minor(None, date(2026, 3, 2)) == (2, 6667)
    # the filter: by campaign ("" is the source as a whole) and by overlapping dates
    assert [r.source for r in spend_entries(runtime.views, SpendFilter(utm_campaign=""))] == ["vk"]
    last_day = SpendFilter(first=date(2026, 3, 31), last=date(2026, 4, 30))
    assert [r.source for r in spend_entries(runtime.views, last_day)] == ["yandex"]
