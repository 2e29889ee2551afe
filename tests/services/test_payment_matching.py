"""Matching payments: the numbers read from a purpose, and what each kind of payment pays.

The extractor is checked with generated purposes (any marker, spacing, series, dates, ИНН
and accounts around the number); the matcher against real views of issued invoices and a
supplier order, one outcome at a time.
"""

# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.services.payments_setup import (
    LUTIK_INN,
    ROMASHKA_INN,
    STRANGER_INN,
    SUPPLIER_INN,
    World,
    invoice,
    world,
)
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind
from threadline.services.payments.matching import (
    Matcher,
    OutcomeKind,
    PaymentFacts,
    document_numbers,
    is_typo,
)
from threadline.services.runtime import Runtime

MARKERS = ["счет", "счёт", "счету", "счёту", "сч.", "сч", "Счет", "СЧЕТУ", "инв", "invoice",
           "Invoice", "inv", "№", "N", "#"]  # fmt: skip
numbers = st.integers(min_value=1, max_value=999_999_999)
dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
separators = st.sampled_from([" ", "", " № ", "№", ". ", ": ", " N ", " #"])


def numbers_in(text: str) -> list[int]:
    return [ref.number for ref in document_numbers(text)]


@given(marker=st.sampled_from(MARKERS), separator=separators, number=numbers, day=dates)
def test_a_number_after_any_marker_is_found_and_its_date_is_not(
    marker: str, separator: str, number: int, day: date
) -> None:
    text = f"Оплата по {marker}{separator}{number} от {day:%d.%m.%Y} за товар"
    assert numbers_in(text) == [number]


@given(
    marker=st.sampled_from(MARKERS),
    series=st.sampled_from(["СЧ", "INV", "А", "сч"]),
    number=numbers,
)
def test_a_series_is_read_with_its_number(marker: str, series: str, number: int) -> None:
    (ref,) = document_numbers(f"Оплата {marker} {series}-{number}, НДС не облагается")
    assert (ref.number, ref.series, ref.text) == (
        number,
        series.upper(),
        f"{series.upper()}-{number}",
    )


@given(
    marker=st.sampled_from(MARKERS),
    day=dates,
    inn=st.from_regex(r"\A[0-9]{10}([0-9]{2})?\Z"),
    account=st.from_regex(r"\A[0-9]{20}\Z"),
    style=st.sampled_from(["%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%y"]),
)
def test_dates_inns_and_accounts_are_never_numbers(
    marker: str, day: date, inn: str, account: str, style: str
) -> None:
    text = (
        f"{marker} {day.strftime(style)}; {marker} {inn}; {marker} {account};"
        f" ИНН {inn} р/с {account} счет {account} от {day.strftime(style)}"
    )
    assert numbers_in(text) == []


@given(st.lists(numbers, min_size=1, max_size=5, unique=True), st.sampled_from([", ", " и ", ";"]))
def test_a_list_after_one_marker_is_read_whole(found: list[int], joint: str) -> None:
    text = "Оплата по счетам № " + joint.join(str(n) for n in found) + " от 01.12.2026"
    assert numbers_in(text) == found


@given(st.text(max_size=300), st.sampled_from(MARKERS))
def test_any_text_gives_only_short_numbers_written_in_it(text: str, marker: str) -> None:
    for purpose in (text, f"{marker} {text}", f"{text} {marker}{text}"):
        for ref in document_numbers(purpose):
            written = ref.text.rsplit("-", 1)[-1]
            assert written in purpose and len(written) <= 9 and int(written) == ref.number


def test_words_that_only_contain_a_marker_are_not_markers() -> None:
    assert numbers_in("расчет 15 шт, Пересчет 16, счетчик 17, Nokia 18, Finance 19") == []
    assert numbers_in("INN 7707083893, inv15.5 кг") == []


def test_order_numbers_have_their_own_markers() -> None:
    purpose = "Оплата по заказу ЗП-3, PO 4 и order #5; счет 6"
    assert [r.number for r in document_numbers(purpose, "order")] == [3, 4, 5]
    assert [r.number for r in document_numbers(purpose)] == [5, 6]  # "#5" names either


@given(numbers)
def test_typos_are_one_digit_off_or_two_swapped(number: int) -> None:
    text = str(number)
    assert not is_typo(number, number)
    assert is_typo(int(text + "1"), number)
    if len(text) > 1 and text[0] != text[1]:
        swapped = text[1] + text[0] + text[2:]
        if not swapped.startswith("0"):
            assert is_typo(int(swapped), number)
    changed = ("2" if text[-1] != "2" else "3") + text[1:] if len(text) > 1 else text
    if changed != text:
        assert is_typo(int(changed), number)
    assert not is_typo(number + 10**10, number)


