"""Hostile rules and templates (issue 10, items 6, 7, 12 and the rule-secret part of 14).

Through the real API, web app and webhook worker: a template bomb previews as a
422 and fails a firing instead of freezing the server; a YAML alias bomb is
refused before anything is appended; a webhook cannot reach an internal address
unless the operator allows it; a literal webhook secret never enters the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.services.test_api import ADMIN
from tests.triggers.test_rules_api import Receiver, inbound
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.projections import automation
from threadline.services.api.app import create_app
from threadline.services.rules_io import RulesFileError, import_rules
from threadline.services.runtime import Runtime
from threadline.triggers.destinations import DestinationPolicy, DestinationRefused, is_internal

BOMB = "{{ 3**100**100**100**40 }}"
LITERAL_SECRET = "s3cret-literal-7f1e2d"


def started(database_url: str, tmp_path: Path, **overrides: Any) -> Runtime:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "a"), **overrides
    )
    runtime.start_triggers()
    return runtime


@pytest.fixture
def strict(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    """No allow-list: the defaults an installation starts with."""
    runtime = started(database_url, tmp_path)
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


@pytest.fixture
def allowing(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    """The local test receiver (127.0.0.1) allowed, as an operator would allow an ERP."""
    runtime = started(database_url, tmp_path, webhook_allow=("127.0.0.1",))
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def log_position(runtime: Runtime) -> int:
    return int(runtime.app.recorder.max_notification_id() or 0)


def raw_log(runtime: Runtime) -> list[bytes]:
    """Every stored event as the store holds it (topic and state bytes)."""
    notifications = runtime.app.recorder.select_notifications(
        1, log_position(runtime) + 1, inclusive_of_start=True
    )
    return [n.topic.encode() + b" " + bytes(n.state) for n in notifications]


# -- item 6: the template budget through the API and the runner -----------------------------


def test_the_template_bomb_is_refused_at_save_and_a_forced_one_previews_as_422(
    strict: tuple[TestClient, Runtime],
) -> None:
    client, runtime = strict
    body = {"slug": "bomb", "name": "Bomb", "variants": {"default": {"text": BOMB}}}
    refused = client.post("/api/templates", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert "rendering budget" in refused.text
    strings = {"slug": "loops", "name": "Loops", "variants": {"default": {"text": (
        "{% for a in range(10**6) %}{% for b in range(10**6) %}{% endfor %}{% endfor %}")}}}  # fmt: skip
    assert client.post("/api/templates", json=strings, headers=ADMIN).status_code == 422
    # Forced past save (written straight to the log, as an older version accepted it):
    runtime.wait_for_views(runtime.app.save_template("bomb", "Bomb", body["variants"], "test")
                           .notification_id)  # fmt: skip
    contact = inbound(client, "m1")["contact_id"]
    preview = client.post(
        "/api/templates/bomb/preview", json={"contact_id": contact, "channel": "sms"},
        headers=ADMIN,
    )  # fmt: skip
    assert preview.status_code == 422, preview.text
    assert "rendering budget" in preview.text


def test_a_firing_with_a_bomb_template_records_the_failed_action(
    strict: tuple[TestClient, Runtime],
) -> None:
    client, runtime = strict
    runtime.app.save_template("bomb", "Bomb", {"default": {"text": BOMB}}, "test")
    rule = {"name": "Send the bomb", "when": "message.received",
            "then": [{"send_template": {"template": "bomb"}}, {"add_tag": "after-the-bomb"}]}  # fmt: skip
    created = client.post("/api/rules", json=rule, headers=ADMIN)
    assert created.status_code == 201, created.text
    inbound(client, "m1")
    firings = wait_for(
        lambda: client.get(f"/api/rules/{created.json()['id']}/firings", headers=ADMIN).json()[
            "items"
        ],
        "the firing",
    )
    effects = firings[0]["effects"]
    assert "rendering budget" in effects[0]["skipped"]
    assert effects[1]["tag"] == "after-the-bomb"  # the rest of the rule still ran


# -- item 7: the rules file -------------------------------------------------------------------

# 361 bytes; expands to 9**6 (531,441) strings: a 3.7 MB event appended by the old code.
ALIAS_BOMB = """a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
rules:
- name: laughs
  when: message.received
  then: [{set_attribute: {key: k, value: *f}}]
