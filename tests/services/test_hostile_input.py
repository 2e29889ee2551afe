"""Hostile JSON and integers: a 4xx in the documented shape, never a 500 (issue 10, item 8).

Each case here was a 500 before: a lone UTF-16 surrogate in a JSON string (the 422
renderer echoed it and could not encode it, or the log could not store it), NaN and
numbers past 64 bits, JSON nested until `RecursionError`, and offsets past 2^63 on paged
lists (SQLite `OverflowError`), in the API and in the web app.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels.fake_telegram import TOKEN as BOT_TOKEN
from tests.conftest import make_runtime
from tests.web.helpers import login
from threadline.domain.model.errors import InvalidInput
from threadline.services.api.app import create_app
from threadline.services.api.errors import json_safe
from threadline.services.api.limits import MAX_JSON_DEPTH, JsonRefused, strict_json_loads
from threadline.services.runtime import Runtime
from threadline.services.web.local_time import parse_local, zone

TOKEN = "hostile-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**ADMIN, "Content-Type": "application/json"}
SECRET = "hook-secret_0123456789"
HOOK = "/hooks/telegram/tg"
HOOK_HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
PLACEHOLDER_ID = "7b0b3c9e-5a43-4a8e-9d1e-0d6f3f1f2a11"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Runtime]]:
    folder: Path = tmp_path_factory.mktemp("hostile")
    runtime = make_runtime(
        f"sqlite:///{folder}/threadline.db",
        admin_token=TOKEN,
        max_body_bytes=256_000,
        attachments_dir=str(folder / "attachments"),
    )
    runtime.channels.configure(
        "tg",
        "telegram",
        "Telegram",
        {"bot_token": BOT_TOKEN, "webhook_secret": SECRET},
        actor="test",
    )
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield client, runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def conversation(api: tuple[TestClient, Runtime]) -> dict[str, Any]:
    client, _ = api
    body = {"external_id": "hostile-1", "from": {"name": "Ann", "email": "ann@example.com"}}
    response = client.post("/api/inbound", json={**body, "text": "hello"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def assert_refusal(response: Any, status: int = 422) -> list[dict[str, Any]]:
    """The status, a UTF-8 JSON body, and `detail` in the documented 422 shape."""
    assert response.status_code == status, response.text
    raw: bytes = response.content
    text = raw.decode("utf-8")  # strict: a surrogate could not have been encoded
    detail = json.loads(text)["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str)
        assert isinstance(item["type"], str)
    return detail


def write_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that takes a JSON body, path ids filled in."""
    found = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                filled = path
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        filled = filled.replace("{" + parameter["name"] + "}", PLACEHOLDER_ID)
                found.append((method.upper(), filled))
    assert len(found) > 20
    return found


def test_a_lone_surrogate_is_a_422_on_every_write_endpoint(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    body = b'{"text": "\\ud800", "name": "x\\udfff", "title": "\\ud800", "email": "\\udbff"}'
    for method, path in write_operations(client):
        response = client.request(method, path, content=body, headers=JSON)
        detail = assert_refusal(response)
        assert "surrogate" in detail[0]["msg"], (method, path, detail)


def test_a_surrogate_that_passes_validation_is_refused_before_the_log(
    api: tuple[TestClient, Runtime], conversation: dict[str, Any]
) -> None:
    client, runtime = api
    before = runtime.app.recorder.max_notification_id()
    path = f"/api/conversations/{conversation['conversation_id']}/messages"
    assert_refusal(client.post(path, content=b'{"text": "hi \\ud800"}', headers=JSON))
    inbound = b'{"external_id": "\\udc00", "from": {"name": "\\ud800"}}'
    assert_refusal(client.post("/api/inbound", content=inbound, headers=JSON))
    assert runtime.app.recorder.max_notification_id() == before
    # A surrogate pair is a real character (an emoji) and is taken.
    ok = client.post(path, content=b'{"text": "\\ud83d\\ude00"}', headers=JSON)
    assert ok.status_code == 201, ok.text


def test_the_422_echo_never_carries_what_json_cannot(api: tuple[TestClient, Runtime]) -> None:
    """Bodies FastAPI reads as bytes (not JSON) are echoed as `input`: replaced, not a 500."""
    client, _ = api
    for content in (b"\xff\xfe\xed\xa0\x80", "\ud800".encode("utf-8", "surrogatepass")):
        response = client.post(
            "/api/contacts", content=content, headers={**ADMIN, "Content-Type": "text/plain"}
        )
        assert_refusal(response)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/contacts", b'{"name": "x", "source": {"acquisition_cost": NaN}}'),
        ("/api/contacts", b'{"name": "x", "source": {"acquisition_cost": Infinity}}'),
        ("/api/contacts", b'{"name": "x", "source": {"acquisition_cost": -Infinity}}'),
        ("/api/contacts", b'{"name": "x", "source": {"acquisition_cost": 1e400}}'),
        ("/api/inbound", b'{"external_id": "n1", "from": {"telegram_id": 99999999999999999999}}'),
        ("/api/inbound", b'{"external_id": "n2", "from": {"telegram_id": -9223372036854775809}}'),
        ("/api/contacts", b'{"name": "x", "attributes": {"a": 1' + b"0" * 5000 + b"}}"),
    ],
)
def test_numbers_no_store_can_keep_are_refused(
    api: tuple[TestClient, Runtime], path: str, body: bytes
) -> None:
    client, runtime = api
    before = runtime.app.recorder.max_notification_id()
    assert_refusal(client.post(path, content=body, headers=JSON))
    assert runtime.app.recorder.max_notification_id() == before


