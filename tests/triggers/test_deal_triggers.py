"""Deals feed the trigger engine: every offered deal name fires, `move_deal` moves once,
`create_task` attaches to the deal, `deal.*` renders real data, and the shipped "every open
deal has an open task" rules fire once when the last task closes (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.triggers.test_runner import firings, rule
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.domain.model.rule import rule_id_for
from threadline.projections.automation import timers
from threadline.projections.deals import StageHistoryFilter, deal, deal_log, stage_history
from threadline.projections.tasks import TaskRow, tasks_of_deal
from threadline.services.runtime import Runtime
from threadline.triggers.actions.registry import load_actions
from threadline.triggers.date_scans import DateScans
from threadline.triggers.defaults import OPEN_DEAL_TASK_KEYS, RULES
from threadline.triggers.rules import validate_rule
from threadline.triggers.trigger_names import OFFERED

ACTOR = "user:test"
NEW = seeded_pipeline_id("new-clients")


def stage(key: str) -> str:
    return seeded_stage_id("new-clients", key)


@pytest.fixture
def sales(engine: Runtime) -> Runtime:
    done(engine.app.seed_pipelines("test"))
    return engine


def done(committed: Committed[Any]) -> Any:
    """What a command returned, once it is committed."""
    return committed.value


def client(runtime: Runtime, name: str = "Ivan Petrov") -> UUID:
    contact_id: UUID = runtime.app.create_contact(
        ACTOR, name, [("email", "ivan@example.com")]
    ).value
    return contact_id


def open_deal(
    runtime: Runtime, contact_id: UUID, manager_id: UUID | None = None, **given: Any
) -> UUID:
    deal_id: UUID = runtime.app.create_deal(
        ACTOR,
        given.pop("title", "Boiler for the dacha"),
        NEW,
        contact_id=contact_id,
        manager_id=manager_id,
        **given,
    ).value
    return deal_id


def handled(runtime: Runtime) -> None:
    """The runner has handled everything in the log, the effects of its own firings too (a
    page's firings settle before its position moves), and the views show it all."""

    def at_head() -> bool:
        return runtime.triggers.position() >= (runtime.app.recorder.max_notification_id() or 0)

    wait_for(at_head, "the runner to reach the log's head")
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0)


def message(
    runtime: Runtime,
    key: str,
    text: str,
    channel: str,
    metadata: dict[str, Any],
    identity: tuple[str, str],
) -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel=channel, dedup_key=key, identities=[identity], text=text, metadata=metadata
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def cause_names(runtime: Runtime, rule_id: UUID) -> list[list[str]]:
    return [list(f.cause["names"]) for f in firings(runtime, rule_id)]


def tasks(runtime: Runtime, deal_id: UUID) -> list[TaskRow]:
    return tasks_of_deal(runtime.views, deal_id)


# -- every offered deal trigger fires ------------------------------------------------------------


