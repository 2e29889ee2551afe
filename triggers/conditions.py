"""The `if` part of a rule: a small condition language kept as plain JSON-able data.

Rules are stored as events and exported as YAML, so a condition is only
dicts, lists, strings and numbers — never code. Three kinds of node::

    {"all": [node, ...]}   {"any": [node, ...]}   {"not": node}
    {"field": "contact.attributes.staff", "op": "gte", "value": 50}
    {"segment": {"tag": "vip", "attr.industry": "retail"}}        # GET /api/contacts' filter
    {"business_hours": {"calendar": "support", "inside": true}}

Two functions do the work. `validate_condition` runs when a rule is saved and
rejects anything malformed with a `ConditionError` naming the place
(``all[2].op: unknown operator 'equals'``), so a broken rule never reaches
the log. `evaluate` runs for every trigger event; it never raises because of
the *facts* (a missing key anywhere on a path means "not set", a number
compared with text is simply false), only because of missing wiring (a
segment leaf without a segment function, an unknown calendar). It returns a
`Trace`, whose `explain()` lists every leaf that was evaluated with the actual
value, the expected one and the result, so an auditor can answer "why did the
client get this message".

Decisions worth knowing:

* Negative operators (``ne``, ``not_in``, ``not_contains``) hold for a value
  that is not set, like the contact filter's ``attr.X.ne`` does: "industry is
  not retail" includes contacts whose industry is unknown.
* Text operators (``contains``, ``not_contains``, ``starts_with``, ``regex``)
  ignore case unless the leaf says ``"case_sensitive": true``; ``eq`` is exact.
* Regular expressions are Python's, searched with `re.search`. A rule is
  written by staff but evaluated for every event, so patterns are bounded:
  at most `MAX_PATTERN` characters, no back-references, no nested or
  repeated open-ended repetition (``(a+)+`` takes exponential time, ``a*a*b``
  cubic; see `_pattern_risk`), and only the first `MAX_REGEX_INPUT`
  characters of a value are searched.
* Time-relative operators use ``facts["now"]`` (the runner passes the event's
  time, so a trace can be replayed). Without a usable ``now`` they are false,
  and the trace says why; the module never reads the clock.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast
from zoneinfo import ZoneInfo

from threadline.domain.model.errors import InvalidInput
from threadline.projections.saved_segments import SEGMENT_KEYS as SAVED_SEGMENT_KEYS
from threadline.projections.segments import build_contact_filter, check_segment_values
from threadline.triggers.business_hours import DEFAULT_CALENDAR, BusinessCalendar

# The top-level names a field path may start with (the facts the runner assembles).
FACT_ROOTS = frozenset({"event", "contact", "company", "deal", "conversation", "operator", "now"})
MAX_DEPTH = 10  # nesting of nodes, the root counting as 1
MAX_LEAVES = 200
MAX_PATTERN = 300  # characters of a regex pattern
MAX_REGEX_INPUT = 5_000  # characters of a value that a regex searches
MAX_PATTERN_WEIGHT = 6_000  # backtracking choices per start position (see _pattern_risk)
MAX_LIST = 1_000  # items of an `in` list
MAX_TEXT = 10_000  # characters of a string value
MAX_FIELD = 200  # characters of a field path
MAX_DURATION = timedelta(days=3650)  # ten years: keeps date arithmetic far from overflow
TRACE_TEXT = 500  # characters of a value shown in a trace
TRACE_ITEMS = 50  # items of a list shown in a trace

_FIELD_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_DURATION = re.compile(r"^(?:\d{1,7}[smhdw])+$")
_DURATION_PART = re.compile(r"(\d{1,7})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_MISSING: Any = object()

# Operators and what their `value` must be; `_TEXT_OPS` take `case_sensitive`, `_DAY_OPS` take `tz`.
_VALUE_KINDS = {
    "eq": "scalar",
    "ne": "scalar",
    "in": "list",
    "not_in": "list",
    "contains": "scalar",
    "not_contains": "scalar",
    "starts_with": "text",
    "regex": "pattern",
    "gt": "order",
    "gte": "order",
    "lt": "order",
    "lte": "order",
    "is_set": "none",
    "is_not_set": "none",
    "within_last": "duration",
    "within_next": "duration",
    "anniversary_today": "none",
    "days_until_eq": "days",
}
OPERATORS = tuple(_VALUE_KINDS)
_TEXT_OPS = frozenset({"contains", "not_contains", "starts_with", "regex"})
_DAY_OPS = frozenset({"anniversary_today", "days_until_eq"})
_NOW_OPS = frozenset({"within_last", "within_next", "anniversary_today", "days_until_eq"})
_SEGMENT_KEYS = frozenset(
    {
        "tag",
        "lifecycle",
        "responsible_id",
        "company_id",
        "source",
        "created_from",
        "created_to",
        "q",
    }
) | frozenset(SAVED_SEGMENT_KEYS)
_SEGMENT_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte"})


class ConditionError(ValueError):
    """A malformed condition; `path` is relative to the condition (``all[2].op``, "" = the root).

    A `ValueError`, so callers that parse durations can catch either.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


