"""Every text a report shows is in Russian too: titles, descriptions, sections, figures,
columns and options of every registered report (the screens translate them at render time,
so a label missing from the catalogues would show in English on a Russian page)."""

from __future__ import annotations

from threadline.projections.reports.registry import REPORTS
from threadline.services.web.i18n import gettext


def report_texts() -> set[str]:
    texts: set[str] = set()
    for report in REPORTS:
        texts |= {report.title, report.description}
        for source in report.sources:
            texts |= {column.label for column in source.columns}
        for section in report.sections:
            texts.add(section.title)
            texts |= {m.label for m in (*section.measures, *section.extra)}
            if section.note:
                texts.add(section.note)
        texts |= {option.label for option in report.options}
    return texts


def test_every_report_text_has_a_russian_translation() -> None:
    russian = gettext("ru")
    missing = sorted(text for text in report_texts() if russian(text) == text)
    assert not missing, "add these to a Russian catalogue:\n" + "\n".join(missing)
