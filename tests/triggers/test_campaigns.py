"""Campaigns: a template sent to a segment through the API, throttled, paused, resumed,
restarted, each recipient sent at most once. A scripted adapter stands in for the providers
(e-mail, SMS, Telegram) and remembers every message the delivery worker hands it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests import waiting
from tests.conftest import make_runtime
from tests.services.test_api import ADMIN, token_for
from threadline.channels.base import ChannelAdapter, OutboundMessage, register
from threadline.domain.model.campaign import campaign_message_id, recipient_id_for
from threadline.domain.model.inbound import InboundMessage
from threadline.services import campaigns
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.triggers.opt_outs import opt_out


@register
class CampaignScriptedAdapter(ChannelAdapter):
    """Carries e-mail, SMS and Telegram; each send is remembered, none leaves the process."""

    channel = "campaign-scripted"
    title = "Scripted campaign test channel"
    settings_schema = ()
    conversation_channels = ("email", "sms", "telegram")
    recipient_kind: ClassVar[dict[str, str]] = {
        "email": "email",
        "sms": "phone",
        "telegram": "telegram",
    }
    sent: ClassVar[list[OutboundMessage]] = []

    async def send(self, message: OutboundMessage) -> str:
        type(self).sent.append(message)
        return f"scripted-{len(type(self).sent)}"


NEWS = {
    "slug": "news",
    "name": "News",
    "variants": {
        "email": {
            "subject": "News for {{ contact.first_name }}",
            "text": "Dear {{ contact.display_name }}, we moved. {{ unsubscribe_url }}",
        },
        "sms": {"text": "Hi {{ contact.first_name }}, we moved."},
        "default": {"text": "We moved."},
    },
}

Api = tuple[TestClient, Runtime]
WAIT_SECONDS = 60.0
"""Bound of every wait here: it only decides how long a broken run takes to fail."""


def open_api(url: str, tmp_path: Path, **overrides: Any) -> Api:
    runtime = make_runtime(
        url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "attachments"),
        **overrides,
    )
    runtime.channels.configure("scripted", "campaign-scripted", "Scripted", {}, actor="test")
    return TestClient(create_app(runtime)), runtime


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Opens runtimes (closed at the end); the channel worker is started by the test."""
    CampaignScriptedAdapter.sent = []
    opened: list[Runtime] = []

    def make(url: str, **overrides: Any) -> Api:
        client, runtime = open_api(url, tmp_path, **overrides)
        opened.append(runtime)
        return client, runtime

    yield make
    for runtime in opened:
        runtime.close()


def wait_for(predicate: Callable[[], Any], what: str = "the condition") -> Any:
    """Wait on a condition, bounded generously: a loaded machine is slow, never wrong."""
    return waiting.wait_for(predicate, what, timeout=WAIT_SECONDS)


