"""Reading payment CSVs as banks and spreadsheets write them.

Each file is written here as text and encoded the way the program that made it would
(UTF-8 with and without a BOM, Windows-1251, cp866), with the delimiters and line endings
seen in the wild; the expected payments are written out. A broken row must name its line,
and nothing but `PaymentFileError` may come out of any bytes at all.
"""

# ruff: noqa: RUF001 (Russian bank data on purpose)
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.services.payments.csv_payments import (
    MAX_BYTES,
    MAX_ROWS,
    ParsedFile,
    PaymentFileError,
    PaymentRow,
    parse_amount,
    parse_or_raise,
    read_payments_csv,
)

D = Decimal

BANK_EXPORT = (
    "Дата;Номер;Сумма;Направление;Контрагент;ИНН;КПП;Счёт;БИК;Назначение платежа\n"
    "01.12.2026;15;57 902,14;Поступление;ООО Ромашка;7707083893;770701001;"
    "40702810900000000001;044525225;Оплата по счёту № 7 от 25.11.2026, в т.ч. НДС\n"
    "02.12.2026;16;1 500,00;Списание;ИП Иванов Иван Иванович;500100732259;;"
    "40802810400000000002;044525974;Аренда за декабрь\n"
)
FIRST = PaymentRow(
    line=2,
    direction="in",
    amount=D("57902.14"),
    currency="RUB",
    paid_on=date(2026, 12, 1),
    counterparty_name="ООО Ромашка",
    counterparty_inn="7707083893",
    counterparty_kpp="770701001",
    counterparty_account="40702810900000000001",
    counterparty_bik="044525225",
    purpose="Оплата по счёту № 7 от 25.11.2026, в т.ч. НДС",
    document_number="15",
)
SECOND = PaymentRow(
    line=3,
    direction="out",
    amount=D("1500.00"),
    currency="RUB",
    paid_on=date(2026, 12, 2),
    counterparty_name="ИП Иванов Иван Иванович",
    counterparty_inn="500100732259",
    counterparty_account="40802810400000000002",
    counterparty_bik="044525974",
    purpose="Аренда за декабрь",
    document_number="16",
)


def read(text: str, encoding: str = "utf-8") -> ParsedFile:
    parsed = read_payments_csv(text.encode(encoding))
    assert not parsed.errors, parsed.errors
    return parsed


def error_of(text: str) -> PaymentFileError:
    with pytest.raises(PaymentFileError) as caught:
        parse_or_raise(text.encode())
    return caught.value


# --- encodings, delimiters, line endings -----------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("cp1251", "cp1251"), ("cp866", "cp866")],
)
def test_each_encoding_reads_the_same_payments(encoding: str, reported: str) -> None:
    parsed = read(BANK_EXPORT, encoding)
    assert parsed.encoding == reported
    assert parsed.rows == [FIRST, SECOND]


def test_a_bom_does_not_hide_the_first_column() -> None:
    data = "\ufeffДата;Сумма\n01.12.2026;10\n".encode()
    assert parse_or_raise(data).rows[0].paid_on == date(2026, 12, 1)


_WORDS = [
    "оплата",
    "по",
    "счёту",
    "договор",
    "аренда",
    "услуги",
    "связи",
    "товар",
    "НДС",
    "возврат",
    "Москва",
    "три",
    "поставка",
    "ЭДО",
    "щётки",
    "юридические",
]


@given(
    st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12), st.sampled_from(["cp1251", "cp866"])
)
def test_the_single_byte_cyrillic_encoding_is_told_apart(words: list[str], encoding: str) -> None:
    purpose = " ".join(words)
    parsed = read(f"Дата;Сумма;Назначение\n01.12.2026;10;{purpose}\n", encoding)
    assert parsed.encoding == encoding
    assert parsed.rows[0].purpose == purpose


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiters_and_line_endings(delimiter: str, ending: str) -> None:
    lines = [
        ["Дата", "Сумма", "Назначение платежа"],
        ["01.12.2026", "10.50", "first"],
        ["02.12.2026", "-20", "second"],
    ]
    text = "".join(delimiter.join(cells) + ending for cells in lines)
    parsed = read(text)
    assert [(r.line, r.amount, r.direction, r.purpose) for r in parsed.rows] == [
        (2, D("10.50"), "in", "first"),
        (3, D("20.00"), "out", "second"),
    ]


