"""One timestamp text form for every view, and its one inverse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from threadline.projections.base import TS_FORMAT, parse_ts, ts


def test_the_text_form_sorts_like_time_and_reads_back_exactly() -> None:
    moscow = timezone(timedelta(hours=3))
    moments = [
        datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 3, 1, 16, 0, 0, tzinfo=moscow),  # 13:00 UTC
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    texts = [ts(moment) for moment in moments]
    assert texts == ["2026-03-01T12:00:00.000005Z", "2026-03-01T13:00:00.000000Z",
                     "2026-12-31T23:59:59.999999Z"]  # fmt: skip
    assert texts == sorted(texts)
    assert [parse_ts(text) for text in texts] == moments
    assert all(parse_ts(text).tzinfo is UTC for text in texts)
    assert all(datetime.strptime(text, TS_FORMAT) for text in texts)
    assert ts(None) is None
