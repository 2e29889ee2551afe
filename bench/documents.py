"""Documents and payments (issue 14): PDF render time per document and the bank-statement import rate.

Three measurements, each next to a baseline taken in the same run:

1. **Rendering** (`pdf_render_ms`). The shipped Russian invoice template with the documents
   contract's sample context (services/documents/sample.py) of 10 and of 100 lines: the
   sandboxed Jinja2 render to HTML, then WeasyPrint to PDF, R times after two warm-ups,
   p50 / p95 per document. Baselines: the HTML render alone (`html_render_ms`) and
   WeasyPrint on a trivial one-paragraph page (`pdf_trivial_page_ms`): what any PDF costs.
2. **Issuing** (`issue_document_ms`). On a fresh SQLite store with our company, a client
   and two deals (10 and 100 lines): `services.documents.issuing.issue_document`, the call
   the API and the deal page make, end to end: the deal read, the context built, the number
   taken in the series, HTML and PDF rendered, both stored by hash, `DocumentIssued`
   recorded and the views caught up. Its baseline is figure 1 for the same number of lines.
3. **Importing a bank statement** (`statement_import_docs_per_s`). A fresh store with
   `--companies` clients (valid ИНН) and `--invoices` issued invoices (recorded through the
   ordinary `issue_document` command with a render callback that stores no PDF: the import
   reads invoices, not their files). A 1C client-bank statement of `--documents` documents
   (1.03, Windows-1251, CRLF, written with `write_statement`): a fifth pay an invoice in full
   naming it, 5 % pay 40 % of one, 5 % are near misses (the right payer and amount, a
   mistyped number), 60 % come from known clients with no invoice named, 10 % go out to
   payees the CRM does not know. `apply_import` (parse, match against the views, record in
   batches of 1,000, views caught up after each) in documents per second; the preview (the
   dry run, `preview_import`) and a second import of the same file (nothing recorded) too.
   Baselines: reading the same file with `read_statement` and decoding its bytes alone
   (`bytes.decode` and `splitlines`).

`--postgres` runs the import on PostgreSQL as well (a fresh schema, dropped afterwards).
stdout carries one JSON object per figure; progress goes to stderr. The exit code is 0 when
the measurements ran and 1 when one failed. See bench/README.md.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ACTOR = "bench"
POSTGRES_URL = os.environ.get(
    "THREADLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ISSUED_ON = date(2026, 11, 2)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "documents", **fields}, ensure_ascii=False), flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "max_ms": round(max(values), 2),
        "n": len(values),
    }


def timed(call: Callable[[], Any], repeats: int, warm_up: int = 2) -> tuple[list[float], Any]:
    """Milliseconds of each of `repeats` calls after `warm_up` untimed ones; the last result."""
    result = None
    for _ in range(warm_up):
        result = call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


# -- 1. rendering -----------------------------------------------------------------------------


def _pdf_of(source: str, context: dict[str, Any]) -> bytes:
    from threadline.services.documents.pdf import html_to_pdf
    from threadline.services.documents.templating import render_html

    return html_to_pdf(render_html(source, context))


def bench_render(repeats: int) -> dict[int, dict[str, Any]]:
    """Figure 1; returns the PDF figures by number of lines (figure 2's baseline)."""
    from threadline.services.documents.pdf import html_to_pdf
    from threadline.services.documents.sample import sample_context
    from threadline.services.documents.template_source import shipped_source
    from threadline.services.documents.templating import render_html

    source = shipped_source("invoice", "ru")
    trivial = "<html><head><meta charset='utf-8'></head><body><p>Счёт</p></body></html>"
    log("rendering a trivial page (the baseline)")
    trivial_times, trivial_pdf = timed(lambda: html_to_pdf(trivial), repeats)
    emit(figure="pdf_trivial_page_ms", **summary(trivial_times), pdf_bytes=len(trivial_pdf))
    found: dict[int, dict[str, Any]] = {}
    for lines in (10, 100):
        context = sample_context("invoice", "ru", lines)
        log(f"rendering an invoice of {lines} lines, {repeats} times")
        html_times, html = timed(partial(render_html, source, context), repeats)
        both_times, pdf = timed(partial(_pdf_of, source, context), repeats)
        html_figures = summary(html_times)
        emit(figure="html_render_ms", lines=lines, **html_figures, html_bytes=len(html))
        found[lines] = summary(both_times)
        emit(
            figure="pdf_render_ms",
            lines=lines,
            **found[lines],
            pdf_bytes=len(pdf),
            baseline="html_render_ms",
            baseline_p50_ms=html_figures["p50_ms"],
            trivial_page_p50_ms=summary(trivial_times)["p50_ms"],
        )
    return found


# -- stores -----------------------------------------------------------------------------------


@contextmanager
def fresh_runtime(backend: str, folder: str, postgres_url: str) -> Iterator[Any]:
    """A started runtime on a new SQLite file or a new PostgreSQL schema (dropped after)."""
    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    name = uuid.uuid4().hex[:12]
    schema = f"bench_{name}"
    conninfo = ""
    if backend == "sqlite":
        url = f"sqlite:///{folder}/{name}.db"
    else:
        parts = urlsplit(postgres_url)
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        url = f"{conninfo}?schema={schema}"
    settings = Settings(database_url=url).with_overrides(
        attachments_dir=f"{folder}/attachments-{name}", run_channels=False, run_triggers=False
    )
    runtime = Runtime(settings)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.close()
        if conninfo:
            import psycopg

            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def own_company(runtime: Any) -> None:
    from threadline.services.demo_documents import OWN

    runtime.app.create_company(
        ACTOR, OWN.name, roles=["own"], legal_form="company", requisites=OWN.requisites()
    )


# -- 2. issuing -------------------------------------------------------------------------------


def _deal_lines(count: int) -> list[dict[str, Any]]:
    rng = random.Random(count)
    return [
        {
            "name": f"Стеллаж складской СТ-{200 + k}",
            "quantity": rng.randint(1, 40),
            "price": f"{rng.randint(500, 40000)}.{rng.randint(0, 99):02d}",
            "discount": rng.choice((0, 0, 5, 10)),
            "vat": rng.choice(("standard", "standard", "reduced", "none")),
        }
        for k in range(count)
    ]


def bench_issue(folder: str, repeats: int, baseline: dict[int, dict[str, Any]]) -> None:
    from threadline.domain.model.pipeline import seeded_pipeline_id
    from threadline.services.demo_documents import CLIENTS
    from threadline.services.documents.issuing import IssueRequest, issue_document

    with fresh_runtime("sqlite", folder, "") as runtime:
        own_company(runtime)
        client = next(iter(CLIENTS.values()))
        client_id = runtime.app.create_company(
            ACTOR, client.name, legal_form="company", requisites=client.requisites()
        ).value
        runtime.app.seed_pipelines(ACTOR)
        for lines in (10, 100):
            deal_id = runtime.app.create_deal(
                ACTOR,
                f"Склад на {lines} позиций",
                seeded_pipeline_id("new-clients"),
                company_id=client_id,
                lines=_deal_lines(lines),
            ).value
            runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
            request = IssueRequest(kind="invoice", deal_id=deal_id, issued_on=ISSUED_ON)
            log(f"issue_document: {repeats} invoices of {lines} lines on a fresh SQLite store")
            times, _ = timed(partial(issue_document, runtime, request, ACTOR), repeats)
            emit(
                figure="issue_document_ms",
                backend="sqlite",
                lines=lines,
                **summary(times),
                baseline="pdf_render_ms",
                baseline_p50_ms=baseline[lines]["p50_ms"],
                note="numbering + context + HTML + PDF + storing + DocumentIssued + views",
            )


# -- 3. the statement import ------------------------------------------------------------------


def _cheap_render(numbered: Any) -> Any:
    """No PDF: the import matches invoices by their numbers and amounts, not their files."""
    from threadline.domain.commands.documents import RenderedFile

    file = {
        "filename": f"{numbered.display_number}.pdf",
        "content_type": "application/pdf",
        "size": 0,
        "sha256": "0" * 64,
        "stored": False,
    }
    return RenderedFile(file=file, html_sha256="0" * 64)


def seed_invoices(runtime: Any, companies: int, invoices: int) -> list[tuple[Any, Any]]:
    """`companies` clients with a valid ИНН each, `invoices` invoices spread over them;
    returns (party, invoice row) pairs in number order."""
    from threadline.domain.commands.documents import DocumentDraft
    from threadline.domain.model.document import DocumentKind
    from threadline.domain.model.money import Money
    from threadline.projections import documents as document_views
    from threadline.projections.documents import DocumentFilter
    from threadline.services.demo_documents import SBER, Party

    parties = [
        Party(
            f'ООО "Клиент {k}"',
            f"77{k:07d}",
            "770101001",
            f"117774{k:06d}",
            "г. Москва",
            SBER,
            f"40702810{k:011d}",
        )
        for k in range(companies)
    ]
    ids = [
        runtime.app.create_company(
            ACTOR, p.name, legal_form="company", requisites=p.requisites()
        ).value
        for p in parties
    ]
    rng = random.Random(7)
    totals = [Decimal(rng.randint(100_000, 50_000_000)) / 100 for _ in range(invoices)]

    def issue(k: int) -> Any:
        total = totals[k]
        draft = DocumentDraft(
            kind=DocumentKind.INVOICE,
            series="СЧ",
            language="ru",
            issued_on=ISSUED_ON,
            due_on=ISSUED_ON + timedelta(days=5),
            amount=Money(total, "RUB"),
            vat=Money((total * 22 / 122).quantize(Decimal("0.01")), "RUB"),
            personal={"title": "Счёт на оплату", "notes": "", "lines": []},
            template={"id": "bench", "version": 1, "shipped": True},
            company_id=ids[k % companies],
        )
        return runtime.app.issue_document(draft, _cheap_render, ACTOR)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(issue, range(invoices)))
    runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=600)
    rows, _ = document_views.documents_page(
        runtime.views, DocumentFilter(kind="invoice"), limit=invoices
    )
    by_company = dict(zip((str(i) for i in ids), parties, strict=True))
    return sorted(
        ((by_company[str(r.company_id)], r) for r in rows), key=lambda pair: pair[1].number
    )


