"""The users screen's bulk hand-over: preview counts, confirm, one event per item.

A departing manager holds clients (as responsible), open deals (as manager) and open tasks
(as assignee); the preview counts them without changing anything, and the confirmation moves
the chosen kinds to the receivers, round-robin, each item by its own event under one
correlation id. Closed items stay where they were. Only managers and admins hand over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import create_user, web_client
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.deals import deal_log
from threadline.projections.tasks import task
from threadline.services.runtime import Runtime


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    rt.wait_for_views(rt.app.seed_pipelines("test").notification_id)
    try:
        yield rt
    finally:
        rt.close()


def done(runtime: Runtime, committed: Any) -> Any:
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def holdings(runtime: Runtime, leaver: UUID) -> dict[str, list[str]]:
    """Three clients, two open deals and a won one, two open tasks and a done one."""
    app = runtime.app
    contacts = [
        str(done(runtime, app.create_contact(actor="test", name=n, responsible_id=leaver)))
        for n in ("Anna", "Boris", "Vera")
    ]
    pipeline_id = seeded_pipeline_id("new-clients")
    deals = [
        str(
            done(
                runtime,
                app.create_deal(
                    actor="test",
                    title=title,
                    pipeline_id=pipeline_id,
                    contact_id=UUID(contacts[0]),
                    manager_id=leaver,
                    amount="1000",
                ),
            )
        )
        for title in ("Boxes", "Tape", "Pallets")
    ]
    done(runtime, app.win_deal(UUID(deals[2]), "test"))
    tasks = [
        str(
            done(
                runtime,
                app.create_task(
                    actor="test", title=t, assignee_id=leaver, contact_id=UUID(contacts[1])
                ),
            )
        )
        for t in ("Call back", "Send offer", "Old one")
    ]
    done(runtime, app.complete_task(UUID(tasks[2]), "test"))
    return {"contacts": contacts, "deals": deals, "tasks": tasks}


def preview_counts(html: str) -> dict[str, int]:
    found = re.findall(r'<li data-kind="(\w+)">[^<]*<strong>(\d+)</strong>', html)
    return {kind: int(n) for kind, n in found}


def confirm(client: TestClient, csrf: str, data: dict[str, Any]) -> Any:
    return client.post(
        "/admin/users/hand-over", data={"csrf_token": csrf, **data}, follow_redirects=False
    )


def test_preview_counts_and_confirm_hands_over_each_item_by_its_own_event(
    runtime: Runtime,
) -> None:
    client, csrf, me = web_client(runtime, "manager")
    leaver = create_user(runtime, "leaver@example.com", "manager", name="Leaving Lena")
    first = create_user(runtime, "first@example.com", "operator", name="First Fyodor")
    second = create_user(runtime, "second@example.com", "operator", name="Second Sasha")
    items = holdings(runtime, leaver)

    page = client.get("/admin/users")
    assert page.status_code == 200
    row = re.search(rf'<tr data-user-id="{leaver}">.*?</tr>', page.text, re.S)
    assert row is not None
    assert re.findall(r'class="held-\w+">(\d+)<', row.group(0)) == ["3", "2", "2"]

    query = {
        "from_user": str(leaver),
        "to_users": [str(first), str(second)],
        "kinds": ["contacts", "deals", "tasks"],
    }
    preview = client.get("/admin/users", params=query)
    assert preview.status_code == 200
    assert preview_counts(preview.text) == {"contacts": 3, "deals": 2, "tasks": 2}
    assert 'action="/admin/users/hand-over"' in preview.text
    card = runtime.queries.contact(items["contacts"][0])
    assert card is not None and str(card["responsible_id"]) == str(
        leaver
    )  # a preview changes nothing

    answer = confirm(client, csrf, query)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/admin/users?contacts=3&deals=2&tasks=2&done=handed-over"
    shown = client.get(answer.headers["location"])
    assert "Handed over: 3 clients, 2 open deals, 2 open tasks." in shown.text

    receivers = {str(first), str(second)}
    owners = [str(runtime.queries.contact(c)["responsible_id"]) for c in items["contacts"]]
    assert set(owners) <= receivers and len(set(owners)) == 2  # shared round-robin
    for deal_id in items["deals"][:2]:
        entries = [e for e in deal_log(runtime.views, deal_id) if e.kind == "manager_changed"]
        assert len(entries) == 1 and entries[0].actor == f"user:{me}"
        assert entries[0].data["manager_id"] in receivers
    won_log = [e.kind for e in deal_log(runtime.views, items["deals"][2])]
    assert "manager_changed" not in won_log  # a closed deal stays with who closed it
    open_tasks = [task(runtime.views, t) for t in items["tasks"][:2]]
    assert {str(t.assignee_id) for t in open_tasks if t} <= receivers
    closed = task(runtime.views, items["tasks"][2])
    assert closed is not None and closed.assignee_id == str(leaver)

    after = client.get("/admin/users").text
    row = re.search(rf'<tr data-user-id="{leaver}">.*?</tr>', after, re.S)
    assert row is not None
    assert re.findall(r'class="held-\w+">(\d+)<', row.group(0)) == ["0", "0", "0"]


def test_only_the_chosen_kinds_move(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "admin")
    leaver = create_user(runtime, "leaver@example.com", "manager", name="Leaving Lena")
    taker = create_user(runtime, "taker@example.com", "manager", name="Taker Tanya")
    items = holdings(runtime, leaver)
    answer = confirm(
        client, csrf, {"from_user": str(leaver), "to_users": [str(taker)], "kinds": ["tasks"]}
    )
    assert answer.status_code == 303
    assert "contacts=0&deals=0&tasks=2" in answer.headers["location"]
    card = runtime.queries.contact(items["contacts"][0])
    assert card is not None and str(card["responsible_id"]) == str(leaver)
    moved = task(runtime.views, items["tasks"][0])
    assert moved is not None and moved.assignee_id == str(taker)


def test_a_wrong_choice_is_refused_by_its_field(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    leaver = create_user(runtime, "leaver@example.com", "manager", name="Leaving Lena")
    items = holdings(runtime, leaver)
    nobody = client.get("/admin/users", params={"from_user": str(leaver), "kinds": ["tasks"]})
    assert nobody.status_code == 422
    assert 'data-error-for="to_users">Choose at least one user who takes over.<' in nobody.text
    herself = confirm(
        client, csrf, {"from_user": str(leaver), "to_users": [str(leaver)], "kinds": ["tasks"]}
    )
    assert herself.status_code == 422
    assert "A user cannot hand over to themselves." in herself.text
    nothing = client.get("/admin/users", params={"from_user": str(leaver), "to_users": [str(_me)]})
    assert nothing.status_code == 422 and 'data-error-for="kinds"' in nothing.text
    moved = task(runtime.views, items["tasks"][0])
    assert moved is not None and moved.assignee_id == str(leaver)


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_managers_and_admins_hand_over(runtime: Runtime, role: str) -> None:
    client, csrf, _me = web_client(runtime, role)
    leaver = create_user(runtime, "leaver@example.com", "manager", name="Leaving Lena")
    taker = create_user(runtime, "taker@example.com", "manager", name="Taker Tanya")
    items = holdings(runtime, leaver)
    answer = confirm(
        client, csrf, {"from_user": str(leaver), "to_users": [str(taker)], "kinds": ["tasks"]}
    )
    assert answer.status_code == 403
    moved = task(runtime.views, items["tasks"][0])
    assert moved is not None and moved.assignee_id == str(leaver)


def test_the_hand_over_speaks_russian(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "manager", locale="ru")
    page = client.get("/admin/users")
    assert "Пользователи" in page.text and "Передать дела пользователя" in page.text
