"""Fixtures of the channel tests; each channel's helpers live in their own module."""

from tests.channels.dovecot import (  # noqa: F401
    dovecot,
    smtp_capture,
    smtp_to_imap,
    tls_cert,
    trusted_tls,
)
from tests.channels.fake_telegram import telegram_server  # noqa: F401
from tests.channels.fake_twilio import twilio_server  # noqa: F401
