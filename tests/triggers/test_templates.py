"""Message templates: per-channel rendering, escaping, SMS segments, save-time checks, the sandbox.

A template goes to thousands of clients without a human looking, so the
failure modes are pinned down: a client's name must not inject HTML, an
unknown variable must be refused when the template is saved (not at send
time), and no template can reach Python internals.
"""

from __future__ import annotations

import contextlib
import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from threadline.triggers.sms import SmsInfo, sms_segments
from threadline.triggers.templates import (
    TemplateError,
    escape_markdown_v2,
    prepare_context,
    render,
    sample_context,
    validate_template,
)

WELCOME = {
    "email": {
        "subject": "Welcome, {{ contact.first_name }}",
        "html": "<p>Hello {{ contact.display_name }}</p>",
        "text": "Hello {{ contact.display_name }}\n{{ unsubscribe_url }}",
    },
    "sms": {"text": "Hi {{ contact.first_name }}, welcome!"},
    "telegram": {"text": "<b>Hi</b> {{ contact.display_name }}", "parse_mode": "HTML"},
    "default": {"text": "Hi {{ contact.display_name }}"},
}
HOSTILE = '<script>alert("x")</script> & Co'


def context(name: str = "Anna Smith", **extra: Any) -> dict[str, Any]:
    return {"contact": {"display_name": name}, **extra}


def default(text: str) -> dict[str, Any]:
    return {"default": {"text": text}}


# -- rendering per channel ---------------------------------------------------------------------


def test_email_renders_subject_html_and_text_with_html_escaping() -> None:
    validate_template(WELCOME)
    message = render(WELCOME, "email", context(HOSTILE, unsubscribe_url="https://x.test/u/1"))
    assert message.subject == 'Welcome, <script>alert("x")</script>'
    assert message.html == "<p>Hello &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co</p>"
    assert message.text == f"Hello {HOSTILE}\nhttps://x.test/u/1"  # plain text is not escaped
    assert message.parse_mode is None
    assert message.sms_segments is None


def test_email_subject_is_one_line_whatever_the_data() -> None:
    variants = {"email": {"subject": "For {{ contact.display_name }}\n!", "text": "x"}}
    message = render(variants, "email", context("Eve\r\nBcc: all@example.com"))
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject == "For Eve Bcc: all@example.com !"


def test_email_with_only_html_gets_a_text_part() -> None:
    variants = {"email": {"subject": "Hi", "html": "<p>Dear {{ contact.display_name }},</p>"}}
    message = render(variants, "email", context("Tom & Jerry"))
    assert message.html == "<p>Dear Tom &amp; Jerry,</p>"
    assert message.text == "Dear Tom & Jerry,"


def test_telegram_html_mode_escapes_values_but_keeps_the_markup() -> None:
    message = render(WELCOME, "telegram", context("<i>Bob</i> & <Alice>"))
    assert message.text == "<b>Hi</b> &lt;i&gt;Bob&lt;/i&gt; &amp; &lt;Alice&gt;"
    assert message.parse_mode == "HTML"


def test_telegram_markdown_v2_mode_escapes_special_characters() -> None:
    variants = {
        "telegram": {"text": "*Hi* {{ contact.display_name }}!", "parse_mode": "MarkdownV2"}
    }
    message = render(variants, "telegram", context("a_b *c* [d](e) 1.5!"))
    assert message.text == r"*Hi* a\_b \*c\* \[d\]\(e\) 1\.5\!!"
    assert message.parse_mode == "MarkdownV2"


def test_telegram_without_parse_mode_is_plain_text() -> None:
    variants = {"telegram": {"text": "Hi {{ contact.display_name }}"}}
    assert render(variants, "telegram", context("<b>x</b>")).text == "Hi <b>x</b>"


def test_channels_without_a_variant_use_default() -> None:
    for channel in ("whatsapp", "web", "voice"):
        message = render(WELCOME, channel, context(HOSTILE))
        assert message.text == f"Hi {HOSTILE}"
        assert message.html == "" and message.subject == ""
    only_default = default("Hello {{ contact.first_name }}")
    assert render(only_default, "email", context()).text == "Hello Anna"
    assert render(only_default, "telegram", context()).parse_mode is None


def test_no_variant_and_no_default_is_an_error() -> None:
    with pytest.raises(TemplateError) as caught:
        render({"sms": {"text": "x"}}, "email", context())
    assert caught.value.variant == "email"
    assert "no default" in caught.value.message


