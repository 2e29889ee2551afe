"""The `threadline` command as an operator meets it: a real process, its exit code and output.

These run the installed console script in a subprocess rather than typer's
`CliRunner`, because what matters is what a shell or a deploy script sees: the
exit status, a stdout that can be captured (`TOKEN=$(threadline users create
...)`), and a readable message on stderr instead of a traceback.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import ServerProcess, server_pool, threadline_env, threadline_executable

from threadline.services.store import default_views_url, sqlite_path

CLI_TIMEOUT = 60.0


def run_cli(
    *args: str, database_url: str, cwd: Path, admin_token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `threadline ARGS` to completion (bounded) and capture both streams as text."""
    return subprocess.run(
        [threadline_executable(), *args],
        cwd=cwd,
        env=threadline_env(database_url, admin_token),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """Both streams of a finished command, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


@pytest.fixture
def servers(sqlite_url: str, tmp_path: Path) -> Iterator[Callable[[], ServerProcess]]:
    """Start servers on the test's SQLite database; all are stopped when the test ends."""
    with server_pool(sqlite_url, tmp_path / "servers") as start:
        yield start


def wait_for_me(server: ServerProcess, token: str, timeout: float = 10.0) -> dict[str, Any]:
    """`GET /api/me` until the token is known to the server's views.

    A user created by another process reaches the server's views through its
    poll of the log (every 0.2 s on SQLite), so the first call may still be 401.
    """
    deadline = time.monotonic() + timeout
    with server.client(token) as client:
        while True:
            response = client.get("/api/me")
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"GET /api/me with the new token still answers {response.status_code} "
                    f"{response.text} after {timeout:.0f}s\n{server.log_tail()}"
                )
            time.sleep(0.1)


