"""Each user reads and types times in their own time zone; the log and the views keep UTC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.services.runtime import Runtime
from threadline.services.web.i18n import environment
from threadline.services.web.routes_tasks import Day

HX = {"HX-Request": "true"}


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


class Reader:
    def __init__(self, timezone: str) -> None:
        self.timezone = timezone


def test_the_filters_show_utc_times_in_the_users_zone() -> None:
    page = environment("en").from_string("{{ at|datetime }} / {{ at|date }}")
    at = "2030-12-31T22:30:00.000000Z"
    assert page.render(at=at, user=Reader("UTC")) == "12/31/30, 10:30\u202fPM / Dec 31, 2030"
    # In Moscow it is already half past one on New Year's Day.
    assert page.render(at=at, user=Reader("Europe/Moscow")) == "1/1/31, 1:30\u202fAM / Jan 1, 2031"
    assert page.render(at=at, user=None) == page.render(at=at, user=Reader("UTC"))


def test_the_task_day_starts_at_the_users_midnight() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    day = Day.at(datetime(2030, 6, 1, 22, 0, tzinfo=UTC), moscow)  # 01:00 on 2 June in Moscow
    assert day.start == datetime(2030, 6, 2, tzinfo=moscow)
    assert day.tomorrow == datetime(2030, 6, 3, tzinfo=moscow)


def test_a_user_picks_a_zone_and_times_are_read_and_typed_in_it(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime)
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key="tz-1", identities=[("email", "tz@example.com")], text="hi"
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    conversation = f"/inbox/{committed.value.conversation_id}"
    assert client.get("/ui/session").json()["timezone"] == "UTC"

    picked = client.post(
        "/me/timezone",
        data={"timezone": "Asia/Vladivostok", "csrf_token": csrf, "back": conversation},
        follow_redirects=False,
    )
    assert picked.status_code == 303 and picked.headers["location"] == conversation
    assert client.get("/ui/session").json()["timezone"] == "Asia/Vladivostok"
    page = client.get(conversation).text
    assert re.search(r'<option value="Asia/Vladivostok"\s+selected', page)
    assert "Snooze until (Asia/Vladivostok)" in page
    # The message's time is shown on the Vladivostok clock (UTC+10).
    received = runtime.queries.conversation(str(committed.value.conversation_id))["messages"][0]
    utc_time = datetime.fromisoformat(received["created_at"].replace("Z", "+00:00"))
    shown = (
        environment("en")
        .from_string("{{ t|datetime }}")
        .render(t=received["created_at"], user=Reader("Asia/Vladivostok"))
    )
    assert shown in page
    assert utc_time.astimezone(ZoneInfo("Asia/Vladivostok")).strftime("%-I:%M") in shown

    # 09:30 typed in Vladivostok is 23:30 UTC the day before.
    client.post(
        f"{conversation}/status",
        data={"status": "snoozed", "snoozed_until": "2031-02-03T09:30", "csrf_token": csrf},
    )
    snoozed = runtime.queries.conversation(str(committed.value.conversation_id))
    assert snoozed["snoozed_until"] == "2031-02-02T23:30:00.000000Z"


def test_an_unknown_zone_is_refused_and_changes_nothing(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime)
    refused = client.post(
        "/me/timezone", data={"timezone": "Mars/Olympus_Mons", "csrf_token": csrf}
    )
    assert refused.status_code == 422 and "Unknown time zone" in refused.text
    assert client.get("/ui/session").json()["timezone"] == "UTC"


def test_the_installation_default_applies_until_a_user_picks(
    sqlite_url: str, tmp_path: Path
) -> None:
    rt = make_runtime(sqlite_url, timezone="Europe/Moscow", attachments_dir=str(tmp_path / "a"))
    try:
        client, _, _ = web_client(rt)
        assert client.get("/ui/session").json()["timezone"] == "Europe/Moscow"
    finally:
        rt.close()
