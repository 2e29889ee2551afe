"""The issue's browser test: an operator generates an invoice on a deal's page and sends it to
the client, whose mail arrives at the test SMTP server with the PDF attached.

Chromium drives the real app under uvicorn; the e-mail inbox points at a real aiosmtpd
server; the delivery worker runs as in production. The attached PDF is opened with pypdf
and must say the amount (57 902,14) and the amount in words, as the accountant reads it.
"""

from __future__ import annotations

import hashlib
import io
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.channels.dovecot import SmtpCapture, smtp_capture  # noqa: F401  (fixture)
from tests.e2e.browser import PAGE_TIMEOUT_MS, running_app, screenshot
from tests.web.helpers import PASSWORD, create_user
from tests.web.webdeal_setup import CLIENT_EMAIL, TOTAL_RU, WORDS_RU, world
from threadline.projections.documents import document_sends, documents_of_deal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def plain(text: str) -> str:
    """PDF text with every kind of space (no-break, thin) as one plain space."""
    return re.sub(r"[\s\u00a0\u202f\u2009]+", " ", text)


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return plain(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def test_an_invoice_generated_on_the_deal_page_reaches_the_client_as_a_pdf(
    tmp_path: Path,
    smtp_capture: SmtpCapture,  # noqa: F811
    page: Any,
) -> None:
    from playwright.sync_api import expect

    with running_app(tmp_path, delivery_retry_seconds=0.2) as server:
        runtime = server.runtime
        runtime.channels.configure("mail", "email", "Mail", smtp_capture.settings(), actor="test")
        w = world(runtime)
        create_user(runtime, "anna@example.com", "operator", name="Anna")
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        runtime.channels.start(pollers=False)

        deal_url = f"{server.url}/deals/{w.deal}"
        page.goto(f"{server.url}/login?next=/deals/{w.deal}")
        page.fill("input[name=email]", "anna@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(deal_url)

        documents = page.locator("#documents")
        expect(documents).to_contain_text("No documents yet.")
        documents.locator(".document-generate summary").click()
        form = documents.locator(".document-generate-form")
        form.locator("select[name=kind]").select_option("invoice")
        form.locator("select[name=language]").select_option("ru")
        form.locator("button[type=submit]").click()
        page.wait_for_url(f"{deal_url}?done=document")

        row = page.locator("#documents tr.document-row").first
        expect(row).to_contain_text("СЧ-1", timeout=PAGE_TIMEOUT_MS)
        expect(row).to_contain_text("RUB57,902.14")
        (issued,) = documents_of_deal(runtime.views, w.deal)

        row.locator(".document-send summary").click()
        send = row.locator(".document-send-form")
        expect(send.locator("select[name=to]")).to_contain_text(CLIENT_EMAIL)
        send.locator("select[name=to]").select_option(f"email:{w.olga}")
        send.locator("textarea[name=text]").fill("Ольга, добрый день! Счёт во вложении.")
        send.locator("button[type=submit]").click()
        page.wait_for_url(f"{deal_url}?done=sent")
        sent_count = page.locator("#documents tr.document-row").first.locator("[data-field=sent]")
        expect(sent_count).to_have_text("1")
        screenshot(page, "invoice-sent")

        [mail] = smtp_capture.wait_for(1, seconds=60)
        assert mail.rcpt_tos == [CLIENT_EMAIL]
        message = message_from_bytes(mail.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        assert "Счёт во вложении" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        pdfs = [
            part
            for part in message.iter_attachments()
            if part.get_content_type() == "application/pdf"
        ]
        assert len(pdfs) == 1
        assert pdfs[0].get_filename() == issued.file["filename"]
        data = pdfs[0].get_content()
        assert isinstance(data, bytes) and data.startswith(b"%PDF")
        assert hashlib.sha256(data).hexdigest() == issued.file["sha256"]  # the stored bytes
        text = pdf_text(data)
        assert "СЧ-1" in text
        assert TOTAL_RU in text
        assert WORDS_RU in text
        (sent,) = document_sends(runtime.views, issued.id)
        assert sent.channel == "email"