def test_semicolon_file_with_decimal_commas_is_not_mistaken_for_comma_separated() -> None:
    parsed = read("Дата;Сумма\r\n01.12.2026;1 234,56\r\n02.12.2026;7,05\r\n")
    assert [r.amount for r in parsed.rows] == [D("1234.56"), D("7.05")]


def test_comma_file_with_quoted_amounts() -> None:
    parsed = read('date,amount,direction\n2026-12-01,"1,234.56",in\n2026-12-02,"7,05",out\n')
    assert [(r.amount, r.direction) for r in parsed.rows] == [
        (D("1234.56"), "in"),
        (D("7.05"), "out"),
    ]


def test_line_numbers_count_physical_lines_blank_lines_and_multiline_cells() -> None:
    text = (
        "Дата;Сумма;Назначение платежа\r\n"
        "\r\n"
        '01.12.2026;10;"two\r\nlines"\r\n'
        "02.12.2026;20;x\r\n"
        "\r\n"
        "03.12.2026;abc;y\r\n"
    )
    parsed = read_payments_csv(text.encode("cp1251"))
    assert [r.line for r in parsed.rows] == [3, 5]
    assert parsed.rows[0].purpose == "two\r\nlines"
    assert [(e.line, e.column) for e in parsed.errors] == [(7, "Сумма")]


# --- columns ---------------------------------------------------------------------------------


def test_english_column_names_in_any_case_and_order() -> None:
    parsed = read(
        "Purpose,Counterparty,INN,KPP,Account,BIK,Number,Document_Date,Currency,Amount,Direction,Paid_On\n"
        "Invoice 7,Acme LLC,7707083893,7707AB001,40702810900000000001,044525225,N-15,"
        "2026-11-30,usd,100.5,out,2026-12-01\n"
    )
    assert parsed.rows == [
        PaymentRow(
            line=2,
            direction="out",
            amount=D("100.50"),
            currency="USD",
            paid_on=date(2026, 12, 1),
            counterparty_name="Acme LLC",
            counterparty_inn="7707083893",
            counterparty_kpp="7707AB001",
            counterparty_account="40702810900000000001",
            counterparty_bik="044525225",
            purpose="Invoice 7",
            document_number="N-15",
            document_date=date(2026, 11, 30),
        )
    ]


@pytest.mark.parametrize(
    ("word", "direction"),
    [
        ("in", "in"),
        ("OUT", "out"),
        ("поступление", "in"),
        ("Списание", "out"),
        ("Приход", "in"),
        ("расход", "out"),
    ],
)
def test_direction_words(word: str, direction: str) -> None:
    parsed = read(f"Дата;Сумма;Вид\n01.12.2026;10;{word}\n")
    assert parsed.rows[0].direction == direction


def test_without_a_direction_column_the_sign_decides() -> None:
    parsed = read("Дата;Сумма\n01.12.2026;10\n02.12.2026;-10\n03.12.2026;\u22125,5\n")
    assert [(r.direction, r.amount) for r in parsed.rows] == [
        ("in", D("10.00")),
        ("out", D("10.00")),
        ("out", D("5.50")),
    ]


@pytest.mark.parametrize(
    ("income", "outgo"), [("Приход", "Расход"), ("Кредит", "Дебет"), ("credit", "debit")]
)
def test_two_amount_columns_give_the_direction(income: str, outgo: str) -> None:
    parsed = read(
        f"Дата;{outgo};{income};Плательщик\n01.12.2026;;1 000,00;A\n02.12.2026;250,00;0,00;B\n"
    )
    assert [(r.direction, r.amount) for r in parsed.rows] == [
        ("in", D("1000.00")),
        ("out", D("250.00")),
    ]