def test_deal_created_stage_changed_won_and_lost_fire_with_the_deal_in_their_facts(
    sales: Runtime,
) -> None:
    manager, _ = sales.app.create_user("manager@example.com", "manager", ACTOR).value
    note = {"assignee": "deal_manager", "deal": True, "due_in": "1h"}
    created = rule(sales, {
        "name": "New deal", "when": "deal.created",
        "then": [{"create_task": {
            "title": "Call about {{ deal.title }}: {{ deal.amount }} {{ deal.currency }}"
                     " ({{ deal.stage }}, {{ deal.pipeline }})", **note}}],
    })  # fmt: skip
    moved = rule(sales, {
        "name": "Moved", "when": "deal.stage_changed",
        "if": {"field": "event.to_stage_id", "op": "eq", "value": stage("confirmation")},
        "then": [{"create_task": {"title": "Confirm {{ deal.title }} at {{ deal.stage }}",
                                  **note}}],
    })  # fmt: skip
    won = rule(sales, {
        "name": "Won", "when": "deal.won",
        "if": {"field": "deal.total", "op": "gt", "value": 1000},
        "then": [{"add_tag": "bought"}],
    })  # fmt: skip
    lost = rule(sales, {
        "name": "Lost", "when": "deal.lost",
        "if": {"field": "event.reason", "op": "eq", "value": "No budget"},
        "then": [{"add_tag": "lost-no-budget"}],
    })  # fmt: skip
    contact = client(sales)
    # One line of 1 500.50 RUB without VAT: the deal's total is 1500.50 RUB.
    first = open_deal(sales, contact, manager, amount="1500.50")
    wait_for(lambda: firings(sales, created), "the deal.created rule")
    [task] = wait_for(lambda: tasks(sales, first), "the new deal's task")
    assert task.title == "Call about Boiler for the dacha: 1500.50 RUB (Mutual intent, New clients)"
    assert (task.assignee_id, task.contact_id) == (str(manager), str(contact))
    assert cause_names(sales, created) == [["deal.created"]]

    done(sales.app.move_deal(first, stage("invoice-or-documents"), ACTOR))
    done(sales.app.move_deal(first, stage("confirmation"), ACTOR))
    handled(sales)
    # Two moves, one rule whose condition names the second.
    assert cause_names(sales, moved) == [["deal.stage_changed"]]
    assert [t.title for t in tasks(sales, first)][1:] == [
        "Confirm Boiler for the dacha at Confirmation"
    ]

    done(sales.app.win_deal(first, ACTOR))
    wait_for(lambda: firings(sales, won), "the deal.won rule")
    wait_for(lambda: "bought" in sales.queries.contact(str(contact))["tags"], "the tag")

    second = open_deal(sales, contact, manager, title="Second boiler", amount="900")
    done(sales.app.lose_deal(second, "Chose a competitor", ACTOR))
    third = open_deal(sales, contact, manager, title="Third boiler", amount="900")
    done(sales.app.lose_deal(third, "No budget", ACTOR))
    wait_for(lambda: firings(sales, lost), "the deal.lost rule")
    handled(sales)
    [fired] = firings(sales, lost)
    assert fired.cause["deal_id"] == str(third)
    assert "lost-no-budget" in sales.queries.contact(str(contact))["tags"]
    # A won deal of 900 RUB would not have passed `deal.total gt 1000`; 1500.50 did.
    assert len(firings(sales, won)) == 1


def test_deal_stale_fires_once_per_stay_in_a_stage_whatever_the_restarts(
    sales: Runtime,
) -> None:
    stale = rule(sales, {
        "name": "Stale", "when": "deal.stale",
        "then": [{"create_task": {"title": "{{ deal.title }} waits in {{ deal.stage }}",
                                  "deal": True, "assignee": "unassigned"}}],
    })  # fmt: skip
    contact = client(sales)
    deal_id = open_deal(sales, contact)  # "Mutual intent": stale after 7 days
    fresh = open_deal(sales, contact, title="Fresh")
    done(sales.app.move_deal(fresh, stage("all-operations-done"), ACTOR))  # stale after 3 days
    handled(sales)
    sales.triggers.load_rules()
    now = datetime.now(UTC)
    sales.triggers.scan_dates(now + timedelta(days=2))  # nothing is stale yet
    handled(sales)
    assert firings(sales, stale) == []

    sales.triggers.scan_dates(now + timedelta(days=7, hours=1))
    handled(sales)
    assert sorted(f.cause["deal_id"] for f in firings(sales, stale)) == sorted(
        [str(deal_id), str(fresh)]
    )
    assert [t.title for t in tasks(sales, deal_id)] == [
        "Boiler for the dacha waits in Mutual intent"
    ]
    # Later scans, and a scanner that starts afresh (a restart), find the same stays.
    sales.triggers.scan_dates(now + timedelta(days=8))
    restarted = DateScans(sales.triggers.book, sales.views, sales.triggers.state, sales.triggers)
    restarted.scan(now + timedelta(days=9))
    handled(sales)
    assert len(firings(sales, stale)) == 2

    # A later stay in the same stage is a new cause: it fires again.
    done(sales.app.move_deal(deal_id, stage("confirmation"), ACTOR))
    done(sales.app.move_deal(deal_id, stage("mutual-intent"), ACTOR))
    handled(sales)
    sales.triggers.scan_dates(now + timedelta(days=10))
    handled(sales)
    causes = [f.cause["key"] for f in firings(sales, stale) if f.cause["deal_id"] == str(deal_id)]
    assert len(causes) == 2 and len(set(causes)) == 2
    # A closed deal is never stale.
    done(sales.app.win_deal(fresh, ACTOR))
    handled(sales)
    sales.triggers.scan_dates(now + timedelta(days=30))
    handled(sales)
    assert len([f for f in firings(sales, stale) if f.cause["deal_id"] == str(fresh)]) == 1


