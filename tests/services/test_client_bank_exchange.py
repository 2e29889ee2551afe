"""Reading and writing 1C client-bank exchange statements (``kl_to_1c.txt``).

The hand-written files below follow what 1C:Бухгалтерия 3.0 and banks write (the key order
of 1C's own 1.03 export, ``Плательщик=ИНН ... name`` next to ``Плательщик1``); each is
encoded in the test in the codec its header declares, so the reader meets real bytes.
"""

# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.services.payments import cbe_reader
from threadline.services.payments.client_bank_exchange import (
    AccountSpec,
    DocumentSpec,
    StatementError,
    read_statement,
    split_text,
    write_statement,
)

OURS = "40702810300180001774"
THEIRS = "40702810123111111114"

HEADER = [
    "1CClientBankExchange",
    "ВерсияФормата=1.03",
    "Кодировка=Windows",
    "Отправитель=Бухгалтерия предприятия, редакция 3.0",
    "Получатель=",
    "ДатаСоздания=09.12.2015",
    "ВремяСоздания=10:33:20",
    "ДатаНачала=09.12.2015",
    "ДатаКонца=09.12.2015",
    f"РасчСчет={OURS}",
    "Документ=Платежное поручение",
    "Документ=Платежное требование",
]


def balance(opening: str, received: str, spent: str, closing: str) -> list[str]:
    return [
        "СекцияРасчСчет",
        "ДатаНачала=09.12.2015",
        "ДатаКонца=09.12.2015",
        f"РасчСчет={OURS}",
        f"НачальныйОстаток={opening}",
        f"ВсегоПоступило={received}",
        f"ВсегоСписано={spent}",
        f"КонечныйОстаток={closing}",
        "КонецРасчСчет",
    ]


