"""Logging in and out of the web app: sessions, CSRF, the login rate limit, the language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import PASSWORD, create_user, login
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import LoginLimiter


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "a"))
    # every test starts with a clean limit, on a clock that stands still (no lock runs out)
    routes_auth.limiter = LoginLimiter(clock=lambda: 0.0)
    try:
        yield rt
    finally:
        rt.close()


def login_form(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_login_sets_a_session_cookie_and_logout_ends_it(runtime: Runtime) -> None:
    create_user(runtime, "anna@example.com", "operator", name="Anna")
    client = TestClient(create_app(runtime))
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    token = login_form(client)
    answer = client.post(
        "/login",
        data={"email": "ANNA@example.com", "password": PASSWORD, "csrf_token": token,
              "next": "/tasks"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/tasks"
    cookie = answer.headers["set-cookie"]
    assert "tl_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    session = client.get("/ui/session").json()
    assert session["name"] == "Anna" and session["role"] == "operator"
    # Logging out needs the CSRF token too, and ends the session on the server.
    assert client.post("/logout", follow_redirects=False).status_code == 403
    out = client.post("/logout", data={"csrf_token": session["csrf"]}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set("tl_session", cookie.split("tl_session=")[1].split(";")[0])
    assert client.get("/ui/session", follow_redirects=False).status_code == 303


def test_wrong_passwords_are_refused_and_then_rate_limited(runtime: Runtime) -> None:
    create_user(runtime, "boris@example.com", "operator")
    client = TestClient(create_app(runtime))
    token = login_form(client)
    statuses = [
        client.post(
            "/login",
            data={"email": "boris@example.com", "password": f"guess-{n}", "csrf_token": token},
        ).status_code
        for n in range(7)
    ]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    # Even the right password waits out the window: the guesser learns nothing.
    right = client.post(
        "/login", data={"email": "boris@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert right.status_code == 429 and "Retry-After" in right.headers


def test_a_login_without_the_form_token_is_refused(runtime: Runtime) -> None:
    create_user(runtime, "vera@example.com", "operator")
    client = TestClient(create_app(runtime))
    answer = client.post(
        "/login", data={"email": "vera@example.com", "password": PASSWORD, "csrf_token": "x"}
    )
    assert answer.status_code == 403
    assert client.get("/ui/session", follow_redirects=False).status_code == 303


def test_redirects_after_login_stay_inside_the_app(runtime: Runtime) -> None:
    create_user(runtime, "gleb@example.com", "operator")
    client = TestClient(create_app(runtime))
    token = login_form(client)
    answer = client.post(
        "/login",
        data={"email": "gleb@example.com", "password": PASSWORD, "csrf_token": token,
              "next": "//evil.example.com/x"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.headers["location"] == "/inbox"


def test_pages_ask_for_a_login_and_htmx_gets_a_redirect_header(runtime: Runtime) -> None:
    client = TestClient(create_app(runtime))
    page = client.get("/ui/session", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    fragment = client.get("/ui/session", headers={"HX-Request": "true"}, follow_redirects=False)
    assert fragment.headers["HX-Redirect"].startswith("/login")


def test_the_language_is_the_users_and_can_be_switched(runtime: Runtime) -> None:
    create_user(runtime, "olga@example.com", "operator", locale="ru")
    client = TestClient(create_app(runtime))
    csrf = login(client, "olga@example.com")
    assert client.get("/ui/session").json()["locale"] == "ru"
    ru_login = client.get("/login?lang=ru")
    assert "Пароль" in ru_login.text
    switched = client.post(
        "/me/locale", data={"locale": "en", "csrf_token": csrf}, follow_redirects=False
    )
    assert switched.status_code == 303
    assert client.get("/ui/session").json()["locale"] == "en"


def test_an_auditor_cannot_post_anything(runtime: Runtime) -> None:
    create_user(runtime, "audrey@example.com", "auditor")
    client = TestClient(create_app(runtime))
    csrf = login(client, "audrey@example.com")
    # The language switch is the auditor's own preference, not a change to the data.
    assert client.post("/me/locale", data={"locale": "ru", "csrf_token": csrf},
                       follow_redirects=False).status_code == 303  # fmt: skip


def test_the_event_stream_says_hello(runtime: Runtime) -> None:
    create_user(runtime, "sse@example.com", "operator")
    client = TestClient(create_app(runtime))
    login(client, "sse@example.com")
    with client.stream("GET", "/ui/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = next(stream.iter_lines())
        assert first.startswith("retry:")
