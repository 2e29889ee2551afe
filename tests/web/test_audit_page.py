"""The audit screen (issue 16): a client's history with actors and causes, the card as it stood
at a moment, the exports, verifying the chain (and finding a change made by SQL), the access
log; admins and auditors only; Russian.

The history comes from a message through the API, a rule that tags whoever writes (so a
tag leads back to its firing and the firing to the message), an operator taking the
conversation and a rename with the bootstrap admin token.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.services.api.app import create_app
from threadline.services.audit_chain import ChainReport, EventChain
from threadline.services.runtime import Runtime
from threadline.services.web import routes_audit, routes_auth
from threadline.services.web.login_limit import LoginLimiter

ADMIN = {"Authorization": "Bearer admin-secret"}
RULE = {"name": "Tag who writes", "when": "message.received", "then": [{"add_tag": "x"}]}


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(
        sqlite_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "attachments")
    )
    routes_auth.limiter = LoginLimiter()
    rt.start_triggers()  # the rule answers the message with a tag
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def api(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime))


def a_client_who_wrote(api: TestClient, runtime: Runtime) -> dict[str, Any]:
    """Мария writes through the API, the rule tags her, operator Ольга takes the conversation."""
    made = api.post("/api/rules", json=RULE, headers=ADMIN)
    assert made.status_code == 201, made.text
    operator = api.post(
        "/api/users",
        json={"email": "olga@example.com", "role": "operator", "name": "Ольга Петрова"},
        headers=ADMIN,
    )
    assert operator.status_code == 201, operator.text
    token = {"Authorization": f"Bearer {operator.json()['token']}"}
    message = {
        "channel": "api",
        "external_id": "w-1",
        "from": {"name": "Мария", "email": "maria@example.com"},
        "subject": "Вопрос",
        "text": "Когда доставка?",
    }
    ids: dict[str, Any] = api.post("/api/inbound", json=message, headers=token).json()
    taken = api.post(
        f"/api/conversations/{ids['conversation_id']}/assign",
        json={"assignee_id": "me"},
        headers=token,
    )
    assert taken.status_code == 200, taken.text

    def tagged() -> bool:
        card = api.get(f"/api/contacts/{ids['contact_id']}", headers=ADMIN).json()
        return "x" in card["tags"]

    wait_for(tagged, "the rule to tag the client")
    return ids


def rows_of(html: str) -> dict[int, str]:
    """The history table's rows by position."""
    return {
        int(p): row
        for p, row in re.findall(r'<tr id="p(\d+)" data-position="\d+"(.*?)</tr>', html, re.S)
    }


def cause_link(row: str) -> str:
    found = re.search(r'class="caused-by" href="([^"]+)"', row)
    assert found, row
    return found.group(1).replace("&amp;", "&")


def event_type(row: str) -> str:
    found = re.search(r'data-event-type="([^"]+)"', row)
    assert found, row
    return found.group(1)


