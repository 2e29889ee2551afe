"""Importing bank files end to end: statements written here, previewed, recorded, imported again.

Every statement is written with the 1C writer (`write_statement`) in Windows-1251, DOS
(cp866) or UTF-8, read back by the import, planned against real views (SQLite and
PostgreSQL) and recorded through the real commands. CSV files get the same checks.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from tests.services.payments_setup import (
    OUR_ACCOUNT,
    ROMASHKA_ACCOUNT,
    ROMASHKA_INN,
    STRANGER_INN,
    SUPPLIER_ACCOUNT,
    SUPPLIER_INN,
    World,
    settle,
    world,
)
from threadline.domain.commands.payments import PaymentEntry
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.money import Money
from threadline.projections.documents import document
from threadline.projections.payments import (
    PaymentFilter,
    allocations_to,
    payment,
    payments_page,
    suggestions_of_payment,
)
from threadline.projections.settlements import settlement
from threadline.projections.supplier_orders import supplier_order
from threadline.services.payments.client_bank_exchange import (
    AccountSpec,
    DocumentSpec,
    write_statement,
)
from threadline.services.payments.statement_import import (
    ImportFileError,
    apply_import,
    is_1c_statement,
    preview_import,
)
from threadline.services.runtime import Runtime

DAY = dt.date(2026, 12, 5)
ACCOUNT = AccountSpec(OUR_ACCOUNT, opening_balance=Decimal("10000.00"))


def spec(
    number: str,
    amount: str,
    inn: str,
    purpose: str,
    direction: str = "in",
    account: str = ROMASHKA_ACCOUNT,
    name: str = 'ООО "Ромашка"',
) -> DocumentSpec:
    return DocumentSpec(
        number=number,
        date=DAY,
        amount=Decimal(amount),
        direction=direction,  # type: ignore[arg-type]
        counterparty_name=name,
        counterparty_inn=inn,
        counterparty_account=account,
        counterparty_bik="044525225",
        purpose=purpose,
    )


# The cases, one line each: matched, partial, near miss, unknown payer, outgoing.
DOCUMENTS = [
    spec("101", "1000.00", ROMASHKA_INN, "Оплата по счету № СЧ-1 от 01.12.2026, без НДС"),
    spec("102", "400.00", ROMASHKA_INN, "Частичная оплата по сч. 2 от 01.12.2026"),
    spec("103", "700.00", ROMASHKA_INN, "Оплата по счету № 33 от 01.12.2026"),
    spec("104", "5000.00", STRANGER_INN, "Оплата по счету 1", name="ИП Незнакомец"),
    spec(
        "9",
        "1800.00",
        SUPPLIER_INN,
        "Оплата по заказу ЗП-1 за стулья",
        direction="out",
        account=SUPPLIER_ACCOUNT,
        name='ООО "Поставщик"',
    ),
]


def position(runtime: Runtime) -> int:
    return runtime.app.recorder.max_notification_id() or 0


def outcomes(plan_items: list[object]) -> list[tuple[int, str, str]]:
    return [(i.line, i.outcome, i.target_label) for i in plan_items]  # type: ignore[attr-defined]


def check_recorded_effects(runtime: Runtime, w: World) -> None:
    """What the five documents above must have done to the views."""
    sch1, sch2, sch3 = (document(runtime.views, i) for i in (w.sch1, w.sch2, w.sch3))
    assert sch1 is not None and sch1.payment_state == "paid"
    assert sch2 is not None and sch2.payment_state == "partly_paid"
    assert sch2.outstanding == Money(Decimal("2100.00"), "RUB")  # the rest stays due
    assert sch3 is not None and sch3.payment_state == "unpaid"  # the near miss is not applied
    order = supplier_order(runtime.views, w.order)
    assert order is not None and order.payable.amount == 0
    (paid_order,) = allocations_to(runtime.views, "supplier_order", w.order)
    assert paid_order.direction == "out" and paid_order.how == "auto"
    (waiting,) = payments_page(runtime.views, PaymentFilter(suggested=True))[0]
    (suggestion,) = suggestions_of_payment(runtime.views, waiting.id)
    assert suggestion.target_id == str(w.sch3)
    assert "names invoice 33; СЧ-3 of this payer" in suggestion.reason
    (stranger,) = payments_page(runtime.views, PaymentFilter(q=STRANGER_INN))[0]
    assert stranger.state == "unmatched" and stranger.company_id is None
    (figures,) = settlement(runtime.views, company_id=str(w.romashka), today=dt.date(2026, 12, 20))
    # invoiced 1000 + 2500 + 700; paid 1000 + 400 + the 700 waiting (known payer: an advance)
    assert figures.invoiced == Money(Decimal("4200.00"), "RUB")
    assert figures.paid == Money(Decimal("2100.00"), "RUB")
    assert figures.outstanding == Money(Decimal("2100.00"), "RUB")


@pytest.mark.parametrize(
    ("encoding", "newline", "version"),
    [("cp1251", "\r\n", "1.03"), ("cp866", "\r\n", "1.02"), ("utf-8", "\n", "1.03")],
)
def test_a_statement_is_previewed_recorded_and_imported_again_without_change(
    runtime: Runtime, encoding: str, newline: str, version: str
) -> None:
    w = world(runtime)
    data = write_statement(
        [ACCOUNT],
        DOCUMENTS,
        encoding=encoding,  # type: ignore[arg-type]
        newline=newline,  # type: ignore[arg-type]
        version=version,  # type: ignore[arg-type]
        split_purpose=version == "1.02",
    )
    assert is_1c_statement(data)
    before = position(runtime)
    plan = preview_import(runtime, data, "kl_to_1c.txt")
    assert position(runtime) == before  # a preview records nothing
    assert (plan.file_format, plan.encoding) == ("1c", encoding)
    assert [(i.outcome, i.target_label) for i in plan.items] == [
        ("matched", "СЧ-1"),
        ("partial", "СЧ-2"),
        ("suggested", "СЧ-3"),
        ("unmatched", ""),
        ("outgoing_linked", "ЗП-1"),
    ]
    assert plan.items[0].purpose == "Оплата по счету № СЧ-1 от 01.12.2026, без НДС"
    assert plan.items[1].reason == "part of СЧ-2; 2100.00 RUB is still due"
    assert plan.items[3].reason == f"no company has the payer's ИНН {STRANGER_INN}"
    assert plan.counts["total"] == 5 and plan.counts["already_recorded"] == 0
    text = data.decode(encoding)
    assert [i.line for i in plan.items] == [
        text[: text.index(f"СекцияДокумент=Платежное поручение{newline}Номер={n}")].count("\n") + 1
        for n in ("101", "102", "103", "104", "9")
    ]
    seen: list[tuple[int, int]] = []
    result = apply_import(
        runtime, data, "user:test", lambda done, total: seen.append((done, total))
    )
    assert (result.recorded, result.already_recorded) == (5, 0)
    assert (result.matched, result.partial, result.suggested, result.unmatched) == (1, 1, 1, 1)
    assert result.outgoing_linked == 1 and seen[0] == (0, 5) and seen[-1] == (5, 5)
    check_recorded_effects(runtime, w)
    recorded = payment(runtime.views, result.payment_ids[0])
    assert recorded is not None and recorded.source_kind == "statement"
    assert recorded.source_file == plan.file_sha256 and recorded.source_line == plan.items[0].line
    assert (recorded.bank_number, recorded.bank_date) == ("101", "2026-12-05")
    assert recorded.counterparty_inn == ROMASHKA_INN and recorded.company_id == str(w.romashka)

    # the same file again: everything already recorded, nothing appended, nothing changed
    after = position(runtime)
    again = preview_import(runtime, data)
    assert all(i.already_recorded and i.outcome == "already_recorded" for i in again.items)
    assert [i.payment_id for i in again.items] == [i.payment_id for i in plan.items]
    repeated = apply_import(runtime, data, "user:test")
    assert (repeated.recorded, repeated.already_recorded) == (0, 5)
    assert position(runtime) == after
    check_recorded_effects(runtime, w)


def test_an_overlapping_statement_records_only_what_is_new(runtime: Runtime) -> None:
    world(runtime)
    daily = write_statement([ACCOUNT], DOCUMENTS[:2], encoding="cp1251")
    apply_import(runtime, daily, "user:test")
    # the month's statement repeats the day's payments, reworded, and adds one
    reworded = [
        DocumentSpec(**{**d.__dict__, "purpose": d.purpose.upper(), "counterparty_name": "Ромашка"})
        for d in DOCUMENTS[:2]
    ]
    monthly = write_statement(
        [ACCOUNT], [*reworded, spec("105", "2100.00", ROMASHKA_INN, "Доплата по счету СЧ-2")]
    )
    plan = preview_import(runtime, monthly)
    assert [i.outcome for i in plan.items] == ["already_recorded", "already_recorded", "matched"]
    result = apply_import(runtime, monthly, "user:test")
    assert (result.recorded, result.already_recorded, result.matched) == (1, 2, 1)


def test_a_broken_statement_records_nothing_and_names_the_line(runtime: Runtime) -> None:
    world(runtime)
    broken = [*DOCUMENTS[:3], DocumentSpec(**{**DOCUMENTS[3].__dict__, "raw": {"Сумма": "5т00"}})]
    data = write_statement([ACCOUNT], broken, encoding="cp1251")
    bad_line = data.decode("cp1251").split("\r\n").index("Сумма=5т00") + 1
    before = position(runtime)
    for attempt in (preview_import, apply_import):
        with pytest.raises(ImportFileError) as caught:
            attempt(runtime, data, "user:test")
        assert caught.value.line == bad_line
        assert str(caught.value).startswith(f"line {bad_line}: ")
        assert "5т00" in str(caught.value)
    assert position(runtime) == before
    assert payments_page(runtime.views, PaymentFilter())[1] == 0
    # a statement whose balance does not add up is refused too, naming its section
    text = write_statement([ACCOUNT], DOCUMENTS).decode("cp1251")
    wrong = text.replace("КонечныйОстаток=", "КонечныйОстаток=1", 1).encode("cp1251")
    with pytest.raises(ImportFileError, match=r"line \d+: .*≠"):
        apply_import(runtime, wrong, "user:test")
    cut = text[: text.index("КонецФайла")].encode("cp1251")
    with pytest.raises(ImportFileError, match="line"):
        apply_import(runtime, cut, "user:test")
    assert position(runtime) == before


def test_payments_of_other_accounts_are_skipped_with_a_warning(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    world(runtime)
    other = DocumentSpec(
        **{
            **DOCUMENTS[0].__dict__,
            "number": "777",
            "raw": {"ПолучательСчет": "40702810000000009999", "ПолучательРасчСчет": ""},
        }
    )
    text = write_statement([ACCOUNT], [DOCUMENTS[1], other]).decode("cp1251")
    # the bank's own figures count only what moved on our account
    text = text.replace("ВсегоПоступило=1400.00", "ВсегоПоступило=400.00")
    text = text.replace("КонечныйОстаток=11400.00", "КонечныйОстаток=10400.00")
    plan = preview_import(runtime, text.encode("cp1251"))
    assert len(plan.items) == 1 and plan.items[0].outcome == "partial"
    assert any("777" in w and "skipped" in w for w in plan.warnings)


def quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def csv_bytes(encoding: str, delimiter: str, newline: str, bad: bool = False) -> bytes:
    rows = [
        ["Дата", "Сумма", "Направление", "Контрагент", "ИНН", "Счет", "Номер", "Назначение платежа"],
        ["05.12.2026", "1 000,00", "поступление", 'ООО "Ромашка"', ROMASHKA_INN, ROMASHKA_ACCOUNT,
         "101", "Оплата по счету № СЧ-1 от 01.12.2026"],
        ["05.12.2026", "400,00", "поступление", 'ООО "Ромашка"', ROMASHKA_INN, ROMASHKA_ACCOUNT,
         "102", "Частичная оплата сч. 2"],
        ["05.12.2026", "700,00", "поступление", 'ООО "Ромашка"', ROMASHKA_INN, ROMASHKA_ACCOUNT,
         "103", "Оплата по счету 33"],
        ["05.12.2026", "abc" if bad else "5000,00", "поступление", "ИП Незнакомец", STRANGER_INN,
         "", "104", "Оплата по счету 1"],
        ["06.12.2026", "1800,00", "списание", 'ООО "Поставщик"', SUPPLIER_INN, SUPPLIER_ACCOUNT,
         "9", "Оплата по заказу ЗП-1"],
    ]  # fmt: skip
    if delimiter != ";":
        rows = [[c.replace(",", ".") if c[:1].isdigit() else c for c in row] for row in rows]
    lines = [delimiter.join(quoted(c) for c in row) for row in rows]
    return (newline.join(lines) + newline).encode(encoding)


@pytest.mark.parametrize(
    ("encoding", "delimiter", "newline"),
    [
        ("cp1251", ";", "\r\n"),
        ("cp866", ";", "\n"),
        ("utf-8", ",", "\n"),
        ("utf-8-sig", "\t", "\r\n"),
    ],
)
def test_a_csv_file_is_imported_the_same_way(
    runtime: Runtime, encoding: str, delimiter: str, newline: str
) -> None:
    w = world(runtime)
    data = csv_bytes(encoding, delimiter, newline)
    assert not is_1c_statement(data)
    before = position(runtime)
    plan = preview_import(runtime, data, "payments.csv")
    assert position(runtime) == before
    assert plan.file_format == "csv"
    assert [(i.line, i.outcome, i.target_label) for i in plan.items] == [
        (2, "matched", "СЧ-1"),
        (3, "partial", "СЧ-2"),
        (4, "suggested", "СЧ-3"),
        (5, "unmatched", ""),
        (6, "outgoing_linked", "ЗП-1"),
    ]
    result = apply_import(runtime, data, "user:test")
    assert result.recorded == 5
    check_recorded_effects(runtime, w)
    recorded = payment(runtime.views, result.payment_ids[0])
    assert recorded is not None and (recorded.source_kind, recorded.source_line) == ("csv", 2)
    after = position(runtime)
    repeated = apply_import(runtime, data, "user:test")
    assert (repeated.recorded, repeated.already_recorded) == (0, 5)
    assert position(runtime) == after


def test_a_broken_csv_records_nothing_and_names_the_line(runtime: Runtime) -> None:
    world(runtime)
    before = position(runtime)
    with pytest.raises(ImportFileError) as caught:
        apply_import(runtime, csv_bytes("cp1251", ";", "\r\n", bad=True), "user:test")
    assert caught.value.line == 5 and str(caught.value).startswith("line 5: ")
    assert "abc" in str(caught.value)
    with pytest.raises(ImportFileError, match="line 1: "):
        preview_import(runtime, "Кто;Что\r\nя;это\r\n".encode("cp1251"))
    with pytest.raises(ImportFileError, match="empty"):
        preview_import(runtime, b"  \r\n")
    assert position(runtime) == before


def test_two_payments_of_one_file_do_not_both_pay_an_invoice_in_full(runtime: Runtime) -> None:
    w = world(runtime)
    twice = [
        spec("201", "600.00", ROMASHKA_INN, "Оплата сч 1"),
        spec("202", "600.00", ROMASHKA_INN, "Оплата сч 1"),
    ]
    result = apply_import(runtime, write_statement([ACCOUNT], twice), "user:test")
    assert (result.partial, result.overpaid) == (1, 1)
    row = document(runtime.views, w.sch1)
    assert row is not None and row.paid == Money(Decimal("1000.00"), "RUB")
    rests = sorted(p.unallocated.amount for p in payments_page(runtime.views, PaymentFilter())[0])
    assert rests == [Decimal("0.00"), Decimal("200.00")]


def test_identical_payments_in_one_file_stay_two(sqlite_runtime: Runtime) -> None:
    world(sqlite_runtime)
    same = spec("", "10.00", STRANGER_INN, "взнос")
    data = write_statement([ACCOUNT], [same, same])
    plan = preview_import(sqlite_runtime, data)
    assert len({i.payment_id for i in plan.items}) == 2
    assert apply_import(sqlite_runtime, data, "user:test").recorded == 2
    assert apply_import(sqlite_runtime, data, "user:test").recorded == 0


def test_a_large_statement_is_recorded_in_batches(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    runtime = sqlite_runtime
    world(runtime)
    many = [spec(str(n), "1.00", STRANGER_INN, f"взнос {n}") for n in range(1, 1206)]
    data = write_statement([ACCOUNT], many)
    seen: list[tuple[int, int]] = []
    result = apply_import(runtime, data, "user:test", lambda d, t: seen.append((d, t)))
    assert result.recorded == 1205 and result.unmatched == 1205
    assert seen[0] == (0, 1205) and (1000, 1205) in seen and seen[-1] == (1205, 1205)
    settle(runtime)
    assert payments_page(runtime.views, PaymentFilter(direction="in"), limit=1)[1] == 1205


class VoidingFirst:
    """The runtime, but an invoice is voided by "someone else" just before the first batch."""

    def __init__(self, runtime: Runtime, invoice_id: UUID) -> None:
        self.runtime = runtime
        self.views = runtime.views
        self.app = self
        self.invoice_id: UUID | None = invoice_id
        self.calls = 0

    def record_payments(self, entries: list[PaymentEntry], actor: str) -> Committed[list[UUID]]:
        self.calls += 1
        if self.invoice_id is not None:
            voided = self.runtime.app.void_document(self.invoice_id, "reissued", "user:other")
            assert self.runtime.wait_for_views(voided.notification_id, timeout=60)
            self.invoice_id = None
        committed: Committed[list[UUID]] = self.runtime.app.record_payments(entries, actor)
        return committed

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool:
        return self.runtime.wait_for_views(notification_id, timeout)


def test_a_target_changed_during_the_import_is_planned_again(runtime: Runtime) -> None:
    w = world(runtime)
    racing = VoidingFirst(runtime, w.sch1)
    result = apply_import(racing, write_statement([ACCOUNT], DOCUMENTS), "user:test")
    assert racing.calls == 2 and result.recorded == 5
    assert (result.matched, result.partial, result.unmatched) == (0, 1, 2)
    assert result.plan is not None
    first = result.plan.items[0]
    assert first.outcome == "unmatched" and "СЧ-1" in first.reason and "voided" in first.reason
    row = document(runtime.views, w.sch1)
    assert row is not None and row.status == "voided" and row.paid_minor == 0