def test_payer_and_payee_columns_give_the_other_side_of_each_payment() -> None:
    parsed = read(
        "Дата;Сумма;Вид;Плательщик;ИНН плательщика;Получатель;ИНН получателя\n"
        "01.12.2026;10;приход;Клиент;7707083893;Мы;500100732259\n"
        "02.12.2026;20;расход;Мы;500100732259;Поставщик;7736050003\n"
    )
    assert [(r.counterparty_name, r.counterparty_inn) for r in parsed.rows] == [
        ("Клиент", "7707083893"),
        ("Поставщик", "7736050003"),
    ]


def test_a_list_of_receipts_with_only_the_payer() -> None:
    parsed = read("date,amount,payer,payer_inn\n2026-12-01,10,Client,7707083893\n")
    assert (parsed.rows[0].counterparty_name, parsed.rows[0].counterparty_inn) == (
        "Client",
        "7707083893",
    )


@pytest.mark.parametrize(
    ("written", "currency"),
    [
        ("", "RUB"),
        ("RUB", "RUB"),
        ("RUR", "RUB"),
        ("810", "RUB"),
        ("руб.", "RUB"),
        ("eur", "EUR"),
        ("978", "EUR"),
    ],
)
def test_currency_column(written: str, currency: str) -> None:
    parsed = read(f"Дата;Сумма;Валюта\n01.12.2026;10;{written}\n")
    assert parsed.rows[0].currency == currency


def test_a_yen_amount_has_no_decimals() -> None:
    assert read("Дата;Сумма;Валюта\n01.12.2026;1 500;JPY\n").rows[0].amount == D(1500)
    error = error_of("Дата;Сумма;Валюта\n01.12.2026;1 500,5;JPY\n")
    assert str(error) == "line 2: the amount '1 500,5' has more decimals than JPY has (0)"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("07.12.2026", date(2026, 12, 7)),
        ("2026-12-07", date(2026, 12, 7)),
        ("07/12/2026", date(2026, 12, 7)),
        ("07.12.2026 15:30:00", date(2026, 12, 7)),
        ("2026-12-07T15:30:00", date(2026, 12, 7)),
    ],
)
def test_date_formats(written: str, expected: date) -> None:
    assert read(f"Дата;Сумма\n{written};1\n").rows[0].paid_on == expected


def test_extra_columns_and_an_empty_trailing_cell_are_ignored() -> None:
    parsed = read("Дата;Сумма;Остаток;\n01.12.2026;10;999;\n02.12.2026;5;994;;\n")
    assert [r.amount for r in parsed.rows] == [D("10.00"), D("5.00")]


def test_a_header_without_rows_gives_no_payments() -> None:
    assert read("Дата;Сумма\n").rows == []


# --- refusals --------------------------------------------------------------------------------


def test_a_broken_row_names_its_line() -> None:
    rows = "".join(f"0{day}.12.2026;{day}\n" for day in range(1, 6))
    error = error_of(f"Дата;Сумма\n{rows}\n06.12.2026;abc\n")
    assert error.line == 8
    assert str(error) == "line 8: the amount 'abc' is not a number"


