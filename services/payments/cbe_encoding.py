"""Which codec a 1C client-bank exchange file is written in, and its text.

The header says it (``Кодировка=Windows`` → cp1251, ``Кодировка=DOS`` → cp866; some banks
write ``UTF-8``/``UTF8``, outside the standard), but the key itself is Cyrillic, so it cannot
be read before the codec is known. It is found on the bytes instead: "Кодировка=" encoded
in cp1251, cp866 and UTF-8 gives three different byte strings, and the one found at the
start of a header line tells both that the key is there and which codec the header is
really written in. When the two disagree (a UTF-8 export labelled Windows happens), the
bytes win and a warning says so: reading by the label would only turn every name into
mojibake. A UTF-8 byte-order mark wins over everything.
"""

from __future__ import annotations

import codecs

from threadline.services.payments.cbe_model import StatementError

LABEL_CODECS = {"WINDOWS": "cp1251", "DOS": "cp866", "UTF-8": "utf-8", "UTF8": "utf-8"}
_CANDIDATES = ("cp1251", "cp866", "utf-8")
_LABEL = "Кодировка="
_MARKERS = ("ВерсияФормата=", "СекцияДокумент", "СекцияРасчСчет", "КонецФайла")
_HEAD = 1 << 16  # the header sits well inside the first 64 KB


def decode(data: bytes, magic: str) -> tuple[str, str, list[str]]:
    """The text (BOM removed), the Python codec name, and warnings about the encoding."""
    warnings: list[str] = []
    bom = data.startswith(codecs.BOM_UTF8)
    if bom:
        data = data[len(codecs.BOM_UTF8) :]
    first_end = min((i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0), default=len(data))
    if data[:first_end].rstrip() != magic.encode("ascii"):
        raise StatementError(
            1, f"not a 1C client-bank exchange file: the first line must be {magic}"
        )
    head = data[:_HEAD]
    written_in, declared = _sniff(head)
    if bom:
        codec = "utf-8"
        if declared and LABEL_CODECS.get(declared.upper()) != "utf-8":
            warnings.append(
                f"the file starts with a UTF-8 byte-order mark but declares "
                f"Кодировка={declared}; read as UTF-8"
            )
    elif declared:
        wanted = LABEL_CODECS.get(declared.upper())
        assert written_in is not None  # the label was found in some codec
        if wanted is None:
            warnings.append(
                f"Кодировка={declared} is not Windows or DOS; the header is written in "
                f"{written_in}, read so"
            )
        elif wanted != written_in:
            warnings.append(
                f"the header declares Кодировка={declared} but is itself written in "
                f"{written_in}; read as {written_in}"
            )
        codec = written_in
    else:
        codec = _undeclared(data, written_in)
        warnings.append(f"the header has no Кодировка; read as {codec}")
    try:
        return data.decode(codec), codec, warnings
    except UnicodeDecodeError as error:
        raise StatementError(
            line_at(data, error.start),
            f"this line is not valid {codec} (the file's encoding, Кодировка={declared or '?'})",
        ) from None


def _undeclared(data: bytes, written_in: str | None) -> str:
    """No label: UTF-8 when the bytes are UTF-8, else what the header's keys are written in."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        if written_in is None:
            raise StatementError(
                2, "the header has no Кодировка and the file is not UTF-8, Windows or DOS"
            ) from None
        return written_in
    return "utf-8"


def _sniff(head: bytes) -> tuple[str | None, str]:
    """(the codec the header is written in, the declared label or "")."""
    for codec in _CANDIDATES:
        key = _LABEL.encode(codec)
        found = [at for at in (head.find(b"\n" + key), head.find(b"\r" + key)) if at >= 0]
        if found:
            start = min(found) + 1 + len(key)
            ends = [at for at in (head.find(b"\r", start), head.find(b"\n", start)) if at >= 0]
            value = head[start : min(ends, default=len(head))]
            return codec, value.decode("ascii", "replace").strip()
    for codec in _CANDIDATES:
        if any(marker.encode(codec) in head for marker in _MARKERS):
            return codec, ""
    return None, ""


def line_at(data: bytes, offset: int) -> int:
    """The 1-based physical line of a byte offset, counting CRLF, LF and a lone CR as breaks.

    Safe on all three codecs: CR and LF never occur inside a multi-byte UTF-8 sequence.
    """
    prefix = data[:offset]
    return prefix.count(b"\n") + prefix.count(b"\r") - prefix.count(b"\r\n") + 1
