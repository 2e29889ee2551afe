"""Secrets at rest: no password hash in the log, inbox secrets and hashes encrypted, rotation.

The checks read the database files' raw bytes (the SQLite file and its WAL), which
is what a leaked backup hands to whoever finds it.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from cryptography.fernet import Fernet
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient

from tests.services.server_process import threadline_env, threadline_executable
from threadline.projections.sql import table_rows
from threadline.services.api.app import create_app
from threadline.services.config import Settings
from threadline.services.runtime import Runtime
from threadline.services.secret_box import KEY_FILE_NAME, SecretKeyError
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import LoginLimiter

INBOX_SECRET = "imap-password-that-must-not-leak"
PASSWORD = "correct-horse-battery"


def raw_bytes(folder: Path) -> bytes:
    """Every SQLite file of an installation (store, views, state, their WAL files)."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob("*.db*")))


def open_runtime(folder: Path, **overrides: object) -> Runtime:
    settings = Settings(database_url=f"sqlite:///{folder}/threadline.db").with_overrides(
        **overrides
    )
    runtime = Runtime(settings)
    runtime.start()
    return runtime


def run_cli(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [threadline_executable(), *args],
        env=threadline_env(f"sqlite:///{folder}/threadline.db", admin_token=None, **env),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def log_in(runtime: Runtime, email: str, password: str) -> int:
    routes_auth.limiter = LoginLimiter()
    client = TestClient(create_app(runtime))
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found
    answer = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": found.group(1)},
        follow_redirects=False,
    )
    return answer.status_code


def test_the_state_database_holds_no_plain_secret_or_hash(tmp_path: Path) -> None:
    runtime = open_runtime(tmp_path)
    try:
        runtime.channels.secrets.put("mail", {"password": INBOX_SECRET})
        user_id, _ = runtime.app.create_user(
            "a@example.com", "admin", "test", password=PASSWORD
        ).value
        assert runtime.channels.secrets.get_all("mail") == {"password": INBOX_SECRET}
        stored_hash = runtime.credentials.password_hash(str(user_id))
        assert stored_hash is not None and stored_hash.startswith("$argon2")
    finally:
        runtime.close()
    files = raw_bytes(tmp_path)
    assert INBOX_SECRET.encode() not in files
    assert stored_hash.encode() not in files and b"$argon2" not in files
    key_file = tmp_path / KEY_FILE_NAME
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_users_create_keeps_the_hash_out_of_the_log_and_the_login_works(tmp_path: Path) -> None:
    made = run_cli(
        tmp_path, "users", "create", "--email", "cli@example.com", "--role", "admin",
        "--password", PASSWORD,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    log_file = (tmp_path / "threadline.db").read_bytes()
    wal = tmp_path / "threadline.db-wal"
    log_bytes = log_file + (wal.read_bytes() if wal.exists() else b"")
    assert b"UserCreated" in log_bytes and b"argon2" not in log_bytes
    runtime = open_runtime(tmp_path)
    try:
        assert log_in(runtime, "cli@example.com", PASSWORD) == 303
        assert log_in(runtime, "cli@example.com", "not-the-password") == 401
        columns = table_rows(runtime.views, "users", "id")[0].keys()
        assert "password_hash" not in columns
    finally:
        runtime.close()


def test_rotation_re_encrypts_everything_and_a_wrong_key_says_what_to_do(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    runtime = open_runtime(tmp_path, secret_key=old)
    try:
        runtime.channels.secrets.put("mail", {"password": INBOX_SECRET})
        runtime.app.create_user("rot@example.com", "admin", "test", password=PASSWORD)
    finally:
        runtime.close()

    wrong = run_cli(tmp_path, "users", "list", THREADLINE_SECRET_KEY=new)
    assert wrong.returncode == 2
    message = " ".join(wrong.stderr.split())
    assert "does not decrypt the secrets" in message and "threadline secrets rotate" in message

    refused = run_cli(tmp_path, "secrets", "rotate", THREADLINE_SECRET_KEY=new)
    assert refused.returncode == 2 and "THREADLINE_SECRET_KEY_OLD" in refused.stderr
    rotated = run_cli(
        tmp_path, "secrets", "rotate", THREADLINE_SECRET_KEY=new, THREADLINE_SECRET_KEY_OLD=old
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 1 inbox secrets, 1 password hashes" in " ".join(rotated.stderr.split())

    runtime = open_runtime(tmp_path, secret_key=new)
    try:
        assert runtime.channels.secrets.get_all("mail") == {"password": INBOX_SECRET}
        assert log_in(runtime, "rot@example.com", PASSWORD) == 303
    finally:
        runtime.close()
    with pytest.raises(SecretKeyError, match="threadline secrets rotate"):
        open_runtime(tmp_path, secret_key=old)
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        open_runtime(tmp_path, secret_key="not-a-key")


def _legacy_event(
    runtime: Runtime, user_id: object, version: int, topic: str, **state: object
) -> StoredEvent:
    """A version-1 user event as databases from before this change hold it (hash inside)."""
    body = {"timestamp": datetime.now(UTC), **state}
    if version == 1:
        body["originator_topic"] = "threadline.domain.model.user:User"
    return StoredEvent(
        originator_id=user_id,  # type: ignore[arg-type]
        originator_version=version,
        topic=f"threadline.domain.model.user:User.{topic}",
        state=runtime.app.mapper.transcoder.encode(body),
    )


def test_an_existing_database_keeps_working(tmp_path: Path) -> None:
    """Hashes in old events move to the credential store; plain secrets get encrypted."""
    from threadline.domain.commands.passwords import hash_password

    runtime = open_runtime(tmp_path)
    user_id = uuid4()
    first, second = hash_password("first-password"), hash_password(PASSWORD)
    try:
        runtime.app.recorder.insert_events(
            [
                _legacy_event(
                    runtime, user_id, 1, "UserCreated", email="old@example.com", name="Old",
                    role="admin", password_hash=first, locale="en", actor="cli",
                    correlation_id="c1",
                ),
                _legacy_event(
                    runtime, user_id, 2, "UserPasswordChanged", password_hash=second,
                    actor="cli", correlation_id="c2",
                ),
            ]
        )  # fmt: skip
        with runtime.state_db.transaction() as cur:  # a row from before encryption
            cur.execute(
                "INSERT INTO inbox_secrets (inbox_slug, name, value) VALUES ('tg', 'bot_token', ?)",
                [INBOX_SECRET],
            )
    finally:
        runtime.close()

    runtime = open_runtime(tmp_path)
    try:
        user = runtime.app.repository.get(user_id)
        assert user.has_password and not hasattr(user, "password_hash")
        assert runtime.credentials.password_hash(str(user_id)) == second
        assert runtime.channels.secrets.get_all("tg") == {"bot_token": INBOX_SECRET}
        assert log_in(runtime, "old@example.com", PASSWORD) == 303
        assert log_in(runtime, "old@example.com", "first-password") == 401
        # A password set now wins over the old events on every later start.
        runtime.app.set_password(user_id, "a-newer-password", "test")
    finally:
        runtime.close()
    state = b"".join(p.read_bytes() for p in tmp_path.glob("threadline-state.db*"))
    assert INBOX_SECRET.encode() not in state and b"$argon2" not in state
    runtime = open_runtime(tmp_path)
    try:
        assert log_in(runtime, "old@example.com", "a-newer-password") == 303
    finally:
        runtime.close()