def payment(
    amount: str = "12354.00",
    payer: str = OURS,
    payee: str = THEIRS,
    kind: str = "Платежное поручение",
    purpose: list[str] | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """A document as 1C writes it; `purpose` replaces the single НазначениеПлатежа line."""
    return [
        f"СекцияДокумент={kind}",
        "Номер=105",
        "Дата=09.12.2015",
        f"Сумма={amount}",
        f"ПлательщикСчет={payer}",
        "ДатаСписано=09.12.2015" if payer == OURS else "ДатаСписано=",
        "Плательщик=ИНН 7719617469 ОАО Крокус",
        "ПлательщикИНН=7719617469",
        "Плательщик1=ОАО Крокус",
        f"ПлательщикРасчСчет={payer}",
        "ПлательщикБанк1=АО ОТП БАНК",
        "ПлательщикБанк2=Г. МОСКВА",
        "ПлательщикБИК=044525311",
        "ПлательщикКорсчет=30101810000000000311",
        f"ПолучательСчет={payee}",
        "ДатаПоступило=09.12.2015" if payee == OURS else "ДатаПоступило=",
        "Получатель=ИНН 7701325469 ОАО Прогресс Парк",
        "ПолучательИНН=7701325469",
        "Получатель1=ОАО Прогресс Парк",
        f"ПолучательРасчСчет={payee}",
        "ПолучательБанк1=ОАО БАНК ПЕТРОКОММЕРЦ",
        "ПолучательБанк2=Г. МОСКВА",
        "ПолучательБИК=044525352",
        "ПолучательКорсчет=30101810700000000352",
        "ВидПлатежа=Почтой",
        "КодНазПлатежа=1",
        "ВидОплаты=01",
        "ПлательщикКПП=771901001",
        "ПолучательКПП=770101001",
        "Очередность=5",
        *(extra or []),
        *(purpose or ["НазначениеПлатежа=Оплата по договору. Сумма 12354-00 без налога (НДС)"]),
        "КонецДокумента",
    ]


def statement_file(
    *parts: list[str],
    encoding: str = "cp1251",
    newline: str = "\r\n",
    label: str | None = "Windows",
    version: str = "1.03",
) -> bytes:
    header = [line for line in HEADER if not line.startswith(("Кодировка=", "ВерсияФормата="))]
    if label is not None:
        header.insert(1, f"Кодировка={label}")
    header.insert(1, f"ВерсияФормата={version}")
    lines = header + [line for part in parts for line in part] + ["КонецФайла"]
    return (newline.join(lines) + newline).encode(encoding)


def one_payment_file(**options: str) -> bytes:
    return statement_file(balance("20000.00", "0.00", "12354.00", "7646.00"), payment(), **options)


def error_of(data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        read_statement(data)
    return caught.value


def line_number(data: bytes, text: str, encoding: str = "cp1251") -> int:
    """The 1-based line of the first line of `data` starting with `text`."""
    lines = data.decode(encoding).replace("\r\n", "\n").split("\n")
    return next(i for i, line in enumerate(lines, 1) if line.startswith(text))


# --- reading what 1C and banks write ---------------------------------------------------------


def test_a_1c_statement_reads_into_typed_documents() -> None:
    statement = read_statement(one_payment_file())
    assert statement.version == "1.03"
    assert statement.encoding == "cp1251"
    assert statement.sender == "Бухгалтерия предприятия, редакция 3.0"
    assert statement.created == datetime(2015, 12, 9, 10, 33, 20)
    assert (statement.starts_on, statement.ends_on) == (date(2015, 12, 9), date(2015, 12, 9))
    assert statement.header_accounts == [OURS]
    assert statement.document_kinds == ["Платежное поручение", "Платежное требование"]
    assert statement.warnings == []
    [section] = statement.accounts
    assert section.line == 13 and section.end_line == 21
    assert section.opening_balance == Decimal("20000.00")
    assert section.closing_balance == Decimal("7646.00")
    [document] = statement.documents
    assert (document.line, document.end_line) == (22, 21 + len(payment()))
    assert document.kind == "Платежное поручение"
    assert document.number == "105"
    assert document.date == date(2015, 12, 9)
    assert document.amount == Decimal("12354.00")
    assert document.payer_name == "ОАО Крокус"
    assert document.payer_inn == "7719617469"
    assert document.payer_kpp == "771901001"
    assert document.payer_account == OURS
    assert document.payer_bank == "АО ОТП БАНК"
    assert document.payer_bik == "044525311"
    assert document.payer_corr_account == "30101810000000000311"
    assert document.payee_name == "ОАО Прогресс Парк"
    assert document.payee_inn == "7701325469"
    assert document.payee_kpp == "770101001"
    assert document.payee_account == THEIRS
    assert document.payee_bank == "ОАО БАНК ПЕТРОКОММЕРЦ"
    assert document.payee_bik == "044525352"
    assert document.payee_corr_account == "30101810700000000352"
    assert document.written_off_on == date(2015, 12, 9)
    assert document.received_on is None
    assert document.purpose == "Оплата по договору. Сумма 12354-00 без налога (НДС)"
    assert document.payment_priority == "5"
    # every key is kept, the ones outside the typed fields too, in the file's order
    assert document.raw["КодНазПлатежа"] == "1"
    assert document.raw["ВидПлатежа"] == "Почтой"
    assert next(iter(document.raw)) == "Номер"
    assert statement.direction(document) == "out"


@pytest.mark.parametrize(
    ("encoding", "label", "bom", "expected"),
    [
        ("cp1251", "Windows", False, "cp1251"),
        ("cp866", "DOS", False, "cp866"),
        ("utf-8", "UTF-8", False, "utf-8"),
        ("utf-8", "UTF8", False, "utf-8"),
        ("utf-8", None, False, "utf-8"),
        ("utf-8", None, True, "utf-8"),
        ("utf-8", "UTF-8", True, "utf-8"),
    ],
)
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_each_encoding_and_line_ending_reads_the_same_names(
    encoding: str, label: str | None, bom: bool, expected: str, newline: str
) -> None:
    data = one_payment_file(encoding=encoding, label=label, newline=newline)  # type: ignore[arg-type]
    if bom:
        data = b"\xef\xbb\xbf" + data
    statement = read_statement(data)
    assert statement.encoding == expected
    [document] = statement.documents
    assert document.payer_name == "ОАО Крокус"
    assert document.purpose == "Оплата по договору. Сумма 12354-00 без налога (НДС)"
    assert document.line == (21 if label is None else 22)
    assert statement.sender == "Бухгалтерия предприятия, редакция 3.0"


def test_a_label_contradicted_by_the_bytes_reads_by_the_bytes_with_a_warning() -> None:
    """A UTF-8 export labelled Windows: reading by the label would garble every name."""
    statement = read_statement(one_payment_file(encoding="utf-8", label="Windows"))
    assert statement.encoding == "utf-8"
    assert statement.documents[0].payer_name == "ОАО Крокус"
    assert any("Кодировка=Windows" in warning for warning in statement.warnings)


def test_a_declared_encoding_the_bytes_break_names_the_line() -> None:
    data = one_payment_file()
    bad_line = line_number(data, "ПолучательБанк1=")
    data = data.replace("ОАО БАНК ПЕТРОКОММЕРЦ".encode("cp1251"), b"\x98\x98")
    error = error_of(data)
    assert error.line == bad_line
    assert str(error).startswith(f"line {bad_line}: ")
    assert "cp1251" in str(error)


def test_trailing_spaces_and_empty_lines_are_ignored_but_lines_still_counted() -> None:
    data = one_payment_file(newline="\n").decode("cp1251")
    data = data.replace("Сумма=12354.00\n", "Сумма=12354.00   \n\n\n").replace(
        "КонецДокумента\n", "КонецДокумента \t\n"
    )
    statement = read_statement(data.encode("cp1251"))
    [document] = statement.documents
    assert document.amount == Decimal("12354.00")
    assert document.end_line == 23 + len(payment())  # two empty lines more than the plain file


@pytest.mark.parametrize(("version", "warned"), [("1.02", False), ("1.03", False), ("1.01", True)])
def test_versions_are_read_and_an_unknown_one_warns(version: str, warned: bool) -> None:
    statement = read_statement(one_payment_file(version=version))
    assert statement.version == version
    assert len(statement.documents) == 1
    assert any(version in warning for warning in statement.warnings) is warned


def test_a_document_kind_outside_the_standard_is_kept() -> None:
    data = statement_file(
        balance("0.00", "0.00", "12354.00", "-12354.00"),
        payment(kind="Выписка по операциям с корпоративной картой"),
    )
    [document] = read_statement(data).documents
    assert document.kind == "Выписка по операциям с корпоративной картой"


def test_a_purpose_split_over_several_keys_is_joined() -> None:
    data = statement_file(
        balance("20000.00", "0.00", "12354.00", "7646.00"),
        payment(
            purpose=[
                "НазначениеПлатежа1=Оплата по счету № 17 от 01.12.2015",
                "НазначениеПлатежа2=за поставку товара",
                "НазначениеПлатежа3=В т.ч. НДС 18% = 1884.51",
            ]
        ),
    )
    [document] = read_statement(data).documents
    assert document.purpose == (
        "Оплата по счету № 17 от 01.12.2015 за поставку товара В т.ч. НДС 18% = 1884.51"
    )


def test_the_full_purpose_wins_over_its_split_lines() -> None:
    data = statement_file(
        balance("20000.00", "0.00", "12354.00", "7646.00"),
        payment(purpose=["НазначениеПлатежа=Целиком", "НазначениеПлатежа1=Часть"]),
    )
    assert read_statement(data).documents[0].purpose == "Целиком"


def test_values_keep_equals_signs_and_a_comma_amount_reads() -> None:
    data = statement_file(
        balance("20000.00", "0.00", "12354.00", "7646.00"),
        payment(
            amount="12354,00",
            purpose=["НазначениеПлатежа=Оплата=аванс; ставка=20%"],
            extra=["Код=0", "ИдентификаторПлатежа=ab=cd"],
        ),
    )
    [document] = read_statement(data).documents
    assert document.amount == Decimal("12354.00")
    assert document.purpose == "Оплата=аванс; ставка=20%"
    assert document.raw["ИдентификаторПлатежа"] == "ab=cd"


def test_direction_is_taken_from_the_statements_own_accounts() -> None:
    other = "40702810999999999999"
    data = statement_file(
        balance("0.00", "500.00", "12354.00", "-11854.00"),
        payment(),
        payment(amount="500.00", payer=THEIRS, payee=OURS),
        payment(amount="7.00", payer=THEIRS, payee=other),
    )
    statement = read_statement(data)
    out, incoming, foreign = statement.documents
    assert [statement.direction(d) for d in statement.documents] == ["out", "in", None]
    assert incoming.received_on == date(2015, 12, 9)
    assert incoming.direction_for(OURS) == "in"
    assert out.direction_for([OURS, other]) == "out"
    assert foreign.direction_for(other) == "in"
    assert foreign.direction_for(OURS) is None


# --- the balance sections ---------------------------------------------------------------------


def test_a_wrong_closing_balance_names_the_section_line_and_the_figures() -> None:
    data = statement_file(balance("20000.00", "0.00", "12354.00", "7000.00"), payment())
    error = error_of(data)
    assert error.line == 13
    assert str(error) == (
        f"line 13: the balance section of account {OURS} does not add up: "
        "20000.00 + 0.00 − 12354.00 ≠ 7000.00"
    )
    # the same file is readable when the caller asks not to check
    statement = read_statement(data, check_balances=False)
    assert statement.accounts[0].closing_balance == Decimal("7000.00")


def test_documents_that_do_not_sum_to_the_turnover_are_refused() -> None:
    data = statement_file(
        balance("20000.00", "100.00", "12354.00", "7746.00"),
        payment(),
        payment(amount="90.00", payer=THEIRS, payee=OURS),
    )
    error = error_of(data)
    assert error.line == 13
    assert "90.00 received" in str(error) and "ВсегоПоступило=100.00" in str(error)


def test_several_sections_of_one_account_count_documents_by_their_day() -> None:
    day_one, day_two = date(2024, 3, 1), date(2024, 3, 2)
    account = AccountSpec(OURS, Decimal("100.00"))
    documents = [
        DocumentSpec("1", day_one, Decimal("10.00"), "in", counterparty_account=THEIRS),
        DocumentSpec("2", day_two, Decimal("30.00"), "in", counterparty_account=THEIRS),
        DocumentSpec("3", day_two, Decimal("5.00"), "out", counterparty_account=THEIRS),
    ]
    whole = write_statement([account], documents, newline="\n").decode("cp1251")
    head, _, rest = whole.partition("СекцияРасчСчет\n")
    _, _, documents_text = rest.partition("КонецРасчСчет\n")

    def section(day: date, opening: str, received: str, spent: str, closing: str) -> str:
        return (
            f"СекцияРасчСчет\nДатаНачала={day:%d.%m.%Y}\nДатаКонца={day:%d.%m.%Y}\n"
            f"РасчСчет={OURS}\nНачальныйОстаток={opening}\nВсегоПоступило={received}\n"
            f"ВсегоСписано={spent}\nКонечныйОстаток={closing}\nКонецРасчСчет\n"
        )

    good = head + section(day_one, "100.00", "10.00", "0.00", "110.00")
    good += section(day_two, "110.00", "30.00", "5.00", "135.00") + documents_text
    assert len(read_statement(good.encode("cp1251")).accounts) == 2
    bad = head + section(day_one, "100.00", "40.00", "5.00", "135.00")
    bad += section(day_two, "135.00", "0.00", "0.00", "135.00") + documents_text
    assert "10.00 received" in str(error_of(bad.encode("cp1251")))


# --- refusing broken files, naming the line ---------------------------------------------------


def test_a_file_that_is_not_a_statement_is_refused_on_line_1() -> None:
    error = error_of("Дата;Сумма\n01.01.2024;5\n".encode("cp1251"))
    assert error.line == 1
    assert str(error) == (
        "line 1: not a 1C client-bank exchange file: the first line must be 1CClientBankExchange"
    )
    assert error.field == "file"  # an upload endpoint answers 422 naming the file


def test_a_document_cut_off_before_konec_dokumenta_names_its_line() -> None:
    data = one_payment_file()
    cut = data[: data.index("КонецДокумента".encode("cp1251"))]
    error = error_of(cut)
    assert error.line == 22
    assert "КонецДокумента" in str(error)


def test_a_file_cut_off_before_konec_faila_names_the_last_line() -> None:
    data = one_payment_file()
    cut = data[: data.index("КонецФайла".encode("cp1251"))]
    error = error_of(cut)
    assert error.line == line_number(data, "КонецДокумента")
    assert "КонецФайла" in str(error)


def test_a_document_not_closed_before_the_next_one_is_refused() -> None:
    first = payment()[:-1]  # without КонецДокумента
    data = statement_file(balance("20000.00", "0.00", "12354.00", "7646.00"), first, payment())
    error = error_of(data)
    assert error.line == 22
    assert f"before line {22 + len(first)}" in str(error)


def test_a_balance_section_left_open_is_refused() -> None:
    data = statement_file(balance("0", "0", "0", "0")[:-1], payment())
    error = error_of(data)
    assert error.line == 13 and "КонецРасчСчет" in str(error)


@pytest.mark.parametrize(
    "amount", ["12 354.00", "abc", "1e5", "12354.0.0", "-5.00", "NaN", "", "1.005", "9" * 19, "١٢"]
)
def test_a_bad_amount_names_its_line(amount: str) -> None:
    utf8 = {"encoding": "utf-8", "label": "UTF-8"}  # UTF-8 carries the Arabic-Indic digits
    data = statement_file(balance("0", "0", "0", "0"), payment(amount=amount), **utf8)
    error = error_of(data)
    assert error.line == (22 if amount == "" else line_number(data, "Сумма=", "utf-8"))
    assert "Сумма" in str(error)


@pytest.mark.parametrize(
    "value", ["9.12.2015", "2015-12-09", "32.12.2015", "09.13.2015", "+9.12.2015", "09.12.٢٠١٥"]
)
def test_a_bad_date_names_its_line(value: str) -> None:
    data = statement_file(
        balance("20000.00", "0.00", "12354.00", "7646.00"),
        [line.replace("Дата=09.12.2015", f"Дата={value}") for line in payment()],
        encoding="utf-8",
        label="UTF-8",
    )
    error = error_of(data)
    assert error.line == line_number(data, "Дата=", "utf-8")
    assert "DD.MM.YYYY" in str(error)


def test_a_bad_balance_figure_names_its_line() -> None:
    data = statement_file(balance("20 000", "0.00", "12354.00", "7646.00"), payment())
    assert error_of(data).line == line_number(data, "НачальныйОстаток=")


def test_a_key_line_without_equals_names_its_line() -> None:
    data = statement_file(
        balance("20000.00", "0.00", "12354.00", "7646.00"),
        payment(extra=["ЭтоНеКлюч"]),
    )
    error = error_of(data)
    assert error.line == line_number(data, "ЭтоНеКлюч")
    assert "key=value" in str(error)


def test_more_documents_than_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cbe_reader, "MAX_DOCUMENTS", 2)
    data = statement_file(balance("0", "0", "0", "0"), payment(), payment(), payment(), payment())
    error = error_of(data)
    assert error.line == 22 + 2 * len(payment())
    assert "more than 2 documents" in str(error)


def test_a_file_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = one_payment_file()
    monkeypatch.setattr(cbe_reader, "MAX_BYTES", len(data) - 1)
    assert "MB" in str(error_of(data))


# --- the writer -------------------------------------------------------------------------------


def test_the_writer_writes_what_banks_write() -> None:
    account = AccountSpec(OURS, Decimal("1000.00"))
    data = write_statement(
        [account],
        [DocumentSpec("7", date(2024, 3, 1), Decimal("250.50"), "in", "ООО Альфа", "7707083893")],
        encoding="cp866",
        newline="\r\n",
        version="1.02",
    )
    text = data.decode("cp866")
    assert text.startswith("1CClientBankExchange\r\nВерсияФормата=1.02\r\nКодировка=DOS\r\n")
    assert text.endswith("КонецФайла\r\n")
    assert "ВсегоПоступило=250.50\r\nВсегоСписано=0.00\r\nКонечныйОстаток=1250.50\r\n" in text
    assert "Плательщик=ИНН 7707083893 ООО Альфа\r\n" in text
    assert "\r\nКод=" not in text  # the УИП key is a 1.03 one
    one = [DocumentSpec("8", date(2024, 3, 1), Decimal("1.00"), "out")]
    assert "\r\nКод=0\r\n" in write_statement([account], one, version="1.03").decode("cp1251")


def test_the_writer_splits_a_long_purpose_into_numbered_keys() -> None:
    purpose = " ".join(["Оплата по договору поставки"] * 30)
    data = write_statement(
        [AccountSpec(OURS)],
        [DocumentSpec("1", date(2024, 3, 1), Decimal("1.00"), "in", purpose=purpose)],
        split_purpose=True,
        newline="\n",
    )
    text = data.decode("cp1251")
    assert "НазначениеПлатежа=" not in text
    chunks = [line.partition("=")[2] for line in text.split("\n") if line.startswith("Назначение")]
    assert len(chunks) == 5 and all(len(chunk) <= 210 for chunk in chunks)  # 839 characters
    assert read_statement(data).documents[0].purpose == purpose


def test_the_writer_refuses_what_the_format_cannot_carry() -> None:
    account = AccountSpec(OURS)
    with pytest.raises(ValueError, match="line break"):
        write_statement(
            [account], [DocumentSpec("1", date(2024, 1, 1), Decimal(1), "in", purpose="a\nb")]
        )
    with pytest.raises(ValueError, match="kopeck"):
        write_statement([account], [DocumentSpec("1", date(2024, 1, 1), Decimal("0.001"), "in")])
    with pytest.raises(ValueError, match="cp866"):
        write_statement(
            [account],
            [DocumentSpec("1", date(2024, 1, 1), Decimal(1), "in", purpose="«ёлка»")],
            encoding="cp866",
        )


def test_a_broken_statement_can_be_written_on_purpose_through_raw() -> None:
    data = write_statement(
        [AccountSpec(OURS)],
        [DocumentSpec("1", date(2024, 1, 1), Decimal(1), "in", raw={"Сумма": "сто"})],
    )
    assert "сто" in str(error_of(data))


def test_ten_thousand_documents_read_without_a_quadratic_cost() -> None:
    """Not a benchmark (bench/ measures speed): a guard against an accidental O(n²)."""
    day = date(2024, 3, 1)
    documents = [
        DocumentSpec(
            str(i),
            day + timedelta(days=i % 28),
            Decimal(i % 9000) + Decimal("0.15"),
            "in" if i % 3 else "out",
            f"ООО Контрагент {i}",
            "7707083893",
            counterparty_account=f"4070281000000{i:07d}",
            purpose=f"Оплата по счету № {i} от 01.03.2024, НДС 20% = {i}.00",
        )
        for i in range(10_000)
    ]
    data = write_statement([AccountSpec(OURS, Decimal("5000.00"))], documents)
    started = time.perf_counter()
    statement = read_statement(data)
    assert time.perf_counter() - started < 10
    assert len(statement.documents) == 10_000
    assert statement.documents[-1].purpose.startswith("Оплата по счету № 9999")


# --- round trips ------------------------------------------------------------------------------

# characters every one of the three encodings can carry (cp866 has no «» or em dash)
LETTERS = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяABCxyz0123456789"
WORD = st.text(alphabet=LETTERS + '=№%.,-()"/', min_size=1, max_size=40)
TEXT = st.lists(WORD, min_size=0, max_size=6).map(" ".join)
PURPOSE = st.lists(WORD, min_size=0, max_size=40).map(" ".join).map(lambda text: text[:1000])
AMOUNT = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999.99"), places=2)
DAY = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))
OWN_ACCOUNTS = ["40702810300180001774", "40702810600180009999"]


