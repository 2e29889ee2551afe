"""Document templates: the save-time check with typed lists, the sandbox and budget, the
formatting filters, every shipped template (HTML and PDF with Cyrillic text), and the PDF
renderer's promises (same bytes for the same HTML, nothing fetched but data: URIs)."""

# ruff: noqa: RUF001

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pypdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.domain.model.document_template import DOCUMENT_KINDS, DOCUMENT_LANGUAGES
from threadline.services.documents.pdf import html_to_pdf
from threadline.services.documents.sample import sample_context
from threadline.services.documents.template_source import shipped_source
from threadline.services.documents.templating import (
    LINE,
    NBSP,
    document_budget,
    format_number,
    render_html,
    validate_document_template,
)
from threadline.triggers.templates import RenderBudget, TemplateError


def refused(source: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        validate_document_template(source)
    return caught.value


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


# -- the save-time check: typed lists ---------------------------------------------------------


def test_a_loop_over_lines_knows_the_fields_of_a_line() -> None:
    validate_document_template(
        "{% for line in lines %}{{ loop.index }}. {{ line.name }} {{ line.price|money }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}"
        "{{ lines|length }} {{ lines[0].name }} {{ (lines|first).sku }}"
        "{% for rate in totals.vat_rates %}{{ rate.rate|percent }} {{ rate.vat|money }}{% endfor %}"
        "{% for line in lines|reverse if line.vat_rate %}{{ line.total }}{% endfor %}"
    )
    error = refused("<table>\n{% for line in lines %}\n<td>{{ line.nmae }}</td>{% endfor %}")
    assert error.line == 3
    assert "line.nmae" in error.message and "did you mean 'name'" in error.message


def test_typed_lists_are_checked_through_indexes_nested_loops_and_filters() -> None:
    assert "lines[0].nmae" in refused("{{ lines[0].nmae }}").message
    assert "is a list" in refused("{{ lines.name }}").message
    assert (
        "rate.rte"
        in refused("{% for rate in totals.vat_rates %}{{ rate.rte }}{% endfor %}").message
    )
    nested = (
        "{% for line in lines %}{% for rate in totals.vat_rates %}"
        "{{ line.name }} {{ rate.rate }}\n{{ line.rate }}{% endfor %}{% endfor %}"
    )
    error = refused(nested)
    assert "line.rate" in error.message and error.line == 2
    assert "line.nmae" in refused("{% for line in lines|sort %}{{ line.nmae }}{% endfor %}").message
    # `line` means nothing outside its loop, and a schema name cannot be a loop variable
    assert (
        "unknown variable 'line'"
        in refused("{% for line in lines %}{% endfor %}{{ line.name }}").message
    )
    assert "template variable" in refused("{% for lines in lines %}{% endfor %}").message


def test_parties_documents_and_dates_are_checked_too() -> None:
    validate_document_template(
        "{{ seller.bank.bik }} {{ buyer.signatory }} {{ document.issued_on.year }}"
        " {{ document.issued_on|date_long }} {{ contract.signed_on|date }} {{ deal.title }}"
    )
    assert "did you mean 'seller'" in refused("{{ sellr.name }}").message
    assert "seller.bank.bick" in refused("{{ seller.bank.bick }}").message
    assert "rubles" in refused("{{ totals.total|rubles }}").message
    assert refused("{% include 'x.html' %}").message.startswith("templates cannot include")


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True))
@settings(max_examples=60, deadline=None)
def test_exactly_the_fields_of_a_line_pass(name: str) -> None:
    source = "{% for line in lines %}{{ line." + name + " }}{% endfor %}"
    if name in LINE:
        validate_document_template(source)
    else:
        with pytest.raises(TemplateError):
            validate_document_template(source)


# -- the sandbox and the budget ---------------------------------------------------------------


def test_python_internals_are_out_of_reach_at_save_and_at_render() -> None:
    assert "not accessible" in refused("{{ document.__class__ }}").message
    assert "not accessible" in refused("{{ lines['__class__'] }}").message
    with pytest.raises(TemplateError) as caught:  # a text that skipped the check
        render_html("{{ lines.__class__.__mro__ }}", sample_context("invoice", "ru"))
    assert "not allowed" in caught.value.message


def test_a_template_that_would_loop_a_million_times_is_refused_at_save() -> None:
    error = refused(
        "{% for a in range(1000) %}\n{% for b in range(1000) %}x{% endfor %}{% endfor %}"
    )
    assert "rendering budget" in error.message and error.line == 2


