"""The log's SHA-256 chain (issue 16, tamper evidence): sealing follows the log, `verify`
finds the first position where stored events and chain disagree, on SQLite and PostgreSQL,
and a signed checkpoint catches a rewrite of the whole chain.

The tampering is done the way an intruder with database access would: SQL on the store's
own table, bypassing the application."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.services.test_cli import describe, run_cli
from tests.waiting import wait_for
from threadline.services.audit_chain import (
    EventChain,
    check_checkpoint,
    load_or_make_key,
    make_checkpoint,
)
from threadline.services.runtime import Runtime


def some_history(runtime: Runtime, contacts: int = 6) -> int:
    """Contacts and their changes: a few dozen events; the last position."""
    for i in range(contacts):
        made = runtime.app.create_contact("test", f"Клиент {i}").value
        _ = runtime.app.update_contact(made, "test", add_tags=[f"метка-{i}"]).value
    return int(runtime.app.recorder.max_notification_id() or 0)


def sealed(runtime: Runtime) -> EventChain:
    """The chain once the runtime's sealer has caught up with the log."""
    last = int(runtime.app.recorder.max_notification_id() or 0)
    chain = runtime.chain
    wait_for(lambda: chain.head()[0] >= last, what="the sealer to reach the log's end")
    return chain


def store_sql(chain: EventChain, sql: str, params: list[Any]) -> None:
    """A direct write to the store's tables (`{events}`: the events' table, `{id}`: its
    notification id column)."""
    column = "notification_id" if chain.db.postgres else "rowid"
    with chain.db.transaction() as cur:
        cur.execute(sql.format(id=column, events=chain.recorder.events_table_name), params)


def stored_state(chain: EventChain, position: int) -> bytes:
    (event,) = chain.recorder.select_notifications(start=position, limit=1)
    return bytes(event.state)


def test_the_sealer_follows_the_log_and_an_untouched_log_verifies(runtime: Runtime) -> None:
    last = some_history(runtime)
    chain = sealed(runtime)
    report = chain.verify()
    assert report.intact, report
    assert report.checked == len(chain.recorder.select_notifications(start=1, limit=10_000))
    assert report.sealed_position == last and report.unsealed == 0
    # sealing again adds nothing, and a second sealer (another process) changes nothing
    assert chain.seal() == 0
    assert EventChain(chain.recorder).seal() == 0


@pytest.mark.parametrize("how", ["update", "delete", "reorder", "unseal"])
def test_tampering_by_sql_is_found_at_its_position(runtime: Runtime, how: str) -> None:
    some_history(runtime)
    chain = sealed(runtime)
    target = chain.head()[0] // 2
    if how == "update":  # one byte of one event's stored state
        state = bytearray(stored_state(chain, target))
        state[-1] ^= 1
        store_sql(chain, "UPDATE {events} SET state = ? WHERE {id} = ?", [bytes(state), target])
    elif how == "delete":
        store_sql(chain, "DELETE FROM {events} WHERE {id} = ?", [target])
    elif how == "reorder":  # two neighbours swap their contents (and aggregates)
        first, second = chain.recorder.select_notifications(start=target, limit=2)
        store_sql(chain, "DELETE FROM {events} WHERE {id} IN (?, ?)", [first.id, second.id])
        for at, event in ((first.id, second), (second.id, first)):
            columns = "originator_id, originator_version, topic, state"
            store_sql(
                chain,
                f"INSERT INTO {{events}} ({{id}}, {columns}) VALUES (?, ?, ?, ?, ?)",
                [
                    at,
                    event.originator_id if chain.db.postgres else event.originator_id.hex,
                    event.originator_version,
                    event.topic,
                    event.state,
                ],
            )
    else:  # the chain's own row removed: the event is there but was never sealed
        store_sql(chain, "DELETE FROM event_chain WHERE position = ?", [target])
    report = chain.verify()
    assert not report.intact
    assert report.broken_at == target, report
    expected = {
        "update": "changed",
        "delete": "no longer stored",
        "reorder": "changed",
        "unseal": "never sealed",
    }
    assert expected[how] in report.reason


def test_a_checkpoint_catches_a_rewritten_chain(runtime: Runtime, tmp_path: Path) -> None:
    some_history(runtime)
    chain = sealed(runtime)
    key = load_or_make_key(tmp_path / "signing.pem")
    assert (tmp_path / "signing.pem").stat().st_mode & 0o777 == 0o600
    before = make_checkpoint(chain, key)
    assert check_checkpoint(chain, before) is None
    assert check_checkpoint(chain, before, [before["public_key"]]) is None
    # an intruder changes an event and recomputes the chain from there: verify alone agrees
    target = chain.head()[0] - 3
    state = bytearray(stored_state(chain, target))
    state[0] ^= 1
    store_sql(chain, "UPDATE {events} SET state = ? WHERE {id} = ?", [bytes(state), target])
    store_sql(chain, "DELETE FROM event_chain WHERE position >= ?", [target])
    chain.seal()
    assert chain.verify().intact
    # but the checkpoint made before does not hold
    problem = check_checkpoint(chain, before)
    assert problem is not None and "not what the checkpoint signed" in problem
    # a checkpoint whose position or link was edited fails its signature
    edited = {**before, "position": before["position"] - 1}
    assert "signature" in str(check_checkpoint(chain, edited))
    # and one signed by another key is refused when the auditor names the trusted key
    stranger = make_checkpoint(chain, Ed25519PrivateKey.generate())
    assert check_checkpoint(chain, stranger) is None
    assert "not trusted" in str(check_checkpoint(chain, stranger, [before["public_key"]]))


def test_the_audit_commands_exit_non_zero_on_a_broken_chain(
    sqlite_url: str, tmp_path: Path
) -> None:
    from tests.conftest import make_runtime

    runtime = make_runtime(sqlite_url)
    try:
        some_history(runtime, contacts=3)
        chain = sealed(runtime)
    finally:
        runtime.close()
    made = run_cli(
        "audit",
        "checkpoint",
        "--out",
        str(tmp_path / "cp.json"),
        "--key",
        str(tmp_path / "k.pem"),
        database_url=sqlite_url,
        cwd=tmp_path,
    )
    assert made.returncode == 0, describe(made)
    checkpoint = json.loads((tmp_path / "cp.json").read_text())
    fine = run_cli(
        "audit",
        "verify",
        "--checkpoint",
        str(tmp_path / "cp.json"),
        database_url=sqlite_url,
        cwd=tmp_path,
    )
    assert fine.returncode == 0, describe(fine)
    assert "chain intact" in fine.stderr and "holds" in fine.stderr, describe(fine)

    runtime = make_runtime(sqlite_url)
    try:
        chain = runtime.chain
        state = bytearray(stored_state(chain, 2))
        state[-1] ^= 1
        store_sql(chain, "UPDATE {events} SET state = ? WHERE {id} = ?", [bytes(state), 2])
    finally:
        runtime.close()
    broken = run_cli(
        "audit",
        "verify",
        "--checkpoint",
        str(tmp_path / "cp.json"),
        "--trusted-key",
        checkpoint["public_key"],
        database_url=sqlite_url,
        cwd=tmp_path,
    )
    assert broken.returncode == 1, describe(broken)
    assert "chain broken at position 2" in broken.stderr, describe(broken)
    assert "not what the checkpoint signed" in broken.stderr, describe(broken)
