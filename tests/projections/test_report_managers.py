"""The managers report on SQLite and PostgreSQL, against figures worked out by hand.

Deals (pipeline "New clients", all RUB, recorded at fixed moments of 2020; net = amount):

- Анна: D1 two units at 500 with a unit cost of 300, no VAT: net 1,000, gross profit
  1,000 - 600 = 400, won 10 March 12:00 UTC. D2 2,000 (no cost: profit 2,000) won 31 March
  22:30 UTC (1 April 01:30 in Moscow). D3 700 lost 15 March.
- Борис: D4 500 won 20 February. D5 300 lost 5 March. D6 900 still open (never counted).

Plans: Анна March 2020 4,000 then changed to 5,000 (gross profit 1,000, 4 deals), April
3,000; Борис March 1,000; Борис February 800, then cleared.

Activity (recorded at the real time, one after the other; the period is unbounded):
- C1 writes an SMS; Анна replies (1); C1 calls, nobody answers (missed call 1); Борис
  replies (2: returns call 1, the first after it); Анна replies again (3). A rule's reply
  and Анна's internal note do not count.
- C2 calls, missed (call 2); Анна logs a call to C2 (returns call 2, as a call task done).
- C3 calls, missed (call 3), conversation assigned to Борис; nobody returns it.
- Tasks: Анна's meeting due 2100 done (on time); Анна's task due 5 March 2020 done now
  (late); Анна's task due 10 March 2020 still open (overdue); Борис's call task due 20
  March 2020 open (overdue); Борис's task due 2100 open (not overdue); Борис's cancelled
  task (nothing).
"""

# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.money import Money
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.projections.reports.managers import REPORT, first_return
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
MARCH_START = "2020-03-01T00:00:00.000000Z"
APRIL_START = "2020-04-01T00:00:00.000000Z"
NOW = datetime.now(UTC) + timedelta(hours=1)


def at(moment: datetime, command: Any) -> Any:
    with recorded_at(moment):
        return command().value


def receive(runtime: Runtime, key: str, channel: str, phone: str, **kw: Any) -> Any:
    return runtime.app.ingest(
        InboundMessage.create(
            channel=channel, dedup_key=key, identities=[("phone", phone)], text="hi", **kw
        )
    ).value


def missed_call(runtime: Runtime, key: str, phone: str) -> Any:
    call = receive(
        runtime, key, "voice", phone,
        metadata={"kind": "call", "call": {"sid": key, "direction": "inbound", "status": "ringing"}},
    )  # fmt: skip
    _ = runtime.app.record_call_status(call.message_id, "no-answer", "channel:voice").value
    return call


