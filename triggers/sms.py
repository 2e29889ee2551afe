"""How many SMS segments a text costs: GSM-7 when every character fits, UCS-2 otherwise.

Operators see the count before a template is saved or a campaign is sent,
because each segment is billed. The rules (3GPP TS 23.038 and the
concatenation header of TS 23.040):

* GSM-7: 160 septets in one message, 153 per part of a longer one. Characters
  of the extension table (``^ { } \\ [ ~ ] | €`` and form feed) take two
  septets (an escape and the character), and a part never splits that pair.
* UCS-2, as soon as one character is outside GSM-7: 70 UTF-16 code units in
  one message, 67 per part. Characters outside the Basic Multilingual Plane
  (most emoji) are a surrogate pair, two units, and a part never splits one.

An empty text is zero segments: nothing would be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PART = {"GSM-7": 153, "UCS-2": 67}

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SmsInfo:
    """`characters` counts what the limits count: septets (GSM-7) or UTF-16 units (UCS-2)."""

    encoding: Encoding
    characters: int
    segments: int

    @property
    def per_segment(self) -> int:
        """The limit that applies to this text: 160/153 (GSM-7) or 70/67 (UCS-2)."""
        return SINGLE[self.encoding] if self.segments <= 1 else PART[self.encoding]


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def sms_segments(text: str) -> SmsInfo:
    """The encoding, the counted length and the number of segments of one SMS text."""
    encoding: Encoding
    if is_gsm7(text):
        encoding = "GSM-7"
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    else:
        encoding = "UCS-2"
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    total = sum(costs)
    if total == 0:
        return SmsInfo(encoding, 0, 0)
    if total <= SINGLE[encoding]:
        return SmsInfo(encoding, total, 1)
    return SmsInfo(encoding, total, _parts(costs, PART[encoding]))


def _parts(costs: list[int], size: int) -> int:
    """Pack characters into parts of `size` units without splitting one character."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > size:
            parts += 1
            used = 0
        used += cost
    return parts
