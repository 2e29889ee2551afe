"""Bulk hand-over (SQLite and PostgreSQL): one event per item under one correlation id, shared
round-robin, chunked, items that changed hands meanwhile left alone, history that says who had
what when, and the HTTP endpoint with its roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.domain.commands.hand_over import HandOverPlan, HandOverResult
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.deals import deal, deal_log
from threadline.projections.tasks import task
from threadline.services.api.app import create_app
from threadline.services.hand_over import hand_over, items_of
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
HANDED_TOPICS = ("ContactResponsibleAssigned", "DealManagerChanged", "TaskReassigned")


def done(committed: Committed[Any]) -> Any:
    """Wait for a command's result (its events are in the log)."""
    return committed.value


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def new_user(runtime: Runtime, email: str, role: str = "manager") -> UUID:
    user_id: UUID = runtime.app.create_user(email, role, "test").value[0]
    return user_id


class Book:
    """A departing manager's book: three clients, two open deals and a won one, two open tasks
    and a done one; plus a client of someone else, who must stay theirs."""

    def __init__(self, runtime: Runtime) -> None:
        app = runtime.app
        done(app.seed_pipelines("test"))
        self.leaving = new_user(runtime, "leaving@example.com")
        self.anna = new_user(runtime, "anna@example.com")
        self.boris = new_user(runtime, "boris@example.com")
        self.clients = sorted(
            (
                app.create_contact("test", f"Клиент {i}", responsible_id=self.leaving).value
                for i in range(3)
            ),
            key=str,
        )
        self.others = app.create_contact("test", "Чужой клиент", responsible_id=self.anna).value
        self.deals = sorted(
            (
                app.create_deal(
                    "test", f"Сделка {i}", NEW, contact_id=self.clients[i], manager_id=self.leaving
                ).value
                for i in range(2)
            ),
            key=str,
        )
        self.won = app.create_deal(
            "test", "Закрытая", NEW, contact_id=self.clients[2], manager_id=self.leaving
        ).value
        done(app.win_deal(self.won, "test"))
        self.tasks = sorted(
            (
                app.create_task(
                    "test", f"Позвонить {i}", assignee_id=self.leaving, contact_id=self.clients[i]
                ).value
                for i in range(2)
            ),
            key=str,
        )
        self.done = app.create_task("test", "Сделано", assignee_id=self.leaving).value
        done(app.complete_task(self.done, "test"))
        settle(runtime)
        self.start = runtime.app.recorder.max_notification_id() or 0


def events_since(runtime: Runtime, start: int) -> list[Any]:
    notifications = runtime.app.recorder.select_notifications(start=start + 1, limit=100_000)
    return [runtime.app.mapper.to_domain_event(n) for n in notifications]


def test_one_event_per_item_one_correlation_id_round_robin(runtime: Runtime) -> None:
    book = Book(runtime)
    outcome = hand_over(
        runtime.app, runtime.views, book.leaving, [book.anna, book.boris], "user:admin"
    )
    settle(runtime)
    assert (outcome.contacts, outcome.deals, outcome.tasks) == (3, 2, 2)
    assert outcome.planned == {"contacts": 3, "deals": 2, "tasks": 2}

    events = events_since(runtime, book.start)
    handed = [e for e in events if type(e).__name__ in HANDED_TOPICS]
    assert len(handed) == 7 and len(events) == 7
    assert {e.correlation_id for e in handed} == {outcome.correlation_id}
    assert {e.actor for e in handed} == {"user:admin"}
    assert {e.originator_id for e in handed} == {*book.clients, *book.deals, *book.tasks}

    # round-robin kind by kind, in id order: Anna, Boris, Anna...
    cards = [runtime.queries.contact(str(c)) for c in book.clients]
    assert [c["responsible_id"] if c else None for c in cards] == [
        str(book.anna),
        str(book.boris),
        str(book.anna),
    ]
    managers = [deal(runtime.views, d) for d in book.deals]
    assert [d.manager_id if d else None for d in managers] == [str(book.anna), str(book.boris)]
    assignees = [task(runtime.views, t) for t in book.tasks]
    assert [t.assignee_id if t else None for t in assignees] == [str(book.anna), str(book.boris)]

    # what was closed, or someone else's, stays as it was
    won = deal(runtime.views, book.won)
    assert won is not None and won.manager_id == str(book.leaving)
    done = task(runtime.views, book.done)
    assert done is not None and done.assignee_id == str(book.leaving)
    other = runtime.queries.contact(str(book.others))
    assert other is not None and other["responsible_id"] == str(book.anna)
    assert items_of(runtime.views, book.leaving).counts() == {
        "contacts": 0,
        "deals": 0,
        "tasks": 0,
    }


def test_history_shows_who_had_what_when(runtime: Runtime) -> None:
    book = Book(runtime)
    outcome = hand_over(runtime.app, runtime.views, book.leaving, [book.anna], "user:admin")
    settle(runtime)
    first = str(book.clients[0])
    timeline = runtime.queries.timeline(first, limit=100)
    handed = [r for r in timeline if r["correlation_id"] == outcome.correlation_id]
    # the client's responsible and the task on the client's timeline, both with the hand-over's id
    assert sorted(r["kind"] for r in handed) == ["contact.responsible_assigned", "task.reassigned"]
    assigned = next(r for r in handed if r["kind"] == "contact.responsible_assigned")
    assert assigned["data"]["responsible_id"] == str(book.anna)
    assert assigned["actor"] == "user:admin"
    created = next(r for r in timeline if r["kind"] == "contact.created")
    assert created["seq"] < assigned["seq"]  # first the leaving manager's, then Anna's
    log = deal_log(runtime.views, book.deals[0])
    changes = [row for row in log if row.kind == "manager_changed"]
    assert [row.data["manager_id"] for row in changes] == [str(book.anna)]
    assert changes[0].actor == "user:admin"


