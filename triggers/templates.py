"""Message templates: sandboxed Jinja2, one variant per channel, checked when saved.

A template is JSON-able data (stored by the Template aggregate)::

    {"email":    {"subject": "...", "html": "...", "text": "..."},
     "sms":      {"text": "..."},
     "telegram": {"text": "...", "parse_mode": "HTML" | "MarkdownV2" | None},
     "default":  {"text": "..."}}        # any channel without its own variant

Why it is built this way:

* **Checked at save time.** `validate_template` walks the Jinja2 syntax tree
  and rejects every variable, attribute path or filter the schema does not
  know (``contact.emial``, ``contact.attributes.<not in the registry>``), with
  the variant, field and line. A rule that sends a broken template would
  otherwise fail at 3 a.m. for one contact in ten thousand.
* **Sandboxed.** Rendering uses `ImmutableSandboxedEnvironment`: no access to
  Python internals (``__class__``, ``mro``...; a try fails with
  `TemplateError`), no changes to the context.
* **Budgeted.** Any role may preview a template, so one render must not hold
  the server: each render spends a `RenderBudget` (`MAX_STEPS` steps: loop
  iterations across nested loops, calls, operators, and every `STEP_ITEMS`
  characters built; `MAX_RENDER_SECONDS` as a backstop) and stops with a
  `TemplateError` when it runs out. What one step could blow up before any
  counter sees it (``3**100**100``, ``'x' * 10**10``, ``'%0999999999d'``,
  ``center(10**9)``, ``join`` / ``replace`` on big text) is checked before it
  runs. At save, constant expressions are computed under the same guards and
  nested loops over known sizes multiplied, so such a template is refused.
* **Escaped per output.** E-mail HTML and Telegram's HTML mode autoescape
  (Telegram accepts ``&lt;``, ``&gt;``, ``&amp;`` and numeric entities);
  Telegram's MarkdownV2 mode escapes its special characters in every
  ``{{ ... }}``; plain text and SMS are not escaped.
* **Missing values.** Unknown *names* are errors — at save time, and again
  before rendering (strict names). Known values that a contact simply does
  not have (no deal, no phone, an attribute never set, the first of no tags)
  render as ``""``: one contact's missing field must not stop a campaign.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import html as html_module
import math
import re
import string
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import nh3
from jinja2 import nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import ChainableUndefined, Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg
from jinja2.visitor import NodeTransformer

from threadline.domain.model.contact import SOURCE_KEYS, first_name_of
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money
from threadline.triggers.sms import sms_segments

MAX_SOURCE = 100_000  # characters of one template field
MAX_OUTPUT = 200_000  # characters of one rendered field
MAX_RANGE = 1_000  # items `range()` may produce in a template
MAX_REPEAT = 100_000  # items or characters `*` may produce
MAX_POWER = 100  # largest exponent of `**`
MAX_INT_BITS = 4096  # largest number a template may compute (about 1233 digits)
MAX_WIDTH = 1_000  # widest format width, padding or indent
MAX_DEPTH = 50  # deepest nesting of lists and mappings a template may print
MAX_STEPS = 100_000  # the rendering budget: loop iterations, calls, operators, text built
STEP_ITEMS = 10  # characters or items built (or read by a filter) that cost one step
MAX_RENDER_SECONDS = 2.0  # wall-clock backstop of one render

Mode = Literal["plain", "html", "markdown_v2"]
ParseMode = Literal["HTML", "MarkdownV2"]
PARSE_MODES = ("HTML", "MarkdownV2")

# The fields of each variant: required ones, optional ones.
VARIANT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("subject",), ("html", "text")),
    "sms": (("text",), ()),
    "telegram": (("text",), ("parse_mode",)),
    "default": (("text",), ()),
}

# -- the schema: every value a template may name ------------------------------------------------

LEAF = "leaf"  # a value: only method calls and indexes beyond it
LIST = "list"  # a list value (tags), [] when absent
OPEN = "open"  # an open mapping (attributes): any key, or registry keys when a registry is given
MOMENT = "moment"  # a date-time: its parts and methods
MOMENT_PARTS = frozenset({"year", "month", "day", "hour", "minute", "second"})
OPEN_METHODS = frozenset({"get", "items", "keys", "values"})


@dataclass(frozen=True)
class Items:
    """A typed list (a document's line items): every item has the keys of `item`, so the
    check knows ``line`` in ``{% for line in lines %}`` and refuses ``line.nmae`` at save."""

    item: Mapping[str, Any]


# What `deal` carries (projections.deals.DealFacts, plus `total`).
DEAL_KEYS = (
    "id",
    "title",
    "amount",
    "currency",
    "total",
    "profit",
    "stage",
    "stage_id",
    "stage_meaning",
    "pipeline",
    "pipeline_id",
    "status",
    "probability",
    "manager_id",
    "contact_id",
    "company_id",
    "expected_close",
    "lost_reason",
    "open_task_count",
    "days_in_stage",
)

SCHEMA: dict[str, Any] = {
    "contact": {
        "display_name": LEAF,
        "first_name": LEAF,
        "email": LEAF,
        "phone": LEAF,
        "lifecycle": LEAF,
        "tags": LIST,
        "attributes": OPEN,
        "source": dict.fromkeys(SOURCE_KEYS, LEAF),
    },
    "company": {"name": LEAF, "attributes": OPEN},
    # The deal the event names (`facts.FactReader.deal`): `amount` and `profit` are decimal
    # texts in `currency`; `total` is the amount with its currency ("1200.00 RUB").
    "deal": dict.fromkeys(DEAL_KEYS, LEAF),
    "operator": {"name": LEAF, "email": LEAF},
    "conversation": {"channel": LEAF, "subject": LEAF, "status": LEAF},
    "unsubscribe_url": LEAF,
    # A signed link per purpose where the client agrees to the policy's current text (or
    # withdraws): `consent_urls["marketing"]` (`services.consent_links`).
    "consent_urls": OPEN,
    "now": MOMENT,
    # The event that set a rule off (type, channel, text, subject, task_id, due_at, ...):
    # open-ended, because every event type of the log carries its own fields.
    "event": OPEN,
}

TemplateVariants = Mapping[str, Mapping[str, Any]]


class TemplateError(ValueError):
    """A template that cannot be saved or rendered: which variant, which field, which line."""

    def __init__(self, variant: str, field: str, message: str, line: int | None = None) -> None:
        where = ".".join(part for part in (variant, field) if part)
        at = f" (line {line})" if line is not None else ""
        super().__init__(f"{where}{at}: {message}" if where else message)
        self.variant = variant
        self.field = field
        self.message = message
        self.line = line


@dataclass(frozen=True)
class RenderedMessage:
    """One message ready for a channel; `sms_segments` is set for SMS only."""

    subject: str
    text: str
    html: str
    parse_mode: str | None
    sms_segments: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the rendering budget -----------------------------------------------------------------------
#
# A template is code an operator writes and any role may preview, so one render must not hold
# the interpreter: every operation a template performs is paid for from a `RenderBudget`, and the
# operations that could build something huge in one step (``**`` on big numbers, ``*`` on strings
# and lists, wide format specs, ``join`` / ``replace`` / ``center`` ...) are checked *before* they
# run, because one C-level call cannot be interrupted once it has started.


class BudgetExceeded(SecurityError):
    """A render that would cost more than its budget (steps, sizes or seconds)."""


@dataclass
class RenderBudget:
    """What one render may spend: `steps` counts loop iterations, calls, operators and
    every `STEP_ITEMS` characters or items built; `seconds` is a wall-clock backstop."""

    max_steps: int = MAX_STEPS
    seconds: float = MAX_RENDER_SECONDS
    steps: int = 0
    started: float = field(default_factory=time.monotonic)
    max_output: int = MAX_OUTPUT  # characters one render (or one value in it) may build

    def spend(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > self.max_steps:
            raise BudgetExceeded(
                f"the template needs more than {self.max_steps} steps (loops, calls, text built)"
            )
        if time.monotonic() - self.started > self.seconds:
            raise BudgetExceeded(f"rendering took more than {self.seconds:g} s")

    @contextlib.contextmanager
    def active(self) -> Iterator[RenderBudget]:
        """Spend this budget for every render inside the block (tests read `steps` after)."""
        token = _BUDGET.set(self)
        try:
            yield self
        finally:
            _BUDGET.reset(token)


_BUDGET: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "threadline_render_budget", default=None
)


def _spend(steps: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is None:
        # Only Jinja's compile-time constant folding runs without a budget: refusing makes
        # it leave the expression for render time, where it is paid for.
        raise BudgetExceeded("not evaluated outside a render")
    budget.spend(steps)


def _measure(value: Any, limit: int = MAX_OUTPUT) -> int:
    """The size of a value as text would show it (characters plus items, nested), stopping
    as soon as it passes `limit`: ``[['x' * 1000] * 1000] * 1000`` is small in memory
    (shared references) but a billion characters once printed."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, range):
            total += len(item)
        elif isinstance(item, Mapping | Namespace):
            if depth > MAX_DEPTH:
                raise BudgetExceeded("values nested too deeply")
            entries = (
                getattr(item, "_Namespace__attrs", {}) if isinstance(item, Namespace) else item
            )
            total += 1
            stack.extend((part, depth + 1) for pair in entries.items() for part in pair)
        elif isinstance(item, list | tuple | set | frozenset):
            if depth > MAX_DEPTH:
                raise BudgetExceeded("values nested too deeply")
            total += 1
            stack.extend((part, depth + 1) for part in item)
        else:
            total += 1
        if total > limit:
            return total
    return total


def _output_limit() -> int:
    """The active budget's output limit: documents (thousands of lines) build more than
    messages, so the limit travels with the budget rather than being one constant."""
    budget = _BUDGET.get()
    return budget.max_output if budget is not None else MAX_OUTPUT


def _bounded(value: Any, what: str, limit: int | None = None) -> Any:
    """Pay for a value just built, refusing one bigger than `limit` (the budget's)."""
    limit = _output_limit() if limit is None else limit
    size = _measure(value, limit)
    if size > limit:
        raise BudgetExceeded(f"{what} would be more than {limit} characters or items")
    _spend(1 + size // STEP_ITEMS)
    return value


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before it runs, an operator whose result would be huge."""
    if operator == "**" and isinstance(left, int) and isinstance(right, int | float):
        if abs(right) > MAX_POWER and abs(left) > 1:
            raise BudgetExceeded(f"exponents above {MAX_POWER} are not allowed")
        if right > 0 and _int_bits(left) * right > MAX_INT_BITS:
            raise BudgetExceeded(f"'**' would give a number of more than {MAX_INT_BITS} bits")
    if operator == "**" and isinstance(right, int) and _int_bits(right) > MAX_INT_BITS:
        raise BudgetExceeded(f"numbers of more than {MAX_INT_BITS} bits are not allowed")
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                built = _measure(seq, MAX_REPEAT) * max(times, 0)
                if built > MAX_REPEAT:
                    raise BudgetExceeded(f"'*' would build more than {MAX_REPEAT} items")
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    if operator == "+" and sequences and _measure(left) + _measure(right) > MAX_OUTPUT:
        raise BudgetExceeded(f"'+' would build more than {MAX_OUTPUT} items")
    if operator == "%" and isinstance(left, str):
        _check_percent_format(left)
    if _int_bits(left) > MAX_INT_BITS or _int_bits(right) > MAX_INT_BITS:
        raise BudgetExceeded(f"numbers of more than {MAX_INT_BITS} bits are not allowed")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?.", re.S)
_NUMBER = re.compile(r"\d+")


def _check_width(digits: str, what: str) -> None:
    if len(digits) > 6 or int(digits) > MAX_WIDTH:
        raise BudgetExceeded(f"{what} wider than {MAX_WIDTH} is not allowed")


def _check_percent_format(text: str) -> None:
    """``'%0999999999d' % 1`` would build a gigabyte: widths are bounded, ``*`` refused."""
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.groups():
            if part == "*":
                raise BudgetExceeded("'*' widths are not allowed in % formatting")
            if part:
                _check_width(part, "a % format width")


def _check_format_spec(text: str) -> None:
    """``'{:>999999999}'.format(1)`` likewise; nested ``{}`` widths are refused."""
    for _, _, spec, _ in string.Formatter().parse(text):
        if spec and "{" in spec:
            raise BudgetExceeded("nested fields in a format spec are not allowed")
        for digits in _NUMBER.findall(spec or ""):
            _check_width(digits, "a format width")


def _counted(iterable: Any) -> Iterator[Any]:
    """Every loop iterates through this: one step per item, across nested loops."""
    for item in iterable:
        _spend(1)
        yield item


def _guarded_concat(parts: Iterable[Any]) -> str:
    """Jinja's ``concat`` for output and block buffers: the size is checked before joining."""
    items = []
    total = 0
    limit = _output_limit()
    for part in parts:
        total += len(part)
        if total > limit:
            raise BudgetExceeded(f"renders more than {limit} characters")
        items.append(part)
    _spend(1 + total // STEP_ITEMS)
    return "".join(items)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _check_width_arg(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_WIDTH:
        raise BudgetExceeded(f"{what} above {MAX_WIDTH} is not allowed")
    if isinstance(value, str) and len(value) > MAX_WIDTH:
        raise BudgetExceeded(f"{what} longer than {MAX_WIDTH} is not allowed")


def _check_join(separator: Any, items: list[Any]) -> None:
    size = sum(_measure(item) for item in items[: MAX_OUTPUT + 1])
    size += len(str(separator)) * max(len(items) - 1, 0)
    if size > MAX_OUTPUT:
        raise BudgetExceeded(f"'join' would build more than {MAX_OUTPUT} characters")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, str):
        return
    found = text.count(str(old)) if str(old) else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    if len(text) + found * max(len(str(new)) - len(str(old)), 0) > MAX_OUTPUT:
        raise BudgetExceeded(f"'replace' would build more than {MAX_OUTPUT} characters")


def _check_str_method(
    owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """String methods that can build a lot in one call (``'x'.ljust(10**9)``)."""
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width_arg(_arg(args, kwargs, 0, "width", 0), f"{name}()")
    elif name == "expandtabs":
        _check_width_arg(_arg(args, kwargs, 0, "tabsize", 8), "expandtabs()")
        if owner.count("\t") * int(_arg(args, kwargs, 0, "tabsize", 8)) > MAX_OUTPUT:
            raise BudgetExceeded(f"expandtabs() would build more than {MAX_OUTPUT} characters")
    elif name == "replace":
        _check_replace(
            owner,
            _arg(args, kwargs, 0, "old", ""),
            _arg(args, kwargs, 1, "new", ""),
            _arg(args, kwargs, 2, "count", -1),
        )
    elif name == "join" and args:
        items = list(_counted(args[0]))
        _check_join(owner, items)
        return (items, *args[1:])
    elif name == "strftime" and args and isinstance(args[0], str):
        for digits in _NUMBER.findall(args[0]):
            _check_width(digits, "a strftime width")
    return args


def _filter_guard(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Filters whose arguments decide how much they build; checked before they run."""
    # args[0] is the value (after any context / environment argument the filter takes).
    value = args[0] if args else None
    rest = args[1:]
    if name == "center":
        _check_width_arg(_arg(rest, kwargs, 0, "width", 80), "center width")
    elif name == "indent":
        width = _arg(rest, kwargs, 0, "width", 4)
        _check_width_arg(width, "indent width")
        lines = str(value).count("\n") + 1
        if lines * (width if isinstance(width, int) else len(str(width))) > MAX_OUTPUT:
            raise BudgetExceeded(f"'indent' would build more than {MAX_OUTPUT} characters")
    elif name == "wordwrap":
        wrap = _arg(rest, kwargs, 2, "wrapstring", None)
        _check_width_arg(wrap, "wordwrap's wrapstring")
    elif name == "format":
        _check_percent_format(str(value))
    elif name == "replace":
        _check_replace(
            value,
            _arg(rest, kwargs, 0, "old", ""),
            _arg(rest, kwargs, 1, "new", ""),
            _arg(rest, kwargs, 2, "count", None),
        )
    elif name in ("batch", "slice"):
        _check_width_arg(
            _arg(rest, kwargs, 0, "linecount" if name == "batch" else "slices", 1), f"{name} size"
        )
    elif name == "tojson":
        indent = _arg(rest, kwargs, 0, "indent", None)
        if indent is not None and _measure(indent) > 16:
            raise BudgetExceeded("tojson indent above 16 is not allowed")
    elif name == "sum":
        start = _arg(rest, kwargs, 1, "start", 0)
        if not isinstance(start, int | float | Decimal):
            raise BudgetExceeded("sum() adds numbers only")
    return args


def _guarded_filter(name: str, function: Any) -> Any:
    """A filter that pays for what it reads and builds, and refuses what is too big."""
    passes = _PassArg.from_obj(function)

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        head, body = (args[:1], args[1:]) if passes is not None else ((), args)
        _spend(1)
        if body:
            _bounded(body[0], f"the input of '{name}'")
        if name == "join" and body:
            items = list(_counted(body[0]))
            _check_join(_arg(body[1:], kwargs, 0, "d", ""), items)
            body = (items, *body[1:])
        body = _filter_guard(name, body, kwargs)
        result = function(*head, *body, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _bounded(result, f"the result of '{name}'")
        return result

    return guarded


class _Guard(NodeTransformer):
    """Rewrites a parsed template so every loop counts its iterations and ``~`` checks sizes."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 (Jinja's visitor names)
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("counted"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return nodes.Call(
            nodes.EnvironmentAttribute("concat_values"),
            [nodes.List(node.nodes, lineno=node.lineno)],
            [],
            None,
            None,
            lineno=node.lineno,
        )


class _Namespace(Namespace):
    """`namespace()` whose values are paid for: a loop cannot grow one without limit."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _bounded(value, f"namespace value {name!r}"))


class _BudgetedTemplate(Template):
    """Every render spends a budget: the caller's (`RenderBudget.active`), else a fresh one."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if _BUDGET.get() is not None:
            return super().render(*args, **kwargs)
        with RenderBudget().active():
            return super().render(*args, **kwargs)


# -- the sandbox --------------------------------------------------------------------------------


class _Absent(ChainableUndefined):
    """A known value the contact does not have: renders "", is falsy, chains and calls quietly."""

    __slots__ = ()

    # Undefined's own __call__ raises; a method of a missing value is missing too.
    def __call__(self, *args: Any, **kwargs: Any) -> _Absent:  # type: ignore[override]
        return self


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with the rendering budget: operators, calls and loops are paid for."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    template_class = _BudgetedTemplate
    concat = staticmethod(_guarded_concat)  # output, macro and block buffers
    counted = staticmethod(_counted)  # every `for` loop's iterable (see `_Guard`)

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
        return super()._generate(_Guard().visit(source), name, filename, defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend(1)
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, str | list | tuple):
            _bounded(result, f"the result of {operator!r}")
        elif _int_bits(result) > MAX_INT_BITS:
            raise BudgetExceeded(f"numbers of more than {MAX_INT_BITS} bits are not allowed")
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _spend(1)
        if isinstance(obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (_counted(args[0]), *args[1:])
        name = getattr(obj, "__name__", "")
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str) or name == "strftime":
            args = _check_str_method(owner if isinstance(owner, str) else "", name, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _bounded(result, f"the result of {name or 'a call'}()")
        return result

    def concat_values(self, values: list[Any]) -> str:
        """``a ~ b``: the parts are measured before they are joined."""
        total = sum(_measure(value) for value in values)
        if total > MAX_OUTPUT:
            raise BudgetExceeded(f"'~' would build more than {MAX_OUTPUT} characters")
        _spend(1 + total // STEP_ITEMS)
        joined: str = markup_join(values) if self.autoescape else str_join(values)
        return joined

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")


def _small_range(*args: int) -> range:
    numbers = range(*args)
    try:
        small = len(numbers) <= MAX_RANGE
    except OverflowError:  # more than sys.maxsize numbers
        small = False
    if not small:
        raise BudgetExceeded(f"range() gives at most {MAX_RANGE} numbers in a template")
    return numbers


_MARKDOWN_V2_SPECIAL = frozenset("_*[]()~`>#+-=|{}.!\\")


def escape_markdown_v2(text: str) -> str:
    """Telegram MarkdownV2: every special character outside markup needs a backslash."""
    return "".join("\\" + ch if ch in _MARKDOWN_V2_SPECIAL else ch for ch in text)


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


def _markdown_v2(value: Any) -> str:
    return escape_markdown_v2(str(_blank_none(value)))


def _finalize_plain(value: Any) -> Any:
    """Every ``{{ ... }}``: measured before it becomes text (a nested list prints big)."""
    return _blank_none(_bounded(value, "a value"))


def _finalize_markdown_v2(value: Any) -> str:
    return _markdown_v2(_bounded(value, "a value"))


def _environment(mode: Mode) -> _Sandbox:
    env = _Sandbox(
        autoescape=mode == "html",
        undefined=_Absent,
        finalize=_finalize_markdown_v2 if mode == "markdown_v2" else _finalize_plain,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # `attr` looks names up by a string the schema check cannot see.
    env.filters.pop("attr", None)
    env.filters = {name: _guarded_filter(name, f) for name, f in env.filters.items()}
    env.globals = {
        "range": _small_range,
        "dict": dict,
        "namespace": _Namespace,
        "cycler": env.globals["cycler"],
        "joiner": env.globals["joiner"],
    }
    return env


ENVIRONMENTS: dict[Mode, _Sandbox] = {
    mode: _environment(mode) for mode in ("plain", "html", "markdown_v2")
}


@functools.lru_cache(maxsize=512)
def _compiled(mode: Mode, source: str) -> Any:
    return ENVIRONMENTS[mode].from_string(source)


@functools.lru_cache(maxsize=512)
def _undeclared(source: str) -> frozenset[str]:
    env = ENVIRONMENTS["plain"]
    return frozenset(find_undeclared_variables(env.parse(source))) - set(env.globals)


# -- validation ---------------------------------------------------------------------------------


def validate_template(
    variants: TemplateVariants,
    attribute_keys: set[str] | None = None,
    *,
    company_attribute_keys: set[str] | None = None,
) -> None:
    """Raise `TemplateError` unless every variant parses and names only known values.

    `attribute_keys` / `company_attribute_keys` are the attribute registry's keys
    (None: attributes are open-ended, any key is accepted).
    """
    for variant, fields, modes in _fields(variants):
        for name, source in fields.items():
            _check_source(source, variant, name, modes, attribute_keys, company_attribute_keys)


def _fields(variants: Any) -> Iterator[tuple[str, dict[str, str], dict[str, Mode]]]:
    """Each variant's template fields and the output mode of each, after a structure check."""
    if not isinstance(variants, Mapping) or not variants:
        raise TemplateError("", "", f"a template has variants: {', '.join(VARIANT_FIELDS)}")
    for variant, spec in variants.items():
        if variant not in VARIANT_FIELDS:
            raise TemplateError(
                str(variant), "", f"unknown variant; use {', '.join(VARIANT_FIELDS)}"
            )
        if not isinstance(spec, Mapping):
            raise TemplateError(variant, "", "a variant is an object of fields")
        required, optional = VARIANT_FIELDS[variant]
        for name in spec:
            if name not in required + optional:
                raise TemplateError(variant, str(name), "unknown field")
        for name in required:
            if not isinstance(spec.get(name), str) or not spec[name].strip():
                raise TemplateError(variant, name, "required")
        if variant == "email" and not (spec.get("html") or spec.get("text")):
            raise TemplateError(variant, "text", "an e-mail needs html, text or both")
        parse_mode = spec.get("parse_mode")
        if parse_mode is not None and parse_mode not in PARSE_MODES:
            raise TemplateError(variant, "parse_mode", f"one of {PARSE_MODES} or null")
        fields: dict[str, str] = {}
        modes: dict[str, Mode] = {}
        for name in required + optional:
            value = spec.get(name)
            if name == "parse_mode" or value is None:
                continue
            if not isinstance(value, str):
                raise TemplateError(variant, name, "template text")
            if len(value) > MAX_SOURCE:
                raise TemplateError(variant, name, f"at most {MAX_SOURCE} characters")
            fields[name] = value
            modes[name] = _mode(variant, name, parse_mode)
        yield variant, fields, modes


def _mode(variant: str, name: str, parse_mode: Any) -> Mode:
    if variant == "email" and name == "html":
        return "html"
    if variant == "telegram" and parse_mode == "HTML":
        return "html"
    if variant == "telegram" and parse_mode == "MarkdownV2":
        return "markdown_v2"
    return "plain"


def _check_source(
    source: str,
    variant: str,
    name: str,
    modes: Mapping[str, Mode],
    attribute_keys: set[str] | None,
    company_keys: set[str] | None,
) -> None:
    mode = modes[name]
    env = ENVIRONMENTS[mode]
    try:
        tree = env.parse(source)
        undeclared = set(find_undeclared_variables(tree))
        _Checker(env, attribute_keys, company_keys).check(tree, undeclared)
        _StaticBudget(env).check(tree)
        _compiled(mode, source)
    except TemplateError as error:
        raise TemplateError(variant, name, error.message, error.line) from None
    except TemplateSyntaxError as error:
        raise TemplateError(variant, name, error.message or "syntax error", error.lineno) from None
    except RecursionError:
        raise TemplateError(variant, name, "nested too deeply") from None
    except Exception as error:  # e.g. an integer literal with 5000 digits: still a bad template
        raise TemplateError(variant, name, f"cannot be compiled: {error}") from None


def sandbox_environment(mode: Mode, filters: Mapping[str, Any] | None = None) -> _Sandbox:
    """A new sandbox like the messages' one for `mode`, with extra `filters` (each paid for
    from the budget like the built-in ones): for template kinds other than messages."""
    env = _environment(mode)
    env.filters.update({name: _guarded_filter(name, f) for name, f in (filters or {}).items()})
    return env


def render_failure(error: Exception) -> TemplateError:
    """A failed render as a `TemplateError`: what went wrong (budget, sandbox, a runtime
    error) and the template line it happened on."""
    return TemplateError("", "", _describe(error), _line(error.__traceback__))


def check_source(env: _Sandbox, source: str, schema: Mapping[str, Any]) -> None:
    """Check one template text against `schema` (names, typed lists, filters, the static
    budget) in `env`, for template kinds other than messages (documents). Raises
    `TemplateError` with the line; syntax and compile errors are turned into it too."""
    try:
        tree = env.parse(source)
        _Checker(env, None, None, schema).check(tree, set(find_undeclared_variables(tree)))
        _StaticBudget(env).check(tree)
        env.from_string(source)
    except TemplateError:
        raise
    except TemplateSyntaxError as error:
        raise TemplateError("", "", error.message or "syntax error", error.lineno) from None
    except RecursionError:
        raise TemplateError("", "", "nested too deeply") from None
    except Exception as error:  # e.g. an integer literal with 5000 digits: still a bad template
        raise TemplateError("", "", f"cannot be compiled: {error}") from None


@dataclass
class _Checker:
    """Walks one syntax tree and checks names, attribute paths, filters and tags."""

    env: _Sandbox
    attribute_keys: set[str] | None
    company_keys: set[str] | None
    schema: Mapping[str, Any] = field(default_factory=lambda: SCHEMA)
    # Names bound by a `for` over a typed list (by node id) -> the item's schema.
    bound: dict[int, Any] = field(default_factory=dict)

    def check(self, tree: nodes.Template, undeclared: set[str]) -> None:
        parents: dict[int, nodes.Node] = {}
        everything: list[nodes.Node] = []
        stack: list[nodes.Node] = [tree]
        while stack:
            node = stack.pop()
            everything.append(node)
            for child in node.iter_child_nodes():
                parents[id(child)] = node
                stack.append(child)
        everything.sort(key=lambda n: getattr(n, "lineno", 0) or 0)
        for loop in tree.find_all(nodes.For):  # outer loops first: inner ones may use them
            self._bind(loop)
        for node in everything:
            self._node(node, parents, undeclared)

    def _bind(self, loop: nodes.For) -> None:
        """``{% for line in lines %}``: `line` inside the loop (body and ``if``) has the
        item schema of `lines`; an inner loop of the same name rebinds it later."""
        if not isinstance(loop.target, nodes.Name):
            return
        spec = self._spec_of(loop.iter)
        if not isinstance(spec, Items):
            return
        inside = [*loop.body, *([loop.test] if loop.test is not None else [])]
        for part in inside:
            names = [part] if isinstance(part, nodes.Name) else []
            for name in [*names, *part.find_all(nodes.Name)]:
                if name.name == loop.target.name and name.ctx == "load":
                    self.bound[id(name)] = spec.item

    def _spec_of(self, node: nodes.Node) -> Any:
        """The schema of a plain lookup (``totals.vat_rates``, ``lines|reverse``), or None."""
        if isinstance(node, nodes.Name):
            return self.bound.get(id(node), self.schema.get(node.name))
        if isinstance(node, nodes.Filter) and node.name in _ORDER_FILTERS and node.node:
            return self._spec_of(node.node)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            spec = self._spec_of(node.node)
            key = node.attr if isinstance(node, nodes.Getattr) else None
            if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                key = node.arg.value
            if isinstance(spec, Mapping) and isinstance(key, str):
                return spec.get(key)
            if isinstance(spec, Items) and not isinstance(key, str):
                return spec.item
        return None

    def _node(self, node: nodes.Node, parents: dict[int, nodes.Node], undeclared: set[str]) -> None:
        line = getattr(node, "lineno", None)
        if isinstance(node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport):
            raise TemplateError("", "", "templates cannot include or import other templates", line)
        if isinstance(node, nodes.Filter) and node.name not in self.env.filters:
            raise TemplateError("", "", f"unknown filter {node.name!r}", line)
        if isinstance(node, nodes.Test) and node.name not in self.env.tests:
            raise TemplateError("", "", f"unknown test {node.name!r}", line)
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise TemplateError("", "", f"{node.attr!r} is not accessible", line)
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            raise TemplateError("", "", f"{node.arg.value!r} is not accessible", line)
        if isinstance(node, nodes.Macro) and node.name in self.schema:
            raise TemplateError("", "", f"{node.name!r} is a template variable", line)
        if not isinstance(node, nodes.Name):
            return
        if node.ctx in ("store", "param") and node.name in self.schema:
            raise TemplateError(
                "", "", f"{node.name!r} is a template variable; pick another name", line
            )
        if node.ctx != "load":
            return
        if (
            node.name in undeclared
            and node.name not in self.schema
            and node.name not in self.env.globals
        ):
            hint = _hint(node.name, self.schema)
            raise TemplateError("", "", f"unknown variable {node.name!r}{hint}", line)
        if id(node) in self.bound or node.name in self.schema:
            self._chain(node, parents, line)

    def _chain(self, name: nodes.Name, parents: dict[int, nodes.Node], line: int | None) -> None:
        """Follow ``contact.attributes["x"]``-style lookups upwards and check them on the schema."""
        keys: list[Any] = []  # str (a name), int (an index) or None (computed)
        constant_args: list[Any] = []
        top: nodes.Node = name
        while True:
            parent = parents.get(id(top))
            if isinstance(parent, nodes.Getattr) and parent.node is top:
                keys.append(parent.attr)
            elif isinstance(parent, nodes.Getitem) and parent.node is top:
                arg = parent.arg
                keys.append(arg.value if isinstance(arg, nodes.Const) else None)
            else:
                break
            top = parent
        parent = parents.get(id(top))
        called = isinstance(parent, nodes.Call) and parent.node is top
        if called and isinstance(parent, nodes.Call):
            constant_args = [a.value if isinstance(a, nodes.Const) else None for a in parent.args]
        spec = self.bound[id(name)] if id(name) in self.bound else self.schema[name.name]
        self._walk(name.name, spec, keys, called, constant_args, line)

    def _walk(
        self,
        path: str,
        spec: Any,
        keys: list[Any],
        called: bool,
        args: list[Any],
        line: int | None,
    ) -> None:
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(spec, dict):
                if not isinstance(key, str):
                    raise TemplateError(
                        "", "", f"name a field of {path} (one of {', '.join(spec)})", line
                    )
                if key not in spec:
                    raise TemplateError(
                        "", "", f"unknown variable '{path}.{key}'{_hint(key, spec)}", line
                    )
                path, spec = f"{path}.{key}", spec[key]
            elif isinstance(spec, Items):
                if isinstance(key, str):
                    fields = ", ".join(spec.item)
                    raise TemplateError(
                        "", "", f"{path} is a list: loop over it (items have {fields})", line
                    )
                path, spec = f"{path}[{key if key is not None else '...'}]", spec.item
            elif spec == OPEN:
                if key is None:
                    return  # a computed key: whatever the contact has, or ""
                if last and called:
                    if key not in OPEN_METHODS:
                        raise TemplateError(
                            "", "", f"{path} has values, not methods: use {path}.{key}", line
                        )
                    if key == "get" and args and isinstance(args[0], str):
                        self._attribute(path, args[0], line)
                    return
                if not isinstance(key, str):
                    raise TemplateError("", "", f"{path} is keyed by attribute names", line)
                self._attribute(path, key, line)
                path, spec = f"{path}.{key}", LEAF
            elif spec == MOMENT and isinstance(key, str) and key in MOMENT_PARTS:
                path, spec = f"{path}.{key}", LEAF
            elif isinstance(key, str) and not (last and called):
                raise TemplateError("", "", f"'{path}' has no field {key!r}", line)
            # an index (int or computed) into a value: tags[0], name[:1]

    def _attribute(self, path: str, key: str, line: int | None) -> None:
        registry = self.company_keys if path.startswith("company.") else self.attribute_keys
        if registry is not None and key not in registry:
            raise TemplateError(
                "", "", f"unknown attribute '{path}.{key}'{_hint(key, registry)}", line
            )


_UNKNOWN: Any = object()
# Filters that give the same items back (reordered or fewer): a loop over them is typed too.
_ORDER_FILTERS = frozenset({"reverse", "sort", "list", "unique", "selectattr", "rejectattr"})


@dataclass
class _StaticBudget:
    """What can be known before a render: constant expressions are computed under the same
    guards as at render time, and the iterations of nested loops over known sizes are
    multiplied, so ``{{ 3**100**100 }}`` or two nested ``range(1000)`` are refused at save."""

    env: _Sandbox
    known: dict[int, Any] = field(default_factory=dict)

    def check(self, tree: nodes.Template) -> None:
        with RenderBudget(seconds=math.inf).active():
            for node in tree.find_all(nodes.Expr):
                self.value(node)
            self.loops(tree, 1)

    def value(self, node: nodes.Node) -> Any:
        if id(node) not in self.known:
            self.known[id(node)] = self._value(node)
        return self.known[id(node)]

    def _value(self, node: nodes.Node) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self.value(item) for item in node.items]
            return _UNKNOWN if any(item is _UNKNOWN for item in items) else items
        if isinstance(node, nodes.BinExpr):
            left, right = self.value(node.left), self.value(node.right)
            if left is _UNKNOWN or right is _UNKNOWN:
                return _UNKNOWN
            return self._guarded(node, self.env.call_binop, None, node.operator, left, right)
        if isinstance(node, nodes.Neg | nodes.Pos):
            operand = self.value(node.node)
            if not isinstance(operand, int | float):
                return _UNKNOWN
            return -operand if isinstance(node, nodes.Neg) else operand
        if isinstance(node, nodes.Concat):
            parts = [self.value(part) for part in node.nodes]
            if any(part is _UNKNOWN for part in parts):
                return _UNKNOWN
            return self._guarded(node, self.env.concat_values, parts)
        if (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "range"
            and not node.kwargs
            and node.dyn_args is None
        ):
            args = [self.value(arg) for arg in node.args]
            if any(arg is _UNKNOWN for arg in args):
                return _UNKNOWN
            return self._guarded(node, _small_range, *args)
        return _UNKNOWN

    @staticmethod
    def _guarded(node: nodes.Node, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except SecurityError as error:
            raise TemplateError("", "", _describe(error), node.lineno) from None
        except Exception:  # 1/0 and the like: a runtime error, as before
            return _UNKNOWN

    def loops(self, node: nodes.Node, times: int) -> None:
        """Walk the tree multiplying the known sizes of nested loops (unknown counts as 1)."""
        if not isinstance(node, nodes.For):
            for child in node.iter_child_nodes():
                self.loops(child, times)
            return
        size = self.value(node.iter)
        inner = times * (len(size) if isinstance(size, list | str | range) else 1)
        if inner > MAX_STEPS:
            raise TemplateError(
                "",
                "",
                f"these loops would run {inner} times; the rendering budget is {MAX_STEPS} steps",
                node.lineno,
            )
        for part in node.body:
            self.loops(part, inner)
        for other in (node.iter, node.test, *node.else_):
            if other is not None:
                self.loops(other, times)


def _hint(name: str, known: Any = None) -> str:
    choices = list(known) if known is not None else list(SCHEMA)
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- rendering ----------------------------------------------------------------------------------


def render(variants: TemplateVariants, channel: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Render the variant for `channel` (its own, else ``default``) in the sandbox.

    `context` holds ``contact``, ``company``, ``deal``, ``operator``,
    ``conversation`` (mappings, e.g. the views' rows), ``unsubscribe_url`` and
    ``now``; anything missing renders as "". Every failure is a `TemplateError`.
    """
    chosen = channel if channel in variants and channel in VARIANT_FIELDS else "default"
    if chosen not in variants:
        raise TemplateError(channel, "", f"no {channel!r} variant and no default variant")
    found = {v: (f, m) for v, f, m in _fields({chosen: variants[chosen]})}
    fields, modes = found[chosen]
    values = prepare_context(context)
    out = {
        name: _render(chosen, name, source, modes[name], values) for name, source in fields.items()
    }
    parse_mode = variants[chosen].get("parse_mode") if chosen == "telegram" else None
    text = out.get("text", "")
    html = out.get("html", "")
    if chosen == "email" and not text and html:
        text = _text_from_html(html)
    return RenderedMessage(
        subject=" ".join(out.get("subject", "").split()),  # one header line, whatever the data
        text=text,
        html=html,
        parse_mode=parse_mode,
        sms_segments=sms_segments(text).segments if channel == "sms" else None,
    )


def _render(variant: str, name: str, source: str, mode: Mode, values: dict[str, Any]) -> str:
    try:
        unknown = _undeclared(source) - set(SCHEMA)
        if unknown:
            raise TemplateError(variant, name, f"unknown variable {sorted(unknown)[0]!r}")
        result: str = _compiled(mode, source).render(values)
    except TemplateError:
        raise
    except TemplateSyntaxError as error:
        raise TemplateError(variant, name, error.message or "syntax error", error.lineno) from None
    except RecursionError:
        raise TemplateError(variant, name, "nested too deeply") from None
    except Exception as error:  # anything a template does wrong at send time is its error
        raise TemplateError(variant, name, _describe(error), _line(error.__traceback__)) from None
    if len(result) > MAX_OUTPUT:
        raise TemplateError(variant, name, f"renders more than {MAX_OUTPUT} characters")
    return result


def _describe(error: Exception) -> str:
    if isinstance(error, BudgetExceeded):
        return f"over the rendering budget: {error}"
    if isinstance(error, SecurityError):
        return f"not allowed: {error}"
    return f"{type(error).__name__}: {error}"


def _line(trace: TracebackType | None) -> int | None:
    """The template line of a runtime error (Jinja2 rewrites frames to template lines)."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _text_from_html(html: str) -> str:
    """A plain-text part for an e-mail that only has HTML (tags dropped, entities decoded)."""
    return html_module.unescape(nh3.clean(html, tags=set())).strip()


# -- context --------------------------------------------------------------------------------


class _OpenMap(dict[str, Any]):
    """Attributes: a key the contact does not have reads as ""."""

    def __missing__(self, key: str) -> str:
        return ""


def prepare_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The render context: every schema value present ("" / [] when absent), nothing else.

    Accepts the views' rows as they are: a contact card's ``identities`` fill
    ``email`` / ``phone`` and its ``display_name`` gives ``first_name`` (empty for a
    contact named only by a number or an address: `first_name_of`).
    """
    given = context if isinstance(context, Mapping) else {}
    contact = dict(given.get("contact") or {}) if isinstance(given.get("contact"), Mapping) else {}
    for identity in contact.get("identities") or ():
        if isinstance(identity, Mapping) and identity.get("kind") in ("email", "phone"):
            contact.setdefault(str(identity["kind"]), identity.get("value"))
    # A first name given (the rule facts) or derived is checked the same way, so a phone
    # number or an address never greets anybody, whichever path built the contact.
    named = contact.get("first_name") if "first_name" in contact else contact.get("display_name")
    identity_values = [
        str(i.get("value", "")) for i in contact.get("identities") or () if isinstance(i, Mapping)
    ]
    contact["first_name"] = first_name_of(named, identity_values) if isinstance(named, str) else ""
    values: dict[str, Any] = {}
    for root, spec in SCHEMA.items():
        value = contact if root == "contact" else given.get(root)
        values[root] = _shape(spec, value)
    return values


def _shape(spec: Any, value: Any) -> Any:
    if isinstance(spec, dict):
        source = value if isinstance(value, Mapping) else {}
        return {key: _shape(sub, source.get(key)) for key, sub in spec.items()}
    if spec == OPEN:
        source = value if isinstance(value, Mapping) else {}
        return _OpenMap({str(k): _blank_none(v) for k, v in source.items()})
    if spec == LIST:
        return list(value) if isinstance(value, list | tuple) else []
    if spec == MOMENT:
        return value if isinstance(value, datetime) else ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, Mapping) and set(value) == {"amount", "currency"}:
        return _money_text(value)
    return _blank_none(value)


def _money_text(value: Mapping[str, Any]) -> str:
    """Money in a template (a lead's acquisition cost) reads "1500.50 RUB", not a mapping."""
    try:
        return str(Money.from_state(dict(value)))
    except InvalidInput:
        return ""


def sample_context(attribute_keys: set[str] | None = None) -> dict[str, Any]:
    """Example values for every variable: previews without a real contact, and the docs."""
    return {
        "contact": {
            "display_name": "Alex Morgan",
            "first_name": "Alex",
            "email": "alex@example.com",
            "phone": "+15555550100",
            "lifecycle": "lead",
            "tags": ["newsletter"],
            "attributes": {key: f"<{key}>" for key in sorted(attribute_keys or ())},
            "source": {"channel": "web", "utm_source": "newsletter", "utm_campaign": "spring"},
        },
        "company": {"name": "Example Ltd", "attributes": {}},
        "deal": {
            "id": "00000000-0000-0000-0000-000000000000",
            "title": "Annual plan",
            "amount": "1200.00",
            "currency": "EUR",
            "total": {"amount": "1200.00", "currency": "EUR"},
            "profit": "450.00",
            "stage": "Commercial proposal",
            "stage_id": "00000000-0000-0000-0000-000000000001",
            "stage_meaning": "open",
            "pipeline": "New clients",
            "pipeline_id": "00000000-0000-0000-0000-000000000002",
            "status": "open",
            "probability": 40,
            "manager_id": None,
            "contact_id": None,
            "company_id": None,
            "expected_close": "2025-02-28",
            "lost_reason": None,
            "open_task_count": 1,
            "days_in_stage": 3,
        },
        "operator": {"name": "Sam Lee", "email": "sam@example.com"},
        "conversation": {"channel": "email", "subject": "Your question", "status": "open"},
        "unsubscribe_url": "https://example.com/unsubscribe/sample",
        "consent_urls": {"marketing": "https://example.com/consent/sample"},
        "now": datetime(2025, 1, 15, 10, 0, tzinfo=UTC),
    }
