"""Property test: the SQL segment filter agrees with a plain-Python reading of the same data.

Segments drive campaigns and rules later, so a filter that silently drops or
adds contacts would send offers to the wrong people. Random filters over a
fixed random population must select exactly what the oracle selects.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.queries import AttributeCondition, ContactFilter
from threadline.services.config import Settings
from threadline.services.runtime import Runtime

INDUSTRIES = ("retail", "it", "logistics")
TAGS = ("vip", "b2b", "newsletter")
OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


@pytest.fixture(scope="module")
def population(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Runtime, list[dict[str, Any]]]]:
    path: Path = tmp_path_factory.mktemp("filters") / "t.db"
    runtime = Runtime(Settings(database_url=f"sqlite:///{path}"))
    runtime.start()
    app = runtime.app
    app.define_attribute(AttributeDefinition("staff", "Staff", AttributeType.NUMBER), "t")
    app.define_attribute(AttributeDefinition("born", "Born", AttributeType.DATE), "t")
    app.define_attribute(
        AttributeDefinition("industry", "Industry", AttributeType.CHOICE, INDUSTRIES), "t"
    )
    rng = random.Random(7)
    people = []
    for i in range(40):
        result = app.ingest(
            InboundMessage.create(
                channel="api", dedup_key=f"p{i}", identities=[("email", f"p{i}@example.com")]
            )
        ).value
        person: dict[str, Any] = {"id": str(result.contact_id), "tags": set(), "attrs": {}}
        attributes: dict[str, Any] = {}
        if rng.random() < 0.8:
            attributes["staff"] = rng.choice([0, 1, 5, 10, 50, 99.5, 100, 1000])
        if rng.random() < 0.7:
            attributes["born"] = f"{rng.randint(1960, 2005)}-{rng.randint(1, 12):02d}-15"
        if rng.random() < 0.7:
            attributes["industry"] = rng.choice(INDUSTRIES)
        tags = [t for t in TAGS if rng.random() < 0.4]
        lifecycle = rng.choice(["lead", "customer"])
        app.update_contact(
            result.contact_id, "t", attributes=attributes, add_tags=tags, lifecycle=lifecycle
        )
        person.update(attrs=attributes, tags=set(tags), lifecycle=lifecycle)
        people.append(person)
    runtime.wait_for_views(app.recorder.max_notification_id(), timeout=20)
    yield runtime, people
    runtime.close()


conditions = st.one_of(
    st.tuples(
        st.just("staff"), st.sampled_from(sorted(OPS)), st.sampled_from([0, 5, 50, 99.5, 100, 2000])
    ),
    st.tuples(
        st.just("born"),
        st.sampled_from(sorted(OPS)),
        st.sampled_from(["1960-01-01", "1980-06-15", "1995-12-31", "2010-01-01"]),
    ),
    st.tuples(st.just("industry"), st.sampled_from(["eq", "ne"]), st.sampled_from(INDUSTRIES)),
)


def oracle(person: dict[str, Any], flt: ContactFilter) -> bool:
    if any(tag not in person["tags"] for tag in flt.tags):
        return False
    if flt.lifecycle is not None and person["lifecycle"] != flt.lifecycle:
        return False
    for condition in flt.attributes:
        value = person["attrs"].get(condition.key)
        if condition.op == "ne":  # "ne" means: does not hold that value (missing counts)
            if value == condition.value:
                return False
            continue
        if value is None or not OPS[condition.op](value, condition.value):
            return False
    return True


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
    lifecycle=st.sampled_from([None, "lead", "customer"]),
    attrs=st.lists(conditions, max_size=3),
)
def test_sql_filter_matches_the_oracle(
    population: tuple[Runtime, list[dict[str, Any]]],
    tags: list[str],
    lifecycle: str | None,
    attrs: list[tuple[str, str, Any]],
) -> None:
    runtime, people = population
    flt = ContactFilter(
        tags=tuple(tags),
        lifecycle=lifecycle,
        attributes=tuple(
            AttributeCondition(key, op, value, numeric=key == "staff") for key, op, value in attrs
        ),
    )
    rows, total = runtime.queries.contacts(flt, limit=500)
    expected = {p["id"] for p in people if oracle(p, flt)}
    assert {r["id"] for r in rows} == expected
    assert total == len(expected)