# -- actions ------------------------------------------------------------------------------------


def test_move_deal_moves_once_even_when_the_log_is_read_again(sales: Runtime) -> None:
    mover = rule(sales, {
        "name": "Qualify", "when": "deal.created",
        "then": [{"move_deal": {"stage": stage("confirmation")}}],
    })  # fmt: skip
    loser = rule(sales, {
        "name": "Drop spam", "when": "deal.stage_changed",
        "if": {"field": "deal.title", "op": "contains", "value": "spam"},
        "then": [{"move_deal": {"stage": stage("lost"), "reason": "Not our client"}}],
    })  # fmt: skip
    contact = client(sales)
    kept = open_deal(sales, contact)
    dropped = open_deal(sales, contact, title="Pure spam")
    handled(sales)
    [fired] = [f for f in firings(sales, mover) if f.cause["deal_id"] == str(kept)]
    assert fired.effects == [
        {"action": "move_deal", "deal_id": str(kept), "stage_id": stage("confirmation"),
         "outcome": "moved"}
    ]  # fmt: skip
    shown = deal(sales.views, kept)
    assert shown is not None and (shown.stage_id, shown.status) == (stage("confirmation"), "open")
    gone = deal(sales.views, dropped)
    assert gone is not None and (gone.status, gone.lost_reason) == ("lost", "Not our client")
    assert len(firings(sales, loser)) == 1

    # Re-read the whole log: the store refuses a second firing, so nothing moves again.
    sales.triggers.stop()
    sales.triggers.state.set("triggers:position", "0")
    while sales.triggers.step():
        pass
    assert sales.wait_for_views(sales.app.recorder.max_notification_id() or 0)
    assert len(firings(sales, mover)) == 2 and len(firings(sales, loser)) == 1
    stays = stage_history(sales.views, StageHistoryFilter(deal_id=str(kept)), 100, 0, None)
    assert [s.stage_id for s in stays] == [stage("mutual-intent"), stage("confirmation")]
    assert [row.kind for row in deal_log(sales.views, dropped)].count("lost") == 1


def test_move_deal_skips_what_it_cannot_do_and_says_why(sales: Runtime) -> None:
    nowhere = rule(sales, {
        "name": "Nowhere", "when": "deal.created",
        "then": [{"move_deal": {"stage": "no-such-stage"}}, {"add_tag": "still-tagged"}],
    })  # fmt: skip
    contact = client(sales)
    deal_id = open_deal(sales, contact)
    [fired] = wait_for(lambda: firings(sales, nowhere), "the rule")
    moved, tagged = fired.effects
    assert moved["action"] == "move_deal" and "no stage no-such-stage" in moved["skipped"]
    assert tagged == {"action": "add_tag", "tag": "still-tagged"}
    shown = deal(sales.views, deal_id)
    assert shown is not None and shown.stage_id == stage("mutual-intent")


# -- the shipped rule ---------------------------------------------------------------------------


