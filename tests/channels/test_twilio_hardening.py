"""An unexpected error on one Twilio webhook never loses the message (issue 10, item 1's sibling).

Twilio does not retry an SMS webhook that failed: a 500 would drop the message. The request
is kept as a rejection, listed under the inbox and retryable; a call is still answered.
The failure is injected through the hub's ingest, the seam every webhook goes through.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.channels.fake_twilio import FakeTwilio, signed_post
from tests.channels.test_twilio import ADMIN, SMS, VOICE, call, call_message, sms, twilio_env
from threadline.domain.model.inbound import InboundMessage, IngestResult
from threadline.services.api.app import create_app


def test_a_webhook_whose_ingest_fails_is_kept_and_retried_and_the_call_still_rings(
    sqlite_url: str,
    tmp_path: Path,
    twilio_server: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with twilio_env(sqlite_url, tmp_path, twilio_server) as env:
        hub = env.runtime.channels
        real_ingest = hub.ingest

        def failing_ingest(message: InboundMessage) -> IngestResult:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

        monkeypatch.setattr(hub, "ingest", failing_ingest)
        client = TestClient(create_app(env.runtime), raise_server_exceptions=False)
        with client:
            answered = signed_post(client, SMS, sms("SM" + "e" * 32, body="Where is my parcel?"))
            assert answered.status_code == 200, answered.text
            assert ET.fromstring(answered.text).tag == "Response"
            rang = signed_post(client, VOICE, call("CA" + "e" * 32))
            assert rang.status_code == 200
            assert ET.fromstring(rang.text).find("Dial") is not None  # still put through
            listed = client.get("/api/inboxes/twilio-main/rejected", headers=ADMIN).json()
            by_key = {row["message_id"]: row for row in listed["items"]}
            assert set(by_key) == {"SM" + "e" * 32, "CA" + "e" * 32}
            assert "UnicodeEncodeError" in by_key["SM" + "e" * 32]["reason"]
            assert by_key["SM" + "e" * 32]["text"] == "Where is my parcel?"
            # The same webhook failing again is one rejection with two attempts.
            signed_post(client, SMS, sms("SM" + "e" * 32, body="Where is my parcel?"))
            again = client.get("/api/inboxes/twilio-main/rejected", headers=ADMIN).json()
            assert len(again["items"]) == 2
            assert {r["attempts"] for r in again["items"] if r["message_id"][:2] == "SM"} == {2}

            monkeypatch.setattr(hub, "ingest", real_ingest)
            for row in by_key.values():
                retried = client.post(
                    f"/api/inboxes/twilio-main/rejected/{row['id']}/retry", headers=ADMIN
                )
                assert retried.status_code == 200, retried.text
                assert retried.json()["outcome"] == "ingested"
            texts = [
                m["text"]
                for c in client.get("/api/inbox?channel=sms", headers=ADMIN).json()["items"]
                for m in client.get(
                    f"/api/conversations/{c['conversation_id']}", headers=ADMIN
                ).json()["messages"]
            ]
            assert texts == ["Where is my parcel?"]
            assert call_message(env, "CA" + "e" * 32)["channel"] == "voice"
            left = client.get("/api/inboxes/twilio-main/rejected", headers=ADMIN).json()
            assert left["items"] == []
