"""Login against guessing: no account enumeration by timing, lockout per address and account.

Timing is not asserted (a busy machine makes it meaningless); what makes the
answers take equally long is that every refused login runs exactly one argon2
verification, and that is counted. Lock expiry runs on a clock the test moves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.web.helpers import PASSWORD, create_user
from threadline.domain.commands import passwords as application
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import MAX_DELAY, LoginLimiter

ATTACKER = ("203.0.113.66", 40000)
OWNER = ("198.51.100.7", 40001)


class Clock:
    """Time that passes only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path, clock: Clock) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "a"))
    routes_auth.limiter = LoginLimiter(clock=clock)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification of a login, by hash (the real verification still runs)."""
    seen: list[str] = []
    original: Callable[[str, str], bool] = application.argon2_verify

    def counted(password_hash: str, password: str) -> bool:
        seen.append(password_hash)
        return original(password_hash, password)

    monkeypatch.setattr(application, "argon2_verify", counted)
    return seen


def attempt(runtime: Runtime, email: str, password: str, client: tuple[str, int]) -> Any:
    browser = TestClient(create_app(runtime), client=client)
    page = browser.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return browser.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": found.group(1)},
        follow_redirects=False,
    )


def test_every_refused_login_costs_one_argon2_verification(
    runtime: Runtime, verifications: list[str]
) -> None:
    create_user(runtime, "known@example.com", "operator")
    runtime.app.create_user("nopassword@example.com", "operator", "test")  # token-only account
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    cases = [
        ("known@example.com", "wrong-password"),
        ("nobody@example.com", "wrong-password"),
        ("nopassword@example.com", "wrong-password"),
    ]
    for n, (email, password) in enumerate(cases):
        answer = attempt(runtime, email, password, ("192.0.2.1", 1000 + n))
        assert answer.status_code == 401
        assert "Wrong e-mail or password." in answer.text
    # One verification each, the unknown and the password-less ones against a dummy hash.
    assert len(verifications) == 3
    assert verifications[1] == verifications[2] != verifications[0]


def test_an_attacker_is_locked_out_but_the_owner_at_another_address_logs_in(
    runtime: Runtime,
) -> None:
    create_user(runtime, "owner@example.com", "operator")
    statuses = [attempt(runtime, "owner@example.com", f"guess-{n}", ATTACKER) for n in range(7)]
    assert [s.status_code for s in statuses] == [401] * 5 + [429, 429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    # Even the right password waits from the attacker's address: the guesser learns nothing.
    assert attempt(runtime, "owner@example.com", PASSWORD, ATTACKER).status_code == 429
    # The owner, elsewhere, is not locked out by the stranger.
    assert attempt(runtime, "owner@example.com", PASSWORD, OWNER).status_code == 303


def test_the_lock_grows_and_a_success_starts_afresh(runtime: Runtime, clock: Clock) -> None:
    create_user(runtime, "grow@example.com", "operator")
    for n in range(5):
        assert attempt(runtime, "grow@example.com", f"bad-{n}", ATTACKER).status_code == 401
    waits = []
    for n in range(3):
        locked = attempt(runtime, "grow@example.com", "bad", ATTACKER)
        assert locked.status_code == 429
        wait = int(locked.headers["Retry-After"])
        waits.append(wait)
        clock.now += wait  # the lock runs out; the next guess fails and doubles it
        assert attempt(runtime, "grow@example.com", f"bad-again-{n}", ATTACKER).status_code == 401
    assert waits[0] < waits[1] < waits[2]
    clock.now += 3600
    assert attempt(runtime, "grow@example.com", PASSWORD, ATTACKER).status_code == 303
    # After the success the pair starts again with its free attempts.
    assert attempt(runtime, "grow@example.com", "bad", ATTACKER).status_code == 401
    assert attempt(runtime, "grow@example.com", "bad", ATTACKER).status_code == 401


def test_one_address_spraying_many_accounts_is_slowed_down(clock: Clock) -> None:
    limiter = LoginLimiter(per_address=30, window=60.0, clock=clock)
    for n in range(30):
        assert limiter.retry_after("192.0.2.9", f"user{n}@example.com") == 0
        limiter.failed("192.0.2.9", f"user{n}@example.com")
    assert limiter.retry_after("192.0.2.9", "fresh@example.com") > 0
    assert limiter.retry_after("192.0.2.10", "fresh@example.com") == 0
    clock.now += 61
    assert limiter.retry_after("192.0.2.9", "fresh@example.com") == 0


@given(st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=30))
def test_backoff_never_shrinks_and_stays_under_the_cap(counts: list[int]) -> None:
    limiter = LoginLimiter()
    delays = [limiter.delay_for(n) for n in sorted(counts)]
    assert delays == sorted(delays)
    assert all(0 <= delay <= MAX_DELAY for delay in delays)
    assert limiter.delay_for(4) == 0 and limiter.delay_for(5) == 1 and limiter.delay_for(7) == 4