def test_a_render_stops_at_its_budget_with_a_template_error() -> None:
    context = sample_context("invoice", "ru", lines=500)
    with pytest.raises(TemplateError) as caught:
        render_html(shipped_source("invoice", "ru"), context, RenderBudget(max_steps=2_000))
    assert "over the rendering budget" in caught.value.message


def test_a_ten_thousand_line_invoice_renders_within_the_document_budget() -> None:
    context = sample_context("invoice", "ru", lines=10_000)
    budget = document_budget()
    started = time.monotonic()
    html = render_html(shipped_source("invoice", "ru"), context, budget)
    elapsed = time.monotonic() - started
    assert html.count('<tr><td class="c">') == 10_000
    assert "Всего наименований 10000" in html
    assert budget.steps < budget.max_steps / 2, budget.steps  # room to spare
    print(f"10,000-line invoice: {elapsed:.2f} s, {budget.steps} steps, {len(html)} characters")


def test_values_are_escaped_and_absent_ones_render_empty() -> None:
    context = sample_context("invoice", "ru")
    context["buyer"] = {"name": "<script>alert(1)</script> & Co"}
    context.pop("contract")
    html = render_html(
        "{{ buyer.name }}|{{ buyer.inn }}|{{ contract.number }}|{{ buyer.bank.bik }}", context
    )
    assert html == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co|||"


# -- filters ----------------------------------------------------------------------------------


def test_the_formatting_filters_follow_each_language() -> None:
    amount = Decimal("57902.14")
    ru = render_html(
        "{{ totals.total|money }}",
        {"language": "ru", "totals": {"total": amount}, "document": {"currency": "RUB"}},
    )
    en = render_html(
        "{{ totals.total|money }}",
        {"language": "en", "totals": {"total": amount}, "document": {"currency": "RUB"}},
    )
    assert ru == f"57{NBSP}902,14" and en == "57,902.14"
    line = {
        "quantity": Decimal("1.500"),
        "price": Decimal("0.0035"),
        "vat_rate": None,
        "discount": Decimal("20"),
    }
    source = "{% for line in lines %}{{ line.quantity|qty }}|{{ line.price|money }}|{{ line.vat_rate|percent }}|{{ line.discount|percent }}{% endfor %}"
    assert render_html(source, {"language": "ru", "lines": [line]}) == "1,5|0,0035|без НДС|20%"
    assert render_html(source, {"language": "en", "lines": [line]}) == "1.5|0.0035|no VAT|20%"
    day = {"issued_on": date(2026, 12, 7), "currency": "RUB"}
    dates = "{{ document.issued_on|date }}|{{ document.issued_on|date_long }}"
    assert render_html(dates, {"language": "ru", "document": day}) == "07.12.2026|7 декабря 2026 г."
    assert (
        render_html(dates, {"language": "en", "document": day}) == "7 December 2026|7 December 2026"
    )


def test_amounts_in_words_come_from_the_domain() -> None:
    context = {
        "language": "ru",
        "totals": {"total": Decimal("57902.14")},
        "document": {"currency": "RUB"},
    }
    words = render_html("{{ totals.total|amount_words }}", context)
    assert words == "Пятьдесят семь тысяч девятьсот два рубля 14 копеек"


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
def test_money_formatting_reads_back_as_the_same_number(amount: Decimal) -> None:
    ru = format_number(amount, "ru", 2)
    en = format_number(amount, "en", 2)
    assert Decimal(ru.replace(NBSP, "").replace(",", ".")) == amount
    assert Decimal(en.replace(",", "")) == amount
    assert ru.rsplit(",", 1)[1] == en.rsplit(".", 1)[1]  # always two kopeck digits


# -- shipped templates ------------------------------------------------------------------------

# A phrase each document must show (the heading or its legal form) in its PDF.
PHRASES = {
    ("proposal", "ru"): "Коммерческое предложение № С-15",
    ("invoice", "ru"): "Счёт на оплату № С-15 от 7 декабря 2026 г.",
    ("contract", "ru"): "Договор № С-15",
    ("act", "ru"): "Заказчик претензий по объему, качеству и срокам оказания услуг не имеет",
    ("upd", "ru"): "Универсальный передаточный документ",
    ("specification", "ru"): "Спецификация № С-15",
    ("price_protocol", "ru"): "Протокол согласования цены № С-15",
    ("purchase_order", "ru"): "Заказ поставщику № С-15",
    ("proposal", "en"): "Commercial proposal No. S-15",
    ("invoice", "en"): "Invoice No. S-15",
    ("contract", "en"): "Contract No. S-15",
    ("act", "en"): "Certificate of completion No. S-15",
    ("upd", "en"): "Universal transfer document",
    ("specification", "en"): "Specification No. S-15",
    ("price_protocol", "en"): "Price agreement protocol No. S-15",
    ("purchase_order", "en"): "Purchase order No. S-15",
}


