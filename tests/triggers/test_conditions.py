"""The condition language of rules: validation at save time, evaluation per event, the trace.

A wrong condition sends a message to the wrong client or to nobody, and an
auditor must be able to say which conditions held; so every operator is
pinned down here, and property tests check the algebra (not, all, any,
complementary operators) over random trees and random facts.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.triggers.business_hours import BusinessCalendar
from threadline.triggers.conditions import (
    MAX_PATTERN,
    MAX_REGEX_INPUT,
    OPERATORS,
    ConditionError,
    Trace,
    evaluate,
    parse_duration,
    validate_condition,
)

NOW = datetime(2025, 2, 28, 12, 0, tzinfo=UTC)  # a Friday, in a non-leap year


def leaf(field: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


def check(node: dict[str, Any], facts: dict[str, Any] | None = None, **kwargs: Any) -> bool:
    facts = {"now": NOW, **(facts or {})}
    return bool(evaluate(node, facts, **kwargs).matched)


def contact(**values: Any) -> dict[str, Any]:
    return {"contact": values}


def attrs(**values: Any) -> dict[str, Any]:
    return {"contact": {"attributes": values}}


# -- operators ---------------------------------------------------------------------------------


def test_eq_and_ne_compare_without_python_coercions() -> None:
    assert check(leaf("contact.lifecycle", "eq", "lead"), contact(lifecycle="lead"))
    assert not check(leaf("contact.lifecycle", "eq", "Lead"), contact(lifecycle="lead"))
    assert check(leaf("contact.attributes.staff", "eq", 50), attrs(staff=50.0))
    assert not check(leaf("contact.attributes.staff", "eq", 50), attrs(staff="50"))
    assert not check(leaf("contact.attributes.vip", "eq", 1), attrs(vip=True))
    assert check(leaf("contact.attributes.vip", "eq", True), attrs(vip=True))
    assert check(leaf("contact.attributes.vip", "ne", True), attrs(vip=1))
    # a value that is not set is "not equal": like the contact filter's attr.X.ne
    assert check(leaf("contact.attributes.industry", "ne", "retail"), attrs())
    assert not check(leaf("contact.attributes.industry", "eq", "retail"), attrs())


def test_eq_on_a_date_object_compares_with_an_iso_string() -> None:
    facts = attrs(born=date(1990, 5, 17))
    assert check(leaf("contact.attributes.born", "eq", "1990-05-17"), facts)
    assert not check(leaf("contact.attributes.born", "eq", "1990-05-18"), facts)


def test_in_and_not_in_for_scalars_and_tag_lists() -> None:
    assert check(leaf("event.channel", "in", ["sms", "telegram"]), {"event": {"channel": "sms"}})
    assert not check(leaf("event.channel", "in", ["sms"]), {"event": {"channel": "email"}})
    assert check(leaf("contact.tags", "in", ["gold", "vip"]), contact(tags=["b2b", "vip"]))
    assert not check(leaf("contact.tags", "in", ["gold"]), contact(tags=["b2b", "vip"]))
    assert check(leaf("contact.tags", "not_in", ["gold"]), contact(tags=["vip"]))
    assert check(leaf("event.channel", "not_in", ["sms"]), {"event": {}})
    assert not check(leaf("event.channel", "in", ["sms"]), {"event": {}})


def test_contains_ignores_case_unless_told_otherwise() -> None:
    facts = {"event": {"text": "What is the PRICE of delivery?"}}
    assert check(leaf("event.text", "contains", "price"), facts)
    assert not check(leaf("event.text", "contains", "price", case_sensitive=True), facts)
    assert check(leaf("event.text", "contains", "PRICE", case_sensitive=True), facts)
    assert check(leaf("event.text", "not_contains", "refund"), facts)
    assert not check(leaf("event.text", "not_contains", "Price"), facts)
    # nothing to search in: "contains" is false, "not_contains" true
    assert not check(leaf("event.text", "contains", "x"), {"event": {}})
    assert check(leaf("event.text", "not_contains", "x"), {"event": {}})


def test_contains_on_lists_mappings_and_numbers() -> None:
    assert check(leaf("contact.tags", "contains", "VIP"), contact(tags=["vip", "b2b"]))
    assert not check(
        leaf("contact.tags", "contains", "VIP", case_sensitive=True), contact(tags=["vip"])
    )
    assert check(leaf("event.scores", "contains", 3), {"event": {"scores": [1, 2, 3]}})
    assert not check(leaf("event.scores", "contains", True), {"event": {"scores": [1]}})
    assert check(leaf("contact.attributes", "contains", "industry"), attrs(industry="it"))
    assert check(leaf("event.text", "contains", 42), {"event": {"text": "order 42 is late"}})
    assert not check(leaf("event.count", "contains", 4), {"event": {"count": 42}})


def test_starts_with() -> None:
    facts = {"event": {"subject": "Re: Invoice 17"}}
    assert check(leaf("event.subject", "starts_with", "re:"), facts)
    assert not check(leaf("event.subject", "starts_with", "re:", case_sensitive=True), facts)
    assert not check(leaf("event.subject", "starts_with", "Invoice"), facts)
    assert not check(leaf("contact.tags", "starts_with", "v"), contact(tags=["vip"]))


def test_regex_searches_and_ignores_case_by_default() -> None:
    facts = {"event": {"text": "Order #A-1234 did not arrive"}}
    assert check(leaf("event.text", "regex", r"#[a-z]-\d{4}"), facts)
    assert not check(leaf("event.text", "regex", r"#[a-z]-\d{4}", case_sensitive=True), facts)
    assert not check(leaf("event.text", "regex", r"^did"), facts)
    assert check(leaf("deal.amount", "regex", r"^\d{5,}$"), {"deal": {"amount": 125000}})
    assert not check(leaf("contact.tags", "regex", "vip"), contact(tags=["vip"]))


def test_regex_limits_pattern_and_input() -> None:
    with pytest.raises(ConditionError, match="at most"):
        validate_condition(leaf("event.text", "regex", "a" * (MAX_PATTERN + 1)))
    with pytest.raises(ConditionError, match="not a regular expression"):
        validate_condition(leaf("event.text", "regex", "(unclosed"))
    with pytest.raises(ConditionError, match="nested set"):
        validate_condition(leaf("event.text", "regex", "[[a]"))
    for hostile in (r"(a+)+$", r"(\w+\s?)*$", r"(x*)*y", r"(a|b+)+c", r"(a|ab)*c"):
        with pytest.raises(ConditionError, match="nested repetition"):
            validate_condition(leaf("event.text", "regex", hostile))
    for slow in (r"a*a*b", r"\w+\s*\w+x", r"^.*price.*$", r"(a|aa){0,30}b"):
        with pytest.raises(ConditionError, match="very long"):
            validate_condition(leaf("event.text", "regex", slow))
    with pytest.raises(ConditionError, match="back-references"):
        validate_condition(leaf("event.text", "regex", r"(a)\1"))
    for fine in (r"(\d{1,3}\.){3}\d{1,3}", r"price.*delivery", r".{0,60}x.{0,60}y", r"^\+7\d{10}$"):
        validate_condition(leaf("event.text", "regex", fine))
    # only the first MAX_REGEX_INPUT characters are searched
    long_text = "a" * MAX_REGEX_INPUT + "needle"
    assert not check(leaf("event.text", "regex", "needle"), {"event": {"text": long_text}})
    assert check(leaf("event.text", "regex", "^a+"), {"event": {"text": long_text}})


@pytest.mark.timeout(60)
def test_the_worst_accepted_patterns_finish_on_hostile_text() -> None:
    """Only the first MAX_REGEX_INPUT characters are searched, so these end (the test's own
    timeout is the guard: a catastrophic pattern would hang here for minutes)."""
    assert not check(leaf("event.text", "regex", r"a*b"), {"event": {"text": "a" * 200_000}})
    hostile = {"event": {"text": "x" * 200_000}}
    assert not check(leaf("event.text", "regex", r".{0,60}x.{0,60}y"), hostile)
    text = {"event": {"text": "price" * 40_000}}
    assert not check(leaf("event.text", "regex", r"price.*delivery"), text)


def test_numeric_comparisons_and_mixed_types() -> None:
    facts = attrs(staff=50)
    assert check(leaf("contact.attributes.staff", "gte", 50), facts)
    assert not check(leaf("contact.attributes.staff", "gt", 50), facts)
    assert check(leaf("contact.attributes.staff", "lt", 50.5), facts)
    assert check(leaf("contact.attributes.staff", "lte", 50), facts)
    # a number against a non-number is simply false, both ways round
    for op in ("gt", "gte", "lt", "lte"):
        assert not check(leaf("contact.attributes.staff", op, 10), attrs(staff="many"))
        assert not check(leaf("contact.attributes.staff", op, 10), attrs(staff=True))
        assert not check(leaf("contact.attributes.staff", op, 10), attrs())
        assert not check(leaf("contact.attributes.staff", op, "2024-01-01"), facts)


def test_date_and_datetime_comparisons() -> None:
    facts = {"deal": {"close_date": "2025-03-10", "closed_at": "2025-03-10T22:30:00+00:00"}}
    assert check(leaf("deal.close_date", "gt", "2025-03-09"), facts)
    assert check(leaf("deal.close_date", "lte", "2025-03-10"), facts)
    assert not check(leaf("deal.close_date", "lt", "2025-03-10"), facts)
    # a date against a date-time compares days
    assert check(leaf("deal.close_date", "gte", "2025-03-10T23:59:00+00:00"), facts)
    # aware date-times compare as instants, whatever their offsets
    assert check(leaf("deal.closed_at", "gt", "2025-03-11T00:00:00+02:00"), facts)
    assert not check(leaf("deal.closed_at", "gt", "2025-03-11T00:00:00+00:00"), facts)
    # objects as well as ISO strings; naive date-times count as UTC
    assert check(leaf("now", "gt", "2025-02-28T11:59:00Z"))
    assert check(
        leaf("deal.when", "lt", "2025-01-02"), {"deal": {"when": datetime(2025, 1, 1, 23, 0)}}
    )
    # text that is not an ISO date is not comparable
    assert not check(leaf("deal.close_date", "gt", "2025-01-01"), {"deal": {"close_date": "soon"}})


def test_is_set_and_is_not_set() -> None:
    unset_values: tuple[Any, ...] = (None, "", [], {})
    for unset in unset_values:
        assert check(leaf("contact.attributes.x", "is_not_set"), attrs(x=unset))
        assert not check(leaf("contact.attributes.x", "is_set"), attrs(x=unset))
    assert check(leaf("contact.attributes.x", "is_not_set"), attrs())
    assert check(leaf("contact.attributes.x", "is_not_set"), {})
    for value in (0, False, "0", [0], " "):
        assert check(leaf("contact.attributes.x", "is_set"), attrs(x=value))


def test_missing_paths_are_not_set_never_errors() -> None:
    odd_facts: list[dict[str, Any]] = [
        {},
        {"contact": None},
        {"contact": "a string"},
        {"contact": {"attributes": [1, 2]}},
        {"contact": {"attributes": {"industry": {"nested": 1}}}},
    ]
    for facts in odd_facts:
        assert not check(leaf("contact.attributes.industry", "eq", "it"), facts)
        assert check(leaf("contact.attributes.industry.name", "is_not_set"), facts)


def test_numeric_path_segments_index_lists() -> None:
    facts = {"event": {"attachments": [{"type": "image/png"}, {"type": "application/pdf"}]}}
    assert check(leaf("event.attachments.1.type", "eq", "application/pdf"), facts)
    assert check(leaf("event.attachments.5.type", "is_not_set"), facts)


def test_within_last_and_within_next() -> None:
    last_seen = {"contact": {"last_seen": (NOW - timedelta(minutes=10)).isoformat()}}
    assert check(leaf("contact.last_seen", "within_last", "15m"), last_seen)
    assert not check(leaf("contact.last_seen", "within_last", "5m"), last_seen)
    assert not check(leaf("contact.last_seen", "within_next", "1h"), last_seen)
    due = {"deal": {"due": NOW + timedelta(hours=47)}}
    assert check(leaf("deal.due", "within_next", "2d"), due)
    assert not check(leaf("deal.due", "within_next", "1d"), due)
    # plain dates count by day
    assert check(leaf("deal.due", "within_next", "3d"), {"deal": {"due": "2025-03-03"}})
    assert not check(leaf("deal.due", "within_next", "2d"), {"deal": {"due": "2025-03-03"}})
    assert check(leaf("deal.due", "within_last", "1d"), {"deal": {"due": "2025-02-27"}})
    assert not check(leaf("deal.due", "within_last", "1d"), {"deal": {"due": "not a date"}})


def test_time_relative_operators_without_now_are_false_and_say_why() -> None:
    node = leaf("contact.last_seen", "within_last", "15m")
    trace = evaluate(node, {"contact": {"last_seen": NOW.isoformat()}})
    assert not trace.matched
    assert "now" in trace.explain()[0]["note"]
    # `now` may be given as an ISO string too
    trace = evaluate(node, {"contact": {"last_seen": NOW.isoformat()}, "now": NOW.isoformat()})
    assert trace.matched


def test_anniversary_today_including_february_29() -> None:
    born = "contact.attributes.born"
    on = {"now": datetime(2025, 5, 17, 9, 0, tzinfo=UTC)}
    assert check(leaf(born, "anniversary_today"), {**attrs(born="1990-05-17"), **on})
    assert not check(leaf(born, "anniversary_today"), {**attrs(born="1990-05-18"), **on})
    assert not check(leaf(born, "anniversary_today"), {**attrs(born="soon"), **on})
    leap = attrs(born="1996-02-29")
    feb28 = datetime(2025, 2, 28, 9, 0, tzinfo=UTC)
    mar1 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert check(leaf(born, "anniversary_today"), {**leap, "now": feb28})
    assert not check(leaf(born, "anniversary_today"), {**leap, "now": mar1})
    # in a leap year the day itself counts, not Feb 28
    assert not check(
        leaf(born, "anniversary_today"), {**leap, "now": datetime(2024, 2, 28, tzinfo=UTC)}
    )
    assert check(
        leaf(born, "anniversary_today"), {**leap, "now": datetime(2024, 2, 29, tzinfo=UTC)}
    )


def test_anniversary_today_uses_the_given_time_zone() -> None:
    late = {"now": datetime(2025, 3, 14, 23, 30, tzinfo=UTC), **attrs(born="1980-03-15")}
    assert not check(leaf("contact.attributes.born", "anniversary_today"), late)
    assert check(leaf("contact.attributes.born", "anniversary_today", tz="Europe/Berlin"), late)


def test_days_until_eq() -> None:
    expiring = {"deal": {"contract_end": "2025-03-30"}}
    assert check(leaf("deal.contract_end", "days_until_eq", 30), expiring)
    assert not check(leaf("deal.contract_end", "days_until_eq", 29), expiring)
    assert check(
        leaf("deal.contract_end", "days_until_eq", -1), {"deal": {"contract_end": "2025-02-27"}}
    )
    assert check(
        leaf("deal.contract_end", "days_until_eq", 0),
        {"deal": {"contract_end": "2025-02-28T23:00:00+00:00"}},
    )


def test_segment_leaf_calls_the_segment_function_with_the_filter() -> None:
    seen: list[dict[str, Any]] = []

    def segment(spec: dict[str, Any]) -> bool:
        seen.append(spec)
        return spec.get("tag") == "vip"

    assert check({"segment": {"tag": "vip", "attr.staff.gte": 50}}, segment=segment)
    assert not check({"segment": {"tag": "b2b"}}, segment=segment)
    assert seen == [{"tag": "vip", "attr.staff.gte": 50}, {"tag": "b2b"}]
    with pytest.raises(ConditionError, match="segment"):
        evaluate({"all": [{"segment": {"tag": "vip"}}]}, {"now": NOW})
    with pytest.raises(ConditionError, match="unknown contact filter"):
        validate_condition({"segment": {"colour": "red"}})
    with pytest.raises(ConditionError, match=r"attr\.KEY"):
        validate_condition({"segment": {"attr.staff.between": 5}})


def test_business_hours_leaf() -> None:
    support = BusinessCalendar("Europe/Berlin", {"fri": [["09:00", "12:00"]]})
    calendars = {"support": support}
    inside = {"business_hours": {"calendar": "support", "inside": True}}
    outside = {"business_hours": {"calendar": "support", "inside": False}}
    friday_morning = {"now": datetime(2025, 2, 28, 8, 30, tzinfo=UTC)}  # 09:30 in Berlin
    friday_noon = {"now": datetime(2025, 2, 28, 12, 0, tzinfo=UTC)}  # 13:00 in Berlin
    assert check(inside, friday_morning, calendars=calendars)
    assert not check(outside, friday_morning, calendars=calendars)
    assert check(outside, friday_noon, calendars=calendars)
    # "default" is Mon-Fri 09:00-18:00 UTC when not configured
    assert check({"business_hours": {"calendar": "default"}}, friday_noon)
    with pytest.raises(ConditionError, match="no calendar 'night'"):
        check({"business_hours": {"calendar": "night"}}, calendars=calendars)


# -- the trace ---------------------------------------------------------------------------------


def test_explain_lists_evaluated_leaves_with_actual_and_expected_values() -> None:
    node = {
        "all": [
            leaf("event.channel", "eq", "email"),
            {"any": [leaf("contact.tags", "contains", "vip"), leaf("deal.amount", "gt", 1000)]},
            {"not": leaf("event.metadata.auto_reply", "is_set")},
        ]
    }
    facts = {
        "event": {"channel": "email", "metadata": {}},
        "contact": {"tags": ["vip"]},
        "deal": {"amount": 10},
        "now": NOW,
    }
    trace = evaluate(node, facts)
    assert trace.matched
    explained = trace.explain()
    json.dumps(explained)  # JSON-able as it is
    assert [entry["path"] for entry in explained] == ["all[0]", "all[1].any[0]", "all[2].not"]
    assert explained[0] == {
        "path": "all[0]",
        "field": "event.channel",
        "op": "eq",
        "expected": "email",
        "actual": "email",
        "set": True,
        "result": True,
    }
    assert explained[1]["actual"] == ["vip"]
    assert explained[2] == {
        "path": "all[2].not",
        "field": "event.metadata.auto_reply",
        "op": "is_set",
        "actual": None,
        "set": False,
        "result": False,
    }


def test_explain_stops_where_python_would_stop() -> None:
    node = {"all": [leaf("event.a", "eq", 1), leaf("event.b", "eq", 2), leaf("event.c", "eq", 3)]}
    trace = evaluate(node, {"event": {"a": 1, "b": 5, "c": 3}})
    assert not trace.matched
    assert [e["path"] for e in trace.explain()] == ["all[0]", "all[1]"]
    node = {"any": [leaf("event.a", "eq", 1), leaf("event.b", "eq", 2)]}
    assert [e["path"] for e in evaluate(node, {"event": {"a": 1}}).explain()] == ["any[0]"]


def test_explain_shortens_long_values_and_shows_dates_as_text() -> None:
    trace = evaluate(
        leaf("event.text", "contains", "zzz"),
        {"event": {"text": "x" * 5000, "at": NOW}},
    )
    actual = trace.explain()[0]["actual"]
    assert len(actual) < 600 and actual.endswith("…")
    trace = evaluate(leaf("event.at", "lt", "2030-01-01"), {"event": {"at": NOW}})
    assert trace.explain()[0]["actual"] == NOW.isoformat()


def test_a_root_leaf_has_an_empty_path() -> None:
    trace = evaluate(leaf("event.a", "is_set"), {"event": {"a": 1}})
    assert isinstance(trace, Trace)
    assert trace.explain()[0]["path"] == ""


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "path", "message"),
    [
        (
            {
                "all": [
                    leaf("event.a", "eq", 1),
                    leaf("event.b", "eq", 1),
                    {"field": "event.c", "op": "equals", "value": 1},
                ]
            },
            "all[2].op",
            "unknown operator 'equals'",
        ),
        ({"any": "nope"}, "any", "a list of conditions"),
        ({"all": [], "any": []}, "", "stands alone"),
        ({"not": [leaf("event.a", "is_set")]}, "not", "a condition is an object"),
        ({"field": "event.a", "op": "eq", "value": 1, "extra": 1}, "extra", "unknown key"),
        (
            {"field": "event.a", "op": "eq", "value": 1, "case_sensitive": True},
            "case_sensitive",
            "unknown key",
        ),
        (
            {"field": "event.a", "op": "contains", "value": "x", "case_sensitive": "yes"},
            "case_sensitive",
            "true or false",
        ),
        ({"field": "events.a", "op": "eq", "value": 1}, "field", "unknown fact 'events'"),
        ({"field": "event..a", "op": "eq", "value": 1}, "field", "not a field path"),
        ({"field": 7, "op": "eq", "value": 1}, "field", "a dotted path"),
        ({"field": "event.a", "op": "eq"}, "value", "needs a value"),
        ({"field": "event.a", "op": "eq", "value": None}, "value", "is_set"),
        ({"field": "event.a", "op": "eq", "value": [1]}, "value", "text, a number"),
        ({"field": "event.a", "op": "eq", "value": float("nan")}, "value", "text, a number"),
        ({"field": "event.a", "op": "in", "value": []}, "value", "a list of 1 to"),
        ({"field": "event.a", "op": "in", "value": ["a", {"b": 1}]}, "value[1]", "text, a number"),
        ({"field": "event.a", "op": "gt", "value": "tomorrow"}, "value", "ISO date"),
        ({"field": "event.a", "op": "gt", "value": True}, "value", "ISO date"),
        ({"field": "event.a", "op": "is_set", "value": 1}, "value", "takes no value"),
        (
            {"field": "event.a", "op": "within_last", "value": "15 minutes"},
            "value",
            "not a duration",
        ),
        ({"field": "event.a", "op": "days_until_eq", "value": 1.5}, "value", "whole number"),
        ({"field": "event.a", "op": "days_until_eq", "value": True}, "value", "whole number"),
        (
            {"field": "event.a", "op": "anniversary_today", "tz": "Mars/Olympus"},
            "tz",
            "unknown time zone",
        ),
        ({"field": "event.a", "op": "starts_with", "value": 5}, "value", "takes text"),
        ({"business_hours": {"calendar": "x", "open": True}}, "business_hours.open", "unknown key"),
        (
            {"business_hours": {"calendar": "x", "inside": "yes"}},
            "business_hours.inside",
            "true or false",
        ),
        ({"segment": "vip"}, "segment", "a contact filter"),
        ({"segment": {"tag": "vip"}, "field": "x"}, "", "stands alone"),
        ({"nothing": 1}, "", "expected all, any, not"),
        ("event.a == 1", "", "a condition is an object"),
    ],
)
def test_validation_names_the_place_and_the_problem(node: Any, path: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        validate_condition(node)
    assert caught.value.path == path
    assert message in caught.value.message
    assert str(caught.value) == (
        f"{path}: {caught.value.message}" if path else caught.value.message
    )


def test_validation_limits_depth_and_size() -> None:
    node: dict[str, Any] = leaf("event.a", "is_set")
    for _ in range(9):
        node = {"not": node}
    validate_condition(node)  # ten levels
    with pytest.raises(ConditionError, match="at most 10 levels"):
        validate_condition({"all": [node]})
    validate_condition({"all": [leaf("event.a", "is_set")] * 200})
    with pytest.raises(ConditionError, match="at most 200"):
        validate_condition({"all": [leaf("event.a", "is_set")] * 201})


def test_evaluate_validates_first() -> None:
    with pytest.raises(ConditionError, match="unknown operator"):
        evaluate({"field": "event.a", "op": "like", "value": "x"}, {})


def test_parse_duration() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("3d") == timedelta(days=3)
    assert parse_duration("1w") == timedelta(weeks=1)
    assert parse_duration(" 1h30m ") == timedelta(minutes=90)
    assert parse_duration("0m") == timedelta(0)
    for bad in ("", "15", "m", "-5m", "1y", "1.5h", "15 m", "3650d1s", "99999999d"):
        with pytest.raises(ConditionError):
            parse_duration(bad)
    with pytest.raises(ValueError, match="a duration is text"):
        parse_duration(15)


# -- properties ------------------------------------------------------------------------------

FIELDS = (
    "event.channel",
    "event.text",
    "event.metadata.auto_reply",
    "contact.lifecycle",
    "contact.tags",
    "contact.attributes.staff",
    "contact.attributes.born",
    "contact.attributes.seen",
    "company.attributes.staff",
    "deal.amount",
    "deal.stage",
    "conversation.status",
)
WORDS = ("lead", "vip", "email", "sms", "open", "Price", "won", "")
iso_dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2060, 12, 31)).map(date.isoformat)
iso_times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
).map(datetime.isoformat)
scalars = st.one_of(
    st.sampled_from(WORDS),
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.booleans(),
    iso_dates,
)
values = st.one_of(
    st.none(),
    scalars,
    iso_times,
    st.text(max_size=30),
    st.lists(st.sampled_from(WORDS), max_size=4),
)
durations = st.sampled_from(["90s", "15m", "2h", "3d", "1w", "400d"])


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(OPERATORS))
    node: dict[str, Any] = {"field": field, "op": op}
    if op in ("eq", "ne", "contains", "not_contains"):
        node["value"] = draw(scalars)
    elif op in ("in", "not_in"):
        node["value"] = draw(st.lists(scalars, min_size=1, max_size=3))
    elif op == "starts_with":
        node["value"] = draw(st.sampled_from(WORDS))
    elif op == "regex":
        node["value"] = draw(st.sampled_from(["^l", "pri.e", r"\d+", "v?ip$", "[a-z]{2,}"]))
    elif op in ("gt", "gte", "lt", "lte"):
        node["value"] = draw(st.one_of(st.integers(-1000, 1000), iso_dates, iso_times))
    elif op in ("within_last", "within_next"):
        node["value"] = draw(durations)
    elif op == "days_until_eq":
        node["value"] = draw(st.integers(-400, 400))
    if op in ("contains", "not_contains", "starts_with", "regex") and draw(st.booleans()):
        node["case_sensitive"] = draw(st.booleans())
    if op in ("anniversary_today", "days_until_eq") and draw(st.booleans()):
        node["tz"] = draw(st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Kiritimati"]))
    return node


special_leaves = st.one_of(
    st.builds(lambda tag: {"segment": {"tag": tag}}, st.sampled_from(WORDS[:3])),
    st.builds(
        lambda name, inside: {"business_hours": {"calendar": name, "inside": inside}},
        st.sampled_from(["default", "support"]),
        st.booleans(),
    ),
)
any_leaf = st.one_of(leaves(), leaves(), special_leaves)
trees = st.recursive(
    any_leaf,
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, max_size=4)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, max_size=4)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=12,
)


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


@st.composite
def fact_sets(draw: st.DrawFn, json_only: bool = False) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for field in FIELDS:
        if draw(st.booleans()):
            _put(facts, field, draw(values))
    facts["now"] = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2050, 1, 1), timezones=st.just(UTC)
        )
    )
    if json_only:
        facts["now"] = facts["now"].isoformat()
    return facts


SUPPORT = BusinessCalendar(
    "America/New_York", {"mon": [["08:00", "20:00"]], "sat": [["10:00", "14:00"]]}
)
WIRING: dict[str, Any] = {
    "segment": lambda spec: spec.get("tag") == "vip",
    "calendars": {"support": SUPPORT},
}
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(trees)
def test_generated_trees_are_valid(tree: dict[str, Any]) -> None:
    validate_condition(tree)


@PROPERTY
@given(trees, fact_sets())
def test_not_inverts(tree: dict[str, Any], facts: dict[str, Any]) -> None:
    plain = evaluate(tree, facts, **WIRING).matched
    assert evaluate({"not": tree}, facts, **WIRING).matched is (not plain)


@PROPERTY
@given(st.lists(trees, max_size=4), fact_sets())
def test_all_and_any_agree_with_python(
    children: list[dict[str, Any]], facts: dict[str, Any]
) -> None:
    each = [evaluate(child, facts, **WIRING).matched for child in children]
    assert evaluate({"all": children}, facts, **WIRING).matched is all(each)
    assert evaluate({"any": children}, facts, **WIRING).matched is any(each)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
odd_values = st.one_of(
    json_values,
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.integers(min_value=10**300, max_value=10**400),
    st.sampled_from([float("inf"), float("nan"), object(), b"bytes", (1, 2), frozenset({1})]),
)


@st.composite
def wild_facts(draw: st.DrawFn) -> Any:
    facts = draw(
        st.dictionaries(
            st.sampled_from([*sorted({f.split(".")[0] for f in FIELDS}), "x"]),
            json_values,
            max_size=4,
        )
    )
    for field in FIELDS:
        if draw(st.booleans()):
            # a parent that is not a mapping is a wild fact too
            with contextlib.suppress(AttributeError, TypeError):
                _put(facts, field, draw(odd_values))
    if draw(st.booleans()):
        facts["now"] = draw(odd_values)
    return facts


@PROPERTY
@given(trees, wild_facts())
def test_evaluate_never_raises_on_any_facts(tree: dict[str, Any], facts: Any) -> None:
    trace = evaluate(tree, facts, **WIRING)
    assert isinstance(trace.matched, bool)
    json.dumps(trace.explain(), allow_nan=True)


garbage = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
        st.sampled_from(
            ["all", "any", "not", "field", "op", "value", "event.a", "eq", "regex", "(a"]
        ),
        st.sampled_from([object(), b"x", float("nan"), 10**400]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "all",
                        "any",
                        "not",
                        "field",
                        "op",
                        "value",
                        "segment",
                        "business_hours",
                        "case_sensitive",
                        "tz",
                        "calendar",
                        "inside",
                        "tag",
                    ]
                ),
                st.integers(),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)


@PROPERTY
@given(garbage)
def test_validate_rejects_garbage_with_condition_error_only(node: Any) -> None:
    with contextlib.suppress(ConditionError):
        validate_condition(node)


@PROPERTY
@given(trees, st.sampled_from(["field", "op", "value", "tz", "all", "not"]), garbage)
def test_validate_on_corrupted_trees_raises_condition_error_only(
    tree: dict[str, Any], key: str, junk: Any
) -> None:
    corrupted = json.loads(json.dumps(tree))
    node = corrupted
    while True:  # down to the first leaf (or an empty group)
        if node.get("all"):
            node = node["all"][0]
        elif node.get("any"):
            node = node["any"][0]
        elif "not" in node:
            node = node["not"]
        else:
            break
    node[key] = junk
    with contextlib.suppress(ConditionError):
        validate_condition(corrupted)


@PROPERTY
@given(st.sampled_from(FIELDS), values.filter(lambda v: v is not None), scalars)
def test_eq_and_ne_are_complementary_for_present_values(
    field: str, actual: Any, expected: Any
) -> None:
    facts: dict[str, Any] = {"now": NOW}
    _put(facts, field, actual)
    eq = evaluate(leaf(field, "eq", expected), facts).matched
    ne = evaluate(leaf(field, "ne", expected), facts).matched
    assert eq is not ne


comparable_pairs = st.one_of(
    st.tuples(
        st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False)),
    ),
    st.tuples(iso_dates, iso_dates),
    st.tuples(iso_times, iso_times),
    st.tuples(iso_dates, iso_times),
    st.tuples(st.dates(), iso_dates),
)


@PROPERTY
@given(comparable_pairs)
def test_gt_and_lte_are_complementary_for_comparable_values(pair: tuple[Any, Any]) -> None:
    actual, expected = pair
    facts = {"deal": {"x": actual}}
    gt = evaluate(leaf("deal.x", "gt", expected), facts).matched
    lte = evaluate(leaf("deal.x", "lte", expected), facts).matched
    lt = evaluate(leaf("deal.x", "lt", expected), facts).matched
    gte = evaluate(leaf("deal.x", "gte", expected), facts).matched
    assert gt is not lte
    assert lt is not gte


@PROPERTY
@given(trees, fact_sets(json_only=True))
def test_a_json_round_trip_evaluates_the_same(tree: dict[str, Any], facts: dict[str, Any]) -> None:
    again = json.loads(json.dumps(tree))
    facts_again = json.loads(json.dumps(facts))
    first = evaluate(tree, facts, **WIRING)
    second = evaluate(again, facts_again, **WIRING)
    assert first.matched is second.matched
    assert first.explain() == second.explain()


@PROPERTY
@given(st.lists(leaves(), min_size=1, max_size=6), fact_sets())
def test_the_trace_of_an_all_ends_at_the_first_false_leaf(
    children: list[dict[str, Any]], facts: dict[str, Any]
) -> None:
    trace = evaluate({"all": children}, facts)
    results = [entry["result"] for entry in trace.explain()]
    assert all(results[:-1])
    assert trace.matched is (len(results) == len(children) and results[-1])


regex_bits = st.sampled_from(
    [
        "a",
        "b",
        ".",
        "*",
        "+",
        "?",
        "(",
        ")",
        "|",
        "[",
        "]",
        "^",
        "$",
        "\\",
        "{",
        "}",
        ",",
        "1",
        "2",
        "99999999999",
        "\\d",
        "\\w",
        "\\1",
        "(?:",
        "(?=",
        "(?P<n>",
        "(?P=n)",
        "(?>",
        "*+",
    ]
)


@PROPERTY
@given(st.one_of(st.text(max_size=40), st.lists(regex_bits, max_size=25).map("".join)))
def test_any_regex_text_is_accepted_or_refused_with_condition_error(pattern: str) -> None:
    node = leaf("event.text", "regex", pattern)
    try:
        validate_condition(node)
    except ConditionError:
        return
    assert isinstance(check(node, {"event": {"text": "ab1 " * 50}}), bool)
