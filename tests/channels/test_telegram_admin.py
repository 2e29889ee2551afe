"""Registering a bot's webhook from the inbox API (`POST /api/inboxes/{slug}/telegram-webhook`)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.channels.fake_telegram import FakeTelegram
from tests.conftest import make_runtime
from tests.services.test_api import ADMIN, token_for
from threadline.services.api.app import create_app


def test_the_webhook_is_registered_with_its_secret(
    sqlite_url: str, tmp_path: Path, telegram_server: FakeTelegram
) -> None:
    runtime = make_runtime(
        sqlite_url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "a"),
        telegram_api_url=telegram_server.url,
        public_url="https://crm.example.com",
    )
    try:
        with TestClient(create_app(runtime)) as client:
            created = client.post(
                "/api/inboxes",
                json={"slug": "bot", "channel": "telegram", "name": "Bot",
                      "settings": {"bot_token": telegram_server.token,
                                   "webhook_secret": "s3cret-token"}},
                headers=ADMIN,
            )  # fmt: skip
            assert created.status_code == 201, created.text
            operator = token_for(client, "operator")
            refused = client.post("/api/inboxes/bot/telegram-webhook", headers=operator)
            assert refused.status_code == 403
            done = client.post("/api/inboxes/bot/telegram-webhook", headers=ADMIN)
            assert done.status_code == 200, done.text
            assert done.json()["webhook_url"] == "https://crm.example.com/hooks/telegram/bot"
            [call] = telegram_server.calls_of("setWebhook")
            assert call["url"] == "https://crm.example.com/hooks/telegram/bot"
            assert call["secret_token"] == "s3cret-token"
            missing = client.post("/api/inboxes/nope/telegram-webhook", headers=ADMIN)
            assert missing.status_code == 404
    finally:
        runtime.close()
