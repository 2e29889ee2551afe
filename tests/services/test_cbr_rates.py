"""Importing the Bank of Russia's daily file: its real format, idempotent, refusing what is not it.

The file below is written out as XML_daily.asp serves it: windows-1251 as the prolog
declares, Russian names, decimal commas, and nominals of 1, 10 and 100.
"""

from __future__ import annotations

import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.services.server_process import threadline_env, threadline_executable
from threadline.domain.model.money import Money
from threadline.projections.catalogue import rate_on, rates_on
from threadline.services.cbr_rates import CbrFileError, import_cbr_rates, parse_cbr_daily
from threadline.services.money_totals import total_in
from threadline.services.runtime import Runtime

DAILY = """<?xml version="1.0" encoding="windows-1251"?>
<ValCurs Date="06.12.2026" name="Foreign Currency Market">
<Valute ID="R01010"><NumCode>036</NumCode><CharCode>AUD</CharCode><Nominal>1</Nominal><Name>Австралийский доллар</Name><Value>60,4512</Value><VunitRate>60,4512</VunitRate></Valute>
<Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode><Nominal>1</Nominal><Name>Доллар США</Name><Value>92,1234</Value><VunitRate>92,1234</VunitRate></Valute>
<Valute ID="R01239"><NumCode>978</NumCode><CharCode>EUR</CharCode><Nominal>1</Nominal><Name>Евро</Name><Value>100,2500</Value><VunitRate>100,25</VunitRate></Valute>
<Valute ID="R01375"><NumCode>156</NumCode><CharCode>CNY</CharCode><Nominal>10</Nominal><Name>Китайских юаней</Name><Value>127,0450</Value><VunitRate>12,7045</VunitRate></Valute>
<Valute ID="R01820"><NumCode>392</NumCode><CharCode>JPY</CharCode><Nominal>100</Nominal><Name>Японских иен</Name><Value>61,2345</Value><VunitRate>0,612345</VunitRate></Valute>
</ValCurs>
"""


