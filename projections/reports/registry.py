"""Every report by name: the API, the web app, the CLI and the benchmark list them from here."""

from __future__ import annotations

from threadline.domain.model.errors import NotFound
from threadline.projections.reports import (
    abc,
    channels,
    clients,
    funnel,
    managers,
    service,
    sources,
    touches,
    turnover,
)
from threadline.projections.reports.frame import Report

REPORTS: tuple[Report, ...] = (
    funnel.REPORT,
    turnover.REPORT,
    abc.REPORT,
    channels.REPORT,
    clients.REPORT,
    managers.REPORT,
    sources.REPORT,
    touches.REPORT,
    service.REPORT,
)


def report_named(name: str) -> Report:
    for report in REPORTS:
        if report.name == name:
            return report
    raise NotFound("report", name)
