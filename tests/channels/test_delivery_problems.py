"""Each channel's real failures come with a plain reason (issue 11, item 6).

The adapters run against their real or wire-level peers (aiosmtpd, the fake Bot API
and the fake Twilio REST API over HTTP, a closed port); the technical detail stays
in `reason`, and `problem_of` names what an operator reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.channels.dovecot import SmtpCapture, free_port
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.fake_twilio import FakeTwilio, twilio_error
from tests.channels.test_email_smtp import adapter_for as email_adapter
from tests.channels.test_email_smtp import outbound as email_outbound
from tests.channels.test_telegram import USER, send_error, tg, webhook_inbox  # noqa: F401
from tests.channels.test_telegram import outbound as telegram_outbound
from tests.channels.test_telegram import services as telegram_services
from tests.channels.test_twilio import AUTH_TOKEN, CLIENT
from tests.channels.test_twilio import adapter_for as twilio_adapter
from tests.channels.test_twilio import outbound as twilio_outbound
from tests.run_apart import run_apart
from threadline.channels.base import DeliveryError, DeliveryErrorKind
from threadline.channels.email import EmailAdapter
from threadline.channels.problems import DeliveryProblem, problem_of
from threadline.channels.telegram import TelegramAdapter
from threadline.channels.twilio import error_problem

pytestmark = pytest.mark.timeout(60)


def smtp_error(adapter: EmailAdapter, **overrides: object) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        run_apart(adapter.send(email_outbound(**overrides)))
    return caught.value


def test_smtp_failures_name_their_plain_reason(smtp_capture: SmtpCapture, tmp_path: Path) -> None:
    closed = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "none"}
    unreachable = smtp_error(email_adapter({**closed, "from_address": "s@example.com"}, tmp_path))
    assert problem_of(unreachable) is DeliveryProblem.UNREACHABLE
    assert unreachable.kind is DeliveryErrorKind.TRANSIENT

    server = email_adapter(smtp_capture.settings(), tmp_path)
    refused = smtp_error(server, recipient="rejected@example.org")  # 550
    assert problem_of(refused) is DeliveryProblem.BAD_RECIPIENT
    busy = smtp_error(server, recipient="later@example.org")  # 451: only for now
    assert problem_of(busy) is DeliveryProblem.REFUSED

    login = smtp_error(email_adapter(smtp_capture.settings(smtp_password="wrong"), tmp_path))
    assert problem_of(login) is DeliveryProblem.LOGIN_REFUSED and "535" in login.reason

    no_host = smtp_error(email_adapter({"from_address": "s@example.com"}, tmp_path))
    assert problem_of(no_host) is DeliveryProblem.NOT_SET_UP


def test_telegram_failures_name_their_plain_reason(tmp_path: Path, tg: FakeTelegram) -> None:  # noqa: F811
    # The raw text: "httpx.ConnectError: ..." stays the technical detail only.
    nowhere = TelegramAdapter(webhook_inbox(), telegram_services(tmp_path, None))
    unreachable = send_error(nowhere, telegram_outbound(str(USER)))
    assert "ConnectError" in unreachable.reason
    assert problem_of(unreachable) is DeliveryProblem.UNREACHABLE

    adapter = TelegramAdapter(webhook_inbox(), telegram_services(tmp_path, tg))
    tg.blocked.add(USER)
    assert problem_of(send_error(adapter, telegram_outbound(str(USER)))) is DeliveryProblem.BLOCKED
    tg.blocked.clear()
    tg.unknown_chats.add(424242)
    unknown_chat = send_error(adapter, telegram_outbound("424242"))
    assert problem_of(unknown_chat) is DeliveryProblem.BAD_RECIPIENT

    wrong = TelegramAdapter(webhook_inbox(token="7000000001:Xq9-old-token"), adapter.services)
    refused = send_error(wrong, telegram_outbound(str(USER)))
    assert problem_of(refused) is DeliveryProblem.LOGIN_REFUSED


def test_twilio_error_codes_name_their_plain_reason(twilio_server: FakeTwilio) -> None:
    def failure(token: str = AUTH_TOKEN) -> DeliveryError:
        with pytest.raises(DeliveryError) as caught:
            run_apart(twilio_adapter(twilio_server, token).send(twilio_outbound()))
        return caught.value

    twilio_server.fail_recipient(CLIENT)  # 21610: the client replied STOP
    assert problem_of(failure()) is DeliveryProblem.BLOCKED
    twilio_server.fail_recipient(CLIENT, 400, twilio_error(400, 21211, "Invalid 'To' number"))
    invalid = failure()
    assert problem_of(invalid) is DeliveryProblem.BAD_RECIPIENT and "21211" in invalid.reason
    twilio_server.recipient_failures.clear()
    twilio_server.fail_next(503)
    assert problem_of(failure()) is DeliveryProblem.UNREACHABLE
    wrong_token = failure(token="x" * 32)
    assert problem_of(wrong_token) is DeliveryProblem.LOGIN_REFUSED

    assert error_problem("30003") is DeliveryProblem.UNDELIVERABLE
    assert error_problem("30007") is DeliveryProblem.FILTERED
    assert error_problem("") is DeliveryProblem.UNKNOWN
    assert error_problem("99999") is DeliveryProblem.UNKNOWN
