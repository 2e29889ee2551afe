"""The rendering budget: no template, saved or forced past save, can hold the interpreter.

Issue 10, item 6: ``{{ 3**100**100**100**40 }}`` was accepted at save and one
preview held the server for a minute. These tests pin the budget down by its
own counter (`RenderBudget.steps`), never by timing.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.triggers.templates import (
    MAX_OUTPUT,
    MAX_STEPS,
    STEP_ITEMS,
    RenderBudget,
    TemplateError,
    render,
    sample_context,
    validate_template,
)

BOMB = "{{ 3**100**100**100**40 }}"
# The most one step may charge at once: building a value of the largest size allowed.
LARGEST_CHARGE = 1 + 2 * MAX_OUTPUT // STEP_ITEMS


def default(text: str) -> dict[str, Any]:
    return {"default": {"text": text}}


def rendered(text: str, values: dict[str, Any] | None = None) -> tuple[str, RenderBudget]:
    budget = RenderBudget()
    with budget.active():
        message = render(default(text), "web", values or sample_context())
    return message.text, budget


def refused_at_render(text: str, values: dict[str, Any] | None = None) -> RenderBudget:
    budget = RenderBudget()
    with pytest.raises(TemplateError) as caught, budget.active():
        render(default(text), "web", values or sample_context())
    assert "rendering budget" in caught.value.message, caught.value.message
    assert budget.steps <= budget.max_steps + LARGEST_CHARGE
    return budget


def test_the_power_bomb_from_the_issue_is_refused_at_save() -> None:
    with pytest.raises(TemplateError, match=r"rendering budget.*4096 bits"):
        validate_template(default(BOMB))


def test_the_power_bomb_forced_past_save_stops_at_its_first_big_step() -> None:
    budget = refused_at_render(BOMB)
    assert budget.steps < 10  # refused before the power is computed, not after


@pytest.mark.parametrize(
    "text",
    [
        "{% for a in range(10**6) %}{% for b in range(10**6) %}{% endfor %}{% endfor %}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}",
        "{% for a in range(500) %}{% for b in [1, 2, 3] %}{% for c in range(100) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_silent_nested_loops_are_refused_at_save_and_at_render(text: str) -> None:
    with pytest.raises(TemplateError, match="rendering budget"):
        validate_template(default(text))
    refused_at_render(text)


@pytest.mark.parametrize(
    "text",
    [
        "{{ 'x' * 10**10 }}",
        "{{ [0] * 10**10 }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ 'x' ~ 'y' * 100000 ~ 'z' * 100000 ~ 'w' * 100000 }}",
        "{{ 9 ** 999999 }}",
        "{{ range(10**30) }}",
    ],
)
def test_constant_bombs_are_refused_at_save_and_at_render(text: str) -> None:
    with pytest.raises(TemplateError, match="rendering budget"):
        validate_template(default(text))
    refused_at_render(text)


@pytest.mark.parametrize(
    "text",
    [
        "{{ 'x'|center(1000000000) }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '%*d'|format(999999999, 1) }}",
        "{{ ('x' * 100000)|list|join('y' * 100000) }}",
        "{{ ('x' * 100000)|replace('x', 'y' * 1000) }}",
        "{{ [1]|batch(10**9, 'x')|list }}",
        "{{ [[['x' * 1000] * 100] * 100] * 100 }}",
        "{% set ns = namespace(s='x') %}{% for i in range(1000) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s }}{% endmacro %}{{ f('x', 60) }}",
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(30) }}",
        "{% for x in range(1000) recursive %}{% if loop.depth < 3 %}"
        "{{ loop(range(1000)) }}{% endif %}{% endfor %}",
    ],
)
def test_bombs_that_only_data_flow_reveals_stop_within_the_budget(text: str) -> None:
    refused_at_render(text)


def test_loops_over_data_are_counted_across_nesting() -> None:
    values = {"contact": {"tags": [str(n) for n in range(1000)]}}
    text = "{% for t in contact.tags %}{% for n in range(1000) %}{% endfor %}{% endfor %}"
    validate_template(default(text))  # the number of tags is not known at save
    budget = refused_at_render(text, values)
    assert budget.steps == MAX_STEPS + 1  # one step per iteration, stopped at the first over


def test_legitimate_templates_use_a_sliver_of_the_budget() -> None:
    text = (
        "Hello {{ contact.first_name|title }}!\n"
        "{% for tag in contact.tags %}{{ loop.index }}. {{ tag|upper }}\n{% endfor %}"
        "{% set ns = namespace(total=0) %}{% for n in range(10) %}{% set ns.total = ns.total + n %}"
        "{% endfor %}Total {{ ns.total }}, {{ '%.2f'|format(deal.amount|float / 100) }} "
        "{{ deal.currency }}; {{ 2 ** 10 }}; {{ '{:>6}'.format('x') }}; {{ 'ab' * 3 }}"
    )
    validate_template(default(text))
    output, budget = rendered(text)
    assert "Hello Alex!" in output and "1. NEWSLETTER" in output and "Total 45" in output
    assert "12.00 EUR" in output and "1024" in output and "     x" in output
    assert budget.steps < MAX_STEPS // 100


# -- the property: random arithmetic and loops render within the budget or are refused -----

numbers = st.one_of(st.integers(-3, 12), st.sampled_from([100, 1000, 10**5, 10**9]))
leaves = st.one_of(
    numbers.map(str), st.sampled_from(["'ab'", "[1, 2]", "(contact.tags|length)", "n"])
)
expressions = st.recursive(
    leaves,
    lambda inner: st.tuples(
        inner, st.sampled_from(["+", "-", "*", "**", "//", "%", "~"]), inner
    ).map(lambda parts: f"({parts[0]} {parts[1]} {parts[2]})"),
    max_leaves=8,
)
loop_sources = st.sampled_from(
    ["range(10)", "range(300)", "range(1000)", "'x' * 1000", "contact.tags", "[1, 2, 3]"]
)
SIZES = {"range(10)": 10, "range(300)": 300, "range(1000)": 1000, "'x' * 1000": 1000,
         "[1, 2, 3]": 3}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(loop_sources, max_size=3), expressions)
def test_random_templates_render_within_the_budget_or_are_refused(
    loops: list[str], expression: str
) -> None:
    text = "{% set n = 7 %}"
    for source in loops:
        text += f"{{% for _ in {source} %}}"
    text += f"{{{{ {expression} }}}}" + "{% endfor %}" * len(loops)
    tags = ["a"] * 50
    iterations = 1
    for source in loops:
        iterations *= SIZES.get(source, len(tags))
    try:
        validate_template(default(text))
    except TemplateError as error:
        assert "rendering budget" in error.message or "not allowed" in error.message, error
        return
    budget = RenderBudget()
    try:
        with budget.active():
            render(default(text), "web", {"contact": {"tags": tags}})
    except TemplateError as error:
        assert budget.steps <= budget.max_steps + LARGEST_CHARGE, error
        return  # a runtime error (1 // 0, 'ab' - 1) or the budget: either way it stopped
    assert budget.steps <= budget.max_steps
    assert iterations <= budget.max_steps  # every loop iteration was paid for
