"""A client's settlement: invoiced, paid, outstanding and how late, per currency.

Invoiced is the total of the client's issued invoices; paid is every incoming payment from
the client (allocated to an invoice, a contract, a deal, or not yet allocated but known to
come from the client by its ИНН), so an advance shows as a negative balance rather than
disappearing. Overdue is what is left unpaid on invoices past their due date; the days
overdue count from the oldest such due date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from threadline.domain.model.money import Money
from threadline.projections.sql import ViewReader


@dataclass(frozen=True)
class Settlement:
    currency: str
    invoiced_minor: int
    paid_minor: int
    overdue_minor: int
    oldest_overdue_on: str | None
    open_invoices: int
    today: date

    @property
    def invoiced(self) -> Money:
        return Money.from_minor(self.invoiced_minor, self.currency)

    @property
    def paid(self) -> Money:
        return Money.from_minor(self.paid_minor, self.currency)

    @property
    def balance(self) -> Money:
        """Invoiced less paid: positive, the client owes; negative, the client paid ahead."""
        return Money.from_minor(self.invoiced_minor - self.paid_minor, self.currency)

    @property
    def outstanding(self) -> Money:
        return Money.from_minor(max(self.invoiced_minor - self.paid_minor, 0), self.currency)

    @property
    def overdue(self) -> Money:
        return Money.from_minor(self.overdue_minor, self.currency)

    @property
    def days_overdue(self) -> int:
        if self.oldest_overdue_on is None:
            return 0
        return max((self.today - date.fromisoformat(self.oldest_overdue_on)).days, 0)


def settlement(
    db: ViewReader,
    *,
    company_id: str | None = None,
    contact_id: str | None = None,
    today: date | None = None,
) -> list[Settlement]:
    """The settlement with one client (a company, else a contact), one entry per currency."""
    if (company_id is None) == (contact_id is None):
        raise ValueError("name a company or a contact")
    column, value = ("company_id", company_id) if company_id else ("contact_id", contact_id)
    on = today or date.today()
    invoices = db.query(
        "SELECT currency, SUM(total_minor) AS invoiced, COUNT(*) AS n,"
        " SUM(CASE WHEN due_on < ? AND paid_minor < total_minor"
        "  THEN total_minor - paid_minor ELSE 0 END) AS overdue,"
        " MIN(CASE WHEN due_on < ? AND paid_minor < total_minor THEN due_on END) AS oldest,"
        " SUM(CASE WHEN paid_minor < total_minor THEN 1 ELSE 0 END) AS open_count"
        f" FROM documents WHERE kind = 'invoice' AND status = 'issued' AND {column} = ?"
        " GROUP BY currency",
        [on.isoformat(), on.isoformat(), value],
    )
    # a payment counts once: allocated to the client's targets, or from the client itself
    paid = db.query(
        "SELECT currency, SUM(amount_minor) AS paid FROM payments WHERE direction = 'in'"
        f" AND ({column} = ? OR id IN (SELECT payment_id FROM payment_allocations"
        f" WHERE {column} = ?)) GROUP BY currency",
        [value, value],
    )
    by_currency: dict[str, dict[str, int | str | None]] = {}
    for row in invoices:
        by_currency[row["currency"]] = {
            "invoiced": int(row["invoiced"] or 0),
            "overdue": int(row["overdue"] or 0),
            "oldest": row["oldest"],
            "open": int(row["open_count"] or 0),
        }
    for row in paid:
        by_currency.setdefault(row["currency"], {})["paid"] = int(row["paid"] or 0)
    result = []
    for currency, figures in sorted(by_currency.items()):
        oldest = figures.get("oldest")
        result.append(
            Settlement(
                currency=currency,
                invoiced_minor=int(figures.get("invoiced") or 0),
                paid_minor=int(figures.get("paid") or 0),
                overdue_minor=int(figures.get("overdue") or 0),
                oldest_overdue_on=str(oldest) if oldest else None,
                open_invoices=int(figures.get("open") or 0),
                today=on,
            )
        )
    return result
