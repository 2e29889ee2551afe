"""Remote content in mail stays unloaded until asked for; every page carries a strict CSP.

The browser half (that the pixel's server really gets no request) is in
tests/e2e/test_tracking_pixels.py; these check what the server sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from tests.web.test_inbox import HX, ingest
from threadline.domain.model.html import block_remote_content
from threadline.services.runtime import Runtime
from threadline.services.web.security_headers import POLICY

TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "web" / "templates"
PIXEL = "https://tracker.example/open.gif?id=42"
HOSTILE = (
    f'<p>Hello</p><img src="{PIXEL}" width="1" height="1">'
    '<img srcset="https://tracker.example/a.png 1x" src="//tracker.example/b.png">'
    '<div style="background:url(https://tracker.example/c.png)" background="https://tracker.example/d.png">x</div>'
    '<video poster="https://tracker.example/e.png"></video>'
    '<table background="https://tracker.example/f.png"><tr><td>t</td></tr></table>'
    '<img src="cid:logo@example">'
)


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def test_the_thread_shows_mail_without_remote_content_until_asked(runtime: Runtime) -> None:
    client, _, _ = web_client(runtime, "operator")
    result = ingest(
        runtime, key="pixel-1", identities=[("email", "anna@example.com")],
        subject="Offer", text="Hello", html=HOSTILE,
    )  # fmt: skip
    conversation_id, message_id = result.conversation_id, result.message_id
    page = client.get(f"/inbox/{conversation_id}")
    assert page.status_code == 200
    assert "tracker.example" not in page.text
    assert "cid:logo@example" in page.text  # a part of the message itself stays
    assert "Remote images blocked" in page.text and "Load images" in page.text
    button = f'hx-get="/inbox/{conversation_id}/messages/{message_id}/images"'
    assert button in page.text

    # The click: the body again, as a frame of a route with its own policy.
    fragment = client.get(f"/inbox/{conversation_id}/messages/{message_id}/images", headers=HX)
    assert fragment.status_code == 200
    frame = f'src="/inbox/{conversation_id}/messages/{message_id}/remote-content"'
    assert frame in fragment.text and 'sandbox=""' in fragment.text
    assert 'id="remote-note-' in fragment.text and 'hx-swap-oob="true"' in fragment.text
    body = client.get(f"/inbox/{conversation_id}/messages/{message_id}/remote-content")
    assert body.status_code == 200 and PIXEL.replace("&", "&amp;") in body.text
    policy = body.headers["content-security-policy"]
    assert "img-src 'self' data: http: https:" in policy and "script-src" not in policy
    assert "frame-ancestors 'self'" in policy and body.headers["referrer-policy"] == "no-referrer"
    # Other messages and other conversations are not reachable by this route.
    other = ingest(runtime, key="pixel-2", identities=[("email", "boris@example.com")], text="x")
    wrong = client.get(f"/inbox/{other.conversation_id}/messages/{message_id}/remote-content")
    assert wrong.status_code == 404


def test_a_message_without_remote_images_shows_no_notice(runtime: Runtime) -> None:
    client, _, _ = web_client(runtime, "operator")
    result = ingest(
        runtime, key="plain-1", identities=[("email", "anna@example.com")], html="<p>Hi</p>"
    )
    page = client.get(f"/inbox/{result.conversation_id}")
    assert "Remote images blocked" not in page.text


def test_every_page_sends_the_policy_and_friends(runtime: Runtime) -> None:
    client, _, _ = web_client(runtime, "admin")
    for path in ("/login", "/inbox", "/contacts", "/tasks", "/admin/rules", "/static/app.js",
                 "/healthz", "/no-such-page"):  # fmt: skip
        answer = client.get(path)
        assert answer.headers.get("content-security-policy") == POLICY, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
    assert "frame-ancestors 'none'" in POLICY and "script-src 'self'" in POLICY
    assert "unsafe" not in POLICY


def test_templates_hold_nothing_the_policy_would_refuse() -> None:
    """No inline script, handler attribute, hx-on or eval'd trigger filter in any template."""
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path
        assert "hx-on" not in text and "<style" not in text and "style=" not in text, path
        assert not re.search(r'hx-trigger="[^"]*\[', text), path
        assert "javascript:" not in text and "js:" not in text, path


URLS = st.sampled_from(
    [
        "https://t.example/p.gif",
        "http://t.example/p",
        "//t.example/p",
        "/local.png",
        "p.png",
        " HTTPS://T.EXAMPLE/x",
    ]
)
WRAPPERS = st.sampled_from(
    [
        '<img src="{u}">',
        '<img srcset="{u} 2x">',
        '<div style="background-image:url({u})">x</div>',
        '<td background="{u}">x</td>',
        '<video poster="{u}"></video>',
        '<picture><source srcset="{u}"></picture>',
        '<link rel="stylesheet" href="{u}">',
        '<style>@import "{u}";</style>',
        '<object data="{u}"></object>',
        '<input type="image" src="{u}">',
        '<svg><image href="{u}"/></svg>',
    ]
)


@given(st.lists(st.tuples(WRAPPERS, URLS), min_size=1, max_size=6), st.text(max_size=40))
def test_no_remote_reference_survives_blocking(parts: list[tuple[str, str]], text: str) -> None:
    html = "".join(wrapper.format(u=url) for wrapper, url in parts) + text
    cleaned, _ = block_remote_content(html)
    assert "t.example" not in cleaned.lower()
    assert not re.search(r"\s(src|srcset|background|poster|data|href)=", cleaned)
