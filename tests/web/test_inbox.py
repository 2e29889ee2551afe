"""The inbox screen: list filters, unread counts, the merged thread, reply / note / assign / status,
templates, the auditor's read-only view, CSRF, sanitised e-mail HTML and the Russian interface."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.web.helpers import create_user, web_client
from threadline.domain.model.inbound import AttachmentMeta, InboundMessage
from threadline.services.runtime import Runtime
from threadline.services.web.routes_inbox import Filters

HX = {"HX-Request": "true"}


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def ingest(
    runtime: Runtime,
    *,
    key: str,
    identities: list[tuple[str, str]],
    channel: str = "email",
    name: str = "Anna Petrova",
    subject: str = "",
    text: str = "",
    html: str = "",
    thread: str | None = None,
    **extra: Any,
) -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel=channel,
            dedup_key=key,
            identities=identities,
            sender_name=name,
            subject=subject,
            text=text,
            html=html,
            thread_key=thread,
            **extra,
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def conversation(runtime: Runtime, conversation_id: UUID) -> dict[str, Any]:
    found = runtime.queries.conversation(str(conversation_id))
    assert found is not None
    return found


def names_in(html: str) -> list[str]:
    """The contact names of the list's rows, top to bottom."""
    return re.findall(r'<strong class="contact-name">([^<]*)</strong>', html)


def wait(runtime: Runtime, committed: Any) -> None:
    assert runtime.wait_for_views(committed.notification_id, timeout=60)


@pytest.fixture
def operator(runtime: Runtime) -> tuple[TestClient, str, UUID]:
    return web_client(runtime, "operator")


# -- the list ----------------------------------------------------------------------------------