def build(runtime: Runtime) -> dict[str, Any]:
    app = runtime.app
    _ = app.seed_pipelines("test").value
    anna, _ = app.create_user("anna@example.com", "manager", "test", name="Анна").value
    boris, _ = app.create_user("boris@example.com", "manager", "test", name="Борис").value
    client = app.create_contact("test", "Клиент").value
    ua, ub = f"user:{anna}", f"user:{boris}"

    def deal(title: str, manager: UUID, moment: datetime, **extra: Any) -> UUID:
        with recorded_at(moment):
            return app.create_deal(
                ua, title, NEW, contact_id=client, manager_id=manager, **extra
            ).value

    t = datetime(2020, 2, 1, 9, 0, tzinfo=UTC)
    line = {"name": "Насос", "quantity": 2, "price": "500", "cost": "300", "vat": "none"}
    d1 = deal("D1", anna, t, lines=[line])
    d2 = deal("D2", anna, t, amount="2000")
    d3 = deal("D3", anna, t, amount="700")
    d4 = deal("D4", boris, t, amount="500")
    d5 = deal("D5", boris, t, amount="300")
    deal("D6", boris, t, amount="900")
    at(datetime(2020, 3, 10, 12, 0, tzinfo=UTC), lambda: app.win_deal(d1, ua))
    at(datetime(2020, 3, 31, 22, 30, tzinfo=UTC), lambda: app.win_deal(d2, ua))
    at(datetime(2020, 3, 15, 9, 0, tzinfo=UTC), lambda: app.lose_deal(d3, "Too expensive", ua))
    at(datetime(2020, 2, 20, 9, 0, tzinfo=UTC), lambda: app.win_deal(d4, ub))
    at(datetime(2020, 3, 5, 9, 0, tzinfo=UTC), lambda: app.lose_deal(d5, "No answer", ub))

    rub = lambda amount: Money.of(amount, "RUB")  # noqa: E731
    _ = app.set_sales_plan(anna, "2020-03", rub("4000"), "test").value
    _ = app.set_sales_plan(
        anna, "2020-03", rub("5000"), "test", gross_profit=rub("1000"), deals_won=4
    ).value
    _ = app.set_sales_plan(anna, "2020-04", rub("3000"), "test").value
    _ = app.set_sales_plan(boris, "2020-03", rub("1000"), "test").value
    _ = app.set_sales_plan(boris, "2020-02", rub("800"), "test").value
    _ = app.clear_sales_plan(boris, "2020-02", "test").value

    sms = receive(runtime, "s1", "sms", "+79161110001", sender_name="C1")
    _ = app.reply(sms.conversation_id, "Здравствуйте", ua).value
    missed_call(runtime, "call-1", "+79161110001")
    _ = app.reply(sms.conversation_id, "Перезваниваю", ub).value
    _ = app.reply(sms.conversation_id, "Ещё раз", ua).value
    _ = app.reply(sms.conversation_id, "Автоответ", "rule:auto").value
    _ = app.add_note(sms.conversation_id, "Заметка", ua).value
    call2 = missed_call(runtime, "call-2", "+79161110002")
    _ = app.log_call(ua, "outbound", "answered", 60, contact_id=call2.contact_id).value
    call3 = missed_call(runtime, "call-3", "+79161110003")
    _ = app.assign_conversation(call3.conversation_id, boris, ua).value

    def task(title: str, who: UUID, due: datetime, kind: str = "other") -> UUID:
        return app.create_task(ua, title, kind, due_at=due, assignee_id=who).value

    far = datetime(2100, 1, 1, tzinfo=UTC)
    _ = app.complete_task(task("Встреча", anna, far, "meeting"), ua).value
    _ = app.complete_task(task("Поздно", anna, datetime(2020, 3, 5, 10, tzinfo=UTC)), ua).value
    task("Просрочено", anna, datetime(2020, 3, 10, 10, tzinfo=UTC))
    task("Позвонить", boris, datetime(2020, 3, 20, 10, tzinfo=UTC), "call")
    task("Потом", boris, far)
    _ = app.cancel_task(task("Отменено", boris, datetime(2020, 3, 6, tzinfo=UTC)), ub).value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {"anna": str(anna), "boris": str(boris), "d1": str(d1), "d2": str(d2)}


def whole(**values: Any) -> ReportSlice:
    return ReportSlice(now=NOW, **values)


def march(**values: Any) -> ReportSlice:
    return ReportSlice(start=MARCH_START, end=APRIL_START, now=NOW, **values)


def rows_of(result: Any, section: str) -> dict[Any, dict[str, Any]]:
    found = next(s for s in result.sections if s.section.name == section)
    return {tuple(r.key.values()): r.values for r in found.rows}


