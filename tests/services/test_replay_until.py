"""Replaying the log: views built live equal views rebuilt by replay, and `replay --until` a
position builds, in a database of its own, exactly the views the live ones were at that position
(hypothesis over random sequences of commands; SQLite, and one sequence on PostgreSQL)."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import make_runtime
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.runner import FrozenViews
from threadline.projections.sql import ViewDatabase, ViewReader
from threadline.services.cli import app as cli
from threadline.services.runtime import Runtime
from threadline.services.store import sqlite_path, views_url_as_of
from threadline.services.view_stack import PROJECTION_CLASSES, replay_as_of, views_url_of

PEOPLE = ("anna", "boris", "vera")

Command = tuple[str, int, str]
"""(what, whom: an index into PEOPLE, a word)."""

commands = st.lists(
    st.tuples(
        st.sampled_from(["write", "rename", "tag", "note", "resolve", "task", "merge"]),
        st.integers(0, len(PEOPLE) - 1),
        st.sampled_from(["первый", "second", "third", "ёлка"]),
    ),
    min_size=2,
    max_size=14,
)


def dump(db: ViewReader) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for cls in PROJECTION_CLASSES:
        for table in cls.tables:
            rows = db.query(f"SELECT * FROM {table}")
            tables[table] = sorted((tuple(r.items()) for r in rows), key=repr)
    return tables


def run(runtime: Runtime, steps: list[Command], seen: dict[int, tuple[UUID, UUID]]) -> None:
    """Apply the commands through the application (the ones that make no sense yet: skipped).

    `seen` maps a person to their contact (a merged one: its survivor) and first conversation.
    """
    app = runtime.app
    for number, (what, whom, word) in enumerate(steps):
        known = seen.get(whom)
        if what == "write" or known is None:
            result = runtime.channels.ingest(
                InboundMessage.create(
                    channel="email", dedup_key=f"{len(seen)}-{number}-{word}-{whom}",
                    identities=[("email", f"{PEOPLE[whom]}@example.com")],
                    sender_name=PEOPLE[whom].title(), subject=word, text=f"{word} {number}",
                )
            )  # fmt: skip
            seen.setdefault(whom, (result.contact_id, result.conversation_id))
            continue
        contact, conversation = known
        if what == "rename":
            app.update_contact(contact, "user:test", name=f"{PEOPLE[whom]} {word}")
        elif what == "tag":
            app.update_contact(contact, "user:test", add_tags=[word])
        elif what == "note":
            app.add_note(conversation, f"note {word}", "user:test")
        elif what == "resolve":
            app.change_conversation_status(conversation, "resolved", "user:test")
        elif what == "task":
            app.create_task("user:test", f"call {word}", contact_id=contact)
        elif what == "merge":
            other = seen.get((whom + 1) % len(PEOPLE))
            if other is not None and other[0] != contact:
                app.merge_contacts(contact, other[0], "user:test")
                for person, (their, conversation_of) in list(seen.items()):
                    if their == other[0]:  # the duplicate's people now live on the survivor
                        seen[person] = (contact, conversation_of)


def settled(runtime: Runtime) -> int:
    head = int(runtime.app.recorder.max_notification_id() or 0)
    assert runtime.wait_for_views(head, timeout=60), "the views did not catch up"
    return head


def check_replays(runtime: Runtime, first: list[Command], rest: list[Command]) -> None:
    seen: dict[int, tuple[UUID, UUID]] = {}
    run(runtime, first, seen)
    then = settled(runtime)
    live_then = dump(runtime.views)
    run(runtime, rest, seen)
    settled(runtime)
    live_now = dump(runtime.views)
    runtime.rebuild_views()
    assert dump(runtime.views) == live_now  # the live views are what replay builds
    into = views_url_as_of(views_url_of(runtime.settings), then)
    replay_as_of(runtime.settings, runtime.app, then, into)
    assert dump(runtime.views) == live_now  # ... and replaying as of then left them alone
    if into.startswith("sqlite:///"):
        connection = sqlite3.connect(sqlite_path(into))
        connection.row_factory = sqlite3.Row

        class Reader:
            def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
                return [dict(r) for r in connection.execute(sql, params).fetchall()]

            def query_one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
                rows = self.query(sql, params)
                return rows[0] if rows else None

        try:
            assert dump(Reader()) == live_then
        finally:
            connection.close()
    else:
        from threadline.services.view_stack import budget_of, close_stores_of, open_views

        stack = open_views(runtime.settings, into, budget_of(runtime.settings), runtime.app, False)
        try:
            assert dump(stack.views) == live_then
            assert stack.runner.frozen == then
            with pytest.raises(FrozenViews):
                stack.runner.catch_up()
        finally:
            close_stores_of(stack)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=commands, rest=commands)
def test_replay_and_replay_until_equal_the_live_views(
    first: list[Command], rest: list[Command]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        runtime = make_runtime(f"sqlite:///{folder}/threadline.db")
        try:
            check_replays(runtime, first, rest)
        finally:
            runtime.close()


FIXED_FIRST: list[Command] = [("write", 0, "первый"), ("tag", 0, "ёлка"), ("write", 1, "second")]
FIXED_REST: list[Command] = [
    ("rename", 0, "third"), ("note", 1, "x"), ("merge", 0, "y"), ("resolve", 0, "z"),
    ("task", 1, "ёлка"), ("write", 2, "third"),
]  # fmt: skip


def test_replay_until_on_postgresql(postgres_schema_url: str) -> None:
    runtime = make_runtime(postgres_schema_url)
    try:
        check_replays(runtime, FIXED_FIRST, FIXED_REST)
    finally:
        runtime.close()
        import psycopg

        from tests.conftest import POSTGRES_URL

        schema = postgres_schema_url.split("schema=")[1]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [f"{schema}_until_%"]
            ).fetchall():
                conn.execute(f'DROP SCHEMA IF EXISTS "{row[0]}" CASCADE')


def test_the_replay_command_builds_a_frozen_set_the_server_refuses_to_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/threadline.db"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    runtime = make_runtime(url)
    try:
        seen: dict[int, tuple[UUID, UUID]] = {}
        run(runtime, FIXED_FIRST, seen)
        then = settled(runtime)
        run(runtime, FIXED_REST, seen)
        settled(runtime)
    finally:
        runtime.close()
    done = CliRunner().invoke(cli, ["replay", "--until-position", str(then)])
    assert done.exit_code == 0, done.output
    target = f"sqlite:///{tmp_path}/threadline-views-until-{then}.db"
    assert target in done.output.replace("\n", "")
    assert Path(sqlite_path(target)).exists()
    # a server pointed at it without --no-projections would move it on: it refuses
    monkeypatch.setenv("THREADLINE_VIEWS_URL", target)
    frozen = Runtime(runtime.settings.with_overrides(views_url=target))
    try:
        with pytest.raises(FrozenViews):
            frozen.start()
        names = ViewDatabase(frozen.views.recorder).query("SELECT COUNT(*) AS n FROM contacts")
        assert names[0]["n"] == 2  # anna and boris then; vera came later
    finally:
        frozen.close()
    refused = CliRunner().invoke(cli, ["replay"])
    assert refused.exit_code != 0
    # a moment: the audit index of the live views turns it into the position
    monkeypatch.delenv("THREADLINE_VIEWS_URL")
    by_time = CliRunner().invoke(cli, ["replay", "--until", "2000-01-01T00:00:00"])
    assert by_time.exit_code == 0, by_time.output
    assert "as of position 0" in by_time.output