def test_every_open_deal_keeps_an_open_task(sales: Runtime) -> None:
    shipped = dict(RULES)
    ids = {}
    for key in OPEN_DEAL_TASK_KEYS:
        checked = validate_rule(shipped[key], lambda slug: True)
        ids[key] = sales.app.save_rule(checked, "defaults", rule_id=rule_id_for(key)).value
    created, completed, cancelled, moved = (ids[k] for k in OPEN_DEAL_TASK_KEYS)
    manager, _ = sales.app.create_user("manager@example.com", "manager", ACTOR).value
    contact = client(sales)

    deal_id = open_deal(sales, contact, manager, title="Heat pump")
    [first] = wait_for(lambda: tasks(sales, deal_id), "the new deal's task")
    assert (first.title, first.type, first.assignee_id, first.status) == (
        "Next step for Heat pump", "other", str(manager), "open"
    )  # fmt: skip
    due = datetime.fromisoformat(str(first.due_at))
    assert timedelta(hours=23) < due - datetime.fromisoformat(first.created_at) <= timedelta(days=1)

    # Two open tasks: completing one of them leaves one open, nothing fires.
    second = sales.app.create_task(ACTOR, "Send the contract", deal_id=deal_id).value
    done(sales.app.complete_task(UUID(first.id), ACTOR))
    handled(sales)
    assert firings(sales, completed) == []
    assert len(tasks(sales, deal_id)) == 2

    # The last one completed: exactly one new task.
    done(sales.app.complete_task(second, ACTOR))
    wait_for(lambda: firings(sales, completed), "the rule on the last completed task")
    handled(sales)
    assert len(firings(sales, completed)) == 1
    open_now = [t for t in tasks(sales, deal_id) if t.status == "open"]
    assert [(t.title, t.assignee_id) for t in open_now] == [
        ("Next step for Heat pump", str(manager))
    ]

    # Cancelled instead of done: the same.
    done(sales.app.cancel_task(UUID(open_now[0].id), ACTOR))
    wait_for(lambda: firings(sales, cancelled), "the rule on the cancelled task")
    handled(sales)
    open_now = [t for t in tasks(sales, deal_id) if t.status == "open"]
    assert len(open_now) == 1 and len(tasks(sales, deal_id)) == 4

    # Won, its task done: nothing (a won deal needs no next step). Reopened: a new task.
    done(sales.app.win_deal(deal_id, ACTOR))
    done(sales.app.complete_task(UUID(open_now[0].id), ACTOR))
    handled(sales)
    assert len(firings(sales, completed)) == 1 and len(tasks(sales, deal_id)) == 4
    done(sales.app.move_deal(deal_id, stage("confirmation"), ACTOR))
    wait_for(lambda: firings(sales, moved), "the rule on the reopened deal")
    handled(sales)
    assert [t.status for t in tasks(sales, deal_id)].count("open") == 1
    assert len(firings(sales, created)) == 1


def test_the_open_task_rules_are_shipped_with_stable_ids() -> None:
    shipped = dict(RULES)
    events = [shipped[key]["when"]["event"] for key in OPEN_DEAL_TASK_KEYS]
    assert events == ["deal.created", "task.completed", "task.cancelled", "deal.stage_changed"]
    for key in OPEN_DEAL_TASK_KEYS:
        action = shipped[key]["then"][0]["create_task"]
        assert action["deal"] is True and action["assignee"] == "deal_manager"
        validate_rule(shipped[key], lambda slug: True)


# -- the editor offers only what a test makes fire ---------------------------------------------


