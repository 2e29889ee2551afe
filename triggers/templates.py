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
  `TemplateError`), no changes to the context, `range` capped, ``*`` and
  ``**`` refusing huge results. The sandbox keeps data and code safe; it does
  not promise to bound the time or memory a deliberately hostile *author*
  (an authenticated operator) can spend.
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

import difflib
import functools
import html as html_module
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

import nh3
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import ChainableUndefined, Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from threadline.domain.contact import SOURCE_KEYS
from threadline.triggers.sms import sms_segments

MAX_SOURCE = 100_000  # characters of one template field
MAX_OUTPUT = 200_000  # characters of one rendered field
MAX_RANGE = 1_000  # items `range()` may produce in a template
MAX_REPEAT = 100_000  # items or characters `*` may produce
MAX_POWER = 100  # largest exponent of `**`

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
    "deal": {"title": LEAF, "amount": LEAF, "currency": LEAF, "stage": LEAF},
    "operator": {"name": LEAF, "email": LEAF},
    "conversation": {"channel": LEAF, "subject": LEAF, "status": LEAF},
    "unsubscribe_url": LEAF,
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


# -- the sandbox --------------------------------------------------------------------------------


class _Absent(ChainableUndefined):
    """A known value the contact does not have: renders "", is falsy, chains and calls quietly."""

    __slots__ = ()

    # Undefined's own __call__ raises; a method of a missing value is missing too.
    def __call__(self, *args: Any, **kwargs: Any) -> _Absent:  # type: ignore[override]
        return self


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with a few resource bounds, raising at once on unsafe attribute access."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * max(times, 0) > MAX_REPEAT
                ):
                    raise SecurityError(f"'*' would build more than {MAX_REPEAT} items")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponents above {MAX_POWER} are not allowed")
        return super().call_binop(context, operator, left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")


def _small_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() gives at most {MAX_RANGE} numbers in a template")
    return numbers


_MARKDOWN_V2_SPECIAL = frozenset("_*[]()~`>#+-=|{}.!\\")


def escape_markdown_v2(text: str) -> str:
    """Telegram MarkdownV2: every special character outside markup needs a backslash."""
    return "".join("\\" + ch if ch in _MARKDOWN_V2_SPECIAL else ch for ch in text)


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


def _markdown_v2(value: Any) -> str:
    return escape_markdown_v2(str(_blank_none(value)))


def _environment(mode: Mode) -> _Sandbox:
    env = _Sandbox(
        autoescape=mode == "html",
        undefined=_Absent,
        finalize=_markdown_v2 if mode == "markdown_v2" else _blank_none,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # `attr` looks names up by a string the schema check cannot see.
    env.filters.pop("attr", None)
    env.globals = {
        "range": _small_range,
        "dict": dict,
        "namespace": env.globals["namespace"],
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
        _compiled(mode, source)
    except TemplateError as error:
        raise TemplateError(variant, name, error.message, error.line) from None
    except TemplateSyntaxError as error:
        raise TemplateError(variant, name, error.message or "syntax error", error.lineno) from None
    except RecursionError:
        raise TemplateError(variant, name, "nested too deeply") from None
    except Exception as error:  # e.g. an integer literal with 5000 digits: still a bad template
        raise TemplateError(variant, name, f"cannot be compiled: {error}") from None


@dataclass
class _Checker:
    """Walks one syntax tree and checks names, attribute paths, filters and tags."""

    env: _Sandbox
    attribute_keys: set[str] | None
    company_keys: set[str] | None

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
        for node in everything:
            self._node(node, parents, undeclared)

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
        if isinstance(node, nodes.Macro) and node.name in SCHEMA:
            raise TemplateError("", "", f"{node.name!r} is a template variable", line)
        if not isinstance(node, nodes.Name):
            return
        if node.ctx in ("store", "param") and node.name in SCHEMA:
            raise TemplateError(
                "", "", f"{node.name!r} is a template variable; pick another name", line
            )
        if node.ctx != "load":
            return
        if (
            node.name in undeclared
            and node.name not in SCHEMA
            and node.name not in self.env.globals
        ):
            raise TemplateError("", "", f"unknown variable {node.name!r}{_hint(node.name)}", line)
        if node.name in SCHEMA:
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
        self._walk(name.name, SCHEMA[name.name], keys, called, constant_args, line)

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
    ``email`` / ``phone`` and its ``display_name`` gives ``first_name``.
    """
    given = context if isinstance(context, Mapping) else {}
    contact = dict(given.get("contact") or {}) if isinstance(given.get("contact"), Mapping) else {}
    for identity in contact.get("identities") or ():
        if isinstance(identity, Mapping) and identity.get("kind") in ("email", "phone"):
            contact.setdefault(str(identity["kind"]), identity.get("value"))
    if not contact.get("first_name") and isinstance(contact.get("display_name"), str):
        words = contact["display_name"].split()
        contact["first_name"] = words[0] if words else ""
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
    return _blank_none(value)


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
        "deal": {"title": "Annual plan", "amount": 1200, "currency": "EUR", "stage": "proposal"},
        "operator": {"name": "Sam Lee", "email": "sam@example.com"},
        "conversation": {"channel": "email", "subject": "Your question", "status": "open"},
        "unsubscribe_url": "https://example.com/unsubscribe/sample",
        "now": datetime(2025, 1, 15, 10, 0, tzinfo=UTC),
    }
