"""The client card shows opt-outs (channel, when, why) and opts a client back in with a reason.

Issue 11, item 5: nothing on the card or the timeline showed that a client wrote
STOP or unsubscribed, and nobody could opt them back in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.services.runtime import Runtime
from threadline.triggers.opt_outs import opt_out

HX = {"HX-Request": "true"}


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(database_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def opted_out_client(runtime: Runtime) -> UUID:
    committed = runtime.app.create_contact(
        actor="test", name="Olga Smirnova", identities=[("email", "olga@example.com")]
    )
    contact: UUID = committed.value
    opt_out(runtime.app, contact, "email", "the unsubscribe link")  # what the link records
    opt_out(runtime.app, contact, "sms", "the client wrote 'стоп'")  # what a STOP records
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    return contact


def consent_block(page: str) -> str:
    found = re.search(r'<section class="cc-section cc-consent".*?</section>', page, re.S)
    assert found, page
    return found.group(0)


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_card_shows_opt_outs_and_opts_back_in_with_a_reason(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "operator", "ru")
    contact = opted_out_client(runtime)
    card = consent_block(client.get(f"/contacts/{contact}/card").text)
    shown = text_of(card)
    assert "Автоматические сообщения" in shown
    assert "Отказ: email" in shown and "ссылка отписки" in shown
    assert "Отказ: sms" in shown and "клиент написал 'стоп'" in shown
    assert shown.count("Снова подписать") == 2
    page = client.get(f"/contacts/{contact}").text
    assert "Отказ от автоматических сообщений" in page  # the timeline entries

    blank = client.post(
        f"/contacts/{contact}/opt-in",
        data={"csrf_token": csrf, "channel": "sms", "reason": "  "},
        headers=HX,
    )
    assert blank.status_code == 422
    assert "укажите, почему клиент снова подписан" in blank.text
    assert runtime.app.repository.get(contact).has_opted_out("sms")

    done = client.post(
        f"/contacts/{contact}/opt-in",
        data={"csrf_token": csrf, "channel": "sms", "reason": "Попросила по телефону"},
        headers=HX,
    )
    assert done.status_code == 200
    after = text_of(consent_block(done.text))
    assert "Отказ: sms" not in after and "Отказ: email" in after
    assert not runtime.app.repository.get(contact).has_opted_out("sms")
    timeline = client.get(f"/contacts/{contact}/timeline").text
    assert "Снова подписан на автоматические сообщения" in timeline
    assert "Попросила по телефону" in timeline


def test_an_auditor_sees_opt_outs_but_cannot_opt_in(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "auditor", "en")
    contact = opted_out_client(runtime)
    card = consent_block(client.get(f"/contacts/{contact}/card").text)
    assert "Opted out: email" in text_of(card) and "Opt back in" not in card
    refused = client.post(
        f"/contacts/{contact}/opt-in",
        data={"csrf_token": csrf, "channel": "email", "reason": "because"},
        headers=HX,
    )
    assert refused.status_code == 403
    assert runtime.app.repository.get(contact).has_opted_out("email")