def test_sms_carries_its_segment_count() -> None:
    assert render(WELCOME, "sms", context()).sms_segments == 1
    long_sms = {"sms": {"text": "{{ contact.display_name }}"}}
    assert render(long_sms, "sms", context("x" * 161)).sms_segments == 2
    assert render(long_sms, "sms", context("Ж" * 71)).sms_segments == 2
    # the default variant on the SMS channel is counted too
    assert render(default("{{ contact.display_name }}"), "sms", context("x" * 10)).sms_segments == 1


def test_rendered_message_as_dict() -> None:
    assert render(WELCOME, "sms", context()).as_dict() == {
        "subject": "",
        "text": "Hi Anna, welcome!",
        "html": "",
        "parse_mode": None,
        "sms_segments": 1,
    }


# -- missing values ------------------------------------------------------------------------


def test_known_but_absent_values_render_as_empty_text() -> None:
    text = (
        "[{{ deal.title }}|{{ deal.amount }}|{{ contact.attributes.industry }}"
        "|{{ contact.attributes['staff-size'] }}|{{ contact.tags|first }}|{{ contact.tags[2] }}"
        "|{{ company.name }}|{{ operator.name }}|{{ now.year }}|{{ now.strftime('%Y') }}"
        "|{{ contact.source.utm_source }}|{{ contact.attributes.get('x') }}]"
    )
    validate_template(default(text))
    assert render(default(text), "web", {}).text == "[|||||||||||]"
    assert render(default(text), "web", {"contact": None, "deal": "junk"}).text == "[|||||||||||]"


def test_values_render_when_present() -> None:
    text = (
        "{{ contact.first_name }} {{ contact.email }} {{ contact.tags|join(',') }}"
        " {{ contact.attributes.industry }} {{ deal.amount }} {{ now.year }}"
    )
    card = {
        "display_name": "Anna Smith",
        "identities": [{"kind": "phone", "value": "+1555"}, {"kind": "email", "value": "a@x.test"}],
        "tags": ["vip", "b2b"],
        "attributes": {"industry": "retail"},
    }
    values = {"contact": card, "deal": {"amount": 1200}, "now": datetime(2025, 5, 1, tzinfo=UTC)}
    assert render(default(text), "web", values).text == "Anna a@x.test vip,b2b retail 1200 2025"


def test_prepare_context_keeps_only_schema_values() -> None:
    prepared = prepare_context({"contact": {"display_name": "Anna", "password": "x"}, "secret": 1})
    assert "secret" not in prepared
    assert "password" not in prepared["contact"]
    assert prepared["contact"]["first_name"] == "Anna"
    assert prepared["contact"]["tags"] == []


def test_sample_context_renders_every_variant() -> None:
    sample = sample_context({"industry"})
    assert sample["contact"]["attributes"] == {"industry": "<industry>"}
    validate_template(WELCOME, {"industry"})
    for channel in ("email", "sms", "telegram", "web"):
        message = render(WELCOME, channel, sample)
        assert "Alex" in message.text


