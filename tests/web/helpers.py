"""Logging in to the web app from tests: a TestClient with a session for a user of a given role."""

from __future__ import annotations

import re
from uuid import UUID

from fastapi.testclient import TestClient

from threadline.services.runtime import Runtime

PASSWORD = "correct-horse-battery"


def create_user(
    runtime: Runtime, email: str, role: str, name: str = "", locale: str = "en"
) -> UUID:
    user_id, _ = runtime.app.create_user(
        email, role, "test", name=name, password=PASSWORD, locale=locale
    ).value
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    user: UUID = user_id
    return user


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the login form; returns the session's CSRF token (for POSTs)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    session = client.get("/ui/session")
    assert session.status_code == 200, session.text
    csrf: str = session.json()["csrf"]
    return csrf


def web_client(
    runtime: Runtime, role: str = "operator", locale: str = "en"
) -> tuple[TestClient, str, UUID]:
    """A logged-in client for a new user of `role`; returns (client, csrf token, user id)."""
    from threadline.services.api.app import create_app

    email = f"{role}-{locale}@example.com"
    user_id = create_user(runtime, email, role, name=role.title(), locale=locale)
    client = TestClient(create_app(runtime))
    csrf = login(client, email)
    return client, csrf, user_id