def run_cli(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`threadline ARGS` as a shell runs it: exit code and both streams."""
    return subprocess.run(
        [threadline_executable(), *args],
        cwd=cwd,
        env=threadline_env(database_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def daily(text: str = DAILY) -> bytes:
    return text.encode("windows-1251")


def position(runtime: Runtime) -> int:
    return int(runtime.app.recorder.max_notification_id() or 0)


def test_the_file_is_read_in_its_own_encoding_with_decimal_commas() -> None:
    data = daily()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really windows-1251, as the Bank serves it
    parsed = parse_cbr_daily(data)
    assert parsed.day == date(2026, 12, 6)
    rates = {r.currency: r for r in parsed.rates}
    assert list(rates) == ["AUD", "USD", "EUR", "CNY", "JPY"]
    assert (rates["USD"].rate, rates["USD"].nominal) == (Decimal("92.1234"), 1)
    assert (rates["CNY"].rate, rates["CNY"].nominal) == (Decimal("127.0450"), 10)
    assert (rates["JPY"].rate, rates["JPY"].nominal) == (Decimal("61.2345"), 100)
    assert rates["JPY"].name == "Японских иен"


def test_importing_records_every_rate_once(runtime: Runtime) -> None:
    seen: list[tuple[int, int]] = []
    first = import_cbr_rates(runtime.app, daily(), "test", lambda d, t: seen.append((d, t)))
    assert (first.day, first.recorded, first.unchanged) == (date(2026, 12, 6), 5, 0)
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert runtime.wait_for_views(first.last_notification_id, timeout=60)
    yen = rate_on(runtime.views, "JPY", date(2026, 12, 7))
    assert yen is not None
    assert (yen.day, yen.rate, yen.nominal, yen.source) == (
        "2026-12-06",
        Decimal("61.2345"),
        100,
        "cbr",
    )
    # 1000 JPY = 1000 * 61.2345 / 100 = 612.345 -> 612.35 RUB; 10 CNY = 127.045 -> 127.05 RUB;
    # 612.35 + 127.05 = 739.40
    amounts = [Money(Decimal(1000), "JPY"), Money(Decimal(10), "CNY")]
    totals = total_in(runtime.views, amounts, "RUB", date(2026, 12, 6))
    assert totals.total == Money(Decimal("739.40"), "RUB")

    # The same file again changes nothing: no event appended.
    before = position(runtime)
    again = import_cbr_rates(runtime.app, daily(), "test")
    assert (again.recorded, again.unchanged, again.last_notification_id) == (0, 5, None)
    assert position(runtime) == before

    # A corrected file for the day changes only the rate that differs.
    corrected = import_cbr_rates(runtime.app, daily(DAILY.replace("92,1234", "92,2000")), "test")
    assert (corrected.recorded, corrected.unchanged) == (1, 4)
    assert runtime.wait_for_views(corrected.last_notification_id, timeout=60)
    dollar = rate_on(runtime.views, "USD", date(2026, 12, 6))
    assert dollar is not None and dollar.rate == Decimal("92.2000")
    assert len(rates_on(runtime.views, date(2026, 12, 6))) == 5


BAD_THIRD = DAILY.replace("<Value>100,2500</Value>", "<Value>сто</Value>")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "the file is empty"),
        (b"<html><body>Service unavailable</body></html>", "the document is <html>, not <ValCurs>"),
        (daily(DAILY[: len(DAILY) // 2]), "the file is not well-formed XML"),
        (daily(DAILY.replace(' Date="06.12.2026"', "")), "is not a date like 06.12.2026"),
        (daily(DAILY.replace("06.12.2026", "31.02.2026")), "is not a real date"),
        (daily(BAD_THIRD), "EUR: <Value>сто</Value> is not a positive rate"),
        (daily(DAILY.replace("<Nominal>100</Nominal>", "<Nominal>0</Nominal>")), "JPY: <Nominal>0"),
        (
            daily(DAILY.replace("<CharCode>AUD</CharCode>", "")),
            "currency entry 1 has no <CharCode>",
        ),
        (
            daily(
                DAILY.replace(
                    '"R01239"><NumCode>978</NumCode><CharCode>EUR',
                    '"R01239"><NumCode>978</NumCode><CharCode>USD',
                )
            ),
            "USD is quoted twice",
        ),
        (
            b'<?xml version="1.0"?><ValCurs Date="06.12.2026" name="Foreign Currency Market"></ValCurs>',
            "no <Valute>",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE ValCurs [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<ValCurs Date="06.12.2026">&b;</ValCurs>',
            "declares a document type or entities",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE ValCurs SYSTEM "file:///etc/passwd">'
            b'<ValCurs Date="06.12.2026"/>',
            "declares a document type or entities",
        ),
    ],
)
def test_a_malformed_file_says_what_is_wrong_and_what_to_do(data: bytes, problem: str) -> None:
    with pytest.raises(CbrFileError) as caught:
        parse_cbr_daily(data)
    message = str(caught.value)
    assert problem in message
    assert "XML_daily.asp" in message and "nothing was imported" in message


def test_a_malformed_file_records_nothing_even_after_good_entries(runtime: Runtime) -> None:
    before = position(runtime)
    with pytest.raises(CbrFileError):
        import_cbr_rates(runtime.app, daily(BAD_THIRD), "test")  # AUD and USD come first
    assert position(runtime) == before
    assert rates_on(runtime.views, date(2026, 12, 6)) == []


def test_the_command_imports_a_file_and_says_how_many(sqlite_url: str, tmp_path: Path) -> None:
    good = tmp_path / "XML_daily.asp"
    good.write_bytes(daily())
    first = run_cli("rates", "import", str(good), database_url=sqlite_url, cwd=tmp_path)
    assert first.returncode == 0, describe(first)
    assert "rates of 2026-12-06: 5 recorded, 0 already there (5 in the file)" in first.stderr
    again = run_cli("rates", "import", str(good), database_url=sqlite_url, cwd=tmp_path)
    assert again.returncode == 0, describe(again)
    assert "0 recorded, 5 already there" in again.stderr, describe(again)

    bad = tmp_path / "broken.xml"
    bad.write_bytes(daily(BAD_THIRD))
    refused = run_cli("rates", "import", str(bad), database_url=sqlite_url, cwd=tmp_path)
    assert refused.returncode == 2, describe(refused)
    assert "EUR: <Value>сто</Value> is not a positive rate" in refused.stderr, describe(refused)
    assert "nothing was imported" in refused.stderr and "Traceback" not in refused.stderr
    missing = run_cli(
        "rates", "import", str(tmp_path / "nope.xml"), database_url=sqlite_url, cwd=tmp_path
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr, describe(missing)