def nested(depth: int) -> bytes:
    return b'{"update_id": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_deep_nesting_on_the_telegram_hook_is_refused(
    api: tuple[TestClient, Runtime], content_type: str | None
) -> None:
    client, _ = api
    headers = dict(HOOK_HEADERS)
    if content_type:
        headers["Content-Type"] = content_type
    for depth in (MAX_JSON_DEPTH + 1, 5_000, 100_000):
        response = client.post(HOOK, content=nested(depth), headers=headers)
        assert_refusal(response)
    fine = client.post(HOOK, content=nested(MAX_JSON_DEPTH - 2), headers=headers)
    assert fine.status_code == 200, fine.text  # an update without a message: ignored


def test_hostile_json_on_the_telegram_hook_is_a_422(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    for body in (
        b'{"update_id": 7, "message": {"text": "\\ud800"}}',
        b'{"update_id": NaN}',
        b'{"update_id": 123456789012345678901234567890}',
    ):
        for headers in (HOOK_HEADERS, {**HOOK_HEADERS, "Content-Type": "text/plain"}):
            assert_refusal(client.post(HOOK, content=body, headers=headers))
    # Not JSON at all stays the hook's documented 400.
    response = client.post(HOOK, content=b"{not json", headers=HOOK_HEADERS)
    assert response.status_code == 400 and response.json() == {"detail": "the body is not JSON"}


def test_deep_nesting_is_refused_on_every_json_body(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    body = b'{"name": "x", "attributes": {"a": ' + b"[" * 900 + b"]" * 900 + b"}}"
    detail = assert_refusal(client.post("/api/contacts", content=body, headers=JSON))
    assert "nested deeper" in detail[0]["msg"]


def integer_query_parameters(client: TestClient) -> list[tuple[str, str]]:
    """(path with ids filled in, name) of every integer query parameter of a GET."""
    found = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        filled = path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                filled = filled.replace("{" + parameter["name"] + "}", PLACEHOLDER_ID)
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if parameter["in"] == "query" and "integer" in kinds:
                found.append((filled, parameter["name"]))
    return found


def test_every_integer_query_parameter_is_bounded(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    parameters = integer_query_parameters(client)
    names = {name for _, name in parameters}
    assert {"offset", "limit", "before"} <= names, names
    for path, name in parameters:
        for value in (2**63, 2**64, -(2**64), 10**30):
            response = client.get(path, params={name: str(value)}, headers=ADMIN)
            assert_refusal(response)


def test_the_largest_offset_is_an_empty_page(
    api: tuple[TestClient, Runtime], conversation: dict[str, Any]
) -> None:
    client, _ = api
    last = str(2**63 - 1)
    for path in ("/api/inbox", "/api/contacts", "/api/tasks", "/api/campaigns"):
        response = client.get(path, params={"offset": last}, headers=ADMIN)
        assert response.status_code == 200 and response.json()["items"] == [], response.text
    timeline = f"/api/contacts/{conversation['contact_id']}/timeline"
    response = client.get(timeline, params={"before": last}, headers=ADMIN)
    assert response.status_code == 200, response.text


def test_a_422_a_route_raises_has_the_documented_shape(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    detail = assert_refusal(client.get("/api/inbox", params={"assignee": "bogus"}, headers=ADMIN))
    assert "assignee" in detail[0]["msg"]
    refused = client.get("/api/tasks/not-a-uuid", headers=ADMIN)
    assert_refusal(refused)


def test_the_web_app_clamps_huge_page_numbers(
    api: tuple[TestClient, Runtime], conversation: dict[str, Any]
) -> None:
    _, runtime = api
    runtime.app.create_user(
        "web-admin@example.com", "admin", "test", password="correct-horse-battery"
    )
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        login(client, "web-admin@example.com")
        contact = conversation["contact_id"]
        for value in (str(2**63), str(2**64), "9" * 40, "-" + str(2**64), "²", "1e9"):
            for path in (
                "/contacts",
                "/inbox",
                "/admin/inboxes",
                "/admin/rules",
                "/admin/forms",
                "/admin/templates",
                "/admin/campaigns",
            ):
                response = client.get(path, params={"page": value})
                assert response.status_code in (200, 422), (path, value, response.text)
            response = client.get(f"/contacts/{contact}/timeline", params={"before": value})
            assert response.status_code == 200, (value, response.text)


def test_every_operation_documents_its_errors(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    document = client.get("/openapi.json").json()
    assert document["components"]["schemas"]["ErrorOut"]["properties"]["detail"]["type"] == (
        "string"
    )
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "503" in codes, (method, path)
            if path.startswith("/api/"):
                assert "401" in codes, (method, path)
            if method in ("post", "put", "patch"):
                assert {"400", "409", "413", "422"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path)
            if path.startswith("/hooks/"):
                assert "403" in codes, (method, path)


# -- the strict parser itself, on open-ended input -------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(
        st.characters()
        | st.characters(
            min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]
        ),  # lone surrogates
        max_size=8,
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


def storable(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return all(storable(v) for v in value)
    return all(storable(k) and storable(v) for k, v in value.items())


@settings(max_examples=300)
@given(value=json_values)
def test_the_strict_parser_takes_exactly_what_can_be_stored(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    try:
        parsed = strict_json_loads(text.encode())
    except JsonRefused as error:
        assert not error.malformed, text
        assert not storable(value), text
    else:
        assert storable(value), text
        assert parsed == value


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(value=json_values)
def test_any_json_body_is_answered_without_a_server_error(
    api: tuple[TestClient, Runtime], value: Any
) -> None:
    client, _ = api
    body = json.dumps(value, ensure_ascii=True, allow_nan=True).encode()
    for path, headers in (("/api/contacts", JSON), (HOOK, HOOK_HEADERS)):
        response = client.post(path, content=body, headers=headers)
        assert response.status_code < 500, (path, body, response.text)
        response.content.decode("utf-8")


# -- dates and times the views could not store --------------------------------------------

EDGE_INSTANTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0500-01-01T00:00:00Z"]


def test_instants_outside_what_the_views_store_are_a_422(
    api: tuple[TestClient, Runtime], conversation: dict[str, Any]
) -> None:
    """`0001-01-01T00:00+14:00` is before year 1 in UTC: its task stopped the views for good."""
    client, runtime = api
    before = runtime.app.recorder.max_notification_id()
    status = f"/api/conversations/{conversation['conversation_id']}/status"
    for value in EDGE_INSTANTS:
        assert_refusal(
            client.post("/api/tasks", json={"title": "t", "due_at": value}, headers=ADMIN)
        )
        assert_refusal(client.get("/api/tasks", params={"due_before": value}, headers=ADMIN))
        assert_refusal(
            client.post(status, json={"status": "snoozed", "snoozed_until": value}, headers=ADMIN)
        )
    assert runtime.app.recorder.max_notification_id() == before
    assert runtime.views_healthy()


def test_the_web_app_refuses_such_instants_with_the_field_named() -> None:
    for raw, where in (
        ("0001-01-01T00:00", "Pacific/Kiritimati"),
        ("9999-12-31T23:59", "Etc/GMT+12"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_local(raw, zone(where), "due_at")
        assert refused.value.field == "due_at"
    assert parse_local("2030-05-01T09:00", zone("Pacific/Kiritimati"), "due_at").year == 2030


@settings(max_examples=200)
@given(
    value=st.recursive(
        json_scalars | st.binary(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_whatever_a_422_echoes_can_be_sent(value: Any) -> None:
    json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False).encode("utf-8")
