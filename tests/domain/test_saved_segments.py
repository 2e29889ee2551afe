"""Saved segments in the log: unique names, changes, deletion, and what the events carry."""

from __future__ import annotations

from uuid import UUID

import pytest

from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.saved_segment import SavedSegment
from threadline.projections.saved_segments import saved_segment, saved_segment_named, saved_segments
from threadline.services.runtime import Runtime


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def test_save_change_delete_and_the_name_stays_unique(runtime: Runtime) -> None:
    app = runtime.app
    vip = app.save_segment(
        "VIP  clients", [("tag", "vip")], "user:u1", description="Our best"
    ).value
    # the name is unique whatever the case and the spacing
    with pytest.raises(Conflict):
        app.save_segment("vip clients", [("tag", "x")], "user:u1")
    other = app.save_segment("Silent", [("last_contact_to", "2026-01-01")], "user:u2").value
    with pytest.raises(Conflict):
        app.change_segment(other, "user:u2", name="VIP CLIENTS")
    settle(runtime)
    row = saved_segment(runtime.views, str(vip))
    assert row is not None
    assert (row.name, row.description, row.pairs) == ("VIP clients", "Our best", [("tag", "vip")])
    assert [r.name for r in saved_segments(runtime.views)] == ["Silent", "VIP clients"]

    # a rename frees the old name; an unchanged save records nothing
    assert app.change_segment(vip, "user:u1", name="Top clients").value is True
    assert app.change_segment(vip, "user:u1", name="Top clients").value is False
    again = app.save_segment("VIP clients", [("abc_class", "A")], "user:u1").value
    assert app.change_segment(
        vip, "user:u3", pairs=[("tag", "vip"), ("tag", "gold")], description=""
    ).value
    settle(runtime)
    row = saved_segment(runtime.views, str(vip))
    assert row is not None and row.name == "Top clients" and row.description == ""
    assert row.pairs == [("tag", "vip"), ("tag", "gold")] and row.updated_by == "user:u3"
    found = saved_segment_named(runtime.views, "vip clients")
    assert found is not None and found.id == str(again)

    # deleting frees the name; a deleted segment refuses changes and a second delete
    app.delete_segment(again, "user:u1")
    with pytest.raises(Conflict):
        app.change_segment(again, "user:u1", name="Whatever")
    with pytest.raises(Conflict):
        app.delete_segment(again, "user:u1")
    third = app.save_segment("VIP clients", [], "user:u1").value
    settle(runtime)
    assert saved_segment(runtime.views, str(again)) is None
    assert app.saved_segment(again) is None and app.saved_segment(third) is not None
    with pytest.raises(NotFound):
        app.change_segment(UUID(int=7), "user:u1", name="x")


def test_events_carry_actor_correlation_and_personal_description(runtime: Runtime) -> None:
    app = runtime.app
    segment_id = app.save_segment(
        "Leads", [("lifecycle", "lead")], "user:u1", description="d"
    ).value
    app.change_segment(segment_id, "user:u2", description="new text")
    app.delete_segment(segment_id, "user:u3")
    events = list(app.repository.event_store.get(segment_id))
    assert [type(e).__name__ for e in events] == [
        "SegmentSaved",
        "SegmentChanged",
        "SegmentDeleted",
    ]
    assert [e.actor for e in events] == ["user:u1", "user:u2", "user:u3"]
    assert all(e.correlation_id for e in events)
    saved, changed, _ = events
    assert isinstance(saved, SavedSegment.SegmentSaved)
    assert saved.personal == {"description": "d"} and saved.pairs == [["lifecycle", "lead"]]
    assert changed.personal == {"description": "new text"} and changed.changes == {}


def test_shape_checks(runtime: Runtime) -> None:
    app = runtime.app
    with pytest.raises(InvalidInput) as error:
        app.save_segment("  ", [], "user:u1")
    assert error.value.field == "name"
    with pytest.raises(InvalidInput) as error:
        app.save_segment("x" * 201, [], "user:u1")
    assert error.value.field == "name"
    with pytest.raises(InvalidInput) as error:
        app.save_segment("ok", [("tag",)], "user:u1")  # type: ignore[list-item]
    assert error.value.field == "filter[0]"
    with pytest.raises(InvalidInput) as error:
        app.save_segment("ok", [("tag", "v")] * 201, "user:u1")
    assert error.value.field == "filter"
    with pytest.raises(InvalidInput) as error:
        app.save_segment("ok", [], "user:u1", description="x" * 2001)
    assert error.value.field == "description"
