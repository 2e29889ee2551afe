"""The last guard of ingest: nothing a channel hands over may be unstorable.

Python keeps bytes it could not decode as lone surrogates; the store encodes
events as UTF-8 and refuses them, so one such character in any field would make
the message impossible to append. `InboundMessage.create` replaces them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbound import AttachmentMeta, InboundMessage, storable

BAD = "caf\udce9 \ud800"


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*all_strings(k), *all_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in all_strings(item)]
    return []


def test_surrogates_in_every_field_become_replacement_characters() -> None:
    message = InboundMessage.create(
        channel="email",
        dedup_key=f"<{BAD}@x>",
        identities=[("email", "anna@example.org")],
        sender_name=BAD,
        subject=BAD,
        text=BAD,
        html=f"<p>{BAD}</p>",
        thread_key=BAD,
        attachments=[AttachmentMeta(BAD, "text/plain", 1, "0" * 64, reference=BAD)],
        metadata={"message_id": BAD, BAD: [BAD, {"deep": (BAD,)}]},
        source={"utm_campaign": BAD},
        correlation_id=BAD,
        reply_to=[f"<{BAD}>"],
    )
    assert message.sender_name == "caf\ufffd \ufffd"
    assert message.metadata["caf\ufffd \ufffd"][1]["deep"] == ("caf\ufffd \ufffd",)
    assert message.attachments[0].filename == "caf\ufffd \ufffd"
    fields = [getattr(message, name) for name in InboundMessage.__slots__]
    fields += [a.filename for a in message.attachments] + [message.attachments[0].reference]
    for text in all_strings(fields):
        text.encode("utf-8")
    json.dumps(message.metadata, ensure_ascii=False).encode("utf-8")


def test_clean_input_is_returned_unchanged() -> None:
    value = {"a": ["Привет 👋", ("x", 1, None)], "b": 2.5}
    assert storable(value) == value


def test_metadata_nested_beyond_the_limit_is_a_clear_error() -> None:
    deep: Any = "x"
    for _ in range(150):
        deep = [deep]
    with pytest.raises(InvalidInput) as error:
        InboundMessage.create(
            channel="api",
            dedup_key="k",
            identities=[("email", "a@example.org")],
            metadata={"d": deep},
        )
    assert error.value.field == "metadata"


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.characters(blacklist_categories=()), max_size=50),
    meta=st.recursive(
        st.text(alphabet=st.characters(blacklist_categories=()), max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    ),
)
def test_any_text_becomes_storable(text: str, meta: Any) -> None:
    message = InboundMessage.create(
        channel="api",
        dedup_key="k",
        identities=[("email", "a@example.org")],
        subject=text,
        text=text,
        metadata={"m": meta},
    )
    for value in all_strings([message.subject, message.text, message.metadata]):
        value.encode("utf-8")