def test_the_other_offered_names_fire(engine: Runtime) -> None:
    """The names offered before deals that no other test set a rule off with."""
    names = (
        "lead.created", "form.submitted", "call.received", "message.sent",
        "conversation.resolved", "task.created",
    )  # fmt: skip
    made = {
        name: rule(engine, {"name": name, "when": name, "then": [{"add_tag": "seen"}]})
        for name in names
    }
    unanswered = rule(engine, {
        "name": "Unanswered", "when": {"event": "conversation.unanswered", "unanswered_for": "1h"},
        "then": [{"add_tag": "waiting"}],
    })  # fmt: skip
    done(engine.app.create_contact(ACTOR, "Olga Lead", [("email", "olga@example.com")]))
    form = message(engine, "f1", "Call me", "api", {"kind": "form"}, ("email", "form@example.com"))
    call = message(engine, "c1", "", "voice", {"kind": "call"}, ("phone", "+79161234567"))
    done(engine.app.reply(form.conversation_id, "We will call you", ACTOR))
    done(engine.app.change_conversation_status(form.conversation_id, "resolved", ACTOR))
    done(engine.app.create_task(ACTOR, "Prepare the offer", contact_id=form.contact_id))
    for name, rule_id in made.items():
        fired = wait_for(lambda rule_id=rule_id: firings(engine, rule_id), name)
        assert all(name in firing.cause["names"] for firing in fired)
    # An hour later (fired as the loop does once due): the form was answered, the call not.
    handled(engine)
    for timer in timers(engine.views, unanswered):
        engine.triggers.fire_timer(UUID(timer.id))
    [waiting] = wait_for(lambda: firings(engine, unanswered), "conversation.unanswered")
    assert waiting.contact_id == str(call.contact_id)
    handled(engine)
    states = {t.contact_id: t.state for t in timers(engine.views, unanswered)}
    assert states == {str(form.contact_id): "cancelled", str(call.contact_id): "fired"}


def test_the_editor_offers_the_working_names_and_lists_the_stages(sqlite_url: str) -> None:
    runtime = make_runtime(sqlite_url)
    try:
        done(runtime.app.seed_pipelines("test"))
        runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0)
        client, csrf, _ = web_client(runtime, "manager", "ru")
        page = client.get("/admin/rules/new")
        assert page.status_code == 200
        offered = re.findall(r'<option value="([^"]+)" title=', page.text)
        assert tuple(offered) == OFFERED
        assert "payment.due" in offered and "contract.expiring" in offered
        assert f"move_deal: {{stage: {stage('confirmation')}}}" in page.text
        assert "Сделки: стадии для перемещения, задачи по сделке" in page.text
        shown = re.search(r'id="rule-actions">(.*?)</p>', page.text, re.S)
        assert shown is not None
        assert re.findall(r"<code>(\w+)</code>", shown.group(1)) == sorted(load_actions())
        # A day count on a name that counts none is refused with why; one on a deal is saved.
        refused = client.post("/admin/rules/new", data={
            "csrf_token": csrf, "name": "Remind", "priority": "50", "when_event": "",
            "when_custom": "deal.created", "when_days_before": "3",
            "body": "then:\n  - add_tag: x\n", "enabled": "1",
        })  # fmt: skip
        assert refused.status_code == 422
        assert "when.days_before: only for contract.expiring" in refused.text
        body = f"then:\n  - move_deal: {{stage: {stage('confirmation')}}}\n"
        saved = client.post("/admin/rules/new", data={
            "csrf_token": csrf, "name": "Qualify", "priority": "50",
            "when_event": "deal.created", "body": body, "enabled": "1",
        })  # fmt: skip
        assert saved.status_code in (200, 303), saved.text
    finally:
        runtime.close()


def test_a_stored_rule_on_a_payment_still_loads(sqlite_url: str) -> None:
    """Saved by an earlier release (which accepted it): it loads (and now fires)."""
    runtime = make_runtime(sqlite_url)
    try:
        stored = {"name": "Old", "priority": 100, "when": {"event": "payment.due"},
                  "then": [{"add_tag": "x"}]}  # fmt: skip
        rule_id = done(runtime.app.save_rule(stored, ACTOR))
        runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0)
        runtime.triggers.load_rules()
        assert runtime.triggers.rules[rule_id].spec.when.event == "payment.due"
    finally:
        runtime.close()