@st.composite
def documents(draw: st.DrawFn) -> DocumentSpec:
    return DocumentSpec(
        number=draw(st.integers(1, 999999).map(str)),
        date=draw(DAY),
        amount=draw(AMOUNT),
        direction=draw(st.sampled_from(["in", "out"])),
        counterparty_name=draw(TEXT),
        counterparty_inn=draw(st.sampled_from(["", "7707083893", "500100732259"])),
        counterparty_kpp=draw(st.sampled_from(["", "773601001"])),
        counterparty_account=draw(st.from_regex(r"40817810[0-9]{12}", fullmatch=True)),
        counterparty_bank=draw(TEXT),
        counterparty_bik=draw(st.from_regex(r"04[0-9]{7}", fullmatch=True)),
        purpose=draw(PURPOSE),
        kind=draw(st.sampled_from(["Платежное поручение", "Банковский ордер", "Прочее = иное"])),
        account=draw(st.sampled_from(OWN_ACCOUNTS)),
    )


@given(
    specs=st.lists(documents(), max_size=8),
    encoding=st.sampled_from(["cp1251", "cp866", "utf-8"]),
    newline=st.sampled_from(["\r\n", "\n"]),
    version=st.sampled_from(["1.02", "1.03"]),
    split_purpose=st.booleans(),
    bom=st.booleans(),
    opening=st.decimals(min_value=Decimal(-1000), max_value=Decimal(10**9), places=2),
)
def test_written_statements_read_back_the_same(
    specs: list[DocumentSpec],
    encoding: str,
    newline: str,
    version: str,
    split_purpose: bool,
    bom: bool,
    opening: Decimal,
) -> None:
    accounts = [AccountSpec(number, opening) for number in OWN_ACCOUNTS]
    data = write_statement(
        accounts,
        specs,
        encoding=encoding,  # type: ignore[arg-type]
        newline=newline,  # type: ignore[arg-type]
        version=version,  # type: ignore[arg-type]
        split_purpose=split_purpose,
        bom=bom,
    )
    statement = read_statement(data)  # the balances are checked, so they add up too
    assert statement.encoding == encoding
    assert statement.version == version
    assert statement.warnings == []
    assert len(statement.documents) == len(specs)
    for spec, document in zip(specs, statement.documents, strict=True):
        assert document.kind == spec.kind
        assert document.number == spec.number
        assert document.date == spec.date
        assert document.amount == spec.amount
        assert document.purpose == spec.purpose
        assert statement.direction(document) == spec.direction
        assert document.direction_for(spec.account) == spec.direction
        if spec.direction == "in":
            theirs = (document.payer_name, document.payer_inn, document.payer_account)
            assert document.received_on == spec.date and document.written_off_on is None
        else:
            theirs = (document.payee_name, document.payee_inn, document.payee_account)
            assert document.written_off_on == spec.date and document.received_on is None
        assert theirs == (spec.counterparty_name, spec.counterparty_inn, spec.counterparty_account)
    for account, section in zip(accounts, statement.accounts, strict=True):
        mine = [s for s in specs if s.account == account.account]
        assert section.total_in == sum((s.amount for s in mine if s.direction == "in"), Decimal(0))
        assert section.opening_balance == opening