def squeezed(text: str) -> str:
    return " ".join(text.replace(NBSP, " ").split())


@pytest.mark.parametrize("language", DOCUMENT_LANGUAGES)
@pytest.mark.parametrize("kind", DOCUMENT_KINDS)
def test_each_shipped_template_validates_and_makes_html_and_a_pdf(kind: str, language: str) -> None:
    source = shipped_source(kind, language)
    validate_document_template(source)
    context = sample_context(kind, language)
    html = render_html(source, context)
    text = squeezed(pdf_text(html_to_pdf(html)))
    assert PHRASES[kind, language] in text
    seller, buyer = context["seller"], context["buyer"]
    assert squeezed(seller["name"]) in text and squeezed(buyer["name"]) in text
    if kind not in ("proposal", "price_protocol"):  # the forms that carry both parties' ИНН
        assert seller["inn"] in text and buyer["inn"] in text
    first_word = context["amount_in_words"].split()[0]
    assert first_word in text  # the amount in words
    assert ("Маршрутизатор" if language == "ru" else "Router") in text  # a line's name
    if kind == "invoice" and language == "ru":
        for label in (
            "Банк получателя",
            "БИК",
            "Сч. №",
            "Получатель",
            "Всего к оплате",
            "Руководитель",
            "Бухгалтер",
        ):
            assert label in text


def test_the_upd_status_follows_vat() -> None:
    context = sample_context("upd", "ru")
    assert "Статус: 1" in squeezed(
        pdf_text(html_to_pdf(render_html(shipped_source("upd", "ru"), context)))
    )
    context["totals"] = {**context["totals"], "has_vat": False, "vat_rates": []}
    assert "Статус: 2" in squeezed(
        render_html(shipped_source("upd", "ru"), context).replace("<b>", "").replace("</b>", "")
    )


# -- the PDF ----------------------------------------------------------------------------------


def created(pdf: bytes) -> str:
    metadata = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None
    return str(metadata.get("/CreationDate", ""))


def test_the_same_html_gives_the_same_pdf_dated_by_the_document() -> None:
    context = sample_context("invoice", "ru")
    html = render_html(shipped_source("invoice", "ru"), context)
    first = html_to_pdf(html)
    assert html_to_pdf(html) == first
    assert created(first).startswith("D:20261207")  # the issue date, not the clock
    context["document"] = {**context["document"], "issued_on": date(2027, 1, 9)}
    later = html_to_pdf(render_html(shipped_source("invoice", "ru"), context))
    assert created(later).startswith("D:20270109") and later != first


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_document_fetches_nothing_but_data_uris(http_server: tuple[str, list[str]]) -> None:
    base, hits = http_server
    pixel = base64.b64encode(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    ).decode()
    html = f"""<html><head>
<link rel="stylesheet" href="{base}/style.css">
<style>@import url("{base}/import.css"); @font-face {{ font-family: X; src: url("{base}/font.ttf"); }}
body {{ background: url("{base}/background.png"); }}</style></head>
<body><img src="{base}/img.png"><img src="file:///etc/hostname"><img src="data:image/png;base64,{pixel}">
<p>Документ</p></body></html>"""
    pdf = html_to_pdf(html)
    assert hits == []
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages[0].images) == 1  # the data: image, and nothing else
    assert "Документ" in pdf_text(pdf)


def test_render_time_of_one_page_and_of_a_hundred_lines() -> None:
    source = shipped_source("invoice", "ru")
    for lines, limit in ((3, 5.0), (100, 15.0)):
        html = render_html(source, sample_context("invoice", "ru", lines=lines))
        started = time.monotonic()
        pdf = html_to_pdf(html)
        elapsed = time.monotonic() - started
        print(f"invoice with {lines} lines: {elapsed:.2f} s, {len(pdf)} bytes")
        assert elapsed < limit