def test_every_bad_row_is_reported_and_the_file_refused_whole() -> None:
    text = "Дата;Сумма\n01.12.2026;10\n32.12.2026;10\n03.12.2026;x\n04.12.2026;10\n"
    parsed = read_payments_csv(text.encode())
    assert [r.line for r in parsed.rows] == [2, 5]
    assert [(e.line, e.column) for e in parsed.errors] == [(3, "Дата"), (4, "Сумма")]
    assert "DD.MM.YYYY" in parsed.errors[0].message
    with pytest.raises(PaymentFileError) as caught:
        parse_or_raise(text.encode())
    assert str(caught.value).startswith("line 3: the date '32.12.2026' is not a date")
    assert str(caught.value).endswith("(and 1 more row with errors)")
    assert len(caught.value.errors) == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("01.12.2026;;x", "line 2: the amount is empty"),
        ("01.12.2026;0,00;x", "line 2: an amount of zero is not a payment"),
        (";10;x", "line 2: the date is empty"),
        ("01.12.2026;10,123;x", "line 2: the amount '10,123' has more decimals than RUB has (2)"),
        ("01.12.2026;12 34;x", "line 2: the amount '12 34' is not a number"),
        ("01.12.2026;1.2.3;x", "line 2: the amount '1.2.3' is not a number"),
        ("01.12.2026;1e5;x", "line 2: the amount '1e5' is not a number"),
        ("01.12.2026;10;x;extra", "line 2: the row has 4 cells, the header has 3"),
    ],
)
def test_bad_cells(row: str, message: str) -> None:
    assert str(error_of(f"Дата;Сумма;Назначение\n{row}\n")) == message


@pytest.mark.parametrize(
    ("header", "row", "column", "fragment"),
    [
        ("Дата;Сумма;Вид", "01.12.2026;10;туда", "Вид", "the direction 'туда' is not one of"),
        (
            "Дата;Сумма;Вид",
            "01.12.2026;-10;приход",
            "Сумма",
            "negative but the payment is incoming",
        ),
        ("Дата;Приход;Расход", "01.12.2026;10;20", "Приход", "both have an amount"),
        ("Дата;Приход;Расход", "01.12.2026;;0", "Приход", "neither has an amount"),
        ("Дата;Приход;Расход", "01.12.2026;-5;", "Приход", "is negative"),
        ("Дата;Сумма;Валюта", "01.12.2026;10;рубли", "Валюта", "is not an ISO 4217 code"),
        ("Дата;Сумма;ИНН", "01.12.2026;10;7.70708E+09", "ИНН", "an INN has 10 or 12 digits"),
        ("Дата;Сумма;БИК", "01.12.2026;10;44525225", "БИК", "a BIK has 9 digits"),
        ("Дата;Сумма;КПП", "01.12.2026;10;77070100", "КПП", "a KPP has 9 characters"),
        ("Дата;Сумма;Счет", "01.12.2026;10;4070281090000000000", "Счет", "20 digits"),
        ("Дата;Сумма;Дата документа", "01.12.2026;10;1.12.26", "Дата документа", "is not a date"),
    ],
)
def test_row_errors_name_the_column(header: str, row: str, column: str, fragment: str) -> None:
    parsed = read_payments_csv(f"{header}\n{row}\n".encode())
    assert parsed.rows == []
    [error] = parsed.errors
    assert (error.line, error.column) == (2, column)
    assert fragment in error.message


@pytest.mark.parametrize(
    "text",
    [
        "Сумма;Назначение\n10;x\n",
        "Дата;Назначение\n01.12.2026;x\n",
        "Дата;Приход\n01.12.2026;10\n",
        "01.12.2026;10\n",
    ],
)
def test_missing_required_columns_are_refused_on_line_1(text: str) -> None:
    error = error_of(text)
    assert error.line == 1
    assert "the date (Дата, date, paid_on) and the amount (Сумма, amount)" in str(error)
    assert str(error).startswith("line 1: expected a header row")


def test_two_columns_of_the_same_meaning_are_refused() -> None:
    error = error_of("Дата;date;Сумма\n01.12.2026;2026-12-01;10\n")
    assert str(error) == "line 1: the columns 'Дата' and 'date' mean the same thing"


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", "\ufeff".encode()])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(PaymentFileError) as caught:
        read_payments_csv(data)
    assert caught.value.line == 1
    assert "the file is empty" in str(caught.value)


def test_a_file_over_20_mb_is_refused_before_reading() -> None:
    with pytest.raises(PaymentFileError) as caught:
        read_payments_csv(b"x" * (MAX_BYTES + 1))
    assert str(caught.value) == "the file is larger than 20 MB; split it into smaller files"


