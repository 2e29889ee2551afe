"""A PostgreSQL outage for real: the test's own database drops every session and refuses new ones.

What a restart or failover of the database server does to a running Threadline:
every pooled connection dies at once and, for a while, no new one can be made.
Nothing may answer 500, nothing acknowledged may be lost, and once the database
is back the server must serve again by itself, without a restart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import POSTGRES_URL, make_runtime, need_postgres
from tests.waiting import wait_for
from threadline.services import state_stack, view_stack
from threadline.services.api.app import create_app
from threadline.services.store import library_env

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def own_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this test's own (cutting off `test` would hit every other test)."""
    need_postgres()
    name = f"tl_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def quick_timeouts(url: str) -> dict[str, str]:
        # 2 s instead of 10 s to wait for a pooled connection: the outage answers sooner
        return library_env(url) | {"POSTGRES_CONNECT_TIMEOUT": "2"}

    # the log and the views (`view_stack`), the state database (`state_stack`)
    monkeypatch.setattr(view_stack, "library_env", quick_timeouts)
    monkeypatch.setattr(state_stack, "library_env", quick_timeouts)
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_reachable(url: str, reachable: bool) -> None:
    """Refuse new sessions and end the open ones (down), or accept sessions again (up)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}')
        if not reachable:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )


def inbound(external_id: str) -> dict[str, Any]:
    return {
        "channel": "api",
        "external_id": external_id,
        "from": {"name": external_id, "email": f"{external_id}@example.com"},
        "text": f"message {external_id}",
    }


def post_until_accepted(client: TestClient, external_id: str, within: float = 60.0) -> int:
    """What a well-behaved client does: retry after a 503 (as Retry-After says)."""
    deadline = time.monotonic() + within
    while True:
        response = client.post("/api/inbound", json=inbound(external_id), headers=ADMIN)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code in (200, 201), response.text
            return response.status_code
        time.sleep(float(response.headers["Retry-After"]) / 4)


def test_a_database_outage_answers_503_and_service_resumes_without_a_restart(
    own_database: str,
) -> None:
    runtime = make_runtime(own_database, admin_token="admin-secret")
    try:
        with TestClient(create_app(runtime)) as client:
            assert post_until_accepted(client, "before") == 201

            set_reachable(own_database, False)
            during = client.post("/api/inbound", json=inbound("during"), headers=ADMIN)
            assert during.status_code == 503, during.text
            assert during.headers["Retry-After"] == "2"
            assert "database is unavailable" in during.json()["detail"]
            listing = client.get("/api/inbox", headers=ADMIN)
            assert listing.status_code == 503, listing.text
            assert client.get("/healthz").status_code == 503

            set_reachable(own_database, True)
            # the refused message, sent again, is accepted once; new ones flow again
            assert post_until_accepted(client, "during") == 201
            assert post_until_accepted(client, "after") == 201
            assert post_until_accepted(client, "after") == 200  # a redelivery stays one message

            def inbox_complete() -> list[dict[str, Any]] | None:
                response = client.get("/api/inbox", headers=ADMIN)
                items = response.json()["items"] if response.status_code == 200 else []
                return items if len(items) == 3 else None

            items = wait_for(inbox_complete, "the views to show all three messages", timeout=60)
            assert sorted(i["last_message"] for i in items) == [
                "message after",
                "message before",
                "message during",
            ]
            assert all(i["message_count"] == 1 for i in items)
            health = wait_for(
                lambda: (h := client.get("/healthz").json())["status"] == "ok" and h,
                "the server to report itself healthy",
                timeout=30,
            )
            assert health["views_lag"] == 0
    finally:
        runtime.close()
