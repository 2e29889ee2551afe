"""Fixtures of the channel tests; each channel's helpers live in their own module."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.dovecot import (  # noqa: F401
    dovecot,
    smtp_capture,
    smtp_to_imap,
    tls_cert,
    trusted_tls,
)
from tests.channels.fake_telegram import telegram_server  # noqa: F401
from tests.channels.fake_twilio import twilio_server  # noqa: F401
from tests.conftest import make_runtime
from threadline.services.runtime import Runtime


@pytest.fixture
def new_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on one SQLite database (a "restart" is a second runtime); all closed after."""
    started: list[Runtime] = []

    def factory(url: str | None = None, **overrides: Any) -> Runtime:
        settings: dict[str, Any] = {
            "attachments_dir": str(tmp_path / "attachments"),
            "admin_token": "admin-secret",
            "channel_poll_interval": 1.0,
        }
        settings.update(overrides)
        runtime = make_runtime(url or f"sqlite:///{tmp_path}/threadline.db", **settings)
        started.append(runtime)
        return runtime

    yield factory
    for runtime in started:
        runtime.close()
