"""Turning the bytes of real mail into text the way mail programs do, never into junk.

Three kinds of input need it. Bodies carry a declared charset that may be an
alias Python does not know (`iso-8859-8-i`, `x-mac-cyrillic`), a narrower
standard than the bytes use (`gb2312` holding GBK characters) or a lie (cp1252
bytes labelled utf-8). RFC 2047 encoded words (`=?utf-8?Q?Jos=E9?=`) have the
same problems word by word. And headers may hold raw 8-bit bytes, which
Python's parser keeps as lone surrogates that cannot be stored.

The rule everywhere: the declared charset (through the alias table, which
follows the WHATWG encoding labels browsers and Thunderbird use), then UTF-8,
then a guess between windows-1251 and windows-1252, and a replacement character
for what is still undecodable. Every function here returns a string that
`.encode("utf-8")` accepts.
"""

from __future__ import annotations

import base64
import codecs
import re

from threadline.domain.model.inbound import without_surrogates

REPLACEMENT = "\ufffd"

# Labels Python does not know, or knows as a narrower standard than mail uses
# (WHATWG Encoding Standard; what Thunderbird decodes them as).
_ALIASES = {
    # Hebrew and Arabic "logical"/"explicit" variants are the plain ISO charsets.
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-8-e": "iso8859-8",
    "csiso88598i": "iso8859-8",
    "csiso88598e": "iso8859-8",
    "logical": "iso8859-8",
    "visual": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "iso-8859-6-e": "iso8859-6",
    "csiso88596i": "iso8859-6",
    "csiso88596e": "iso8859-6",
    # Chinese: GB2312 and GBK labels hold GBK characters in practice; GB18030 is a superset.
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "cn-gb": "gb18030",
    "x-gbk": "gb18030",
    "gbk": "gb18030",
    "chinese": "gb18030",
    "iso-ir-58": "gb18030",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    # Korean: KS C 5601 / EUC-KR mail is Windows-949 (Unified Hangul Code).
    "ks_c_5601-1987": "cp949",
    "ks_c_5601-1989": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "csksc56011987": "cp949",
    "iso-ir-149": "cp949",
    "korean": "cp949",
    "euc-kr": "cp949",
    "cseuckr": "cp949",
    "windows-949": "cp949",
    "x-windows-949": "cp949",
    # Japanese: Shift_JIS mail is Windows-31J (cp932).
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    # Thai.
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "windows-874": "cp874",
    "dos-874": "cp874",
    # Western and Turkish ISO labels are the Windows supersets in practice.
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    # Macintosh.
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-ukrainian": "mac-cyrillic",
    "x-mac-roman": "mac-roman",
    "mac": "mac-roman",
    "x-mac-ce": "mac-latin2",
    "x-mac-greek": "mac-greek",
    "x-mac-turkish": "mac-turkish",
    "x-mac-icelandic": "mac-iceland",
    # Cyrillic oddities.
    "x-cp1251": "cp1251",
    "x-cp1250": "cp1250",
    "koi8-ru": "koi8-u",
    "koi": "koi8-r",
    "koi8": "koi8-r",
    "x-koi8-r": "koi8-r",
    # UTF-8 and UTF-16 under old names.
    "unicode-1-1-utf-8": "utf-8",
    "unicode-2-0-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "utf8": "utf-8",
    "unicode": "utf-16",
    "ucs-2": "utf-16",
    "iso-10646-ucs-2": "utf-16",
    "csunicode": "utf-16",
}
# Labels that say nothing about 8-bit bytes: decode as if no charset was declared.
_UNDECLARED = {
    "",
    "us-ascii",
    "ascii",
    "x-ascii",
    "ansi_x3.4-1968",
    "unknown-8bit",
    "x-unknown",
    "unknown",
    "default",
    "x-user-defined",
}
# Python codecs that are not text encodings of mail (they interpret backslashes, raise always…).
_REFUSED = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode", "mbcs", "oem"}
_CYRILLIC_RUN = re.compile(rb"[\xa8\xb8\xc0-\xff]{3,}")
_HIGH = re.compile(rb"[\x80-\xff]")
# The encoded text stops at the next "?" (Q and B text never holds one), which keeps the
# search linear on a hostile header full of "=?" openings.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([qQbB])\?([^?]*)\?=")
_NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def codec_for(label: str | None) -> str | None:
    """The Python codec for a declared charset label, or None when unknown or undeclared."""
    name = (label or "").strip().strip("\"'").lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*ru
    if name in _UNDECLARED or len(name) > 40 or not name.isascii():
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if info.name in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None, hint: str | None = None) -> str:
    """Decode as a mail program would (see the module docstring); always UTF-8-encodable.

    `hint` is the charset to try for undeclared 8-bit bytes before guessing (the
    message's body charset, for raw 8-bit headers).
    """
    codec = codec_for(charset)
    if codec is not None and codec != "utf-8":
        try:
            return without_surrogates(data.decode(codec))
        except Exception:  # codecs raise more than UnicodeError on hostile input
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec is not None and codec != "utf-8":
        # A known charset with a few bytes it does not define: keep it, mark those bytes.
        try:
            return without_surrogates(data.decode(codec, errors="replace"))
        except Exception:
            pass
    as_utf8 = data.decode("utf-8", errors="replace")
    good = len(_NON_ASCII.findall(as_utf8))
    if good > as_utf8.count(REPLACEMENT):
        return as_utf8  # UTF-8 with a damaged sequence or two (a cut message)
    hinted = codec_for(hint)
    if hinted is not None and hinted != "utf-8":
        try:
            return without_surrogates(data.decode(hinted))
        except Exception:
            pass
    return data.decode(guess_single_byte(data), errors="replace")