def test_loops_and_set_variables_are_local_and_fine() -> None:
    text = (
        "{% set greeting = 'Hi' %}{{ greeting }} {{ contact.first_name }}:"
        "{% for tag in contact.tags %} {{ loop.index }}.{{ tag|upper }}{% endfor %}"
        "{% if deal.stage == 'won' %} thanks{% endif %}"
    )
    validate_template(default(text))
    values = {"contact": {"first_name": "Li", "tags": ["a", "b"]}, "deal": {"stage": "won"}}
    assert render(default(text), "web", values).text == "Hi Li: 1.A 2.B thanks"


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "variant", "field", "line", "message"),
    [
        (
            default("Hi {{ contact.emial }}"),
            "default",
            "text",
            1,
            "unknown variable 'contact.emial'",
        ),
        (
            default("line one\nHi {{ client.name }}"),
            "default",
            "text",
            2,
            "unknown variable 'client'",
        ),
        (
            {"email": {"subject": "ok", "html": "<p>\n\n{{ deal.price }}</p>"}},
            "email",
            "html",
            3,
            "unknown variable 'deal.price'",
        ),
        (default("{{ contact.attributes.shoe_size }}"), "default", "text", 1, "unknown attribute"),
        (
            default("{{ contact.attributes.get('shoe_size') }}"),
            "default",
            "text",
            1,
            "unknown attribute",
        ),
        (default("{{ contact.email.domain }}"), "default", "text", 1, "has no field 'domain'"),
        (
            default("{% for key in ['email'] %}{{ contact[key] }}{% endfor %}"),
            "default",
            "text",
            1,
            "name a field of contact",
        ),
        (default("{{ contact.attributes.update() }}"), "default", "text", 1, "not methods"),
        (default("a\n{% if %}"), "default", "text", 2, "Expected an expression"),
        (default("{{ contact.display_name"), "default", "text", 1, "unexpected end"),
        (default("{{ contact.display_name|shout }}"), "default", "text", 1, "No filter named"),
        (
            default("{% if contact.tags is crowded %}x{% endif %}"),
            "default",
            "text",
            1,
            "unknown test",
        ),
        (default("{% include 'other' %}"), "default", "text", 1, "cannot include"),
        (default("{% set contact = 1 %}{{ contact }}"), "default", "text", 1, "pick another name"),
        (default("{% for deal in [1] %}{% endfor %}"), "default", "text", 1, "pick another name"),
        (default("{{ loop.index }}"), "default", "text", 1, "unknown variable 'loop'"),
        (
            {"telegram": {"text": "x", "parse_mode": "HTML"}, "sms": {"text": "{{ x }}"}},
            "sms",
            "text",
            1,
            "unknown variable 'x'",
        ),
    ],
)
def test_validation_names_variant_field_and_line(
    variants: dict[str, Any], variant: str, field: str, line: int, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template(variants, {"industry", "staff"})
    assert (caught.value.variant, caught.value.field, caught.value.line) == (variant, field, line)
    assert message in caught.value.message


def test_attributes_are_open_without_a_registry_and_checked_with_one() -> None:
    text = default("{{ contact.attributes.shoe_size }} {{ company.attributes.staff }}")
    validate_template(text)
    with pytest.raises(TemplateError, match="shoe_size"):
        validate_template(text, {"industry"})
    validate_template(text, {"shoe_size"})
    with pytest.raises(TemplateError, match=r"company\.attributes\.staff"):
        validate_template(text, {"shoe_size"}, company_attribute_keys={"revenue"})
    # computed keys cannot be checked; they read what the contact has
    validate_template(default("{% for k in ['a'] %}{{ contact.attributes[k] }}{% endfor %}"), set())


@pytest.mark.parametrize(
    ("variants", "variant", "field", "message"),
    [
        ({}, "", "", "a template has variants"),
        ({"fax": {"text": "x"}}, "fax", "", "unknown variant"),
        ({"sms": "hello"}, "sms", "", "an object"),
        ({"sms": {"text": "x", "html": "y"}}, "sms", "html", "unknown field"),
        ({"sms": {"text": "  "}}, "sms", "text", "required"),
        ({"email": {"html": "<p>x</p>"}}, "email", "subject", "required"),
        ({"email": {"subject": "x"}}, "email", "text", "html, text or both"),
        ({"telegram": {"text": "x", "parse_mode": "Markdown"}}, "telegram", "parse_mode", "one of"),
        ({"email": {"subject": "x", "text": 5}}, "email", "text", "template text"),
        ({"default": {"text": "x" * 100_001}}, "default", "text", "at most"),
    ],
)
def test_malformed_variants_are_refused(
    variants: dict[str, Any], variant: str, field: str, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template(variants)
    assert (caught.value.variant, caught.value.field) == (variant, field)
    assert message in caught.value.message


# -- the sandbox -----------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__ }}",
    "{{ contact['__class__'] }}",
    "{{ contact.tags.__class__.__base__ }}",
    "{{ (contact.tags|first).__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ namespace.__init__.__globals__['os'] }}",
    "{% set x = ''|attr('__class__') %}{{ x }}",
]
RUNTIME_ONLY = [
    "{{ contact.tags.append('x') }}",
    "{{ contact.tags.clear() }}",
    "{{ ('x' * 100000000) }}",
    "{{ 9 ** 999999 }}",
    "{{ range(10000000)|list|length }}",
]


@pytest.mark.parametrize("text", ESCAPES)
def test_sandbox_escapes_are_refused_when_saved(text: str) -> None:
    with pytest.raises(TemplateError):
        validate_template(default(text))


@pytest.mark.parametrize("text", ESCAPES + RUNTIME_ONLY)
def test_sandbox_escapes_fail_when_rendered_even_unvalidated(text: str) -> None:
    values = {**context(), "contact": {"display_name": "A", "tags": ["t"]}}
    with pytest.raises(TemplateError) as caught:
        render(default(text), "web", values)
    assert "object at 0x" not in str(caught.value)
    assert values["contact"]["tags"] == ["t"]  # the context was not changed


def test_a_runtime_error_is_a_template_error_with_its_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render(default("ok\n{{ 1 / 0 }}"), "web", {})
    assert caught.value.line == 2
    assert "ZeroDivisionError" in caught.value.message
    with pytest.raises(TemplateError, match="unknown variable 'foo'"):
        render(default("{{ foo }}"), "web", {})


# -- SMS segments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("x" * 160, "GSM-7", 160, 1),
        ("x" * 161, "GSM-7", 161, 2),
        ("x" * 306, "GSM-7", 306, 2),
        ("x" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count twice
        ("€" * 81, "GSM-7", 162, 2),
        ("x" * 152 + "€" + "x" * 152, "GSM-7", 306, 3),  # an escape pair is never split
        ("Ünïcödé @£$ {}", "UCS-2", 14, 1),  # ï is not in GSM-7
        ("Ж" * 70, "UCS-2", 70, 1),
        ("Ж" * 71, "UCS-2", 71, 2),
        ("Ж" * 134, "UCS-2", 134, 2),
        ("Ж" * 135, "UCS-2", 135, 3),
        ("x" * 69 + "😀", "UCS-2", 71, 2),  # an emoji makes UCS-2 and counts two units
        ("😀" * 35, "UCS-2", 70, 1),
        ("Ж" * 66 + "😀" + "Ж" * 66, "UCS-2", 134, 3),  # a surrogate pair is never split
        ("Grüße aus Köln: äöüÄÖÜß", "GSM-7", 23, 1),
    ],
)
def test_sms_segments(text: str, encoding: str, characters: int, segments: int) -> None:
    assert sms_segments(text) == SmsInfo(encoding, characters, segments)