def test_managers_figures_by_hand(runtime: Runtime) -> None:
    ids = build(runtime)
    anna, boris = (ids["anna"], "Анна"), (ids["boris"], "Борис")
    result = run_report(runtime.views, REPORT, whole())

    results = rows_of(result, "results")
    assert set(results) == {(*anna, "2020-03", "RUB"), (*boris, "2020-02", "RUB"),
                            (*boris, "2020-03", "RUB")}  # fmt: skip
    # Анна in March: D1 and D2 won (1,000 + 2,000 net; profit 400 + 2,000), D3 lost (700)
    assert results[(*anna, "2020-03", "RUB")] == {
        "won": 2,
        "won_amount": 300000,
        "gross_profit": 240000,
        "lost": 1,
        "lost_amount": 70000,
        "closed": 3,
        "win_rate": pytest.approx(2 / 3),
    }
    assert results[(*boris, "2020-02", "RUB")]["won_amount"] == 50000  # D4
    march_b = results[(*boris, "2020-03", "RUB")]  # D5 lost
    assert (march_b["won"], march_b["lost"], march_b["lost_amount"]) == (0, 1, 30000)
    assert march_b["win_rate"] == 0.0

    # messages: Анна's two replies, Борис's one; the rule's reply and the note left out
    messages = rows_of(result, "messages")
    assert {k: v["messages"] for k, v in messages.items()} == {
        (*anna, "sms"): 2,
        (*boris, "sms"): 1,
    }

    tasks = rows_of(result, "tasks")
    # Анна: the logged call, the meeting, the late task done; one overdue
    assert tasks[anna] == {"done": 3, "calls": 1, "meetings": 1, "done_late": 1, "overdue": 1}
    # Борис: his call task due 20 March 2020 is open (overdue); the 2100 one is not due yet
    assert tasks[boris] == {"done": 0, "calls": 0, "meetings": 0, "done_late": 0, "overdue": 1}

    missed = rows_of(result, "missed_calls")
    # call 1 returned by Борис's reply, call 3 not returned (his as the assignee);
    # call 2 returned by Анна's logged call
    assert (missed[boris]["missed"], missed[boris]["returned"]) == (2, 1)
    assert missed[boris]["returned_share"] == 0.5
    assert (missed[anna]["missed"], missed[anna]["returned"]) == (1, 1)

    plan = rows_of(result, "plan")
    # Анна in March: plan 5,000 (the change), fact 3,000 => 60 %; profit 2,400 of 1,000
    assert plan[(*anna, "2020-03", "RUB")] == {
        "plan": 500000,
        "fact": 300000,
        "done": pytest.approx(0.6),
        "profit_plan": 100000,
        "profit_fact": 240000,
        "profit_done": pytest.approx(2.4),
        "deals_plan": 4,
        "deals_fact": 2,
    }
    assert plan[(*anna, "2020-04", "RUB")]["done"] == 0.0  # 3,000 planned, nothing won
    # Борис in February: the plan was cleared, D4's 500 won without a plan
    feb = plan[(*boris, "2020-02", "RUB")]
    assert (feb["plan"], feb["fact"], feb["done"]) == (0, 50000, None)
    mar = plan[(*boris, "2020-03", "RUB")]
    assert (mar["plan"], mar["fact"], mar["done"], mar["profit_done"]) == (100000, 0, 0.0, None)

    comparison = next(s for s in result.sections if s.section.name == "comparison")
    assert [r.key["manager"] for r in comparison.rows] == ["Анна", "Борис"]  # by deals won
    side_by_side = rows_of(result, "comparison")
    # the first response to C1's SMS is Анна's reply (recorded at the real time, so its
    # length in business hours depends on the hour the test runs: only that it is there)
    assert side_by_side[anna].pop("median_first_response") >= 0
    assert side_by_side[boris].pop("median_first_response") is None
    assert side_by_side == {
        anna: {"won": 2, "lost": 1, "messages": 2, "calls": 1, "meetings": 1, "done": 3,
               "overdue": 1, "done_late": 1, "missed": 1, "returned": 1, "answered": 1},
        boris: {"won": 1, "lost": 1, "messages": 1, "calls": 0, "meetings": 0, "done": 0,
                "overdue": 1, "done_late": 0, "missed": 2, "returned": 1, "answered": 0},
    }  # fmt: skip
    first = rows_of(result, "first_response")
    assert list(first) == [anna] and first[anna]["answered"] == 1


