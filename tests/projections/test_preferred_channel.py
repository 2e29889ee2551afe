"""The preferred channel (most inbound contacts, ties to the most recent) on both backends.

From T0 = 2 March 2026 10:00 UTC:

- Анна (anna@example.com, telegram 501): telegram at T0, e-mail at +1 h and +2 h, telegram at
  +3 h: two and two, the latest is telegram => telegram. An e-mail auto-reply of hers at
  +4 h and our reply at +5 h do not count (counted, e-mail would lead 3 to 2).
- Борис (+79161112233): SMS at T0, an incoming call at +1 h that nobody answers (missed):
  one and one, the call is later => voice.
- Вера (+79162223344): SMS at +10 min and +20 min; merged into Борис: his SMS become 3,
  voice 1 => sms. Вера's own preferred channel is gone with her.
"""

# Russian names on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.contact_inbound import inbound_totals, preferred_channel
from threadline.projections.queries import ContactFilter
from threadline.projections.segments import build_contact_filter, pairs_of
from threadline.services.runtime import Runtime

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def receive(runtime: Runtime, moment: datetime, key: str, channel: str, **kw: Any) -> Any:
    identities = [(k, kw.pop(k)) for k in ("email", "phone", "telegram") if k in kw]
    with recorded_at(moment):
        return runtime.app.ingest(
            InboundMessage.create(
                channel=channel, dedup_key=key, identities=identities, text="hi", **kw
            )
        ).value


def build(runtime: Runtime) -> dict[str, UUID]:
    anna = dict(email="anna@example.com", telegram="501", sender_name="Анна")
    first = receive(runtime, T0, "a1", "telegram", telegram="501", sender_name="Анна")
    receive(runtime, T0 + HOUR, "a2", "email", **anna)
    receive(runtime, T0 + 2 * HOUR, "a3", "email", email="anna@example.com")
    receive(runtime, T0 + 3 * HOUR, "a4", "telegram", telegram="501")
    receive(
        runtime, T0 + 4 * HOUR, "a5", "email", email="anna@example.com",
        metadata={"auto_reply": True, "auto_reply_reason": "Auto-Submitted: auto-replied"},
    )  # fmt: skip
    with recorded_at(T0 + 5 * HOUR):
        _ = runtime.app.reply(first.conversation_id, "Ответ", "user:test").value
    boris = receive(runtime, T0, "b1", "sms", phone="+79161112233", sender_name="Борис")
    call = receive(
        runtime, T0 + HOUR, "b2", "voice", phone="+79161112233",
        metadata={"kind": "call", "call": {"sid": "CA1", "direction": "inbound", "status": "ringing"}},
    )  # fmt: skip
    with recorded_at(T0 + HOUR + timedelta(seconds=30)):
        _ = runtime.app.record_call_status(call.message_id, "no-answer", "channel:voice").value
    vera = receive(
        runtime, T0 + timedelta(minutes=10), "v1", "sms", phone="+79162223344", sender_name="Вера"
    )
    receive(runtime, T0 + timedelta(minutes=20), "v2", "sms", phone="+79162223344")
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    return {"anna": first.contact_id, "boris": boris.contact_id, "vera": vera.contact_id}


def test_preferred_channel_ties_automatic_messages_and_merges(runtime: Runtime) -> None:
    ids = build(runtime)
    db = runtime.views
    anna, boris, vera = str(ids["anna"]), str(ids["boris"]), str(ids["vera"])
    assert preferred_channel(db, anna) == "telegram"
    assert preferred_channel(db, boris) == "voice"
    assert preferred_channel(db, vera) == "sms"
    # Анна: 2 e-mails (the auto-reply and our reply left out), 2 telegram messages
    assert {(t.channel, t.count) for t in inbound_totals(db, [anna])} == {
        ("email", 2),
        ("telegram", 2),
    }
    assert runtime.queries.contact(anna)["preferred_channel"] == "telegram"  # type: ignore[index]

    merged = runtime.app.merge_contacts(ids["boris"], ids["vera"], "user:test")
    assert runtime.wait_for_views(merged.notification_id, timeout=60)
    assert preferred_channel(db, boris) == "sms"  # 1 + 2 SMS against 1 call
    assert preferred_channel(db, vera) is None
    assert {(t.channel, t.count) for t in inbound_totals(db, [boris, vera])} == {
        ("sms", 3),
        ("voice", 1),
    }
    # the segment language: the API's filter, a rule's or a campaign's segment
    found, total = runtime.queries.contacts(ContactFilter(preferred_channel="telegram"))
    assert (total, [c["id"] for c in found]) == (1, [anna])
    sms = build_contact_filter(pairs_of({"preferred_channel": "sms"}), None)
    assert [c["id"] for c in runtime.queries.contacts(sms)[0]] == [boris]
    assert runtime.queries.contacts(ContactFilter(preferred_channel="voice"))[1] == 0


def test_contacts_api_filters_and_shows_the_preferred_channel(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    ids = build(runtime)
    made = runtime.app.create_user("boss@example.com", "manager", "test")
    assert runtime.wait_for_views(made.notification_id, timeout=60)  # the token's view row
    token = made.value[1]
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(runtime)) as http:
        page = http.get("/api/contacts?preferred_channel=telegram", headers=headers)
        assert page.status_code == 200, page.text
        assert [c["id"] for c in page.json()["items"]] == [str(ids["anna"])]
        page = http.get("/api/contacts?preferred_channel=voice", headers=headers)
        assert [c["id"] for c in page.json()["items"]] == [str(ids["boris"])]
        card = http.get(f"/api/contacts/{ids['boris']}", headers=headers).json()
        assert card["preferred_channel"] == "voice"
        card = http.get(f"/api/contacts/{ids['anna']}", headers=headers).json()
        assert card["preferred_channel"] == "telegram"