def test_only_the_kinds_asked_for_and_in_chunks(runtime: Runtime) -> None:
    book = Book(runtime)
    outcome = hand_over(
        runtime.app, runtime.views, book.leaving, [book.boris], "user:admin", kinds=["deals"]
    )
    settle(runtime)
    assert (outcome.contacts, outcome.deals, outcome.tasks) == (0, 2, 0)
    assert items_of(runtime.views, book.leaving).counts() == {
        "contacts": 3,
        "deals": 0,
        "tasks": 2,
    }
    calls: list[HandOverPlan] = []

    class Counting:
        def hand_over(
            self,
            from_user: UUID,
            plan: HandOverPlan,
            actor: str,
            correlation_id: str | None = None,
        ) -> Committed[HandOverResult]:
            calls.append(plan)
            return runtime.app.hand_over(from_user, plan, actor, correlation_id)

    rest = hand_over(
        Counting(), runtime.views, book.leaving, [book.anna, book.boris], "user:admin", chunk=2
    )
    settle(runtime)
    # 5 items (3 clients, 2 tasks) in chunks of at most 2: three commands, one correlation id
    assert [len(p.contacts) + len(p.deals) + len(p.tasks) for p in calls] == [2, 2, 1]
    assert (rest.contacts, rest.deals, rest.tasks) == (3, 0, 2)
    events = events_since(runtime, book.start)
    ids = {e.correlation_id for e in events if type(e).__name__ in HANDED_TOPICS}
    assert ids == {outcome.correlation_id, rest.correlation_id}


def test_items_that_changed_hands_meanwhile_are_left_alone(runtime: Runtime) -> None:
    book = Book(runtime)
    moved_client, moved_task = book.clients[0], book.tasks[0]

    class Racing:
        """Someone else reassigns a client and a task between the plan and the command."""

        def hand_over(
            self,
            from_user: UUID,
            plan: HandOverPlan,
            actor: str,
            correlation_id: str | None = None,
        ) -> Committed[HandOverResult]:
            done(runtime.app.update_contact(moved_client, "user:other", responsible_id=book.boris))
            done(runtime.app.reassign_task(moved_task, book.boris, "user:other"))
            return runtime.app.hand_over(from_user, plan, actor, correlation_id)

    outcome = hand_over(Racing(), runtime.views, book.leaving, [book.anna], "user:admin")
    settle(runtime)
    assert outcome.planned == {"contacts": 3, "deals": 2, "tasks": 2}
    assert (outcome.contacts, outcome.deals, outcome.tasks) == (2, 2, 1)
    card = runtime.queries.contact(str(moved_client))
    assert card is not None and card["responsible_id"] == str(book.boris)
    moved = task(runtime.views, moved_task)
    assert moved is not None and moved.assignee_id == str(book.boris)


def test_refusals(runtime: Runtime) -> None:
    book = Book(runtime)
    with pytest.raises(InvalidInput):
        hand_over(runtime.app, runtime.views, book.leaving, [], "user:admin")
    with pytest.raises(InvalidInput):
        hand_over(runtime.app, runtime.views, book.leaving, [book.leaving], "user:admin")
    with pytest.raises(NotFound):
        hand_over(
            runtime.app,
            runtime.views,
            book.leaving,
            [UUID("00000000-0000-0000-0000-000000000001")],
            "user:admin",
        )
    settle(runtime)
    assert items_of(runtime.views, book.leaving).counts() == {
        "contacts": 3,
        "deals": 2,
        "tasks": 2,
    }


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(database_url, admin_token="admin-secret")
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def test_the_hand_over_endpoint(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    book = Book(runtime)
    tokens = {}
    for role in ("operator", "auditor"):
        made = client.post(
            "/api/users",
            json={"email": f"{role}@example.com", "role": role},
            headers={"Authorization": "Bearer admin-secret"},
        )
        tokens[role] = {"Authorization": f"Bearer {made.json()['token']}"}
    issued = runtime.app.issue_token(book.anna, "test", "test")
    manager_token = issued.value
    runtime.wait_for_views(issued.notification_id, timeout=60)  # the token is in the views
    manager = {"Authorization": f"Bearer {manager_token}"}
    url = f"/api/users/{book.leaving}/hand-over"
    body = {"to_user_ids": [str(book.anna)], "kinds": ["contacts", "tasks"]}
    for role in ("operator", "auditor"):
        assert client.post(url, json=body, headers=tokens[role]).status_code == 403
    assert client.post(url, json={"to_user_ids": []}, headers=manager).status_code == 422
    assert (
        client.post(url, json={"to_user_ids": [str(book.leaving)]}, headers=manager).status_code
        == 422
    )
    answer = client.post(url, json=body, headers=manager)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["contacts"], result["deals"], result["tasks"]) == (3, 0, 2)
    assert result["planned"] == {"contacts": 3, "deals": 0, "tasks": 2}
    # read-your-writes: the views already show the new owner
    card = client.get(f"/api/contacts/{book.clients[0]}", headers=manager).json()
    assert card["responsible_id"] == str(book.anna)
    timeline = client.get(f"/api/contacts/{book.clients[0]}/timeline", headers=manager).json()
    assert result["correlation_id"] in {r["correlation_id"] for r in timeline["items"]}
    again = client.post(url, json=body, headers=manager).json()
    assert (again["contacts"], again["tasks"]) == (0, 0)