def write_workload(invoices: list[tuple[Any, Any]], documents: int) -> tuple[bytes, dict[str, int]]:
    """The statement's bytes and how many documents of each sort it holds."""
    from threadline.services.demo_documents import (
        TBANK,
        Party,
        near_miss_number,
        own_account,
    )
    from threadline.services.payments.client_bank_exchange import DocumentSpec, write_statement

    rng = random.Random(11)
    pool = list(invoices)
    numbers: dict[str, set[int]] = {}
    for _, row in invoices:
        numbers.setdefault(str(row.company_id), set()).add(row.number)
    mix: dict[str, int] = {}
    specs = []
    unknown = Party("ООО Неизвестный", "502499991", "", "", "", TBANK, "4070281000000000001")
    for n in range(documents):
        paid_on = ISSUED_ON + timedelta(days=1 + n % 28)
        slot = n % 20
        if slot < 6 and pool:
            party, row = pool.pop()
            total = Decimal(row.total_minor) / 100
            if slot < 4:
                sort, amount, shown = "full", total, row.display_number
            elif slot == 4:
                sort, amount, shown = (
                    "partial",
                    (total * 2 / 5).quantize(Decimal("0.01")),
                    row.display_number,
                )
            else:
                sort, amount = "near_miss", total
                shown = f"СЧ-{near_miss_number(row.number, numbers[str(row.company_id)])}"
            purpose = f"Оплата по счету № {shown} от {ISSUED_ON:%d.%m.%Y}. В т.ч. НДС."
        elif slot < 8:
            sort, party, amount = "out_unknown", unknown, Decimal(rng.randint(1000, 900000)) / 100
            purpose = "Оплата по договору аренды. НДС не облагается."
        else:
            sort, party = "known_no_invoice", invoices[rng.randrange(len(invoices))][0]
            amount = Decimal(rng.randint(1000, 9_000_000)) / 100
            purpose = "Оплата по договору поставки. В т.ч. НДС."
        mix[sort] = mix.get(sort, 0) + 1
        specs.append(
            DocumentSpec(
                number=str(10_000 + n),
                date=paid_on,
                amount=amount,
                direction="out" if sort == "out_unknown" else "in",
                counterparty_name=party.name,
                counterparty_inn=party.inn,
                counterparty_kpp=party.kpp,
                counterparty_account=party.account,
                counterparty_bank=party.bank.name,
                counterparty_bik=party.bank.bik,
                counterparty_corr_account=party.bank.correspondent_account,
                purpose=purpose,
            )
        )
    data = write_statement(
        [own_account()], specs, encoding="cp1251", created=datetime(2026, 12, 1, 18, 0)
    )
    return data, mix