def test_typo_examples() -> None:
    assert is_typo(71, 17) and is_typo(18, 17) and is_typo(170, 17) and is_typo(1, 17)
    assert not is_typo(99, 17) and not is_typo(1700, 17) and not is_typo(123, 312)
    assert is_typo(123, 321)  # the first and last digits swapped


# -- the matcher over real views -------------------------------------------------------------


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, World]]:
    folder = tmp_path_factory.mktemp("matching")
    runtime = make_runtime(
        f"sqlite:///{folder}/threadline.db", attachments_dir=str(folder / "files")
    )
    try:
        yield runtime, world(runtime)
    finally:
        runtime.close()


def rub(amount: str) -> Money:
    return Money(Decimal(amount), "RUB")


def incoming(amount: str, inn: str, purpose: str) -> PaymentFacts:
    return PaymentFacts(Direction.IN, rub(amount), inn, purpose)


def shares(outcome_allocations: tuple[object, ...]) -> list[tuple[str, UUID, Decimal]]:
    return [(a.target_kind.value, a.target_id, a.amount.amount) for a in outcome_allocations]  # type: ignore[attr-defined]


def test_payer_number_and_amount_agree_matched(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    outcome = Matcher(runtime.views).match(
        incoming("1000.00", ROMASHKA_INN, "Оплата по счету № СЧ-1 от 01.12.2026, без НДС")
    )
    assert outcome.kind == OutcomeKind.MATCHED and outcome.company_id == w.romashka
    assert shares(outcome.allocations) == [("invoice", w.sch1, Decimal("1000.00"))]
    assert outcome.allocations[0].how == AllocationHow.AUTO
    assert outcome.target_label == "СЧ-1" and outcome.suggestions == ()


def test_less_than_due_is_partial_and_says_what_is_left(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    outcome = Matcher(runtime.views).match(incoming("400.00", ROMASHKA_INN, "сч. 2 частично"))
    assert outcome.kind == OutcomeKind.PARTIAL
    assert shares(outcome.allocations) == [("invoice", w.sch2, Decimal("400.00"))]
    assert "2100.00 RUB is still due" in outcome.reason


def test_more_than_due_pays_the_invoice_and_leaves_the_rest(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    outcome = Matcher(runtime.views).match(incoming("1000.00", ROMASHKA_INN, "Счёт №3"))
    assert outcome.kind == OutcomeKind.OVERPAID
    assert shares(outcome.allocations) == [("invoice", w.sch3, Decimal("700.00"))]
    assert "300.00 RUB more than was due is left unallocated" in outcome.reason


def test_several_numbers_are_paid_in_the_order_written(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    outcome = Matcher(runtime.views).match(
        incoming("1700.00", ROMASHKA_INN, "оплата счетов № 3, 1")
    )
    assert outcome.kind == OutcomeKind.MATCHED
    assert shares(outcome.allocations) == [
        ("invoice", w.sch3, Decimal("700.00")),
        ("invoice", w.sch1, Decimal("1000.00")),
    ]


def test_a_mistyped_number_with_the_right_amount_is_only_suggested(
    views: tuple[Runtime, World],
) -> None:
    runtime, w = views
    outcome = Matcher(runtime.views).match(incoming("2500.00", ROMASHKA_INN, "Оплата сч 12"))
    assert outcome.kind == OutcomeKind.SUGGESTED and outcome.allocations == ()
    (suggestion,) = outcome.suggestions
    assert (suggestion.target_id, suggestion.amount) == (w.sch2, rub("2500.00"))
    assert "names invoice 12; СЧ-2 of this payer is for exactly this amount" in suggestion.reason
    # no number at all, the right amount: suggested too
    none = Matcher(runtime.views).match(incoming("700.00", ROMASHKA_INN, "за мебель"))
    assert none.kind == OutcomeKind.SUGGESTED
    assert [s.target_id for s in none.suggestions] == [w.sch3]
    assert "names no invoice" in none.reason


def test_a_wrong_number_or_a_wrong_amount_is_unmatched(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    matcher = Matcher(runtime.views)
    far = matcher.match(incoming("2500.00", ROMASHKA_INN, "Оплата сч 99"))
    assert far.kind == OutcomeKind.UNMATCHED and far.company_id == w.romashka
    assert "99" in far.reason
    odd = matcher.match(incoming("123.45", ROMASHKA_INN, "за мебель"))
    assert odd.kind == OutcomeKind.UNMATCHED and odd.suggestions == ()
    # another payer's invoice number is not this payer's
    other = matcher.match(incoming("300.00", ROMASHKA_INN, "Оплата сч 4"))
    assert other.kind == OutcomeKind.UNMATCHED and other.allocations == ()
    lutik = matcher.match(incoming("300.00", LUTIK_INN, "Оплата сч 4"))
    assert lutik.kind == OutcomeKind.MATCHED and lutik.company_id == w.lutik


def test_an_unknown_payer_is_unmatched_whatever_the_purpose(views: tuple[Runtime, World]) -> None:
    runtime, _ = views
    for inn in (STRANGER_INN, ""):
        outcome = Matcher(runtime.views).match(incoming("1000.00", inn, "Оплата по счету СЧ-1"))
        assert outcome.kind == OutcomeKind.UNMATCHED and outcome.company_id is None
        assert outcome.allocations == () and outcome.suggestions == ()


def test_another_currency_is_never_matched(views: tuple[Runtime, World]) -> None:
    runtime, _ = views
    facts = PaymentFacts(Direction.IN, Money(Decimal("1000.00"), "USD"), ROMASHKA_INN, "сч 1")
    outcome = Matcher(runtime.views).match(facts)
    assert outcome.kind == OutcomeKind.UNMATCHED and "in RUB, the payment in USD" in outcome.reason


def test_one_run_never_counts_an_invoice_twice(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    matcher = Matcher(runtime.views)
    first = matcher.match(incoming("600.00", ROMASHKA_INN, "сч 1"))
    second = matcher.match(incoming("600.00", ROMASHKA_INN, "сч 1"))
    third = matcher.match(incoming("600.00", ROMASHKA_INN, "сч 1"))
    assert (first.kind, second.kind) == (OutcomeKind.PARTIAL, OutcomeKind.OVERPAID)
    assert shares(second.allocations) == [("invoice", w.sch1, Decimal("400.00"))]
    assert third.kind == OutcomeKind.UNMATCHED and third.allocations == ()
    assert "already covered by this import" in third.reason


def test_outgoing_money_pays_the_supplier_order_never_an_invoice(
    views: tuple[Runtime, World],
) -> None:
    runtime, w = views
    named = Matcher(runtime.views).match(
        PaymentFacts(Direction.OUT, rub("1000.00"), SUPPLIER_INN, "Оплата по заказу ЗП-1")
    )
    assert named.kind == OutcomeKind.OUTGOING_LINKED and named.company_id == w.supplier
    assert shares(named.allocations) == [("supplier_order", w.order, Decimal("1000.00"))]
    assert "800.00 RUB still owed" in named.reason and named.target_label == "ЗП-1"
    # no number, but the only open order for exactly this amount
    exact = Matcher(runtime.views).match(
        PaymentFacts(Direction.OUT, rub("1800.00"), SUPPLIER_INN, "за стулья")
    )
    assert shares(exact.allocations) == [("supplier_order", w.order, Decimal("1800.00"))]
    # paying a client (not a supplier) back, even with an invoice's number: unmatched
    refund = Matcher(runtime.views).match(
        PaymentFacts(Direction.OUT, rub("1000.00"), ROMASHKA_INN, "возврат по счету СЧ-1")
    )
    assert refund.kind == OutcomeKind.UNMATCHED and refund.allocations == ()
    assert "not a supplier" in refund.reason
    other = Matcher(runtime.views).match(
        PaymentFacts(Direction.OUT, rub("55.00"), SUPPLIER_INN, "комиссия")
    )
    assert other.kind == OutcomeKind.UNMATCHED


def test_paid_and_voided_invoices_say_so(views: tuple[Runtime, World]) -> None:
    runtime, w = views
    extra = invoice(runtime, w.lutik, "50.00")
    runtime.wait_for_views(
        runtime.app.void_document(extra, "wrong", "user:test").notification_id, timeout=30
    )
    outcome = Matcher(runtime.views).match(incoming("50.00", LUTIK_INN, "сч 5"))
    assert outcome.kind == OutcomeKind.UNMATCHED and "СЧ-5" in outcome.reason
    assert "voided" in outcome.reason
    assert TargetKind.INVOICE.value == "invoice"