def contact(runtime: Runtime, name: str, *identities: tuple[str, str], tags: list[str]) -> UUID:
    committed = runtime.app.create_contact("test", name, list(identities), tags=tags)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"name": "Spring news", "template": "news", "channel": "email", **body}
    response = client.post("/api/campaigns", json=payload, headers=ADMIN)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def progress(client: TestClient, campaign_id: str) -> dict[str, Any]:
    response = client.get(f"/api/campaigns/{campaign_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def finished(client: TestClient, campaign_id: str) -> dict[str, Any] | None:
    state = progress(client, campaign_id)
    return state if state["state"] == "finished" else None


def recipients(client: TestClient, campaign_id: str, state: str = "") -> list[dict[str, Any]]:
    query = f"?state={state}&limit=1000" if state else "?limit=1000"
    response = client.get(f"/api/campaigns/{campaign_id}/recipients{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def sent_count(client: TestClient, campaign_id: str) -> int:
    counts = progress(client, campaign_id)["counts"]
    return int(counts["sent"] + counts["delivered"] + counts["failed"])


def messages_of(campaign_id: str, contacts: list[UUID]) -> list[OutboundMessage]:
    """What the adapter was given for this campaign's recipients."""
    ids = {campaign_message_id(recipient_id_for(UUID(campaign_id), c)) for c in contacts}
    return [m for m in CampaignScriptedAdapter.sent if m.message_id in ids]


def audience(runtime: Runtime, count: int, tag: str) -> list[UUID]:
    return [
        contact(runtime, f"Member{i} Test", ("email", f"{tag}{i}@example.com"), tags=[tag])
        for i in range(count)
    ]


def test_a_campaign_reaches_each_eligible_contact_once_and_skips_the_rest_with_the_reason(
    database_url: str, make_api: Callable[..., Api]
) -> None:
    client, runtime = make_api(database_url, automatic_messages_per_day=1)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    eligible = [
        contact(runtime, "Anna Green", ("email", "anna@example.com"), tags=["news"]),
        contact(runtime, "Boris Brown", ("email", "boris@example.com"), tags=["news"]),
        contact(runtime, "Clara White", ("email", "clara@example.com"), tags=["news", "x"]),
    ]
    sms_only_opt_out = contact(
        runtime, "Dina Black", ("email", "dina@example.com"), ("phone", "+79123456789"),
        tags=["news"],
    )  # fmt: skip
    eligible.append(sms_only_opt_out)
    email_opt_out = contact(runtime, "Egor Grey", ("email", "egor@example.com"), tags=["news"])
    all_opt_out = contact(runtime, "Fay Blue", ("email", "fay@example.com"), tags=["news"])
    limited = contact(runtime, "Gleb Red", ("email", "gleb@example.com"), tags=["news", "warm"])
    no_address = contact(runtime, "Hana Pink", ("phone", "+79001112233"), tags=["news"])
    outsider = contact(runtime, "Ivan Teal", ("email", "ivan@example.com"), tags=["other"])
    opt_out(runtime.app, sms_only_opt_out, "sms", "wrote STOP")
    opt_out(runtime.app, email_opt_out, "email", "the unsubscribe link")
    opt_out(runtime.app, all_opt_out, "*", "asked by phone")
    runtime.channels.start(pollers=False)

    # The daily limit is 1 here: a first campaign uses up Gleb's automatic message for today.
    warm = create(client, name="Warm-up", segment={"tag": "warm"}, start=True)
    wait_for(lambda: finished(client, warm["id"]))
    assert [m.recipient for m in messages_of(warm["id"], [limited])] == ["gleb@example.com"]

    news = create(client, segment={"tag": "news"}, start=True)
    assert news["state"] in ("resolving", "sending")
    done = wait_for(lambda: finished(client, news["id"]))

    rows = {UUID(r["contact_id"]): r for r in recipients(client, news["id"])}
    skipped = {email_opt_out, all_opt_out, limited, no_address}
    assert set(rows) == set(eligible) | skipped  # queued for all, the outsider is no recipient
    assert outsider not in rows and all(r["queued_at"] for r in rows.values())
    for contact_id in eligible:
        assert rows[contact_id]["state"] in ("sent", "delivered"), rows[contact_id]
        assert rows[contact_id]["message_id"] == str(
            campaign_message_id(recipient_id_for(UUID(news["id"]), contact_id))
        )
    reasons = {c: rows[c]["reason"] for c in skipped}
    assert all(rows[c]["state"] == "skipped" for c in skipped)
    assert reasons[email_opt_out] == "opted out of automatic messages on email"
    assert reasons[all_opt_out] == "opted out of automatic messages on email"
    assert reasons[limited] == "rate limit: 1 automatic messages a day"
    assert reasons[no_address] == "no e-mail address to send email to"

    # The delivery worker hands each eligible contact's message to the channel exactly once.
    wait_for(lambda: progress(client, news["id"])["counts"]["delivered"] == len(eligible))
    delivered = messages_of(news["id"], list(rows))
    assert sorted(m.contact_id for m in delivered) == sorted(eligible)
    anna = next(m for m in delivered if m.contact_id == eligible[0])
    assert anna.recipient == "anna@example.com" and anna.subject == "News for Anna"
    assert "Dear Anna Green" in anna.text and "/unsubscribe/" in anna.text

    # Progress adds up: every recipient is in exactly one state.
    done = progress(client, news["id"])
    assert done["total"] == 8 and sum(done["counts"].values()) == 8
    assert done["counts"] == {"queued": 0, "sent": 0, "delivered": 4, "failed": 0, "skipped": 4}
    assert done["processed"] == 8 and done["audience_complete"] is True
    assert done["started_at"] and done["finished_at"] and done["started_at"] <= done["finished_at"]
    assert [r["contact_id"] for r in recipients(client, news["id"], "skipped")] == [
        r["contact_id"] for r in recipients(client, news["id"]) if r["state"] == "skipped"
    ]
    listed = client.get("/api/campaigns", headers=ADMIN).json()
    assert {c["id"] for c in listed["items"]} == {warm["id"], news["id"]}

    # The log says who did it and why: the sender, correlated with the campaign.
    message = next(iter(runtime.app.repository.event_store.get(anna.message_id, lte=1)))
    assert type(message).__name__ == "MessageSendRequested"
    assert message.actor == "worker:campaigns" and message.correlation_id == news["id"]
    assert "Anna" not in repr(
        list(runtime.app.repository.event_store.get(recipient_id_for(UUID(news["id"]), eligible[0])))
    )  # fmt: skip


def test_sends_are_spread_at_the_campaign_rate(
    sqlite_url: str, make_api: Callable[..., Api]
) -> None:
    client, runtime = make_api(sqlite_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    members = audience(runtime, 5, "rate")
    runtime.channels.start(pollers=False)
    campaign = create(client, segment={"tag": "rate"}, per_minute=120, start=True)
    wait_for(lambda: finished(client, campaign["id"]))
    times = sorted(
        datetime.fromisoformat(r["sent_at"].replace("Z", "+00:00"))
        for r in recipients(client, campaign["id"])
    )
    assert len(times) == len(members)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # 120 a minute is one every 0.5 s: never faster (a little slack for clock reading).
    assert min(gaps) >= 0.45, gaps
    assert (times[-1] - times[0]).total_seconds() >= 4 * 0.5 * 0.95


def test_pause_stops_sending_and_resume_finishes(
    database_url: str, make_api: Callable[..., Api]
) -> None:
    client, runtime = make_api(database_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    members = audience(runtime, 10, "pause")
    runtime.channels.start(pollers=False)
    campaign = create(client, segment={"tag": "pause"}, per_minute=240, start=True)
    wait_for(lambda: sent_count(client, campaign["id"]) >= 2)
    paused = client.post(f"/api/campaigns/{campaign['id']}/pause", headers=ADMIN)
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused"
    at_pause = sent_count(client, campaign["id"])
    assert at_pause < len(members)
    time.sleep(1.2)  # about five slots at 240 a minute
    assert sent_count(client, campaign["id"]) == at_pause
    assert progress(client, campaign["id"])["counts"]["queued"] == len(members) - at_pause
    resumed = client.post(f"/api/campaigns/{campaign['id']}/resume", headers=ADMIN)
    assert resumed.status_code == 200 and resumed.json()["state"] == "sending"
    wait_for(lambda: finished(client, campaign["id"]))
    assert sent_count(client, campaign["id"]) == len(members)
    wait_for(lambda: len(messages_of(campaign["id"], members)) == len(members))
    assert sorted(m.contact_id for m in messages_of(campaign["id"], members)) == sorted(members)
    again = client.post(f"/api/campaigns/{campaign['id']}/pause", headers=ADMIN)
    assert again.status_code == 409  # a finished campaign has nothing to pause


def sent_in_store(runtime: Runtime, campaign_id: str, contacts: list[UUID]) -> int:
    """Recipients whose send is recorded, read from the log itself (the views may lag)."""
    return sum(
        campaign_message_id(recipient_id_for(UUID(campaign_id), c)) in runtime.app.repository
        for c in contacts
    )


def test_a_restart_goes_on_where_it_stopped_without_sending_anyone_twice(
    database_url: str, make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns, "AUDIENCE_BATCH", 2)  # the audience is read in 4 batches
    client, runtime = make_api(database_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    members = audience(runtime, 10, "restart")
    # 120 a minute: the eight sends after the second take 3.5 s at least, so the first process
    # is stopped with recipients still queued however late this test sees the second send.
    campaign = create(client, segment={"tag": "restart"}, per_minute=120, start=True)
    # A first process read one batch of the audience and stopped before the next one.
    first = sorted(members, key=str)[:3]
    runtime.app.queue_campaign_recipients(
        UUID(campaign["id"]), [(c, "email") for c in first], str(first[-1]), "test"
    )
    runtime.channels.start(pollers=False)
    wait_for(lambda: sent_in_store(runtime, campaign["id"], members) >= 2, "two sends")
    runtime.close()  # a clean stop, mid-campaign and likely mid-delivery

    client, runtime = make_api(database_url)
    before = progress(client, campaign["id"])
    assert before["state"] == "sending" and before["counts"]["queued"] > 0, before
    runtime.channels.start(pollers=False)
    wait_for(lambda: finished(client, campaign["id"]), "the campaign to finish")
    # Once every message is delivered nothing is left to hand to the channel: a second copy of
    # any of them would already be in the adapter's record.
    wait_for(
        lambda: progress(client, campaign["id"])["counts"]["delivered"] == len(members),
        "every message delivered",
    )
    handed = messages_of(campaign["id"], members)
    assert sorted(m.contact_id for m in handed) == sorted(members)
    done = progress(client, campaign["id"])
    assert done["total"] == len(members) and done["counts"]["skipped"] == 0
    assert sum(done["counts"].values()) == len(members)


def test_a_test_send_goes_to_one_contact_and_is_not_counted(
    sqlite_url: str, make_api: Callable[..., Api]
) -> None:
    client, runtime = make_api(sqlite_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    me = contact(runtime, "Olga Manager", ("email", "olga@example.com"), tags=["staff"])
    away = contact(runtime, "Petr Away", ("email", "petr@example.com"), tags=["staff"])
    opt_out(runtime.app, away, "email", "unsubscribed")
    audience(runtime, 2, "test")
    runtime.channels.start(pollers=False)
    campaign = create(client, segment={"tag": "test"})
    assert campaign["state"] == "draft"
    sent = client.post(
        f"/api/campaigns/{campaign['id']}/test", json={"contact_id": str(me)}, headers=ADMIN
    )
    assert sent.status_code == 201, sent.text
    message_id = UUID(sent.json()["message_id"])
    wait_for(lambda: any(m.message_id == message_id for m in CampaignScriptedAdapter.sent))
    assert [m.recipient for m in CampaignScriptedAdapter.sent] == ["olga@example.com"]
    assert CampaignScriptedAdapter.sent[0].subject == "News for Olga"
    state = progress(client, campaign["id"])
    assert state["state"] == "draft" and state["test_sends"] == 1
    assert state["total"] == 0 and sum(state["counts"].values()) == 0
    assert recipients(client, campaign["id"]) == []
    refused = client.post(
        f"/api/campaigns/{campaign['id']}/test", json={"contact_id": str(away)}, headers=ADMIN
    )
    assert refused.status_code == 409 and "opted out" in refused.json()["detail"]
    unknown = client.post(
        f"/api/campaigns/{campaign['id']}/test",
        json={"contact_id": "00000000-0000-0000-0000-000000000001"},
        headers=ADMIN,
    )
    assert unknown.status_code == 404
    # Starting later sends the campaign to its audience; the test send stays apart.
    started = client.post(f"/api/campaigns/{campaign['id']}/start", headers=ADMIN)
    assert started.status_code == 200, started.text
    assert client.post(f"/api/campaigns/{campaign['id']}/start", headers=ADMIN).status_code == 409
    done = wait_for(lambda: finished(client, campaign["id"]))
    assert done["total"] == 2 and done["test_sends"] == 1


def test_same_channel_writes_where_each_contact_last_wrote_at_each_channel_pace(
    sqlite_url: str, make_api: Callable[..., Api]
) -> None:
    client, runtime = make_api(sqlite_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    chat = runtime.channels.ingest(
        InboundMessage.create(
            channel="telegram",
            dedup_key="update-1",
            identities=[("telegram", "555001"), ("email", "tanya@example.com")],
            sender_name="Tanya Chat",
            text="Hello",
        )
    ).contact_id
    runtime.wait_for_views(
        runtime.app.update_contact(chat, "test", add_tags=["mix"]).notification_id
    )
    mail = contact(runtime, "Mark Mail", ("email", "mark@example.com"), tags=["mix"])
    phone = contact(runtime, "Polina Phone", ("phone", "+79161112233"), tags=["mix"])
    runtime.channels.start(pollers=False)
    campaign = create(client, segment={"tag": "mix"}, channel="same", start=True)
    wait_for(lambda: finished(client, campaign["id"]))
    wait_for(lambda: len(messages_of(campaign["id"], [chat, mail, phone])) == 3)
    handed = {m.contact_id: m for m in messages_of(campaign["id"], [chat, mail, phone])}
    assert (handed[chat].channel, handed[chat].recipient) == ("telegram", "555001")
    assert (handed[mail].channel, handed[mail].recipient) == ("email", "mark@example.com")
    assert (handed[phone].channel, handed[phone].recipient) == ("sms", "+79161112233")
    assert handed[phone].text == "Hi Polina, we moved."  # the SMS variant
    assert handed[chat].text == "We moved."  # no Telegram variant: the default one


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"template": "missing"}, ["template"]),
        ({"template": "Not A Slug!"}, ["template"]),
        ({"segment": {"colour": "red"}}, ["segment", "colour"]),
        ({"segment": {"attr.size.gte": "10"}}, ["segment", "attr", "size", "gte"]),
        ({"segment": {"tag": {"nested": 1}}}, ["segment", "tag"]),
        ({"channel": "fax"}, ["channel"]),
        ({"per_minute": 0}, ["per_minute"]),
        ({"name": ""}, ["name"]),
    ],
)
def test_invalid_campaigns_are_refused_naming_the_field(
    sqlite_url: str, make_api: Callable[..., Api], change: dict[str, Any], field: list[str]
) -> None:
    client, _ = make_api(sqlite_url)
    only_email = {**NEWS, "variants": {"email": NEWS["variants"]["email"]}}  # type: ignore[index]
    assert client.post("/api/templates", json=only_email, headers=ADMIN).status_code == 201
    body = {"name": "N", "template": "news", "channel": "email", **change}
    response = client.post("/api/campaigns", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][1:] == field
    sms = client.post(
        "/api/campaigns", json={"name": "N", "template": "news", "channel": "sms"}, headers=ADMIN
    )
    assert sms.status_code == 422 and sms.json()["detail"][0]["loc"][1:] == ["template"]
    assert client.get("/api/campaigns", headers=ADMIN).json()["total"] == 0


def test_only_managers_create_start_pause_and_test(
    sqlite_url: str, make_api: Callable[..., Api]
) -> None:
    client, runtime = make_api(sqlite_url)
    assert client.post("/api/templates", json=NEWS, headers=ADMIN).status_code == 201
    someone = contact(runtime, "Rita Roe", ("email", "rita@example.com"), tags=["t"])
    auditor = token_for(client, "auditor")
    operator = token_for(client, "operator")
    manager = token_for(client, "manager")
    body = {"name": "N", "template": "news", "segment": {"tag": "t"}}
    for headers in (auditor, operator):
        assert client.post("/api/campaigns", json=body, headers=headers).status_code == 403
    created = client.post("/api/campaigns", json=body, headers=manager)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert created.json()["created_by"].startswith("user:")
    for action in ("start", "pause", "resume"):
        answer = client.post(f"/api/campaigns/{campaign_id}/{action}", headers=auditor)
        assert answer.status_code == 403
    tested = client.post(
        f"/api/campaigns/{campaign_id}/test", json={"contact_id": str(someone)}, headers=auditor
    )
    assert tested.status_code == 403
    assert client.get(f"/api/campaigns/{campaign_id}", headers=auditor).status_code == 200
    assert (
        client.get(f"/api/campaigns/{campaign_id}/recipients", headers=auditor).status_code == 200
    )
    bad_state = client.get(f"/api/campaigns/{campaign_id}/recipients?state=lost", headers=auditor)
    assert bad_state.status_code == 422 and bad_state.json()["detail"][0]["loc"][1:] == ["state"]
    # A draft has nothing to pause; an unknown campaign is a 404.
    assert client.post(f"/api/campaigns/{campaign_id}/pause", headers=manager).status_code == 409
    missing = "00000000-0000-0000-0000-000000000002"
    assert client.get(f"/api/campaigns/{missing}", headers=ADMIN).status_code == 404