@given(st.lists(WORD, max_size=200).map(" ".join))
def test_split_purposes_join_back_to_the_text(text: str) -> None:
    chunks = split_text(text)
    assert all(0 < len(chunk) <= 210 for chunk in chunks)
    assert " ".join(chunks) == text


@given(
    spec=documents(),
    cut=st.integers(min_value=0, max_value=3000),
    garbage=st.binary(max_size=30),
    mode=st.sampled_from(["cut", "insert", "replace line"]),
)
def test_a_damaged_file_is_read_or_refused_with_a_line_never_crashes(
    spec: DocumentSpec, cut: int, garbage: bytes, mode: str
) -> None:
    """Whatever a damaged upload holds, the answer is a statement or a StatementError (a 422),
    never another exception (a 500)."""
    data = write_statement([AccountSpec(number) for number in OWN_ACCOUNTS], [spec])
    cut = min(cut, len(data))
    if mode == "cut":
        data = data[:cut]
    elif mode == "insert":
        data = data[:cut] + garbage + data[cut:]
    else:
        start = data.rfind(b"\n", 0, cut) + 1
        end = data.find(b"\r", cut)
        data = data[:start] + garbage + data[end if end >= 0 else len(data) :]
    try:
        read_statement(data)
    except StatementError as error:
        assert 1 <= error.line <= data.count(b"\n") + data.count(b"\r") + 1
