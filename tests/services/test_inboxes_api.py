"""Inbox configuration through the API and the inboxes file; secrets never come back out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.test_api import ADMIN, token_for
from threadline.channels.base import ChannelAdapter, FieldKind, SettingField, register
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

SECRET = "s3cr3t-Pa55word-that-must-not-leak"


@register
class VaultAdapter(ChannelAdapter):
    channel = "vault"
    title = "Test channel with secrets"
    settings_schema = (
        SettingField("host", "Host", required=True),
        SettingField("port", "Port", FieldKind.INTEGER, default=993),
        SettingField("tls", "Use TLS", FieldKind.BOOLEAN, default=True),
        SettingField("folders", "Folders", FieldKind.LIST, default=["INBOX"]),
        SettingField("password", "Password", FieldKind.SECRET, required=True),
        SettingField("callback", "Callback", FieldKind.URL),
    )
    conversation_channels = ("vault",)
    recipient_kind: ClassVar[dict[str, str]] = {"vault": "email"}


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "a")
    )
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def vault_inbox(**settings: Any) -> dict[str, Any]:
    return {
        "slug": "vault-1",
        "channel": "vault",
        "name": "Vault",
        "settings": {"host": "mail.example.com", "password": SECRET, **settings},
    }


def test_create_read_and_change_an_inbox_without_leaking_secrets(
    api: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = api
    caplog.set_level(logging.DEBUG)
    created = client.post("/api/inboxes", json=vault_inbox(port="143"), headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["settings"] == {
        "host": "mail.example.com",
        "port": 143,
        "tls": True,
        "folders": ["INBOX"],
    }
    assert body["secrets"] == {"password": True}
    assert client.post("/api/inboxes", json=vault_inbox(), headers=ADMIN).status_code == 409
    # The secret is usable by the channel, but is in no response, log line or event.
    assert runtime.channels.inbox("vault-1").secret("password") == SECRET  # type: ignore[union-attr]
    everything = [
        client.get("/api/inboxes", headers=ADMIN).text,
        client.get("/api/inboxes/vault-1", headers=ADMIN).text,
        caplog.text,
        json.dumps(
            [
                n.state.decode(errors="replace")
                for n in runtime.app.recorder.select_notifications(start=1, limit=10_000)
            ]
        ),
    ]
    assert all(SECRET not in text for text in everything)
    # A PATCH that leaves the secret out keeps it; other settings change.
    patched = client.patch(
        "/api/inboxes/vault-1", json={"settings": {"host": "imap.example.com"}}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"]["host"] == "imap.example.com"
    assert runtime.channels.inbox("vault-1").secret("password") == SECRET  # type: ignore[union-attr]
    disabled = client.patch("/api/inboxes/vault-1", json={"enabled": False}, headers=ADMIN)
    assert disabled.json()["enabled"] is False
    assert runtime.channels.inboxes("vault") == []
    assert len(runtime.channels.inboxes("vault", enabled_only=False)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "no-such-channel"}, "channel"),
        ({"settings": {"host": "x"}}, "settings.password"),
        ({"settings": {"host": "x", "password": "p", "port": "many"}}, "settings.port"),
        ({"settings": {"host": "x", "password": "p", "tls": "perhaps"}}, "settings.tls"),
        ({"settings": {"host": "x", "password": "p", "callback": "ftp://x"}}, "settings.callback"),
        ({"settings": {"host": "x", "password": "p", "colour": "red"}}, "settings.colour"),
    ],
)
def test_invalid_configuration_names_the_field(
    api: tuple[TestClient, Runtime], change: dict[str, Any], field: str
) -> None:
    client, _ = api
    response = client.post("/api/inboxes", json={**vault_inbox(), **change}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][1:] == field.split(".")


def test_only_admins_configure_and_channels_describe_their_forms(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    operator = token_for(client, "operator")
    assert client.post("/api/inboxes", json=vault_inbox(), headers=operator).status_code == 403
    channels = {c["channel"]: c for c in client.get("/api/channels", headers=operator).json()}
    fields = {f["name"]: f for f in channels["vault"]["settings"]}
    assert fields["password"]["kind"] == "secret"
    assert fields["port"]["default"] == 993


def test_inboxes_file_applies_and_reads_secrets_from_the_environment(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_PASSWORD", SECRET)
    path = tmp_path / "inboxes.yaml"
    path.write_text(
        "inboxes:\n"
        "  - slug: from-file\n"
        "    channel: vault\n"
        "    name: From the file\n"
        "    settings:\n"
        "      host: mail.example.com\n"
        "      password: ${VAULT_PASSWORD}\n"
    )
    runtime = make_runtime(sqlite_url, inboxes_file=str(path), attachments_dir=str(tmp_path))
    try:
        runtime.channels.start(delivery=False, pollers=False)
        inbox = runtime.channels.inbox("from-file")
        assert inbox is not None
        assert inbox.secret("password") == SECRET
        assert inbox.setting("host") == "mail.example.com"
    finally:
        runtime.close()


def test_a_refused_create_leaves_the_existing_secrets_alone(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    assert client.post("/api/inboxes", json=vault_inbox(), headers=ADMIN).status_code == 201
    again = client.post(
        "/api/inboxes", json=vault_inbox(password="a-different-password"), headers=ADMIN
    )
    assert again.status_code == 409
    assert runtime.channels.inbox("vault-1").secret("password") == SECRET  # type: ignore[union-attr]
