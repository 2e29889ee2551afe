"""Where a web form lives: its page, its embed script and the snippet to paste into a site.

The API (`/api/forms`) and the web admin show the same links, made here from the
public URL and the form's slug.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FormLinks:
    page_url: str
    embed_url: str
    embed_snippet: str


def form_links(public_url: str, slug: str) -> FormLinks:
    base = public_url.rstrip("/")
    embed_url = f"{base}/forms/{slug}/embed.js"
    return FormLinks(
        page_url=f"{base}/forms/{slug}",
        embed_url=embed_url,
        embed_snippet=f'<script src="{embed_url}" data-threadline-form="{slug}" async></script>',
    )
