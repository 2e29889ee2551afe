"""The satisfaction survey: sent once per resolution, answered by a digit or by a signed link."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.survey import SURVEY_ACTOR, parse_score
from threadline.projections.inbox import channel_messages
from threadline.projections.service_requests import conversation_requests
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.services.surveys import survey_field, survey_links_of
from threadline.triggers.opt_outs import opt_out


def inbound(runtime: Runtime, key: str, text: str, email: str = "client@example.com") -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="email", dedup_key=key, identities=[("email", email)], text=text
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def surveys_sent(runtime: Runtime, conversation_id: UUID) -> list[Any]:
    settle(runtime)
    return [
        m
        for m in channel_messages(runtime.views, "email", "outbound")
        if m.actor == SURVEY_ACTOR and m.conversation_id == str(conversation_id)
    ]


def status_of(runtime: Runtime, conversation_id: UUID) -> str:
    row = runtime.queries.conversation(str(conversation_id))
    assert row is not None
    return str(row["status"])


def test_what_counts_as_a_score() -> None:
    assert [parse_score(t) for t in ("5", " 4. ", "3!", "1)", "⭐⭐⭐⭐⭐", "★★")] == [
        5,
        4,
        3,
        1,
        5,
        2,
    ]
    assert [parse_score(t) for t in ("0", "6", "10", "5 stars", "3, thanks", "", "⭐" * 6)] == [
        None
    ] * 7


def test_survey_sent_once_per_resolution_and_answered_by_a_digit(sqlite_runtime: Runtime) -> None:
    runtime, app = sqlite_runtime, sqlite_runtime.app
    app.save_survey_settings(True, [], "", "user:admin")
    first = inbound(runtime, "m1", "Help, please")
    conversation = first.conversation_id
    app.reply(conversation, "Here you are", "user:anna")
    app.change_conversation_status(conversation, "resolved", "user:anna")
    app.change_conversation_status(conversation, "resolved", "user:anna")  # no change: no resend
    (survey,) = surveys_sent(runtime, conversation)
    assert survey.text.startswith("How would you rate our answer?")
    assert "/s/" in survey.text  # an e-mail survey carries a link per score

    inbound(runtime, "m2", "5")  # the answer: the conversation stays resolved
    settle(runtime)
    assert status_of(runtime, conversation) == "resolved"
    field = survey_field(runtime.views, str(conversation))
    assert field is not None and field["score"] == 5 and field["answered_via"] == "reply"
    (request,) = conversation_requests(runtime.views, str(conversation))  # no new request
    assert request["score"] == 5

    inbound(runtime, "m3", "4")  # answered already: an ordinary message, which reopens
    settle(runtime)
    assert status_of(runtime, conversation) == "open"
    assert len(conversation_requests(runtime.views, str(conversation))) == 2
    app.change_conversation_status(conversation, "resolved", "user:anna")
    assert len(surveys_sent(runtime, conversation)) == 2  # one per resolution


def test_no_survey_when_off_for_the_inbox_or_opted_out(sqlite_runtime: Runtime) -> None:
    runtime, app = sqlite_runtime, sqlite_runtime.app
    first = inbound(runtime, "a1", "Question", email="a@example.com")
    app.change_conversation_status(first.conversation_id, "resolved", "user:anna")
    assert surveys_sent(runtime, first.conversation_id) == []  # never switched on

    app.save_survey_settings(True, ["support"], "", "user:admin")  # another inbox only
    second = inbound(runtime, "b1", "Question", email="b@example.com")
    app.change_conversation_status(second.conversation_id, "resolved", "user:anna")
    assert surveys_sent(runtime, second.conversation_id) == []

    app.save_survey_settings(True, [], "", "user:admin")
    third = inbound(runtime, "c1", "Question", email="c@example.com")
    opt_out(app, third.contact_id, "email", "asked to")
    app.change_conversation_status(third.conversation_id, "resolved", "user:anna")
    assert surveys_sent(runtime, third.conversation_id) == []
    # a digit from a client with no survey open is an ordinary message (it reopens)
    inbound(runtime, "c2", "5", email="c@example.com")
    assert status_of(runtime, third.conversation_id) == "open"


def test_survey_answered_by_a_signed_link_and_forged_links_are_404(
    sqlite_runtime: Runtime,
) -> None:
    runtime, app = sqlite_runtime, sqlite_runtime.app
    admin = app.create_user("admin@example.com", "admin", "test").value[1]
    operator = app.create_user("op@example.com", "operator", "test").value[1]
    headers = {"Authorization": f"Bearer {admin}"}
    with TestClient(create_app(runtime)) as http:
        saved = http.put(
            "/api/surveys/settings", json={"enabled": True, "inboxes": []}, headers=headers
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["enabled"] is True
        denied = http.put(
            "/api/surveys/settings",
            json={"enabled": False},
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert denied.status_code == 403
        bad = http.put("/api/surveys/settings", json={"enabled": "maybe"}, headers=headers)
        assert bad.status_code == 422

        first = inbound(runtime, "l1", "Question")
        conversation = first.conversation_id
        app.change_conversation_status(conversation, "resolved", "user:anna")
        (survey,) = surveys_sent(runtime, conversation)
        links = survey_links_of(app)
        assert links is not None
        token = next(
            line.split("/s/", 1)[1] for line in survey.text.splitlines() if line.startswith("4: ")
        )
        found = links.verify_score(token)  # the message's link for 4 names this conversation
        assert found is not None and found[0] == conversation and found[2] == 4
        page = http.get(f"/s/{token}")
        assert page.status_code == 200 and "4 / 5" in page.text
        assert survey_field(runtime.views, str(conversation))["score"] is None  # type: ignore[index]

        ident, _, signature = token.partition(".")
        forged = [
            f"{ident[:-1]}5.{signature}",  # the score changed
            f"{ident}.{signature[:-2]}xx",  # the signature changed
            "not-a-token",
        ]
        for wrong in forged:
            assert http.get(f"/s/{wrong}").status_code == 404
            assert http.post(f"/s/{wrong}").status_code == 404

        answered = http.post(f"/s/{token}")
        assert answered.status_code == 200 and "recorded" in answered.text
        again = http.post(f"/s/{token}")
        assert again.status_code == 200 and "already answered" in again.text
        settle(runtime)
        item = http.get(f"/api/conversations/{conversation}", headers=headers).json()
        assert item["survey"]["score"] == 4 and item["survey"]["answered_via"] == "link"
        mine = http.get(f"/api/surveys/conversations/{conversation}", headers=headers).json()
        assert mine["survey"]["score"] == 4