def create_user(sqlite_url: str, tmp_path: Path, email: str, role: str) -> str:
    """`threadline users create`; returns the token, which must be stdout's only line."""
    result = run_cli(
        "users", "create", "--email", email, "--role", role, database_url=sqlite_url, cwd=tmp_path
    )
    assert result.returncode == 0, describe(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout must be only the token, for $(...) capture\n{describe(result)}"
    token = lines[0].strip()
    assert len(token) >= 20 and not re.search(r"\s", token), describe(result)
    assert f"created {role} {email}" in result.stderr, describe(result)
    return token


# -- users ------------------------------------------------------------------------------------


def test_users_create_token_authenticates_against_a_started_server(
    sqlite_url: str, tmp_path: Path, servers: Callable[[], ServerProcess]
) -> None:
    token = create_user(sqlite_url, tmp_path, "a@example.com", "operator")

    server = servers()
    with server.client(token) as client:
        response = client.get("/api/me")
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["role"] == "operator"
    assert me["email"] == "a@example.com"
    assert me["user_id"]

    with server.client("tl_not-a-real-token") as client:
        assert client.get("/api/me").status_code == 401


def test_users_created_while_the_server_runs_can_authenticate(
    sqlite_url: str, tmp_path: Path, servers: Callable[[], ServerProcess]
) -> None:
    server = servers()
    token = create_user(sqlite_url, tmp_path, "b@example.com", "auditor")

    me = wait_for_me(server, token)
    assert (me["role"], me["email"]) == ("auditor", "b@example.com")

    listed = run_cli("users", "list", database_url=sqlite_url, cwd=tmp_path)
    assert listed.returncode == 0, describe(listed)
    assert re.search(r"\bauditor\s+b@example\.com\b", listed.stdout), describe(listed)


def test_users_create_with_an_invalid_role_fails_clearly(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli(
        "users",
        "create",
        "--email",
        "c@example.com",
        "--role",
        "superuser",
        database_url=sqlite_url,
        cwd=tmp_path,
    )
    assert result.returncode != 0, describe(result)
    assert result.stdout.strip() == "", f"no token may be printed\n{describe(result)}"
    assert "role" in result.stderr, describe(result)
    for role in ("admin", "manager", "operator", "auditor"):
        assert role in result.stderr, f"the message should list the valid roles\n{describe(result)}"
    assert "Traceback" not in result.stdout + result.stderr, describe(result)


# -- replay -----------------------------------------------------------------------------------


def ingest_sample(client: httpx.Client) -> None:
    """A few senders, threads and follow-up actions, so every view has rows to rebuild."""
    conversation_ids: list[str] = []
    for i in range(15):
        sender = i % 4
        response = client.post(
            "/api/inbound",
            json={
                "channel": "api",
                "external_id": f"replay-{i}",
                "from": {"name": f"Sender {sender}", "email": f"sender{sender}@example.com"},
                "subject": f"Question {i % 3}",
                "text": f"Message number {i} from sender {sender}",
                "thread": f"thread-{(i // 4) % 2}",
            },
        )
        assert response.status_code == 201, response.text
        conversation_ids.append(response.json()["conversation_id"])
    first, second = conversation_ids[0], conversation_ids[1]
    reply = client.post(f"/api/conversations/{first}/messages", json={"text": "Thanks, on it"})
    assert reply.status_code == 201, reply.text
    note = client.post(
        f"/api/conversations/{second}/messages", json={"text": "VIP", "internal": True}
    )
    assert note.status_code == 201, note.text
    resolved = client.post(f"/api/conversations/{second}/status", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    # No inbox is configured, so the delivery worker settles the reply as failed; wait for
    # that, so that nothing changes the log behind the test's back afterwards.
    reply_id = reply.json()["message_id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        messages = client.get(f"/api/conversations/{first}").json()["messages"]
        if any(m["id"] == reply_id and m["state"] == "failed" for m in messages):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the reply was never settled by the delivery worker")


def views_snapshot(client: httpx.Client) -> dict[str, Any]:
    """Everything the views serve about the sample: inbox, conversations, contacts, timelines."""

    def get(path: str, **params: Any) -> Any:
        response = client.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    inbox = get("/api/inbox", limit=500)
    contacts = get("/api/contacts", limit=500)
    return {
        "inbox": inbox,
        "conversations": {
            item["id"]: get(f"/api/conversations/{item['id']}") for item in inbox["items"]
        },
        "contacts": contacts,
        "timelines": {
            item["id"]: get(f"/api/contacts/{item['id']}/timeline", limit=1000)
            for item in contacts["items"]
        },
    }


def tamper_with_views(sqlite_url: str) -> None:
    """Damage the views behind the stopped server's back, so only a real rebuild restores them."""
    views_file = sqlite_path(default_views_url(sqlite_url))
    with sqlite3.connect(views_file) as conn:
        changed = conn.execute(
            "UPDATE inbox_conversations SET subject = 'tampered', message_count = 99"
        ).rowcount
        deleted = conn.execute("DELETE FROM timeline").rowcount
    assert changed > 0 and deleted > 0, "the views file should hold the sample's rows"
    conn.close()


def test_replay_rebuilds_the_same_views(
    sqlite_url: str, tmp_path: Path, servers: Callable[[], ServerProcess]
) -> None:
    server = servers()
    with server.client() as client:
        ingest_sample(client)
        before = views_snapshot(client)
    health = server.health()
    assert health["views_lag"] == 0, health
    assert before["inbox"]["total"] == 8  # 4 senders x 2 threads
    server.stop()  # replay on SQLite wants the server stopped

    tamper_with_views(sqlite_url)
    result = run_cli("replay", database_url=sqlite_url, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert f"from {health['log_position']} events" in result.stderr, describe(result)

    restarted = servers()
    restarted.wait_health(lambda h: h["views_lag"] == 0, what="have caught-up views")
    with restarted.client() as client:
        after = views_snapshot(client)
    assert after["inbox"]["items"] == before["inbox"]["items"]
    assert after == before


# -- the command itself -----------------------------------------------------------------------


def test_help_lists_every_command(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("--help", database_url=sqlite_url, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    for command in ("serve", "worker", "replay", "demo", "users", "bench"):
        assert re.search(rf"\b{command}\b", result.stdout), (
            f"{command!r} missing\n{describe(result)}"
        )


def test_unsupported_database_url_names_the_setting(tmp_path: Path) -> None:
    result = run_cli("replay", database_url="mysql://x", cwd=tmp_path)
    assert result.returncode != 0, describe(result)
    assert "THREADLINE_DATABASE_URL" in result.stderr, describe(result)
    assert "Traceback" not in result.stdout + result.stderr, describe(result)