def test_period_timezone_slices_and_drill_down(runtime: Runtime) -> None:
    ids = build(runtime)
    anna, boris = (ids["anna"], "Анна"), (ids["boris"], "Борис")
    result = run_report(runtime.views, REPORT, march())
    # March 2020 UTC: D1, D2, D3, D5 closed; activity happened now, not in March 2020,
    # but the two tasks due in March 2020 and still open are overdue in it
    assert set(rows_of(result, "results")) == {(*anna, "2020-03", "RUB"),
                                               (*boris, "2020-03", "RUB")}  # fmt: skip
    assert rows_of(result, "messages") == {} and rows_of(result, "missed_calls") == {}
    assert {k: v["overdue"] for k, v in rows_of(result, "tasks").items()} == {anna: 1, boris: 1}
    assert set(rows_of(result, "plan")) == {(*anna, "2020-03", "RUB"), (*boris, "2020-03", "RUB")}

    # in Moscow (UTC+3) D2 was won on 1 April: March holds D1 only
    moscow = run_report(runtime.views, REPORT, whole(timezone="Europe/Moscow"))
    results = rows_of(moscow, "results")
    assert results[(*anna, "2020-03", "RUB")]["won_amount"] == 100000
    assert results[(*anna, "2020-04", "RUB")]["won_amount"] == 200000

    # by manager: Борис's figures only
    only = run_report(runtime.views, REPORT, whole(manager_id=ids["boris"]))
    assert {k[:2] for k in rows_of(only, "results")} == {boris}
    assert {k[:2] for k in rows_of(only, "messages")} == {boris}
    assert rows_of(only, "missed_calls")[boris]["missed"] == 2
    assert set(rows_of(only, "tasks")) == {boris}

    # by channel: voice has the three missed calls and no message; tasks have no channel
    voice = run_report(runtime.views, REPORT, whole(channel="voice"))
    assert rows_of(voice, "messages") == {} and rows_of(voice, "tasks") == {}
    assert sum(v["missed"] for v in rows_of(voice, "missed_calls").values()) == 3
    assert rows_of(voice, "results") == {}  # no deal came in by voice

    # drill-down: Анна's March revenue is D1 and D2; her overdue figure is one open task
    _, _, fact = section_items(
        runtime.views, REPORT, "plan", whole(), {"manager_id": ids["anna"], "month": "2020-03"},
        "fact",
    )  # fmt: skip
    assert sorted(i["deal_id"] for i in fact) == sorted([ids["d1"], ids["d2"]])
    _, _, overdue = section_items(
        runtime.views, REPORT, "tasks", whole(), {"manager_id": ids["anna"]}, "overdue"
    )
    assert [i["status"] for i in overdue] == ["open"]


def test_a_missed_call_is_returned_only_within_24_hours() -> None:
    rang = "2020-03-02T10:00:00.000000Z"
    returns = [
        ("2020-03-02T09:59:00.000000Z", "early"),  # before the call: not a return
        ("2020-03-03T10:00:00.000001Z", "late"),  # 24 h and 1 µs after: too late
        ("2020-03-03T10:00:00.000000Z", "edge"),  # exactly 24 h after: still a return
    ]
    assert first_return(rang, returns) == ("2020-03-03T10:00:00.000000Z", "edge")
    assert first_return(rang, returns[:2]) is None
    both = [("2020-03-02T12:00:00.000000Z", "b"), ("2020-03-02T11:00:00.000000Z", "a")]
    assert first_return(rang, both) == ("2020-03-02T11:00:00.000000Z", "a")  # the first


def test_the_comparison_adds_up_the_other_sections_under_every_slice(runtime: Runtime) -> None:
    """The comparison is the other sources side by side (one SQL source): its counts are
    theirs, whatever the slice; its drill-down lists the items behind a figure."""
    ids = build(runtime)
    for s in (
        whole(),
        march(),
        whole(manager_id=ids["boris"]),
        whole(channel="voice"),
        whole(group=""),
        whole(timezone="Europe/Moscow"),
    ):
        result = run_report(runtime.views, REPORT, s)
        side = rows_of(result, "comparison")
        expected: dict[Any, dict[str, int]] = {}

        def add(
            manager: tuple[Any, ...], into: dict[Any, dict[str, int]] = expected, **counts: int
        ) -> None:
            row = into.setdefault(manager, {})
            for name, value in counts.items():
                row[name] = row.get(name, 0) + value

        for key, v in rows_of(result, "results").items():
            add(key[:2], won=v["won"], lost=v["lost"])
        for key, v in rows_of(result, "messages").items():
            add(key[:2], messages=v["messages"])
        for key, v in rows_of(result, "tasks").items():
            add(key, calls=v["calls"], done=v["done"], overdue=v["overdue"])
        for key, v in rows_of(result, "missed_calls").items():
            add(key, missed=v["missed"], returned=v["returned"])
        for key, v in rows_of(result, "first_response").items():
            add(key, answered=v["answered"])
        assert set(side) == set(expected), s
        for manager, counts in expected.items():
            assert {name: side[manager][name] for name in counts} == counts, (s, manager)

    anna = {"manager_id": ids["anna"], "manager": "Анна"}
    _, _, items = section_items(runtime.views, REPORT, "comparison", whole(), anna, "messages")
    assert [i["kind"] for i in items] == ["message", "message"]
    _, _, calls = section_items(runtime.views, REPORT, "missed_calls", whole(), anna, "returned")
    assert len(calls) == 1 and calls[0]["returned_at"] > calls[0]["rang_at"]
    assert 0 < calls[0]["seconds_to_return"] <= 24 * 3600