def test_the_history_with_actors_causes_as_of_and_exports(
    runtime: Runtime, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = a_client_who_wrote(api, runtime)
    contact = ids["contact_id"]
    moment = datetime.now(UTC)  # after the message and the tag, before the rename
    renamed = api.patch(f"/api/contacts/{contact}", json={"name": "Мария Иванова"}, headers=ADMIN)
    assert renamed.status_code == 200, renamed.text
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    client, _, _ = web_client(runtime, "auditor")

    # the start page finds her by name and opens the history by id
    start = client.get("/audit", params={"q": "мария"})
    assert start.status_code == 200 and f'href="/audit/contacts/{contact}"' in start.text
    assert 'href="/audit"' in start.text  # the nav's link for auditors
    by_id = client.get("/audit", params={"q": contact}, follow_redirects=False)
    assert by_id.status_code == 303 and by_id.headers["location"] == f"/audit/contacts/{contact}"

    page = client.get(f"/audit/contacts/{contact}")
    assert page.status_code == 200, page.text
    rows = rows_of(page.text)
    types = [event_type(row) for row in rows.values()]
    for expected in ("ContactCreated", "MessageReceived", "RuleFired", "ContactTagsAdded"):
        assert expected in types, types
    assert list(rows) == sorted(rows)  # oldest first
    assert "Ольга Петрова" in page.text  # the operator's name, not only user:<id>
    assert "Tag who writes" in page.text  # the rule's name
    assert "bootstrap admin token" in page.text  # the rename with THREADLINE_ADMIN_TOKEN
    assert "Когда доставка?" in page.text
    # the tag points at the rule's firing, the firing at the message, by anchors on the page
    (tag,) = [row for row in rows.values() if event_type(row) == "ContactTagsAdded"]
    firing = int(cause_link(tag).removeprefix("#p"))
    assert event_type(rows[firing]) == "RuleFired"
    message = int(cause_link(rows[firing]).removeprefix("#p"))
    assert event_type(rows[message]) == "MessageReceived"

    # pages of one: a cause on an earlier page is linked to the page that starts at it
    monkeypatch.setattr(routes_audit, "HISTORY_PAGE", 1)
    url = f"/audit/contacts/{contact}"
    found: str | None = None
    while url and found is None:
        small = client.get(url)
        assert small.status_code == 200 and len(rows_of(small.text)) == 1
        for row in rows_of(small.text).values():
            if event_type(row) == "ContactTagsAdded":
                found = cause_link(row)
        following = re.search(r'href="([^"]+)" rel="next"', small.text)
        url = f"/audit/contacts/{contact}" + following.group(1) if following else ""
    assert found is not None and found == f"?after={firing - 1}#p{firing}", found
    cause_page = client.get(f"/audit/contacts/{contact}{found.partition('#')[0]}")
    assert event_type(rows_of(cause_page.text)[firing]) == "RuleFired"
    monkeypatch.setattr(routes_audit, "HISTORY_PAGE", 100)

    # as of the moment before the rename (typed in the user's zone, UTC here): the old name
    at = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    then = client.get(f"/audit/contacts/{contact}", params={"at": at})
    assert then.status_code == 200, then.text
    card = re.search(r'class="then-name">([^<]*)<', then.text)
    assert card and card.group(1) == "Мария", then.text
    assert "maria@example.com" in then.text and "Message received" in then.text
    now = client.get(f"/audit/contacts/{contact}", params={"at": "2999-01-01T00:00"})
    assert re.search(r'class="then-name">Мария Иванова<', now.text)
    before = client.get(f"/audit/contacts/{contact}", params={"at": "2001-01-01T00:00"})
    assert before.status_code == 404 and "did not exist at that moment" in before.text
    wrong = client.get(f"/audit/contacts/{contact}", params={"at": "yesterday"})
    assert wrong.status_code == 422 and "expected a date and time" in wrong.text

    # the exports: downloads, with the message's text
    lines = client.get(f"/audit/contacts/{contact}/export.jsonl")
    assert lines.status_code == 200
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert lines.headers["content-disposition"].startswith("attachment;")
    assert "Когда доставка?" in lines.text and len(lines.text.splitlines()) == len(rows)
    report = client.get(f"/audit/contacts/{contact}/export.html")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.headers["content-disposition"].startswith("attachment;")
    assert "Когда доставка?" in report.text and "Auditor (user:" in report.text
    assert client.get(f"/audit/contacts/{'0' * 8}-0000-0000-0000-{'0' * 12}").status_code == 404


def test_the_access_log_lists_the_auditors_own_reads(runtime: Runtime, api: TestClient) -> None:
    contact = a_client_who_wrote(api, runtime)["contact_id"]
    client, _, auditor_id = web_client(runtime, "auditor")
    assert client.get(f"/audit/contacts/{contact}").status_code == 200
    assert client.get(f"/audit/contacts/{contact}/export.jsonl").status_code == 200

    listed = client.get("/audit/access")
    assert listed.status_code == 200
    entries = re.findall(r'<tr data-entry-id="\d+" data-kind="(\w+)">(.*?)</tr>', listed.text, re.S)
    mine = [(kind, row) for kind, row in entries if f'title="user:{auditor_id}"' in row]
    assert [kind for kind, _ in mine] == ["contact", "export"], entries
    assert all(">Auditor<" in row for _, row in mine)  # the reader's name
    assert f'href="/audit/contacts/{contact}"' in mine[0][1]
    assert f"/audit/contacts/{contact}/export.jsonl" in mine[1][1]
    # filtered by who and what
    exports = client.get("/audit/access", params={"actor": f"user:{auditor_id}", "kind": "export"})
    kinds = re.findall(r'<tr data-entry-id="\d+" data-kind="(\w+)">', exports.text)
    assert kinds == ["export"]
    other = client.get("/audit/access", params={"target": "nobody"})
    assert "No reads recorded." in other.text


def sealed(runtime: Runtime) -> EventChain:
    """The chain once the runtime's sealer has caught up with the log."""
    last = int(runtime.app.recorder.max_notification_id() or 0)
    chain = runtime.chain
    wait_for(lambda: chain.head()[0] >= last, "the sealer to reach the log's end")
    return chain


def flip_a_byte(chain: EventChain, position: int) -> None:
    """Change one stored event as an intruder would: SQL on the store's own table (as
    tests/services/test_audit_chain.py does)."""
    (event,) = chain.recorder.select_notifications(start=position, limit=1)
    state = bytearray(event.state)
    state[-1] ^= 1
    column = "notification_id" if chain.db.postgres else "rowid"
    table = chain.recorder.events_table_name
    with chain.db.transaction() as cur:
        cur.execute(f"UPDATE {table} SET state = ? WHERE {column} = ?", [bytes(state), position])


def verified(client: TestClient, csrf: str) -> str:
    """Start a verification and poll the panel until it has finished; the panel's HTML."""
    started = client.post(
        "/audit/verify", data={"csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert started.status_code == 200 and 'id="verify"' in started.text

    def finished() -> str | None:
        panel = client.get("/audit/verify", headers={"HX-Request": "true"})
        assert panel.status_code == 200
        return None if 'data-state="running"' in panel.text else panel.text

    panel: str = wait_for(finished, "the verification to finish")
    assert 'hx-trigger="every 1s"' not in panel  # polling stops once it has finished
    return panel


def test_verify_finds_a_change_made_by_sql(runtime: Runtime, api: TestClient) -> None:
    a_client_who_wrote(api, runtime)
    client, csrf, _ = web_client(runtime, "auditor")
    chain = sealed(runtime)
    panel = verified(client, csrf)
    assert 'data-state="intact"' in panel, panel
    checked = chain.verify().checked
    assert f"{checked} sealed events match the chain" in panel
    # while running, the panel polls itself (a walk started here is finished at once on a
    # small log, so the running panel is looked at as it is drawn)
    running = routes_audit.VerifyRun(started_at="2026-01-01T00:00:00.000000Z", total=10)
    drawn = client.app.state  # type: ignore[attr-defined]
    drawn.audit_verifications._current = running
    assert 'hx-trigger="every 1s"' in client.get("/audit/verify").text
    drawn.audit_verifications._current = None

    target = chain.head()[0] // 2
    flip_a_byte(chain, target)
    broken = verified(client, csrf)
    assert 'data-state="broken"' in broken, broken
    assert f"Broken at position {target}" in broken
    assert "changed or reordered since it was sealed" in broken
    # without HTMX, the form answers with the audit page
    plain = client.post("/audit/verify", data={"csrf_token": csrf}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/audit#verify"
    assert client.post("/audit/verify", data={}).status_code == 403  # no CSRF token
    wait_for(lambda: 'data-state="running"' not in client.get("/audit/verify").text, "the end")


class HeldChain:
    """A chain whose walk reports some progress, then waits until the test lets it finish."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.walks = 0

    def verify(self, progress: Callable[[int, int], None]) -> ChainReport:
        self.walks += 1
        progress(2000, 5000)
        assert self.release.wait(60)
        return ChainReport(checked=5000, sealed_position=5000, unsealed=0)


def test_one_walk_at_a_time_with_its_progress() -> None:
    chain = HeldChain()
    runs = routes_audit.Verifications()
    first = runs.start(chain, 5000)  # type: ignore[arg-type]
    wait_for(lambda: (runs.current or first).checked == 2000, "the walk's progress")
    again = runs.start(chain, 5000)  # type: ignore[arg-type]
    assert again.running and again.started_at == first.started_at and chain.walks == 1
    chain.release.set()
    done = wait_for(
        lambda: runs.current if runs.current and not runs.current.running else None, "the end"
    )
    assert done.report is not None and done.report.intact and done.checked == 5000


def test_other_roles_get_403_and_russian_is_spoken(runtime: Runtime, api: TestClient) -> None:
    contact = a_client_who_wrote(api, runtime)["contact_id"]
    for role in ("operator", "manager"):
        client, csrf, _ = web_client(runtime, role)
        for path in (
            "/audit",
            "/audit/verify",
            "/audit/access",
            f"/audit/contacts/{contact}",
            f"/audit/contacts/{contact}/export.jsonl",
            f"/audit/contacts/{contact}/export.html",
        ):
            assert client.get(path).status_code == 403, (role, path)
        assert client.post("/audit/verify", data={"csrf_token": csrf}).status_code == 403
        assert 'href="/audit"' not in client.get("/contacts").text  # no link in the nav
    admin, _, _ = web_client(runtime, "admin")
    assert admin.get(f"/audit/contacts/{contact}").status_code == 200

    russian, _, _ = web_client(runtime, "auditor", locale="ru")
    page = russian.get("/audit")
    assert page.status_code == 200 and "Проверить журнал" in page.text
    history = russian.get(f"/audit/contacts/{contact}")
    assert history.status_code == 200 and "Чем вызвано" in history.text
