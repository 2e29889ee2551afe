"""The rejected-messages table: hostile header values are stored, listed newest first, counted,
and a message rejected again updates its row (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_runtime
from threadline.channels.base import Rejection
from threadline.services.channel_rejections import RejectionStore, rejection_id, storable
from threadline.services.runtime import Runtime


@given(st.text(), st.integers(min_value=0, max_value=400))
def test_storable_text_is_strict_utf8_without_nul_and_bounded(text: str, limit: int) -> None:
    cleaned = storable(text, limit)
    cleaned.encode("utf-8")  # a lone surrogate would raise here, as in the database driver
    assert "\x00" not in cleaned and len(cleaned) <= limit


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[tuple[RejectionStore, Runtime]]:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        yield runtime.channels.rejections, runtime
    finally:
        runtime.close()


def test_hostile_values_are_stored_and_a_second_rejection_updates_the_row(
    store: tuple[RejectionStore, Runtime],
) -> None:
    rejections, _ = store
    hostile = "Jos\udce9 Garc\udceda \x00<script>"
    rejections.add(Rejection("support", "INBOX", 7, 1, "first: " + hostile, sender=hostile))
    rejections.add(Rejection("support", "Входящие:2", 7, 2, "x" * 5000, subject=hostile))
    rejections.add(Rejection("other", "INBOX", 7, 1, "elsewhere"))
    assert rejections.count() == 3 and rejections.count("support") == 2
    newest, oldest = rejections.page("support")
    assert (newest.folder, newest.uid, len(newest.reason)) == ("Входящие:2", 2, 1000)
    assert oldest.sender == "Jos? Garc?a <script>" and oldest.attempts == 1

    rejections.add(Rejection("support", "INBOX", 7, 1, "again"))
    again = rejections.get("support", oldest.id)
    assert again is not None and again.reason == "again" and again.attempts == 2
    assert again.first_rejected_at == oldest.first_rejected_at
    assert [r.uid for r in rejections.page("support")] == [1, 2], "the newest rejection first"
    assert [r.uid for r in rejections.page("support", limit=1, offset=1)] == [2]
    assert rejections.get("support", "not-an-id") is None
    assert rejections.get("other", oldest.id) is None, "ids are per inbox"
    assert rejections.delete("support", oldest.id) and not rejections.delete("support", oldest.id)
    assert rejections.count("support") == 1


def test_rejections_kept_as_state_rows_by_earlier_versions_are_adopted(
    store: tuple[RejectionStore, Runtime],
) -> None:
    rejections, runtime = store
    runtime.channels.state.set(
        "imap-rejected:support:Sales:Q1:42:17", '{"reason": "old reason", "size": 12}'
    )
    runtime.channels.state.set("imap-rejected:broken", "{}")
    rejections.ensure_table()
    [adopted] = rejections.page("support")
    assert (adopted.folder, adopted.uidvalidity, adopted.uid) == ("Sales:Q1", 42, 17)
    assert adopted.reason == "old reason" and adopted.size == 12
    assert adopted.id == rejection_id("support", "Sales:Q1", 42, 17)
    assert runtime.channels.state.get("imap-rejected:support:Sales:Q1:42:17") is None
    assert runtime.channels.state.get("imap-rejected:broken") == "{}"
