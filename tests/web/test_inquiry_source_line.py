"""The conversation thread shows where each inquiry came from, in the operator's language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.services.runtime import Runtime


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield runtime
    finally:
        runtime.close()


def submit(runtime: Runtime, key: str, **source: str) -> str:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="web",
            dedup_key=key,
            identities=[("email", "vera@example.com")],
            sender_name="Vera",
            text=f"request {key}",
            thread_key="form:contact-us",
            source=source,
        )
    )
    runtime.wait_for_views(committed.notification_id, timeout=30)
    return str(committed.value.conversation_id)


@pytest.mark.parametrize(
    ("locale", "spring", "autumn"),
    [
        (
            "en",
            "via form 'contact-us', utm_campaign=spring",
            "via utm_source=google, utm_campaign=autumn, from https://blog.example/crm",
        ),
        (
            "ru",
            "через форму «contact-us», utm_campaign=spring",
            "через utm_source=google, utm_campaign=autumn, со страницы https://blog.example/crm",  # noqa: RUF001
        ),
    ],
)
def test_each_inbound_message_shows_its_own_source(
    runtime: Runtime, locale: str, spring: str, autumn: str
) -> None:
    conversation_id = submit(runtime, "s1", form="contact-us", utm_campaign="spring")
    submit(
        runtime, "s2", utm_source="google", utm_campaign="autumn",
        referrer="https://blog.example/crm",
    )  # fmt: skip
    runtime.app.reply(UUID(conversation_id), "Thank you", "user:test")
    client, _, _ = web_client(runtime, "operator", locale=locale)
    html = client.get(f"/inbox/{conversation_id}/thread").text
    lines = [
        part.split("</small>", 1)[0]
        for part in html.split('<p class="muted message-source"><small>')[1:]
    ]
    # one line per inquiry, in order; the reply has none, a bare channel would have none
    assert lines == [spring.replace("'", "&#39;"), autumn]