def test_list_views_mine_unassigned_all(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, me = operator
    colleague = create_user(runtime, "colleague@example.com", "operator", name="Colleague")
    mine = ingest(runtime, key="m", identities=[("email", "mine@example.com")], name="Mina Mine",
                  text="for me")  # fmt: skip
    theirs = ingest(runtime, key="t", identities=[("email", "t@example.com")], name="Theo Theirs",
                    text="for them")  # fmt: skip
    ingest(runtime, key="n", identities=[("email", "n@example.com")], name="Nora Nobody",
           text="for nobody")  # fmt: skip
    wait(runtime, runtime.app.assign_conversation(mine.conversation_id, me, "test"))
    wait(runtime, runtime.app.assign_conversation(theirs.conversation_id, colleague, "test"))

    assert names_in(client.get("/inbox/list?view=mine").text) == ["Mina Mine"]
    assert names_in(client.get("/inbox/list?view=unassigned").text) == ["Nora Nobody"]
    assert sorted(names_in(client.get("/inbox/list?view=all").text)) == [
        "Mina Mine", "Nora Nobody", "Theo Theirs"
    ]  # fmt: skip
    page = client.get("/inbox?view=mine")
    assert page.status_code == 200
    assert names_in(page.text) == ["Mina Mine"]
    # The list fragment reloads itself when the live stream says the list changed, keeping the filters.
    assert 'hx-get="/inbox/list?view=mine"' in page.text and 'data-live="inbox"' in page.text
    # The row names its assignee.
    assert "Colleague" in client.get("/inbox/list?view=all").text


def test_list_filters_by_channel_status_and_text(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, _ = operator
    ingest(runtime, key="e1", identities=[("email", "ed@example.com")], name="Ed Email",
           subject="Invoice", text="where is the invoice?")  # fmt: skip
    tg = ingest(runtime, channel="telegram", key="t1", identities=[("telegram", "4242")],
                name="Tanya Telegram", text="my parcel is late")  # fmt: skip
    ingest(runtime, channel="sms", key="s1", identities=[("phone", "+14155550111")],
           name="Sam Sms", text="call me back")  # fmt: skip
    wait(runtime, runtime.app.change_conversation_status(tg.conversation_id, "resolved", "test"))

    assert names_in(client.get("/inbox/list?channel=telegram").text) == ["Tanya Telegram"]
    assert names_in(client.get("/inbox/list?channel=sms").text) == ["Sam Sms"]
    assert names_in(client.get("/inbox/list?status=resolved").text) == ["Tanya Telegram"]
    assert sorted(names_in(client.get("/inbox/list?status=open").text)) == ["Ed Email", "Sam Sms"]
    # Text search reaches message bodies, subjects and names.
    assert names_in(client.get("/inbox/list?q=parcel").text) == ["Tanya Telegram"]
    assert names_in(client.get("/inbox/list?q=INVOICE").text) == ["Ed Email"]
    assert names_in(client.get("/inbox/list?q=sam").text) == ["Sam Sms"]
    assert names_in(client.get("/inbox/list?q=nothing-like-this").text) == []
    # Filters combine, and the full page shows the same rows with its filter form filled in.
    page = client.get("/inbox?channel=telegram&status=open")
    assert page.status_code == 200 and names_in(page.text) == []
    assert '<option value="telegram" selected>' in page.text
    # Nonsense filters fall back to "no filter" instead of failing.
    assert len(names_in(client.get("/inbox?view=bogus&status=x&page=abc").text)) == 3


def test_channel_icons_and_paging(runtime: Runtime, operator: tuple[TestClient, str, UUID]) -> None:
    client, _, _ = operator
    for number in range(53):
        ingest(runtime, key=f"p{number}", identities=[("email", f"p{number}@example.com")],
               name=f"Client {number:02d}", text="hello")  # fmt: skip
    ingest(runtime, channel="telegram", key="tg", identities=[("telegram", "77")], name="Tg")
    first = client.get("/inbox/list").text
    assert len(names_in(first)) == 50
    assert names_in(first)[0] == "Tg"  # most recent first
    assert 'title="Telegram">✈</span>' in first and 'title="E-mail">✉</span>' in first
    assert "Page 1 of 2" in first and 'href="/inbox?page=2"' in first
    second = client.get("/inbox/list?page=2").text
    assert len(names_in(second)) == 4
    # A page past the end shows the last page.
    assert names_in(client.get("/inbox/list?page=99").text) == names_in(second)


def test_unread_counts_and_opening_marks_read(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, _ = operator
    auditor, _, _ = web_client(runtime, "auditor")
    first = ingest(runtime, key="u1", identities=[("email", "u@example.com")], name="Una",
                   subject="Order", text="one", thread="order-1")  # fmt: skip
    ingest(runtime, key="u2", identities=[("email", "u@example.com")], name="Una",
           subject="Order", text="two", thread="order-1")  # fmt: skip
    listing = client.get("/inbox/list").text
    assert re.search(r'<span class="badge" title="unread">2</span>', listing)
    assert 'class="inbox-row unread"' in listing
    # An auditor looking does not change anything, not even the unread count.
    assert auditor.get(f"/inbox/{first.conversation_id}").status_code == 200
    assert conversation(runtime, first.conversation_id)["unread_count"] == 2
    page = client.get(f"/inbox/{first.conversation_id}")
    assert page.status_code == 200
    assert conversation(runtime, first.conversation_id)["unread_count"] == 0
    assert 'class="badge"' not in client.get("/inbox/list").text
    assert 'class="inbox-row on"' in page.text  # the open row is highlighted


# -- the conversation -------------------------------------------------------------------------


def test_thread_merges_the_clients_channels_with_calls_and_attachments(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, _ = operator
    identities = [("email", "max@example.com"), ("phone", "+14155550123"), ("telegram", "9001")]
    mail = ingest(runtime, key="x1", identities=identities, name="Max", subject="Contract",
                  text="first, by e-mail",
                  attachments=[AttachmentMeta("contract.pdf", "application/pdf", 2048, "0" * 64)],
                  )  # fmt: skip
    ingest(runtime, channel="telegram", key="x2", identities=[("telegram", "9001")], name="Max",
           text="second, on Telegram")  # fmt: skip
    call = ingest(runtime, channel="voice", key="CA1", identities=[("phone", "+14155550123")],
                  name="Max", text="Incoming call",
                  metadata={"kind": "call", "call": {"sid": "CA1", "direction": "inbound",
                                                     "status": "ringing"}})  # fmt: skip
    wait(runtime, runtime.app.record_call_status(call.message_id, "completed", "test", duration=75))
    ingest(runtime, key="other", identities=[("email", "someone@example.com")], text="not Max's")

    page = client.get(f"/inbox/{mail.conversation_id}").text
    thread = page[page.index('id="thread"') :]
    order = [thread.index(t) for t in ("first, by e-mail", "second, on Telegram", "Incoming call")]
    assert order == sorted(order)
    assert "not Max&#39;s" not in thread and "not Max's" not in thread
    assert "contract.pdf" in thread and "2 KB" in thread
    assert "incoming call" in thread and "answered" in thread and "1:15" in thread
    # The other conversations' messages link to their own conversation.
    assert f'href="/inbox/{call.conversation_id}"' in thread
    fragment = client.get(f"/inbox/{mail.conversation_id}/thread")
    assert fragment.status_code == 200 and "second, on Telegram" in fragment.text
    assert "<html" not in fragment.text
    # The client card is loaded beside the conversation.
    assert f'hx-get="/contacts/{mail.contact_id}/card"' in page
    assert 'hx-trigger="load, live"' in page and f'data-live="contact:{mail.contact_id}"' in page


def test_reply_goes_through_the_conversations_channel_or_another_of_the_clients(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, csrf, me = operator
    got = ingest(runtime, key="r1", identities=[("email", "rita@example.com"),
                                                 ("phone", "+14155550199")],
                 name="Rita", subject="Hello", text="hi")  # fmt: skip
    url = f"/inbox/{got.conversation_id}"
    page = client.get(url).text
    options = re.findall(
        r'<option value="(\w+)"[^>]*>[^<]*</option>', page[page.index("composer") :]
    )
    assert options[:2] == ["email", "sms"]  # the conversation's own channel first and selected
    assert 'value="email" selected' in page[page.index('id="composer"') :]

    answer = client.post(f"{url}/reply", data={"text": "Thanks, Rita!", "csrf_token": csrf},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == url
    answer = client.post(
        f"{url}/reply", data={"text": "Also by SMS", "channel": "sms", "csrf_token": csrf}
    )
    assert answer.status_code == 200
    sent = [m for m in conversation(runtime, got.conversation_id)["messages"]
            if m["direction"] == "outbound"]  # fmt: skip
    assert [(m["text"], m["channel"], m["state"]) for m in sent] == [
        ("Thanks, Rita!", "email", "requested"), ("Also by SMS", "sms", "requested")
    ]  # fmt: skip
    events = list(runtime.app.events.get(UUID(sent[1]["id"])))
    assert type(events[0]).__name__ == "MessageSendRequested" and events[0].channel == "sms"
    assert events[0].actor == f"user:{me}"
    # The page shows each reply with its delivery state.
    article = answer.text[answer.text.index(f'id="message-{sent[1]["id"]}"') :]
    assert 'data-state="requested"' in article[:200] and ">requested</span>" in article
    assert conversation(runtime, got.conversation_id)["status"] == "pending"

    # A channel the client cannot be reached on is refused inline; nothing is sent.
    refused = client.post(
        f"{url}/reply",
        data={"text": "by Telegram?", "channel": "telegram", "csrf_token": csrf},
    )
    assert refused.status_code == 422
    assert "the client cannot be reached on this channel" in refused.text
    assert ">by Telegram?</textarea>" in refused.text  # the text is kept
    empty = client.post(f"{url}/reply", data={"text": "   ", "csrf_token": csrf})
    assert empty.status_code == 422 and "must not be empty" in empty.text
    assert len(conversation(runtime, got.conversation_id)["messages"]) == 3


def test_reply_with_htmx_answers_a_fresh_box_and_the_thread_and_is_idempotent(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, csrf, _ = operator
    got = ingest(runtime, key="h1", identities=[("email", "hx@example.com")], text="hi")
    url = f"/inbox/{got.conversation_id}"
    key = str(uuid4())
    data = {"text": "Once only", "message_id": key, "csrf_token": csrf}
    answer = client.post(f"{url}/reply", data=data, headers=HX)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<form id="composer"')
    assert "></textarea>" in answer.text  # the box is empty again
    assert '<div id="thread" hx-swap-oob="innerHTML">' in answer.text
    assert "Once only" in answer.text and ">requested</span>" in answer.text
    assert client.post(f"{url}/reply", data=data, headers=HX).status_code == 200  # double click
    outbound = [m for m in conversation(runtime, got.conversation_id)["messages"]
                if m["direction"] == "outbound"]  # fmt: skip
    assert [m["id"] for m in outbound] == [key]
    failed = client.post(f"{url}/reply", data={"text": "", "csrf_token": csrf}, headers=HX)
    assert failed.status_code == 422 and "must not be empty" in failed.text
    assert "hx-swap-oob" not in failed.text


def test_delivery_states_show_failures_and_deliveries(
    runtime: Runtime, operator: tuple[TestClient, str, UUID], tmp_path: Path
) -> None:
    client, csrf, _ = operator
    got = ingest(runtime, key="d1", identities=[("email", "dina@example.com")], text="hi")
    url = f"/inbox/{got.conversation_id}"
    runtime.channels.start(pollers=False)
    client.post(f"{url}/reply", data={"text": "nowhere to go", "csrf_token": csrf})
    failed = wait_for_state(runtime, got.conversation_id, "nowhere to go", "failed")
    page = client.get(url).text
    article = page[page.index(f'id="message-{failed["id"]}"') :]
    assert ">failed</span>" in article and "No inbox is set up to send this message" in article
    # the technical reason is for admins; an operator reads the plain one
    assert "no enabled inbox can send email messages" not in article.split("</article>")[0]

    runtime.channels.configure(
        "sandbox", "sandbox", "Sandbox", {"path": "var/test-web-inbox-outbox.jsonl"}, "test"
    )
    client.post(f"{url}/reply", data={"text": "this one arrives", "csrf_token": csrf})
    delivered = wait_for_state(runtime, got.conversation_id, "this one arrives", "sent")
    page = client.get(url).text
    assert ">sent</span>" in page[page.index(f'id="message-{delivered["id"]}"') :]


def wait_for_state(
    runtime: Runtime, conversation_id: UUID, text: str, state: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in conversation(runtime, conversation_id)["messages"]:
            if message["text"] == text and message["state"] == state:
                return message
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never became {state}")


def test_template_fills_the_reply_box_rendered_for_the_client(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, _ = operator
    variants = {
        "default": {"text": "Hello {{ contact.first_name }}, about {{ conversation.subject }}"},
        "sms": {"text": "Hi {{ contact.first_name }} (sms)"},
    }
    wait(runtime, runtime.app.save_template("welcome", "Welcome", variants, "test"))
    got = ingest(runtime, key="tp", identities=[("email", "olga@example.com"),
                                                ("phone", "+14155550155")],
                 name="Olga Ivanova", subject="Delivery", text="hi")  # fmt: skip
    url = f"/inbox/{got.conversation_id}"
    page = client.get(url).text
    assert '<option value="welcome">Welcome</option>' in page
    assert f'hx-get="{url}/template"' in page

    filled = client.get(f"{url}/template", params={"slug": "welcome", "channel": "email"})
    assert filled.status_code == 200
    assert 'name="text"' in filled.text
    assert ">Hello Olga, about Delivery</textarea>" in filled.text
    sms = client.get(f"{url}/template", params={"slug": "welcome", "channel": "sms"})
    assert ">Hi Olga (sms)</textarea>" in sms.text
    # A template that fails for this client says why, in the box, and keeps the text.
    broken = {"default": {"text": "Dear {{ nope }}"}}
    wait(runtime, runtime.app.save_template("broken", "Broken", broken, "test"))
    failed = client.get(f"{url}/template", params={"slug": "broken", "text": "kept"})
    assert failed.status_code == 422 and "unknown variable" in failed.text
    assert ">kept</textarea>" in failed.text
    missing = client.get(f"{url}/template", params={"slug": "nope", "text": "kept"})
    assert missing.status_code == 404 and "template nope not found" in missing.text
    assert ">kept</textarea>" in missing.text


def test_note_assign_resolve_and_snooze(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, csrf, me = operator
    got = ingest(runtime, key="a1", identities=[("email", "al@example.com")], text="hi")
    url = f"/inbox/{got.conversation_id}"

    noted = client.post(f"{url}/note", data={"text": "VIP, be nice", "csrf_token": csrf})
    assert noted.status_code == 200
    assert re.search(r'class="message message-internal"[^>]*>(?:(?!</article>).)*VIP, be nice',
                     noted.text, re.S)  # fmt: skip
    assert not any(m["direction"] == "outbound"
                   for m in conversation(runtime, got.conversation_id)["messages"])  # fmt: skip

    client.post(f"{url}/assign", data={"assignee": "me", "csrf_token": csrf})
    assert conversation(runtime, got.conversation_id)["assignee_id"] == str(me)
    assert "Assigned to: Operator" in client.get(url).text
    answer = client.post(f"{url}/assign", data={"assignee": "none", "csrf_token": csrf},
                         headers=HX)  # fmt: skip
    assert answer.status_code == 200 and answer.text.lstrip().startswith('<div id="conv-actions"')
    assert "Assigned to: nobody" in answer.text
    assert conversation(runtime, got.conversation_id)["assignee_id"] is None
    unknown = client.post(f"{url}/assign", data={"assignee": str(uuid4()), "csrf_token": csrf})
    assert unknown.status_code == 404 and "not found" in unknown.text

    client.post(f"{url}/status", data={"status": "resolved", "csrf_token": csrf})
    assert conversation(runtime, got.conversation_id)["status"] == "resolved"
    page = client.get(url).text
    assert re.search(r'data-shortcut="e"\s+class="primary">Resolve</button>', page)
    assert re.search(r'<span class="status status-resolved">Resolved</span>', page)

    client.post(f"{url}/status",
                data={"status": "snoozed", "snoozed_until": "2031-02-03T09:30", "csrf_token": csrf})  # fmt: skip
    snoozed = conversation(runtime, got.conversation_id)
    assert snoozed["status"] == "snoozed"
    assert datetime.fromisoformat(snoozed["snoozed_until"].replace("Z", "+00:00")) == datetime(
        2031, 2, 3, 9, 30, tzinfo=UTC
    )
    assert "Snooze until (UTC)" in client.get(url).text
    no_time = client.post(f"{url}/status", data={"status": "snoozed", "csrf_token": csrf})
    assert no_time.status_code == 422 and "needs a wake-up time" in no_time.text
    bad_time = client.post(f"{url}/status",
                           data={"status": "snoozed", "snoozed_until": "soon", "csrf_token": csrf},
                           headers=HX)  # fmt: skip
    assert bad_time.status_code == 422 and "a date and time" in bad_time.text
    assert conversation(runtime, got.conversation_id)["status"] == "snoozed"


def test_unknown_conversations_are_404(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, csrf, _ = operator
    for path in ("/inbox/not-a-uuid", f"/inbox/{uuid4()}", f"/inbox/{uuid4()}/thread"):
        assert client.get(path).status_code == 404
    for action in ("reply", "note", "assign", "status"):
        answer = client.post(f"/inbox/{uuid4()}/{action}", data={"text": "x", "csrf_token": csrf})
        assert answer.status_code == 404


# -- roles, CSRF, XSS, language ------------------------------------------------------------------


def test_auditor_sees_everything_and_can_change_nothing(runtime: Runtime) -> None:
    auditor, csrf, _ = web_client(runtime, "auditor")
    got = ingest(runtime, key="au", identities=[("email", "aud@example.com")], text="hello")
    wait(runtime, runtime.app.save_template("t", "T", {"default": {"text": "x"}}, "test"))
    url = f"/inbox/{got.conversation_id}"
    for path in ("/inbox", "/inbox/list", url, f"{url}/thread", f"{url}/template?slug=t"):
        assert auditor.get(path).status_code == 200, path
    page = auditor.get(url).text
    forms = re.findall(r'<form method="post" action="/inbox/[^"]+"', page)
    post_forms = page.count('<form id="composer"') + page.count('<form id="note-form"') + len(forms)
    assert post_forms >= 7
    assert page.count("<fieldset disabled>") == post_forms
    before = conversation(runtime, got.conversation_id)
    position = runtime.views_position()
    for action, data in (
        ("reply", {"text": "no"}),
        ("note", {"text": "no"}),
        ("assign", {"assignee": "me"}),
        ("status", {"status": "resolved"}),
    ):
        answer = auditor.post(f"{url}/{action}", data={**data, "csrf_token": csrf})
        assert answer.status_code == 403, action
        assert "change nothing" in answer.text
    assert conversation(runtime, got.conversation_id) == before
    assert runtime.views_position() == position


def test_posts_without_the_csrf_token_are_refused(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, _ = operator
    got = ingest(runtime, key="c1", identities=[("email", "csrf@example.com")], text="hi")
    url = f"/inbox/{got.conversation_id}"
    before = conversation(runtime, got.conversation_id)
    for action, data in (("reply", {"text": "x"}), ("note", {"text": "x"}),
                         ("assign", {"assignee": "me"}), ("status", {"status": "resolved"})):  # fmt: skip
        assert client.post(f"{url}/{action}", data=data).status_code == 403
        forged = client.post(f"{url}/{action}", data={**data, "csrf_token": "forged"})
        assert forged.status_code == 403
    assert conversation(runtime, got.conversation_id) == before


HOSTILE_PIECES = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    '"><script>',
    "'",
    '"',
    "&",
    "<iframe src=javascript:alert(1)>",
    "</iframe>",
    "<a href='javascript:x'>a</a>",
    "<p>",
    "text",
    "<style>*{}</style>",
    "<!--",
    "-->",
    "<math><mi//xlink:href=x>",
    "\u00a0",
    "<b onmouseover=x>b</b>",
)


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser would parse the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parsed(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str) -> None:
    """No script element, no event-handler attribute, every iframe sandboxed without rights."""
    for tag, attrs in parsed(html):
        assert tag != "script", html
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "iframe":
            assert attrs.get("sandbox") == "", attrs


def test_email_html_with_scripts_runs_nothing(
    runtime: Runtime, operator: tuple[TestClient, str, UUID]
) -> None:
    client, _, _ = operator
    evil = (
        '<p>Dear team</p><script>alert("stolen")</script>'
        '<img src="x" onerror="alert(1)"><a href="javascript:alert(2)">click</a>'
    )
    got = ingest(runtime, key="xss", identities=[("email", "evil@example.com")],
                 subject="<script>alert(3)</script>", text="Dear team", html=evil)  # fmt: skip
    page = client.get(f"/inbox/{got.conversation_id}").text
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all('src="/static/' in s for s in scripts)  # only the app's own files
    assert "alert" not in page.replace("&lt;script&gt;alert(3)&lt;/script&gt;", "")
    assert 'sandbox=""' in page and "srcdoc=" in page
    start = page.index('<main class="page">')
    assert_inert(page[start:])


@hypothesis_settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(HOSTILE_PIECES),
        min_size=1,
        max_size=8,
    ).map("".join)
)
def test_any_message_html_stays_inert_in_the_thread(
    runtime: Runtime, operator: tuple[TestClient, str, UUID], fragment: str
) -> None:
    client, _, _ = operator
    key = uuid4().hex
    got = ingest(runtime, key=key, identities=[("email", f"{key}@example.com")],
                 subject=fragment, text=fragment, html=fragment)  # fmt: skip
    assert_inert(client.get(f"/inbox/{got.conversation_id}/thread").text)
    assert_inert(client.get(f"/inbox/list?q={key}").text)


RUSSIAN = (
    "Входящие",
    "Отправить",
    "Назначить",
    "Решить",
    "Отложить до (UTC)",
    "Внутренняя заметка",
    "Мои",
    "Все каналы",  # noqa: RUF001
    "Открыт",
    "Эл. почта",
)


def test_russian_interface(runtime: Runtime) -> None:
    client, _, _ = web_client(runtime, "operator", locale="ru")
    got = ingest(runtime, key="ru", identities=[("email", "ivan@example.com")], name="Иван",
                 subject="Вопрос", text="Здравствуйте")  # fmt: skip
    page = client.get(f"/inbox/{got.conversation_id}")
    assert page.status_code == 200
    for russian in RUSSIAN:
        assert russian in page.text, russian
    assert "Add note" not in page.text and "Snooze until" not in page.text
    refused = client.post(
        f"/inbox/{got.conversation_id}/reply",
        data={"text": "", "csrf_token": client.get("/ui/session").json()["csrf"]},
    )
    assert refused.status_code == 422 and "не может быть пустым" in refused.text


def test_filters_round_trip_through_query_strings() -> None:
    filters = Filters.clean("mine", "telegram", "open", "  parcel ", "3")
    assert Filters.from_query(filters.query()) == filters
    assert filters.query() == "view=mine&channel=telegram&status=open&q=parcel&page=3"
    assert Filters.clean().link() == ""
    assert Filters.clean("nope", "Bad Channel!", "x", "q" * 500, "-4") == Filters(q="q" * 200)
