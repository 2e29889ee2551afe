"""HTML to PDF through WeasyPrint: offline, deterministic, with Cyrillic fonts.

Why these choices:

* **No network, no files.** A template is text a business edits; if the renderer
  followed its URLs (``<img src="http://169.254.169.254/...">``, ``@import``,
  ``@font-face``, ``file:///etc/passwd``) the server could be made to fetch
  things for whoever writes templates (SSRF). `_refuse_all_but_data` lets only ``data:``
  URIs through (an embedded logo or stamp), and there is no base URL, so a
  relative path resolves to nothing.
* **Deterministic.** The same HTML gives byte-identical PDF: the file's
  identifier is derived from the HTML, and its dates come from the document's
  ``<meta name="dcterms.created">`` / ``dcterms.modified`` (the issue date, which
  the shipped templates write) — never from the clock. An auditor can render a
  document again from the log and compare bytes.
* **Fonts.** Shipped templates ask for DejaVu (Sans / Serif), which covers
  Cyrillic; on Debian it is the ``fonts-dejavu-core`` package.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

log = logging.getLogger("threadline.documents")
# WeasyPrint tells each layout step at INFO: seven lines per document in the server's log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

MAX_HTML = 25_000_000  # characters of HTML one PDF is made from


def _refuse_all_but_data() -> Any:
    """WeasyPrint's fetcher allowed ``data:`` URIs only, no redirects; anything else is
    refused before any handler (HTTP, FTP, file) could open it.

    WeasyPrint is imported here, on the first document, not when the app starts: it takes
    half a second to import, which every process (the CLI, a worker) would pay otherwise.
    """
    from weasyprint.urls import URLFetcher

    class DataOnlyFetcher(URLFetcher):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(allowed_protocols={"data"}, allow_redirects=False)

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url[:5].lower() == "data:":
                raise ValueError(f"documents may not load {url[:80]!r}: only data: URIs")
            return super().fetch(url, headers)

    return DataOnlyFetcher()


def html_to_pdf(html: str) -> bytes:
    """The PDF of `html` (A4 unless its CSS says otherwise), fetched nothing, same bytes
    for the same HTML."""
    if len(html) > MAX_HTML:
        raise ValueError(f"a document's HTML is limited to {MAX_HTML} characters")
    identifier = hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    # WeasyPrint logs each refused URL as an error and goes on without it: the template's
    # author sees a missing image, the server fetched nothing.
    from weasyprint import HTML

    document = HTML(string=html, url_fetcher=_refuse_all_but_data(), base_url=None)
    pdf: bytes = document.write_pdf(pdf_identifier=identifier.encode("ascii"))
    return pdf
