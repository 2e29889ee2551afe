"""Every text the web app shows has a Russian translation (the catalogue cannot fall behind)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from threadline.services.web.i18n import catalogue_files

WEB = Path(__file__).resolve().parents[2] / "services" / "web"


def test_every_message_of_the_web_app_is_translated_to_russian() -> None:
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(WEB),
        [("**.py", "python"), ("**/templates/**.html", "jinja2")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
    ):
        key = message if isinstance(message, str) else message[0]
        found.setdefault(key, f"{filename}:{lineno}")
    translated: set[str] = set()
    for path in catalogue_files("ru"):
        with path.open("rb") as source:
            translated |= {
                (m.id if isinstance(m.id, str) else m.id[0])
                for m in read_po(source)
                if m.id and m.string
            }
    assert len(found) > 100, "the extraction found too little: is the configuration right?"
    missing = {text: where for text, where in found.items() if text not in translated}
    assert not missing, f"untranslated: {missing}"