def test_a_file_over_100000_rows_is_refused() -> None:
    header = "Дата;Сумма\n"
    assert len(read_payments_csv((header + "01.12.2026;1\n" * MAX_ROWS).encode()).rows) == MAX_ROWS
    with pytest.raises(PaymentFileError) as caught:
        read_payments_csv((header + "01.12.2026;1\n" * (MAX_ROWS + 1)).encode())
    assert str(caught.value) == (
        "line 100002: the file has more than 100,000 rows; split it into smaller files"
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'"\n' * 30_000, "line 1: the file has no header row"),
        (b'"a,' * 30_000, "line 1: expected a header row"),
        (b"Date;Amount\n" + b"x" * 200_000, "line 2: the file is not valid CSV"),
        (b"x" * 200_000 + b"\n", "line 1: the file is not valid CSV"),
    ],
)
def test_hostile_files_are_refused_quickly(data: bytes, message: str) -> None:
    """csv.Sniffer's regular expressions need a minute for 64 KB of quotes and newlines, and
    the csv module refuses cells over 128 KB: both must end in a clear refusal, in time."""
    with pytest.raises(PaymentFileError) as caught:
        read_payments_csv(data)
    assert str(caught.value).startswith(message)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes_give_payments_or_a_payment_file_error(data: bytes) -> None:
    try:
        parsed = read_payments_csv(data)
    except PaymentFileError as error:
        assert str(error)
        return
    assert all(row.amount > 0 for row in parsed.rows)


@settings(max_examples=300)
@given(
    st.lists(
        st.text(st.characters(codec="utf-8"), max_size=12),
        min_size=1,
        max_size=6,
    )
)
def test_any_cells_under_a_valid_header_give_rows_or_row_errors(cells: list[str]) -> None:
    line = ";".join('"' + cell.replace('"', '""') + '"' for cell in cells)
    parsed = read_payments_csv(f"Дата;Сумма;Вид;ИНН;Валюта;Назначение\n{line}\n".encode())
    outcomes = [row.line for row in parsed.rows] + [error.line for error in parsed.errors]
    # a record of blank cells is skipped; any other is exactly one payment or one error
    assert outcomes == ([2] if any(cell.strip() for cell in cells) else [])


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("1 234,56", D("1234.56")),
        ("1234.56", D("1234.56")),
        ("1 234.56", D("1234.56")),
        ("1\u00a0234,56", D("1234.56")),
        ("1\u202f234\u202f567,5", D("1234567.50")),
        ("1,234,567.89", D("1234567.89")),
        ("1.234.567,89", D("1234567.89")),
        ("-0,01", D("-0.01")),
        ("+7", D("7.00")),
        (" 12 ", D("12.00")),
    ],
)
def test_amount_formats(written: str, value: Decimal) -> None:
    assert parse_amount(written) == value


@pytest.mark.parametrize(
    "written",
    ["", "-", "abc", "1,2,3", "1.234,56.7", "12,34.5", "1 2", ",5", "5,", "NaN", "1e15", "٣"],
)
def test_not_amounts(written: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(written)


def _group(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    return separator.join(
        [digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))]
    )


@given(
    st.decimals(min_value=D("-999999999999999.99"), max_value=D("999999999999999.99"), places=2),
    st.sampled_from(["plain", "space", "nbsp"]),
    st.sampled_from([",", "."]),
)
def test_amount_round_trip(amount: Decimal, grouping: str, mark: str) -> None:
    sign = "-" if amount < 0 else ""
    whole, _, fraction = f"{abs(amount):.2f}".partition(".")
    separator = {"plain": "", "space": " ", "nbsp": "\u00a0"}[grouping]
    written = f"{sign}{_group(whole, separator) if separator else whole}{mark}{fraction}"
    assert parse_amount(written) == amount
    direction = "out" if amount < 0 else "in"
    if amount:
        row = read(f"Дата;Сумма\n01.12.2026;{written}\n").rows[0]
        assert (row.amount, row.direction) == (abs(amount), direction)