# -- durations -----------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"`` (or a sum such as ``"1h30m"``).

    Shared with the rule's `after` delay, so the same spelling works everywhere.
    """
    if not isinstance(text, str):
        raise ConditionError("", f"a duration is text such as 15m, 2h or 3d, not {text!r}")
    compact = text.strip().lower()
    if not _DURATION.match(compact):
        raise ConditionError(
            "", f"not a duration: {text[:50]!r} (use a number and s, m, h, d or w, e.g. 15m)"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(compact))
    if seconds > MAX_DURATION.total_seconds():
        raise ConditionError("", f"a duration of at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


# -- validation ----------------------------------------------------------------------------


def validate_condition(node: Any) -> None:
    """Raise `ConditionError` unless `node` is a well-formed condition tree (run on save)."""
    leaves = [0]
    _validate(node, "", 1, leaves)


def _join(path: str, key: str) -> str:
    if key.startswith("["):
        return path + key
    return f"{path}.{key}" if path else key


def _validate(node: Any, path: str, depth: int, leaves: list[int]) -> None:
    if depth > MAX_DEPTH:
        raise ConditionError(path, f"conditions nest at most {MAX_DEPTH} levels deep")
    if not isinstance(node, Mapping):
        raise ConditionError(path, "a condition is an object such as {field, op, value}")
    keys = [str(k) for k in node]
    if any(not isinstance(k, str) for k in node):
        raise ConditionError(path, "keys of a condition are text")
    for group in ("all", "any"):
        if group in node:
            if len(keys) != 1:
                raise ConditionError(path, f"'{group}' stands alone in its object")
            children = node[group]
            if not isinstance(children, list | tuple):
                raise ConditionError(_join(path, group), "a list of conditions")
            for i, child in enumerate(children):
                _validate(child, _join(path, f"{group}[{i}]"), depth + 1, leaves)
            return
    if "not" in node:
        if len(keys) != 1:
            raise ConditionError(path, "'not' stands alone in its object")
        _validate(node["not"], _join(path, "not"), depth + 1, leaves)
        return
    leaves[0] += 1
    if leaves[0] > MAX_LEAVES:
        raise ConditionError(path, f"a rule has at most {MAX_LEAVES} conditions")
    if "segment" in node:
        _validate_segment(node, path)
    elif "segment_id" in node:
        _validate_segment_id(node, path)
    elif "business_hours" in node:
        _validate_business_hours(node, path)
    elif "field" in node or "op" in node:
        _validate_leaf(node, path)
    else:
        raise ConditionError(
            path,
            "expected all, any, not, segment, business_hours or {field, op, value}; "
            f"got {sorted(keys)[:5]}",
        )


def _validate_leaf(node: Mapping[str, Any], path: str) -> None:
    op = node.get("op")
    if not isinstance(op, str):
        raise ConditionError(_join(path, "op"), f"name an operator: {', '.join(OPERATORS)}")
    if op not in _VALUE_KINDS:
        raise ConditionError(_join(path, "op"), f"unknown operator {op[:50]!r}")
    allowed = {"field", "op", "value"}
    if op in _TEXT_OPS:
        allowed.add("case_sensitive")
    if op in _DAY_OPS:
        allowed.add("tz")
    for key in node:
        if key not in allowed:
            raise ConditionError(_join(path, str(key)), f"unknown key for operator {op!r}")
    _validate_field(node.get("field"), _join(path, "field"))
    if "case_sensitive" in node and not isinstance(node["case_sensitive"], bool):
        raise ConditionError(_join(path, "case_sensitive"), "true or false")
    if "tz" in node:
        _zone(node["tz"], _join(path, "tz"))
    _validate_value(op, node, _join(path, "value"))


def _validate_field(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
        raise ConditionError(path, "a dotted path such as contact.attributes.industry")
    parts = value.split(".")
    if parts[0] not in FACT_ROOTS:
        raise ConditionError(
            path, f"unknown fact {parts[0]!r}: a path starts with {', '.join(sorted(FACT_ROOTS))}"
        )
    if len(parts) > 10 or not all(_FIELD_SEGMENT.match(part) for part in parts):
        raise ConditionError(path, f"not a field path: {value[:80]!r}")


def _validate_value(op: str, node: Mapping[str, Any], path: str) -> None:
    kind = _VALUE_KINDS[op]
    value = node.get("value", _MISSING)
    if kind == "none":
        if value is not _MISSING and value is not None:
            raise ConditionError(path, f"{op} takes no value")
        return
    if value is _MISSING:
        raise ConditionError(path, f"{op} needs a value")
    if kind == "scalar":
        if value is None:
            raise ConditionError(path, "null is not a value here: use is_set / is_not_set")
        if not _is_scalar(value):
            raise ConditionError(path, f"{op} takes text, a number or true/false")
    elif kind == "list":
        if not isinstance(value, list | tuple) or not value or len(value) > MAX_LIST:
            raise ConditionError(path, f"{op} takes a list of 1 to {MAX_LIST} values")
        for i, item in enumerate(value):
            if not _is_scalar(item):
                raise ConditionError(f"{path}[{i}]", "text, a number or true/false")
    elif kind == "text":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ConditionError(path, f"{op} takes text")
    elif kind == "pattern":
        _validate_pattern(value, bool(node.get("case_sensitive", False)), path)
    elif kind == "order":
        if _is_number(value):
            return
        if isinstance(value, str) and _temporal(value) is not None:
            return
        raise ConditionError(path, f"{op} compares with a number or an ISO date / date-time")
    elif kind == "duration":
        try:
            parse_duration(value)
        except ConditionError as error:
            raise ConditionError(path, error.message) from None
    elif kind == "days" and (
        not isinstance(value, int) or isinstance(value, bool) or abs(value) > 36_500
    ):
        raise ConditionError(path, f"{op} takes a whole number of days (at most 36500)")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _amount(value: Any) -> int | float | Decimal | None:
    """A number, or the amount of money (``{"amount": "1500.50", "currency": "RUB"}``, as a
    lead's acquisition cost is): a rule orders a cost by its amount and names the currency
    with a condition of its own on ``.currency``; amounts of two currencies never meet here."""
    if _is_number(value):
        return cast(int | float, value)
    if not isinstance(value, Mapping) or set(value) != {"amount", "currency"}:
        return None
    try:
        amount = Decimal(str(value["amount"]))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    return isinstance(value, bool) or _is_number(value)


def _validate_pattern(value: Any, case_sensitive: bool, path: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConditionError(path, "regex takes a pattern (text)")
    if len(value) > MAX_PATTERN:
        raise ConditionError(path, f"a pattern of at most {MAX_PATTERN} characters")
    try:
        _compiled(value, case_sensitive)
    except ConditionError as error:
        raise ConditionError(path, error.message) from None


def _validate_segment(node: Mapping[str, Any], path: str) -> None:
    if len(node) != 1:
        raise ConditionError(path, "'segment' stands alone in its object")
    spec = node["segment"]
    here = _join(path, "segment")
    if not isinstance(spec, Mapping):
        raise ConditionError(here, "a contact filter such as {tag: vip, attr.industry: retail}")
    for key, value in spec.items():
        where = _join(here, str(key))
        if not isinstance(key, str):
            raise ConditionError(here, "filter names are text")
        if key.startswith("attr."):
            name, _, op = key[len("attr.") :].partition(".")
            if not _FIELD_SEGMENT.match(name) or (op and op not in _SEGMENT_OPS):
                raise ConditionError(
                    where, f"attr.KEY or attr.KEY.OP with OP in {sorted(_SEGMENT_OPS)}"
                )
        elif key not in _SEGMENT_KEYS:
            raise ConditionError(where, f"unknown contact filter; use {sorted(_SEGMENT_KEYS)}")
        if key == "tag" and isinstance(value, list | tuple):
            if not all(isinstance(t, str) and t for t in value) or len(value) > MAX_LIST:
                raise ConditionError(where, "a tag or a list of tags")
        elif not _is_scalar(value):
            raise ConditionError(where, "text, a number or true/false")
        elif key in ("created_from", "created_to"):
            try:
                build_contact_filter([(key, str(value))], None, field_prefix="segment")
            except InvalidInput as error:
                raise ConditionError(where, error.message) from None
        elif key in SAVED_SEGMENT_KEYS:
            try:
                check_segment_values([(key, str(value))], "segment")
            except InvalidInput as error:
                raise ConditionError(where, error.message) from None


def _validate_segment_id(node: Mapping[str, Any], path: str) -> None:
    """``{"segment_id": "<id>"}``: a saved segment (whether it exists is checked where rules
    are saved, `services.rules_service.check_rule`, which can read the log)."""
    if len(node) != 1:
        raise ConditionError(path, "'segment_id' stands alone in its object")
    try:
        check_segment_values([("segment_id", str(node["segment_id"]))], "segment_id")
    except InvalidInput as error:
        raise ConditionError(_join(path, "segment_id"), error.message) from None


def _validate_business_hours(node: Mapping[str, Any], path: str) -> None:
    if len(node) != 1:
        raise ConditionError(path, "'business_hours' stands alone in its object")
    spec = node["business_hours"]
    here = _join(path, "business_hours")
    if not isinstance(spec, Mapping):
        raise ConditionError(here, "an object such as {calendar: default, inside: true}")
    for key in spec:
        if key not in ("calendar", "inside"):
            raise ConditionError(_join(here, str(key)), "unknown key (calendar, inside)")
    calendar = spec.get("calendar", "default")
    if not isinstance(calendar, str) or not calendar or len(calendar) > 100:
        raise ConditionError(_join(here, "calendar"), "the name of a business calendar")
    if not isinstance(spec.get("inside", True), bool):
        raise ConditionError(_join(here, "inside"), "true or false")


def _zone(value: Any, path: str) -> ZoneInfo:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ConditionError(path, "an IANA time zone such as Europe/Berlin")
    try:
        return ZoneInfo(value)
    except Exception:  # ZoneInfoNotFoundError, or ValueError for odd paths: all mean "no such zone"
        raise ConditionError(path, f"unknown time zone {value!r}") from None


_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


class _Risky(Exception):
    """Raised inside the pattern walk: the reason a pattern is refused."""


def _pattern_risk(pattern: str) -> str:
    """Why a pattern could be slow on some text, or "" (a static estimate on the parsed pattern).

    Backtracking costs up to the product of the choices each repetition has, at
    every start position: ``a*b`` tries up to n splits (fine), ``a*a*b`` n² (about
    a second on a thousand characters, all starts counted), ``(a+)+b`` 2ⁿ. The estimate multiplies the
    ranges of repetitions in sequence, adds alternatives, and raises nested
    ones to a power; a pattern passes while that stays within
    `MAX_PATTERN_WEIGHT` — one open-ended repetition, or several bounded ones
    (``.{0,60}price.{0,60}``). It uses the standard library's own parser
    (``re._parser``) so what is checked is what `re` compiles; when that private
    module is missing only the length limits apply.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed = parser.parse(pattern)
    except Exception:
        return ""  # not a pattern at all: re.compile will say so

    def weight(items: Any) -> float:
        total = 1.0
        for op, av in items:
            name = getattr(op, "name", str(op))
            if name in ("GROUPREF", "GROUPREF_EXISTS"):
                raise _Risky("back-references are not allowed")
            if name in _REPEATS:
                low, high, sub = av
                top = min(high, MAX_REGEX_INPUT)
                inner = weight(sub)
                if inner > 1 and top > 1:
                    if high > MAX_PATTERN_WEIGHT:
                        raise _Risky("nested repetition such as (a+)+ can take exponential time")
                    try:
                        step = max(top - low + 1, inner ** min(top, 64))
                    except OverflowError:
                        step = 1e30
                else:
                    step = max(top - low + 1, inner)
            elif name == "SUBPATTERN":
                step = weight(av[3])
            elif name == "BRANCH":
                step = sum(weight(branch) for branch in av[1])
            elif name in ("ASSERT", "ASSERT_NOT"):
                step = weight(av[1])
            elif name == "ATOMIC_GROUP":
                step = weight(av)
            else:
                step = 1.0
            total = min(total * step, 1e30)
        return total

    try:
        estimate = weight(parsed)
    except _Risky as risk:
        return str(risk)
    if estimate > MAX_PATTERN_WEIGHT:
        return (
            "this pattern can take very long on some texts: keep one open-ended repetition"
            " (*, +, {n,}), bound the others (e.g. .{0,60}) or split it into conditions"
        )
    return ""


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """Check and compile once; `re` warnings (e.g. "possible nested set") are refusals too,
    since such a pattern may mean something else in the next Python."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reason = _pattern_risk(pattern)
        if reason:
            raise ConditionError("", reason)
        try:
            return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
        except Exception as error:  # re.error, OverflowError, a warning: all a bad pattern
            raise ConditionError("", f"not a regular expression: {error}") from None


# -- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """The outcome of a condition and the leaves that decided it, in evaluation order."""

    matched: bool
    leaves: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def explain(self) -> list[dict[str, Any]]:
        """JSON-able records ``{path, field, op, expected, actual, set, result}`` per leaf.

        Leaves that short-circuiting skipped are absent: they played no part.
        """
        return [dict(leaf) for leaf in self.leaves]


@dataclass
class _Run:
    facts: Mapping[str, Any]
    now: datetime | None
    segment: Callable[[dict[str, Any]], bool] | None
    calendars: Mapping[str, BusinessCalendar] | None
    records: list[dict[str, Any]]


def evaluate(
    node: Any,
    facts: Mapping[str, Any],
    *,
    segment: Callable[[dict[str, Any]], bool] | None = None,
    calendars: Mapping[str, BusinessCalendar] | None = None,
    validated: bool = False,
) -> Trace:
    """Evaluate a condition over the facts; `all` / `any` short-circuit like Python's.

    `facts` = ``{"event", "contact", "company", "deal", "conversation": {...}, "now": datetime}``.
    The tree is validated first (cheap: patterns are cached), so a rule that
    slipped past saving still fails with a `ConditionError`, never with a crash
    in the middle. `validated=True` skips that check for a tree the caller validated
    already (the trigger runner validates each rule once, when it loads it).
    """
    if not validated:
        validate_condition(node)
    if not isinstance(facts, Mapping):
        facts = {}
    run = _Run(facts, _now(facts.get("now")), segment, calendars, [])
    matched = _evaluate(node, "", run)
    return Trace(matched, tuple(run.records))


def _now(value: Any) -> datetime | None:
    moment = _temporal(value)
    if isinstance(moment, datetime):
        return moment
    return None


def _evaluate(node: Mapping[str, Any], path: str, run: _Run) -> bool:
    if "all" in node:
        return all(
            _evaluate(child, _join(path, f"all[{i}]"), run) for i, child in enumerate(node["all"])
        )
    if "any" in node:
        return any(
            _evaluate(child, _join(path, f"any[{i}]"), run) for i, child in enumerate(node["any"])
        )
    if "not" in node:
        return not _evaluate(node["not"], _join(path, "not"), run)
    if "segment" in node:
        return _segment_leaf(node["segment"], path, run)
    if "segment_id" in node:  # a saved segment: the segment language's own key
        return _segment_leaf({"segment_id": str(node["segment_id"])}, path, run)
    if "business_hours" in node:
        return _business_hours_leaf(node["business_hours"], path, run)
    return _field_leaf(node, path, run)


def _segment_leaf(spec: Mapping[str, Any], path: str, run: _Run) -> bool:
    if run.segment is None:
        raise ConditionError(path, "segment conditions need the contact view (no segment given)")
    try:
        result = bool(run.segment(dict(spec)))
    except InvalidInput as error:  # e.g. an attribute deleted, or a date no filter can read
        raise ConditionError(path, f"the segment cannot be read: {error}") from None
    run.records.append({"path": path, "segment": _plain(spec), "result": result})
    return result


def _business_hours_leaf(spec: Mapping[str, Any], path: str, run: _Run) -> bool:
    name = str(spec.get("calendar", "default"))
    inside = bool(spec.get("inside", True))
    calendar = (run.calendars or {}).get(name)
    if calendar is None and name == "default":
        calendar = DEFAULT_CALENDAR
    if calendar is None:
        raise ConditionError(_join(path, "business_hours.calendar"), f"no calendar {name!r}")
    record: dict[str, Any] = {
        "path": path,
        "business_hours": {"calendar": name, "inside": inside},
    }
    if run.now is None:
        record.update(actual=None, result=False, note="the facts have no usable 'now'")
        run.records.append(record)
        return False
    try:
        is_open: bool = calendar.is_open(run.now)
    except (OverflowError, ValueError):  # a `now` at the very edge of the calendar
        record.update(actual=None, result=False, note="'now' is out of range")
        run.records.append(record)
        return False
    result = is_open == inside
    record.update(actual="open" if is_open else "closed", at=run.now.isoformat(), result=result)
    run.records.append(record)
    return result


def _resolve(facts: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path, or `_MISSING`; a list takes a numeric segment as an index."""
    current: Any = facts
    for part in dotted.split("."):
        if isinstance(current, Mapping):
            current = current.get(part, _MISSING)
        elif isinstance(current, list | tuple) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def _field_leaf(node: Mapping[str, Any], path: str, run: _Run) -> bool:
    op = node["op"]
    dotted = node["field"]
    expected = node.get("value")
    actual = _resolve(run.facts, dotted)
    record: dict[str, Any] = {"path": path, "field": dotted, "op": op}
    if "value" in node:
        record["expected"] = _plain(expected)
    record["actual"] = None if actual is _MISSING else _plain(actual)
    record["set"] = _is_set(actual)
    if op in _NOW_OPS and run.now is None:
        record.update(result=False, note="the facts have no usable 'now'")
        run.records.append(record)
        return False
    try:
        result = _apply(op, actual, expected, node, run.now)
    except (OverflowError, ValueError):  # date arithmetic at the edges of the calendar
        result = False
    record["result"] = result
    run.records.append(record)
    return result


def _is_set(value: Any) -> bool:
    if value is _MISSING or value is None:
        return False
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _apply(op: str, actual: Any, expected: Any, node: Mapping[str, Any], now: Any) -> bool:
    present = actual is not _MISSING and actual is not None
    case_sensitive = bool(node.get("case_sensitive", False))
    if op == "eq":
        return present and _equal(actual, expected)
    if op == "ne":
        return not (present and _equal(actual, expected))
    if op == "in":
        return present and _in(actual, expected)
    if op == "not_in":
        return not (present and _in(actual, expected))
    if op == "contains":
        return present and _contains(actual, expected, case_sensitive)
    if op == "not_contains":
        return not (present and _contains(actual, expected, case_sensitive))
    if op == "starts_with":
        if not isinstance(actual, str):
            return False
        if case_sensitive:
            return actual.startswith(expected)
        return actual.casefold().startswith(str(expected).casefold())
    if op == "regex":
        text = _text_of(actual)
        if text is None:
            return False
        return _compiled(expected, case_sensitive).search(text[:MAX_REGEX_INPUT]) is not None
    if op in ("gt", "gte", "lt", "lte"):
        order = _compare(actual, expected) if present else None
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    if op == "is_set":
        return _is_set(actual)
    if op == "is_not_set":
        return not _is_set(actual)
    return _time_op(op, actual, expected, node, now)


def _time_op(op: str, actual: Any, expected: Any, node: Mapping[str, Any], now: datetime) -> bool:
    moment = _temporal(actual)
    if moment is None:
        return False
    if op in ("within_last", "within_next"):
        span = parse_duration(expected)
        if isinstance(moment, datetime):
            if op == "within_last":
                return now - span <= moment <= now
            return now <= moment <= now + span
        if op == "within_last":
            return (now - span).date() <= moment <= now.date()
        return now.date() <= moment <= (now + span).date()
    today = now.astimezone(ZoneInfo(str(node.get("tz", "UTC")))).date()
    day = moment.date() if isinstance(moment, datetime) else moment
    if op == "anniversary_today":
        if (day.month, day.day) == (today.month, today.day):
            return True
        leap_day = (day.month, day.day) == (2, 29)
        return leap_day and (today.month, today.day) == (2, 28) and not _is_leap(today.year)
    # days_until_eq
    return bool((day - today).days == expected)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if _is_number(value):
        return str(value)
    return None


def _equal(actual: Any, expected: Any) -> bool:
    """Equality without Python's surprises: True is not 1, "5" is not 5."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual is expected
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    if isinstance(actual, str) and isinstance(expected, str):
        return actual == expected
    if isinstance(actual, date) and isinstance(expected, str):
        return _compare(actual, expected) == 0
    return False


def _in(actual: Any, options: Sequence[Any]) -> bool:
    """A scalar equals one of the options; a list (tags) shares at least one with them."""
    if isinstance(actual, list | tuple):
        return any(_equal(item, option) for item in actual for option in options)
    return any(_equal(actual, option) for option in options)


def _contains(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Substring of text, member of a list, key of a mapping."""
    if isinstance(actual, str):
        needle = _text_of(expected)
        if needle is None:
            return False
        if case_sensitive:
            return needle in actual
        return needle.casefold() in actual.casefold()
    if isinstance(actual, list | tuple):
        for item in actual:
            if isinstance(item, str) and isinstance(expected, str) and not case_sensitive:
                if item.casefold() == expected.casefold():
                    return True
            elif _equal(item, expected):
                return True
        return False
    if isinstance(actual, Mapping):
        return isinstance(expected, str) and expected in actual
    return False


def _temporal(value: Any) -> date | datetime | None:
    """A date or an aware date-time from an object or an ISO string; naive times are UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO.match(value):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _compare(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 for comparable values (numbers with numbers, dates with dates), else None."""
    if _is_number(expected):
        amount = _amount(actual)
        if amount is None:
            return None
        limit = Decimal(repr(expected)) if isinstance(amount, Decimal) else expected
        return int(amount > limit) - int(amount < limit)
    left, right = _temporal(actual), _temporal(expected)
    if left is None or right is None:
        return None
    if isinstance(left, datetime) and isinstance(right, datetime):
        try:
            return (left > right) - (left < right)
        except (OverflowError, ValueError):  # offsets pushing year 1 / 9999 out of range
            return None
    # a date against a date-time: compare the days, each in its own offset
    left_day = left.date() if isinstance(left, datetime) else left
    right_day = right.date() if isinstance(right, datetime) else right
    return (left_day > right_day) - (left_day < right_day)


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able, size-bounded copy of a value for the trace."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**100 else "a number of more than 100 digits"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= TRACE_TEXT else value[:TRACE_TEXT] + "…"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if depth >= 4:
        return "…"
    if isinstance(value, Mapping):
        items = list(value.items())[:TRACE_ITEMS]
        return {str(k): _plain(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        shown = [_plain(v, depth + 1) for v in items[:TRACE_ITEMS]]
        if len(items) > TRACE_ITEMS:
            shown.append(f"… {len(items) - TRACE_ITEMS} more")
        return shown
    return _plain(str(value), depth)
