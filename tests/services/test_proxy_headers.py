"""X-Forwarded-For is believed only from THREADLINE_TRUSTED_PROXIES.

uvicorn's default believes the header from 127.0.0.1, so any local process could
choose the client address the login rate limit counts. The test runs the real
`threadline serve` and sends the header from 127.0.0.1 itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.services.server_process import ServerProcess
from threadline.services.cli import proxy_allow_list
from threadline.services.config import Settings


def guess(client: httpx.Client, forwarded_for: str) -> httpx.Response:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return client.post(
        "/login",
        data={"email": "victim@example.com", "password": "guess", "csrf_token": found.group(1)},
        headers={"X-Forwarded-For": forwarded_for},
    )


def test_a_forged_forwarded_for_does_not_escape_the_login_limit(tmp_path: Path) -> None:
    with (
        ServerProcess(f"sqlite:///{tmp_path}/threadline.db", tmp_path / "server") as server,
        httpx.Client(base_url=server.base_url, timeout=30.0) as client,
    ):
        statuses = []
        # Each lock doubles (1 s, 2 s, 4 s …), so however slow the machine, a 429
        # comes within twenty guesses, unless every guess looks like a new address.
        for n in range(20):
            answer = guess(client, f"10.9.{n}.{n}")
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                break
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429


def test_forwarded_headers_are_trusted_only_from_configured_proxies() -> None:
    assert proxy_allow_list(Settings()) == []
    settings = Settings.from_env({"THREADLINE_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16"})
    assert settings.trusted_proxies == ("10.0.0.1", "192.168.0.0/16")
    assert proxy_allow_list(settings) == ["10.0.0.1", "192.168.0.0/16"]
    with pytest.raises(SystemExit, match="THREADLINE_TRUSTED_PROXIES"):
        Settings.from_env({"THREADLINE_TRUSTED_PROXIES": "proxy.example.com"})


def test_a_configured_proxy_is_believed(tmp_path: Path) -> None:
    """What uvicorn's default did for every local process, now only for a named proxy."""
    with (
        ServerProcess(
            f"sqlite:///{tmp_path}/threadline.db",
            tmp_path / "server",
            extra_env={"THREADLINE_TRUSTED_PROXIES": "127.0.0.1"},
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=30.0) as client,
    ):
        # Every guess comes from another client address behind the proxy: each is a
        # first failure of its own (address, account) pair.
        statuses = {guess(client, f"10.9.{n}.{n}").status_code for n in range(8)}
        assert statuses == {401}
        locked = []
        for _ in range(20):  # doubling locks: a 429 comes however slow the machine
            locked.append(guess(client, "10.8.8.8").status_code)
            if locked[-1] == 429:
                break
        assert locked[:5] == [401] * 5 and locked[-1] == 429