"""


def test_a_yaml_alias_bomb_is_refused_and_nothing_is_appended(
    strict: tuple[TestClient, Runtime],
) -> None:
    _, runtime = strict
    bomb = ALIAS_BOMB
    assert len(bomb.encode()) < 450
    before = log_position(runtime)
    with pytest.raises(RulesFileError, match="expands to more than"):
        import_rules(runtime, bomb, actor="test")
    client, csrf, _ = web_client(runtime, "manager")
    position = log_position(runtime)  # the manager's account was created just now
    answer = client.post("/admin/rules/import", data={"csrf_token": csrf, "yaml": bomb})
    assert answer.status_code == 422, answer.text[:300]
    assert "expands to more than" in answer.text
    assert log_position(runtime) == position
    assert before <= position
    assert automation.rule_count(runtime.views) == 0


def test_aliases_are_counted_and_big_files_refused(strict: tuple[TestClient, Runtime]) -> None:
    _, runtime = strict
    many = "x: &x 1\nrules: [" + ", ".join(["*x"] * 101) + "]\n"
    with pytest.raises(RulesFileError, match="more than 100 YAML aliases"):
        import_rules(runtime, many, actor="test")
    with pytest.raises(RulesFileError, match="at most 1048576"):
        import_rules(runtime, "#" * 1_048_577, actor="test")
    with pytest.raises(RulesFileError, match="nested too deeply"):
        import_rules(runtime, "[" * 5000 + "]" * 5000, actor="test")


@pytest.mark.parametrize(
    ("action", "path"),
    [
        ({"set_attribute": {"key": "k", "value": {"nested": ["x"] * 5}}}, "then[0].set_attribute.value"),
        ({"create_task": {"title": "T", "payload": "x" * 1000}}, "then[0].create_task.payload"),
        ({"create_task": {"title": ["not", "text"]}}, "then[0].create_task.title"),
        ({"notify": {"text": "hi", "email": "yes"}}, "then[0].notify.email"),
        ({"webhook": {"url": "https://example.com/h", "secret": {"a": 1}}}, "then[0].webhook.secret"),
        ({"add_tag": "x" * 201}, "then[0].add_tag"),
        ({"send_template": {"template": "t", "channel": ["email"]}}, "then[0].send_template.channel"),
        ({"stop": "maybe"}, "then[0].stop"),
    ],
)  # fmt: skip
def test_every_action_value_is_type_checked(
    strict: tuple[TestClient, Runtime], action: dict[str, Any], path: str
) -> None:
    client, runtime = strict
    runtime.app.save_template("t", "T", {"default": {"text": "hi"}}, "test")
    before = log_position(runtime)
    rule = {"name": "R", "when": "message.received", "then": [action]}
    answer = client.post("/api/rules", json=rule, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert ".".join(str(p) for p in answer.json()["detail"][0]["loc"][1:]) == path
    assert log_position(runtime) == before


# -- item 12: webhook destinations ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one number
        "http://127.1/hook",
    ],
)
def test_a_webhook_to_an_internal_address_is_refused_at_save(
    strict: tuple[TestClient, Runtime], url: str
) -> None:
    client, _ = strict
    rule = {"name": "R", "when": "message.received", "then": [{"webhook": {"url": url}}]}
    answer = client.post("/api/rules", json=rule, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][1:] == ["then[0]", "webhook", "url"] or (
        "THREADLINE_WEBHOOK_ALLOW" in answer.text
    )
    assert "THREADLINE_WEBHOOK_ALLOW" in answer.text


def test_a_host_that_resolves_to_an_internal_address_fails_permanently_at_send(
    strict: tuple[TestClient, Runtime],
) -> None:
    client, runtime = strict
    receiver = Receiver()
    try:
        # `vm` and `localhost` resolve to 127.0.0.1 (/etc/hosts): saved straight to the log,
        # as a rule saved before this check, or a name whose DNS answer changed since.
        port = receiver.server.server_address[1]
        rule = {"name": "Rebound", "when": {"event": "message.received"},
                "then": [{"webhook": {"url": f"http://localhost:{port}/hook"}}]}  # fmt: skip
        runtime.app.save_rule(rule, "test")
        runtime.wait_for_views(log_position(runtime))
        runtime.triggers.load_rules()
        runtime.channels.start(pollers=False)
        inbound(client, "m1")
        row = wait_for(
            lambda: next(iter(automation.webhook_calls(runtime.views, "failed")), None),
            "the refused call",
        )
        assert row.attempts == 1  # permanent: not retried
        assert row.last_error and "refused" in row.last_error
        assert "internal address" in row.last_error
        assert receiver.calls == []
    finally:
        receiver.server.shutdown()


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True), ("10.0.0.1", True), ("172.31.255.255", True), ("192.168.0.1", True),
        ("169.254.169.254", True), ("0.0.0.0", True), ("224.0.0.251", True), ("100.64.0.1", True),
        ("::1", True), ("::", True), ("fd12::1", True), ("fe80::1", True), ("ff02::1", True),
        ("::ffff:10.0.0.1", True), ("8.8.8.8", False), ("2a00:1450:4001::200e", False),
        ("172.32.0.1", False),
    ],
)  # fmt: skip
def test_internal_addresses(address: str, internal: bool) -> None:
    import ipaddress

    assert is_internal(ipaddress.ip_address(address)) is internal


def test_the_allow_list_takes_networks_addresses_and_host_names() -> None:
    import ipaddress

    policy = DestinationPolicy.parse("10.0.0.0/8, 127.0.0.1 ,erp.internal.")
    assert policy.allows("x", ipaddress.ip_address("10.9.8.7"))
    assert policy.allows("x", ipaddress.ip_address("127.0.0.1"))
    assert not policy.allows("x", ipaddress.ip_address("127.0.0.2"))
    assert policy.allows("ERP.internal", ipaddress.ip_address("192.168.1.1"))
    policy.check_at_save("http://10.1.1.1/x")
    with pytest.raises(DestinationRefused):
        policy.check_at_save("http://192.168.1.1/x")
    with pytest.raises(DestinationRefused):
        DestinationPolicy().resolve("localhost", 80)
    assert str(DestinationPolicy.parse("localhost").resolve("localhost", 80)) in (
        "127.0.0.1",
        "::1",
    )
    with pytest.raises(ValueError, match="THREADLINE_WEBHOOK_ALLOW"):
        DestinationPolicy.parse("10.0.0.0/33")


def test_the_allow_list_setting_is_read_and_checked() -> None:
    from threadline.services.config import Settings

    settings = Settings.from_env({"THREADLINE_WEBHOOK_ALLOW": "127.0.0.1, erp.internal"})
    assert settings.webhook_allow == ("127.0.0.1", "erp.internal")
    with pytest.raises(SystemExit, match="THREADLINE_WEBHOOK_ALLOW"):
        Settings.from_env({"THREADLINE_WEBHOOK_ALLOW": "not a host/99"})


# -- item 14: a literal webhook secret stays out of the log -------------------------------------


def test_a_literal_webhook_secret_is_not_in_the_log_and_still_signs(
    allowing: tuple[TestClient, Runtime],
) -> None:
    client, runtime = allowing
    receiver = Receiver()
    try:
        rule = {"name": "Tell the ERP", "when": "message.received",
                "then": [{"webhook": {"url": receiver.url, "secret": LITERAL_SECRET}}]}  # fmt: skip
        created = client.post("/api/rules", json=rule, headers=ADMIN)
        assert created.status_code == 201, created.text
        assert created.json()["definition"]["then"][0]["webhook"]["secret"] == "********"
        rule_id = created.json()["id"]
        # Saved again unchanged (the redacted form), then renamed: the secret is kept.
        again = {**created.json()["definition"], "name": "Tell the ERP (renamed)"}
        assert client.put(f"/api/rules/{rule_id}", json=again, headers=ADMIN).status_code == 200
        runtime.channels.start(pollers=False)
        inbound(client, "m1")
        wait_for(lambda: receiver.calls, "the webhook call")
        headers, body = receiver.calls[0]
        expected = hmac.new(LITERAL_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Threadline-Signature"] == f"sha256={expected}"
        stored = raw_log(runtime)
        assert any(b"Rule" in event for event in stored)
        assert not [event for event in stored if LITERAL_SECRET.encode() in event]
        row = automation.rule(runtime.views, rule_id)
        assert row is not None
        assert LITERAL_SECRET not in json.dumps(row.definition)
        assert row.definition["then"][0]["webhook"]["secret"] == "********"
    finally:
        receiver.server.shutdown()


def test_a_secret_mark_without_a_stored_secret_is_refused(
    allowing: tuple[TestClient, Runtime],
) -> None:
    client, runtime = allowing
    rule = {"name": "R", "when": "message.received",
            "then": [{"webhook": {"url": "https://example.com/h", "secret": "********"}}]}  # fmt: skip
    before = log_position(runtime)
    answer = client.post("/api/rules", json=rule, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert "write the secret itself" in answer.text
    assert log_position(runtime) == before


def test_the_cli_export_round_trips_a_stored_secret(
    allowing: tuple[TestClient, Runtime], tmp_path: Path
) -> None:
    from threadline.services.rule_secrets import stored_secret
    from threadline.services.rules_io import export_rules

    client, runtime = allowing
    rule = {"name": "R", "when": "message.received",
            "then": [{"webhook": {"url": "https://example.com/h", "secret": LITERAL_SECRET}}]}  # fmt: skip
    assert client.post("/api/rules", json=rule, headers=ADMIN).status_code == 201
    text, _ = export_rules(runtime)
    assert LITERAL_SECRET in text  # the CLI file is the backup; the web export masks it
    other = make_runtime(f"sqlite:///{tmp_path}/other.db", attachments_dir=str(tmp_path / "b"))
    try:
        import_rules(other, text, actor="test")
        row = automation.rules(other.views)[0]
        assert LITERAL_SECRET not in json.dumps(row.definition)
        secret = stored_secret(other.channels.secrets, UUID(row.id), "https://example.com/h")
        assert secret == LITERAL_SECRET
        assert not [e for e in raw_log(other) if LITERAL_SECRET.encode() in e]
    finally:
        other.close()


# -- property: any action either validates to plain bounded JSON or is a RuleError ------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.dates(),  # YAML gives dates too
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
action_kinds = st.sampled_from(
    ["send_template", "create_task", "assign_conversation", "add_tag", "set_attribute",
     "move_deal", "notify", "webhook", "stop", "teleport"]
)  # fmt: skip
known_keys = st.sampled_from(
    ["template", "channel", "title", "type", "due_in", "assignee", "user_id", "team", "key",
     "value", "stage", "text", "user", "email", "url", "secret", "other"]
)  # fmt: skip


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action_kinds, st.one_of(json_values, st.dictionaries(known_keys, json_values, max_size=5)))
def test_any_action_is_plain_json_or_a_rule_error(kind: str, spec: Any) -> None:
    from threadline.triggers.rules import RuleError, validate_rule

    try:
        rule = validate_rule(
            {"name": "R", "when": "message.received", "then": [{kind: spec}]},
            lambda slug: True,
            destinations=DestinationPolicy(),
        )
    except RuleError:
        return
    assert _plain(rule["then"]), rule["then"]
    assert len(json.dumps(rule)) < 300_000


def test_a_rule_saved_with_a_literal_secret_before_still_signs_and_is_never_shown(
    allowing: tuple[TestClient, Runtime],
) -> None:
    client, runtime = allowing
    receiver = Receiver()
    try:
        legacy = {"name": "Old rule", "when": {"event": "message.received"},
                  "then": [{"webhook": {"url": receiver.url, "secret": LITERAL_SECRET}}]}  # fmt: skip
        rule_id = runtime.app.save_rule(legacy, "test").value  # as an older version stored it
        runtime.wait_for_views(log_position(runtime))
        runtime.triggers.load_rules()
        runtime.channels.start(pollers=False)
        inbound(client, "m1")
        wait_for(lambda: receiver.calls, "the webhook call")
        headers, body = receiver.calls[0]
        expected = hmac.new(LITERAL_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Threadline-Signature"] == f"sha256={expected}"
        firing = wait_for(
            lambda: client.get(f"/api/rules/{rule_id}/firings", headers=ADMIN).json()["items"]
        )
        webhook_id = firing[0]["effects"][0]["webhook_id"]
        why = client.get(f"/api/automation/explain/{webhook_id}", headers=ADMIN)
        assert why.status_code == 200, why.text
        assert LITERAL_SECRET not in why.text and "********" in why.text
        assert LITERAL_SECRET not in client.get(f"/api/rules/{rule_id}", headers=ADMIN).text
    finally:
        receiver.server.shutdown()