def test_sms_limit_per_segment() -> None:
    assert sms_segments("x").per_segment == 160
    assert sms_segments("x" * 200).per_segment == 153
    assert sms_segments("Ж").per_segment == 70
    assert sms_segments("Ж" * 100).per_segment == 67


# -- properties ------------------------------------------------------------------------------

jinja_bits = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "contact",
        ".",
        "attributes",
        "display_name",
        "tags",
        "for",
        " in ",
        "endfor",
        "if",
        "endif",
        "set",
        "=",
        "|",
        "upper",
        "x",
        " ",
        "(",
        ")",
        "[",
        "]",
        "'",
        '"',
        "__class__",
        "1",
        "9" * 5000,
        "-",
        "~",
        "*",
        "**",
        "deal",
        "now",
        "loop",
        "macro",
        "endmacro",
        "raw",
        "endraw",
        "\n",
        "include",
        ",",
    ]
)
template_texts = st.one_of(
    st.text(max_size=200),
    st.lists(jinja_bits, max_size=30).map("".join),
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(template_texts, st.sampled_from(["email-html", "telegram", "default"]))
def test_any_text_validates_or_raises_template_error(text: str, where: str) -> None:
    if where == "email-html":
        variants: dict[str, Any] = {"email": {"subject": "s", "html": text or "x"}}
    elif where == "telegram":
        variants = {"telegram": {"text": text or "x", "parse_mode": "MarkdownV2"}}
    else:
        variants = default(text or "x")
    try:
        validate_template(variants, {"industry"})
    except TemplateError:
        return
    with contextlib.suppress(TemplateError):  # valid templates may still fail on data (1/0)
        render(variants, where.split("-")[0], sample_context({"industry"}))


@PROPERTY
@given(st.text(max_size=80))
def test_any_contact_name_is_escaped_in_html(name: str) -> None:
    message = render(WELCOME, "email", context(name))
    assert message.html == f"<p>Hello {escape(name)}</p>"
    inner = message.html[len("<p>Hello ") : -len("</p>")]
    assert "<" not in inner and ">" not in inner and '"' not in inner
    assert html.unescape(inner) == name
    telegram = render(WELCOME, "telegram", context(name)).text
    assert telegram == f"<b>Hi</b> {escape(name)}"


@PROPERTY
@given(st.text(max_size=80))
def test_any_contact_name_is_escaped_in_markdown_v2(name: str) -> None:
    variants = {"telegram": {"text": "*{{ contact.display_name }}*", "parse_mode": "MarkdownV2"}}
    text = render(variants, "telegram", context(name)).text
    inner = text[1:-1]
    assert inner == escape_markdown_v2(name)
    assert re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL) == name