def _test_functions() -> dict[str, set[str]]:
    """The test functions of this folder (and the services tests), by file name."""
    found: dict[str, set[str]] = {}
    here = Path(__file__).parent
    for path in [*here.glob("test_*.py"), *(here.parent / "services").glob("test_*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path.name] = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        }
    return found


def test_every_offered_name_has_a_test_that_makes_it_fire() -> None:
    assert set(FIRING_TESTS) == set(OFFERED), "map each offered name to its firing test"
    functions = _test_functions()
    for name, where in FIRING_TESTS.items():
        file, _, function = where.partition("::")
        assert function in functions.get(file, set()), f"{name}: no test {where}"


MONEY = "test_money_triggers.py::"
MONEY_FIRING_TESTS = {
    "contract.expiring": f"{MONEY}test_a_contract_expiring_fires_once_per_end_date_and_again_when_prolonged",
    "payment.due": f"{MONEY}test_payment_due_and_overdue_fire_once_on_the_business_calendar",
    "payment.overdue": f"{MONEY}test_payment_due_and_overdue_fire_once_on_the_business_calendar",
    "supplier_order.unconfirmed": f"{MONEY}test_supplier_orders_unconfirmed_and_payables_fire_on_working_days",
    "supplier_payment.due": f"{MONEY}test_supplier_orders_unconfirmed_and_payables_fire_on_working_days",
    "supplier_payment.overdue": f"{MONEY}test_supplier_orders_unconfirmed_and_payables_fire_on_working_days",
    "document.issued": f"{MONEY}test_the_money_flows_events_set_rules_off_with_their_facts",
    "document.sent": f"{MONEY}test_the_money_flows_events_set_rules_off_with_their_facts",
    "contract.registered": f"{MONEY}test_the_money_flows_events_set_rules_off_with_their_facts",
    "payment.received": f"{MONEY}test_the_money_flows_events_set_rules_off_with_their_facts",
    "payment.allocated": f"{MONEY}test_the_money_flows_events_set_rules_off_with_their_facts",
    "supplier_order.confirmed": f"{MONEY}test_the_money_flows_events_set_rules_off_with_their_facts",
}  # fmt: skip

# Every name the rule editor offers, and the test (file::function) that makes it fire.
OTHERS = "test_deal_triggers.py::test_the_other_offered_names_fire"
FIRING_TESTS = {
    "message.received": "test_runner.py::test_a_rule_fires_once_per_cause_even_when_the_log_is_read_again",
    "message.sent": OTHERS,
    "lead.created": OTHERS,
    "form.submitted": OTHERS,
    "call.received": OTHERS,
    "call.missed": "test_reply_tasks.py::test_an_answered_call_gets_no_task_and_missed_calls_one_call_back",
    "conversation.opened": "test_reply_tasks.py::test_one_open_reply_task_per_conversation_and_a_reply_completes_it",
    "conversation.resolved": OTHERS,
    "conversation.unanswered": OTHERS,
    "task.created": OTHERS,
    "task.due_soon": "test_runner.py::test_task_reminders_and_contact_changes_set_rules_off",
    "task.overdue": "test_runner.py::test_task_reminders_and_contact_changes_set_rules_off",
    "contact.attribute_changed": "test_runner.py::test_an_attribute_change_sets_off_a_rule_that_reads_the_new_value",
    "tag.added": "test_runner.py::test_task_reminders_and_contact_changes_set_rules_off",
    "birthday": "test_runner.py::test_birthday_greeting_goes_once_whatever_the_restarts",
    "schedule": "test_runner.py::test_scheduled_rules_run_once_per_occurrence_and_catch_up_after_downtime",
    "deal.created": "test_deal_triggers.py::test_deal_created_stage_changed_won_and_lost_fire_with_the_deal_in_their_facts",
    "deal.stage_changed": "test_deal_triggers.py::test_deal_created_stage_changed_won_and_lost_fire_with_the_deal_in_their_facts",
    "deal.won": "test_deal_triggers.py::test_deal_created_stage_changed_won_and_lost_fire_with_the_deal_in_their_facts",
    "deal.lost": "test_deal_triggers.py::test_deal_created_stage_changed_won_and_lost_fire_with_the_deal_in_their_facts",
    "deal.stale": "test_deal_triggers.py::test_deal_stale_fires_once_per_stay_in_a_stage_whatever_the_restarts",
    "task.completed": "test_deal_triggers.py::test_every_open_deal_keeps_an_open_task",
    "task.cancelled": "test_deal_triggers.py::test_every_open_deal_keeps_an_open_task",
    **MONEY_FIRING_TESTS,
}  # fmt: skip
