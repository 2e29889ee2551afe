"""The model guards its own rules: merge chains, identity claims, closed tasks, campaign states.

These run against the in-memory store (``eventsourcing.popo``): what they check is
decided by the aggregates and the command helpers, not by a database.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from tests.domain.test_event_topics import STORED_TOPICS
from threadline.domain.commands.application import Threadline
from threadline.domain.commands.identity_claims import claim_identity, claim_owner
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.campaign import Campaign, CampaignState, SendOutcome
from threadline.domain.model.contact import MAX_MERGE_HOPS, Contact, survivor
from threadline.domain.model.errors import Conflict
from threadline.domain.model.task import Task
from threadline.domain.model.template import template_id_for


@pytest.fixture
def app() -> Iterator[Threadline]:
    application = Threadline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        yield application
    finally:
        application.close()


def contact(name: str = "Anna") -> Contact:
    return Contact(
        personal={"display_name": name},
        lifecycle="lead",
        source={},
        responsible_id=None,
        actor="test",
        correlation_id="c",
    )


def test_survivor_follows_merges_to_the_last_contact() -> None:
    a, b, c = contact("a"), contact("b"), contact("c")
    b.absorb_duplicate(a, "test", "c")
    c.absorb_duplicate(b, "test", "c")
    by_id = {x.id: x for x in (a, b, c)}
    assert survivor(a, by_id.__getitem__) is c
    assert survivor(c, by_id.__getitem__) is c


def test_survivor_stops_after_the_hop_limit_on_a_cycle() -> None:
    a, b = contact("a"), contact("b")
    a.merged_into, b.merged_into = b.id, a.id  # only a bug could make this
    loads: list[UUID] = []

    def load(contact_id: UUID) -> Contact:
        loads.append(contact_id)
        return a if contact_id == a.id else b

    survivor(a, load)
    assert len(loads) == MAX_MERGE_HOPS
    assert survivor(a, load, max_hops=3) is b  # a -> b -> a -> b


def test_a_merged_contact_takes_part_in_no_other_merge() -> None:
    a, b, c = contact("a"), contact("b"), contact("c")
    b.absorb_duplicate(a, "test", "c")
    with pytest.raises(Conflict, match=f"contact {a.id} was already merged into {b.id}"):
        c.absorb_duplicate(a, "test", "c")
    with pytest.raises(Conflict, match="already merged"):
        a.absorb_duplicate(c, "test", "c")


def test_an_identity_is_claimed_once_and_refused_to_another_owner(app: Threadline) -> None:
    owner, other = uuid4(), uuid4()

    def claim(unit: UnitOfWork, who: UUID, taken: str = "") -> object:
        return claim_identity(unit, "email", "anna@example.com", who, "test", "c", taken)

    assert app.writer.submit(lambda unit: claim(unit, owner)).value is not None
    assert app.writer.submit(lambda unit: claim(unit, owner)).value is None  # holds it already
    with pytest.raises(Conflict, match=r"email anna@example\.com belongs to another contact"):
        app.writer.submit(lambda unit: claim(unit, other))
    with pytest.raises(Conflict, match=r"^taken$"):
        app.writer.submit(lambda unit: claim(unit, other, "taken"))
    assert app.writer.submit(lambda u: claim_owner(u, "email", "anna@example.com")).value == owner
    assert app.writer.submit(lambda u: claim_owner(u, "email", "bob@example.com")).value is None


def test_a_closed_task_refuses_to_be_closed_or_rescheduled_again() -> None:
    task = Task(
        type="other", due_at=None, assignee_id=None, contact_id=None, deal_id=None,
        conversation_id=None, personal={"title": "t"}, actor="test", correlation_id="c",
    )  # fmt: skip
    task.cancel(None, "test", "c")
    message = f"task {task.id} is already cancelled"
    with pytest.raises(Conflict, match=message):
        task.complete(None, "test", "c")
    with pytest.raises(Conflict, match=message):
        task.cancel(None, "test", "c")
    with pytest.raises(Conflict, match=message):
        task.reschedule(datetime(2030, 1, 1, tzinfo=UTC), None, "test", "c")
    assert [type(e).__name__ for e in task.collect_events()] == ["TaskCreated", "TaskCancelled"]


def test_a_campaign_starts_once_and_pauses_only_while_it_runs() -> None:
    campaign = Campaign(
        id=uuid4(), name="n", template_slug="t", template_id=template_id_for("t"), segment={},
        channel="email", per_minute=None, actor="test", correlation_id="c",
    )  # fmt: skip
    with pytest.raises(Conflict, match=f"campaign {campaign.id} is draft: nothing to pause"):
        campaign.pause("test", "c")
    with pytest.raises(Conflict, match="is draft: nothing to resume"):
        campaign.resume("test", "c")
    assert campaign.hold() is SendOutcome.STOPPED
    campaign.start(1, "test", "c")
    with pytest.raises(Conflict, match=f"campaign {campaign.id} is already resolving"):
        campaign.start(1, "test", "c")
    campaign.audience_resolved(0, "test", "c")
    assert campaign.state == CampaignState.SENDING.value and campaign.hold() is None
    campaign.pause("test", "c")
    campaign.pause("test", "c")  # paused already: nothing more is recorded
    assert campaign.hold() is SendOutcome.PAUSED
    campaign.resume("test", "c")
    campaign.resume("test", "c")
    names = [type(e).__name__ for e in campaign.collect_events()]
    assert names.count("CampaignPaused") == 1 and names.count("CampaignResumed") == 1


def test_every_stored_event_class_is_declared_in_its_aggregate() -> None:
    """Type checkers and "go to definition" see every event: none is made up by a decorator."""
    from eventsourcing.utils import resolve_topic

    for topic in STORED_TOPICS:
        aggregate_topic, _, name = topic.rpartition(".")
        if name in ("Event", "Created"):
            continue  # the library's own bases of every aggregate
        source = inspect.getsource(resolve_topic(aggregate_topic))
        assert f"    class {name}(" in source, f"{topic} is not declared explicitly"