def bench_baselines(data: bytes, documents: int) -> dict[str, float]:
    from threadline.services.payments.client_bank_exchange import read_statement

    log("baselines: decoding the file, read_statement")
    decode_times, lines = timed(lambda: data.decode("cp1251").splitlines(), 3, warm_up=1)
    read_times, statement = timed(lambda: read_statement(data), 3, warm_up=1)
    assert len(statement.documents) == documents, "the statement lost documents"
    decode_rate = documents / (statistics.median(decode_times) / 1000)
    read_rate = documents / (statistics.median(read_times) / 1000)
    emit(
        figure="decode_docs_per_s",
        value=round(decode_rate),
        documents=documents,
        lines=len(lines),
        bytes=len(data),
        seconds=round(statistics.median(decode_times) / 1000, 4),
    )
    emit(
        figure="read_statement_docs_per_s",
        value=round(read_rate),
        documents=documents,
        seconds=round(statistics.median(read_times) / 1000, 3),
    )
    return {"decode": decode_rate, "read": read_rate}


def bench_import(
    backend: str, folder: str, args: argparse.Namespace, baselines: dict[str, float] | None
) -> dict[str, float]:
    from threadline.services.payments.statement_import import apply_import, preview_import

    with fresh_runtime(backend, folder, args.postgres_url) as runtime:
        log(f"{backend}: {args.companies} companies and {args.invoices} invoices to match")
        started = time.monotonic()
        invoices = seed_invoices(runtime, args.companies, args.invoices)
        emit(
            figure="import_setup",
            backend=backend,
            companies=args.companies,
            invoices=len(invoices),
            seconds=round(time.monotonic() - started, 1),
        )
        data, mix = write_workload(invoices, args.documents)
        if baselines is None:
            baselines = bench_baselines(data, args.documents)
        log(f"{backend}: preview (dry run) of {args.documents} documents")
        started = time.perf_counter()
        plan = preview_import(runtime, data)
        preview_seconds = time.perf_counter() - started
        emit(
            figure="statement_preview_docs_per_s",
            backend=backend,
            value=round(args.documents / preview_seconds),
            seconds=round(preview_seconds, 2),
            counts=plan.counts,
        )
        log(f"{backend}: apply_import of {args.documents} documents")
        started = time.perf_counter()
        result = apply_import(runtime, data, ACTOR)
        seconds = time.perf_counter() - started
        if result.recorded != args.documents:
            raise RuntimeError(f"recorded {result.recorded} of {args.documents} documents")
        rate = args.documents / seconds
        emit(
            figure="statement_import_docs_per_s",
            backend=backend,
            value=round(rate),
            documents=args.documents,
            bytes=len(data),
            seconds=round(seconds, 2),
            recorded=result.recorded,
            matched=result.matched,
            partial=result.partial,
            suggested=result.suggested,
            unmatched=result.unmatched,
            outgoing_linked=result.outgoing_linked,
            overpaid=result.overpaid,
            workload=mix,
            baseline="read_statement_docs_per_s",
            baseline_value=round(baselines["read"]),
            ratio=round(rate / baselines["read"], 4),
            decode_docs_per_s=round(baselines["decode"]),
        )
        log(f"{backend}: the same file again (nothing to record)")
        started = time.perf_counter()
        again = apply_import(runtime, data, ACTOR)
        seconds = time.perf_counter() - started
        if again.recorded:
            raise RuntimeError(f"a second import recorded {again.recorded} payments")
        emit(
            figure="statement_reimport_docs_per_s",
            backend=backend,
            value=round(args.documents / seconds),
            seconds=round(seconds, 2),
            already_recorded=again.already_recorded,
        )
    return baselines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="renders timed per figure (R)")
    parser.add_argument("--issues", type=int, default=20, help="issue_document calls per deal")
    parser.add_argument("--documents", type=int, default=10_000, help="statement documents")
    parser.add_argument("--companies", type=int, default=300, help="clients with an ИНН")
    parser.add_argument("--invoices", type=int, default=3_000, help="invoices to match")
    parser.add_argument("--postgres", action="store_true", help="import on PostgreSQL too")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--quick", action="store_true", help="R=5, 5 issues, 1,000 documents")
    parser.add_argument("--workdir", help="where the stores go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.issues, args.documents = 5, 5, 1_000
        args.companies, args.invoices = 50, 300
    folder = args.workdir or tempfile.mkdtemp(prefix="threadline-bench-documents-")
    os.makedirs(folder, exist_ok=True)
    started = time.monotonic()
    load_before = os.getloadavg()
    failed = False
    try:
        rendered = bench_render(args.repeats)
        bench_issue(folder, args.issues, rendered)
        baselines = bench_import("sqlite", folder, args, None)
        if args.postgres:
            bench_import("postgres", folder, args, baselines)
    except Exception as error:
        failed = True
        traceback.print_exc(file=sys.stderr)
        emit(figure="errors", value=1, error=repr(error))
    finally:
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=[round(v, 2) for v in load_before],
        loadavg_after=[round(v, 2) for v in os.getloadavg()],
        wall_seconds=round(time.monotonic() - started, 1),
        quick=args.quick,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
