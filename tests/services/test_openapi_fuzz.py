"""Schemathesis over the whole OpenAPI document: no 5xx and no undocumented answer.

Every operation the app publishes (the JSON API, the webhooks under /hooks and the public
forms under /forms) is called with generated valid and invalid requests as the admin. A
server error, a status code the operation does not document, or a body that does not match
the documented schema fails the test. Examples are bounded and derandomised, so a run is
repeatable and short enough for `make test`.

Schemathesis reads the OpenAPI document when pytest collects this module (it makes one test
per operation), so the app is built then from the settings alone; a module fixture gives it
its started runtime before the first call. (`schemathesis.pytest.from_fixture` would avoid
that, but it does not run under pytest 9.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_runtime
from threadline.services.api.app import create_app
from threadline.services.config import Settings
from threadline.services.runtime import Runtime

TOKEN = "fuzz-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 64_000


@dataclass
class NotStarted:
    """What `create_app` reads while it builds the routes: the settings, nothing else."""

    settings: Settings


APP = create_app(NotStarted(Settings().with_overrides(max_body_bytes=MAX_BODY)))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def started_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    runtime = make_runtime(
        f"sqlite:///{folder}/threadline.db",
        admin_token=TOKEN,
        max_body_bytes=MAX_BODY,
        attachments_dir=str(folder / "attachments"),
    )
    APP.state.runtime = runtime
    seed(runtime)
    try:
        yield runtime
    finally:
        runtime.close()


KNOWN: dict[str, str] = {}
"""Ids of real records by path parameter name, so generated calls reach more than 404s."""


def seed(runtime: Runtime) -> None:
    """One contact with a conversation and a task: what the generated ids are swapped for."""
    from uuid import UUID

    with TestClient(APP) as client:
        message = {"external_id": "seed-1", "from": {"name": "Ann", "email": "ann@example.com"}}
        ids = client.post("/api/inbound", json={**message, "text": "hi"}, headers=ADMIN).json()
        task = client.post(
            "/api/tasks", json={"title": "call", "contact_id": ids["contact_id"]}, headers=ADMIN
        ).json()
    KNOWN.update(
        contact_id=ids["contact_id"],
        conversation_id=ids["conversation_id"],
        task_id=task["id"],
    )
    assert all(UUID(value) for value in KNOWN.values())


def with_known_ids(case: Any) -> None:
    """Swap a generated UUID for a real record's (an invalid one stays: it tests the 422)."""
    from uuid import UUID

    for name, value in list((case.path_parameters or {}).items()):
        if name not in KNOWN or not isinstance(value, str):
            continue
        try:
            UUID(value)
        except ValueError:
            continue
        case.path_parameters[name] = KNOWN[name]


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    deadline=None,
)
def test_no_operation_answers_5xx_or_off_its_documentation(case: Any) -> None:
    with_known_ids(case)
    case.call_and_validate(
        headers=ADMIN,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
