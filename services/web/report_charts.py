"""Server-rendered SVG bar charts for the reports' sections: no JavaScript, no chart library.

A chart is one horizontal bar per row of a section: the row's key as the label on the left,
a bar as long as the figure against the largest one, the figure as the page formats it on
the right; each bar links to the figure's drill-down. Negative figures (a gross profit
below zero) are drawn as bars of their size in another colour. Only SVG presentation
attributes are used (the Content-Security-Policy allows no inline styles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 760
LABEL_WIDTH = 260
VALUE_WIDTH = 130
BAR_HEIGHT = 18
ROW_HEIGHT = 26
MAX_LABEL = 38
POSITIVE = "#3b6fd8"
NEGATIVE = "#d8553b"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the figure as the page formats it
    href: str | None = None


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def bar_chart(bars: Sequence[Bar], title: str) -> Markup:
    """The bars as an inline `<svg>` (empty markup when there is nothing to draw)."""
    if not bars:
        return Markup("")
    largest = max(abs(b.value) for b in bars) or 1.0
    room = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 10
    height = ROW_HEIGHT * len(bars) + 4
    parts = [
        f'<svg class="report-chart" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"'
        f' aria-label="{escape(title)}">'
    ]
    for index, bar in enumerate(bars):
        y = index * ROW_HEIGHT + 2
        length = round(room * abs(bar.value) / largest, 1)
        if bar.value and length < 1:
            length = 1.0  # a figure that is not zero is never drawn as nothing
        colour = NEGATIVE if bar.value < 0 else POSITIVE
        text_y = y + BAR_HEIGHT - 4
        row = (
            f'<g class="bar" data-value="{bar.value:g}">'
            f"<title>{escape(bar.label)}: {escape(bar.shown)}</title>"
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y}" text-anchor="end" font-size="13"'
            f' fill="#333">{escape(_short(bar.label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}"'
            f' rx="2" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{text_y}" font-size="13"'
            f' fill="#333">{escape(bar.shown)}</text>'
            "</g>"
        )
        if bar.href:
            row = f'<a href="{escape(bar.href)}">{row}</a>'
        parts.append(row)
    parts.append("</svg>")
    return Markup("".join(parts))