def guess_single_byte(data: bytes) -> str:
    """windows-1251 when the 8-bit bytes form words (Cyrillic), else windows-1252.

    In Western text an 8-bit byte is an accented letter inside an ASCII word
    (`José`, `Größe`); in Cyrillic text whole words are 8-bit letters.
    """
    high = len(_HIGH.findall(data))
    in_words = sum(len(run) for run in _CYRILLIC_RUN.findall(data))
    return "cp1251" if high and in_words * 2 >= high else "cp1252"


def repair_8bit(value: str, hint: str | None = None) -> str:
    """A header the parser read with raw 8-bit bytes kept as surrogates, decoded properly."""
    if without_surrogates(value) is value:
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None, hint)


def decode_words(value: str, hint: str | None = None) -> str:
    """Decode RFC 2047 encoded words leniently, as Thunderbird does.

    Whitespace between adjacent encoded words is dropped, adjacent words in one
    charset are joined before decoding (a multi-byte character split across two
    words survives), each run is decoded like a body (declared charset, UTF-8,
    then a guess), and a word that cannot be decoded at all is left as written.
    """
    value = repair_8bit(value, hint)
    pieces: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    after_word = False
    position = 0

    def flush() -> None:
        if pending:
            pieces.append(decode_bytes(b"".join(pending), pending_charset, hint))
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        position = match.end()
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:  # not decodable as written: keep the text
            flush()
            pieces.append(between + match.group(0))
            after_word = False
            continue
        if not after_word or between.strip():
            flush()
            pieces.append(between)
        charset = match.group(1).split("*", 1)[0].lower()
        if pending and charset != pending_charset:
            flush()
        pending.append(data)
        pending_charset = charset
        after_word = True
    flush()
    pieces.append(value[position:])
    return without_surrogates("".join(pieces))


def _word_bytes(encoding: str, text: str) -> bytes | None:
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))
    compact = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    if len(compact) % 4 == 1:
        compact = compact[:-1]
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4))
    except ValueError:
        return None


def header_text(raw: str, hint: str | None = None) -> str:
    """An unstructured header value (Subject, a name) as one clean line of text."""
    return " ".join(decode_words(_FOLD.sub("", raw), hint).split())


def unfold(raw: str, hint: str | None = None) -> str:
    """A structured header value (addresses, ids) unfolded, with raw 8-bit bytes decoded."""
    return repair_8bit(_FOLD.sub("", raw), hint)
