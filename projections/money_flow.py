"""The money-flow views: documents, contracts, payments with what they pay, supplier orders.

One projection keeps them all, so what an invoice shows as paid and the payments that paid
it are always written in the same transaction: a settlement read never sees a payment
without its allocation. Money is integer minor units beside its currency, as in the deal
views. Readers are in `documents`, `payments`, `settlements` and `supplier_orders`.
"""

from __future__ import annotations

from typing import Any

from threadline.domain.model.contact import Contact
from threadline.domain.model.contract import Contract
from threadline.domain.model.document import Document
from threadline.domain.model.money import Money
from threadline.domain.model.payment import Payment
from threadline.domain.model.supplier_order import SupplierOrder
from threadline.projections.base import (
    ContactAliases,
    Scrub,
    ViewProjection,
    dumps,
    handles,
    sid,
    ts,
)
from threadline.projections.sql import ViewCursor

# The tables whose `paid_minor` an allocation to each kind of target moves.
PAID_COLUMN_OF = {
    "invoice": "documents",
    "contract": "contracts",
    "supplier_order": "supplier_orders",
}


def _minor(state: dict[str, str] | None) -> int | None:
    return None if state is None else Money.from_state(state).minor


class MoneyFlowProjection(ViewProjection):
    name = "money_flow"
    version = 1
    tables = (
        "documents",
        "document_sends",
        "contracts",
        "payments",
        "payment_allocations",
        "payment_suggestions",
        "supplier_orders",
        "money_aliases",
    )
    # Financial records keep their amounts, dates and numbers; the person's name goes.
    forgets = (
        Scrub("documents", {"title": ""}),
        Scrub("contracts", {"title": ""}),
        Scrub(
            "payments",
            {
                "counterparty_name": "",
                "counterparty_inn": "",
                "counterparty_account": "",
                "purpose": "",
            },
        ),
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS documents ("
        " id TEXT PRIMARY KEY, kind TEXT NOT NULL, series TEXT NOT NULL, year BIGINT NOT NULL,"
        " number BIGINT NOT NULL, display_number TEXT NOT NULL, language TEXT NOT NULL,"
        " title TEXT NOT NULL, issued_on TEXT NOT NULL, due_on TEXT, deal_id TEXT,"
        " contract_id TEXT, supplier_order_id TEXT, company_id TEXT, contact_id TEXT,"
        " seller_id TEXT, currency TEXT NOT NULL, total_minor BIGINT NOT NULL,"
        " vat_minor BIGINT NOT NULL, paid_minor BIGINT NOT NULL, status TEXT NOT NULL,"
        " void_reason TEXT, file TEXT NOT NULL, file_sha256 TEXT NOT NULL,"
        " html_sha256 TEXT NOT NULL, template TEXT NOT NULL, sent_count BIGINT NOT NULL,"
        " last_sent_at TEXT, created_at TEXT NOT NULL, created_by TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS documents_deal ON documents (deal_id, created_at)",
        "CREATE INDEX IF NOT EXISTS documents_company ON documents (company_id, kind)",
        "CREATE INDEX IF NOT EXISTS documents_contact ON documents (contact_id, kind)",
        "CREATE INDEX IF NOT EXISTS documents_kind_due ON documents (kind, status, due_on)",
        "CREATE INDEX IF NOT EXISTS documents_number ON documents (kind, number)",
        "CREATE INDEX IF NOT EXISTS documents_created ON documents (created_at)",
        "CREATE TABLE IF NOT EXISTS document_sends ("
        " document_id TEXT NOT NULL, message_id TEXT NOT NULL, conversation_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, sent_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " PRIMARY KEY (document_id, message_id))",
        "CREATE TABLE IF NOT EXISTS contracts ("
        " id TEXT PRIMARY KEY, number TEXT NOT NULL, title TEXT NOT NULL,"
        " signed_on TEXT NOT NULL, starts_on TEXT, ends_on TEXT, currency TEXT,"
        " amount_minor BIGINT, paid_minor BIGINT NOT NULL, deal_id TEXT, company_id TEXT,"
        " contact_id TEXT, status TEXT NOT NULL, close_reason TEXT, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, created_by TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS contracts_ends ON contracts (status, ends_on)",
        "CREATE INDEX IF NOT EXISTS contracts_company ON contracts (company_id)",
        "CREATE INDEX IF NOT EXISTS contracts_contact ON contracts (contact_id)",
        "CREATE INDEX IF NOT EXISTS contracts_deal ON contracts (deal_id)",
        "CREATE TABLE IF NOT EXISTS payments ("
        " id TEXT PRIMARY KEY, direction TEXT NOT NULL, currency TEXT NOT NULL,"
        " amount_minor BIGINT NOT NULL, allocated_minor BIGINT NOT NULL, state TEXT NOT NULL,"
        " suggestion_count BIGINT NOT NULL, paid_on TEXT NOT NULL, company_id TEXT,"
        " contact_id TEXT, counterparty_name TEXT NOT NULL, counterparty_inn TEXT NOT NULL,"
        " counterparty_account TEXT NOT NULL, purpose TEXT NOT NULL, bank_kind TEXT NOT NULL,"
        " bank_number TEXT NOT NULL, bank_date TEXT, source_kind TEXT NOT NULL,"
        " source_file TEXT, source_line BIGINT, recorded_at TEXT NOT NULL,"
        " recorded_by TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS payments_state ON payments (state, paid_on)",
        "CREATE INDEX IF NOT EXISTS payments_company ON payments (company_id, paid_on)",
        "CREATE INDEX IF NOT EXISTS payments_contact ON payments (contact_id, paid_on)",
        "CREATE INDEX IF NOT EXISTS payments_inn ON payments (counterparty_inn)",
        "CREATE INDEX IF NOT EXISTS payments_paid_on ON payments (paid_on)",
        "CREATE INDEX IF NOT EXISTS payments_suggested ON payments (suggestion_count, paid_on)",
        "CREATE TABLE IF NOT EXISTS payment_allocations ("
        " payment_id TEXT NOT NULL, target_kind TEXT NOT NULL, target_id TEXT NOT NULL,"
        " direction TEXT NOT NULL, currency TEXT NOT NULL, amount_minor BIGINT NOT NULL,"
        " how TEXT NOT NULL, deal_id TEXT, company_id TEXT, contact_id TEXT,"
        " allocated_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " PRIMARY KEY (payment_id, target_kind, target_id))",
        "CREATE INDEX IF NOT EXISTS payment_allocations_target ON payment_allocations"
        " (target_kind, target_id)",
        "CREATE INDEX IF NOT EXISTS payment_allocations_deal ON payment_allocations (deal_id)",
        "CREATE INDEX IF NOT EXISTS payment_allocations_company ON payment_allocations"
        " (company_id)",
        "CREATE INDEX IF NOT EXISTS payment_allocations_contact ON payment_allocations"
        " (contact_id)",
        "CREATE TABLE IF NOT EXISTS payment_suggestions ("
        " payment_id TEXT NOT NULL, target_kind TEXT NOT NULL, target_id TEXT NOT NULL,"
        " currency TEXT NOT NULL, amount_minor BIGINT NOT NULL, reason TEXT NOT NULL,"
        " suggested_at TEXT NOT NULL, PRIMARY KEY (payment_id, target_kind, target_id))",
        "CREATE TABLE IF NOT EXISTS supplier_orders ("
        " id TEXT PRIMARY KEY, supplier_id TEXT NOT NULL, deal_id TEXT,"
        " display_number TEXT NOT NULL, number BIGINT NOT NULL, currency TEXT NOT NULL,"
        " amount_minor BIGINT NOT NULL, paid_minor BIGINT NOT NULL, state TEXT NOT NULL,"
        " payment_due_on TEXT, expected_on TEXT, lines TEXT NOT NULL, note TEXT NOT NULL,"
        " sent_at TEXT, confirmed_at TEXT, received_at TEXT, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, created_by TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS supplier_orders_state ON supplier_orders (state, sent_at)",
        "CREATE INDEX IF NOT EXISTS supplier_orders_supplier ON supplier_orders (supplier_id)",
        "CREATE INDEX IF NOT EXISTS supplier_orders_deal ON supplier_orders (deal_id)",
        "CREATE TABLE IF NOT EXISTS money_aliases (id TEXT PRIMARY KEY, survivor_id TEXT NOT NULL)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aliases = ContactAliases("money_aliases")
        super().__init__(*args, **kwargs)

    def before_batch(self, cur: ViewCursor) -> None:
        self.aliases.load(cur)

    # -- documents -----------------------------------------------------------------------------

    @handles(Document.DocumentIssued)
    def _issued(self, event: Any, cur: ViewCursor) -> None:
        amount = Money.from_state(event.amount)
        file = dict(event.file)
        cur.execute(
            "INSERT INTO documents (id, kind, series, year, number, display_number, language,"
            " title, issued_on, due_on, deal_id, contract_id, supplier_order_id, company_id,"
            " contact_id, seller_id, currency, total_minor, vat_minor, paid_minor, status,"
            " void_reason, file, file_sha256, html_sha256, template, sent_count, last_sent_at,"
            " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, 0, 'issued', NULL, ?, ?, ?, ?, 0, NULL, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.kind,
                event.series,
                event.year,
                event.number,
                event.display_number,
                event.language,
                str(event.personal.get("title", "")),
                event.issued_on,
                event.due_on,
                sid(event.deal_id),
                sid(event.contract_id),
                sid(event.supplier_order_id),
                sid(event.company_id),
                self.aliases.survivor(sid(event.contact_id)),
                sid(event.seller_id),
                amount.currency,
                amount.minor,
                Money.from_state(event.vat).minor,
                dumps(file),
                str(file.get("sha256", "")),
                event.html_sha256,
                dumps(event.template),
                ts(event.timestamp),
                event.actor,
            ],
        )
        # a payment allocated before the view saw the invoice (a rebuild keeps log order, so
        # only a replay of a partial log could): count what is there
        self._recount_paid(cur, "invoice", sid(event.originator_id) or "")

    @handles(Document.DocumentSent)
    def _sent(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO document_sends (document_id, message_id, conversation_id, channel,"
            " sent_at, actor) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (document_id, message_id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.message_id),
                sid(event.conversation_id),
                event.channel,
                at,
                event.actor,
            ],
        )
        cur.execute(
            "UPDATE documents SET sent_count = (SELECT COUNT(*) FROM document_sends"
            " WHERE document_id = ?), last_sent_at = ? WHERE id = ?",
            [sid(event.originator_id), at, sid(event.originator_id)],
        )

    @handles(Document.DocumentVoided)
    def _voided(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE documents SET status = 'voided', void_reason = ? WHERE id = ?",
            [event.reason, sid(event.originator_id)],
        )

    # -- contracts -----------------------------------------------------------------------------

    @handles(Contract.ContractRegistered)
    def _contract(self, event: Any, cur: ViewCursor) -> None:
        amount = Money.from_state(event.amount) if event.amount else None
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO contracts (id, number, title, signed_on, starts_on, ends_on, currency,"
            " amount_minor, paid_minor, deal_id, company_id, contact_id, status, close_reason,"
            " created_at, updated_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?,"
            " 'active', NULL, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.number,
                str(event.personal.get("title", "")),
                event.signed_on,
                event.starts_on,
                event.ends_on,
                amount.currency if amount else None,
                amount.minor if amount else None,
                sid(event.deal_id),
                sid(event.company_id),
                self.aliases.survivor(sid(event.contact_id)),
                at,
                at,
                event.actor,
            ],
        )
        self._recount_paid(cur, "contract", sid(event.originator_id) or "")

    @handles(Contract.ContractChanged)
    def _contract_changed(self, event: Any, cur: ViewCursor) -> None:
        values: dict[str, Any] = {}
        for key in ("number", "signed_on", "starts_on", "ends_on"):
            if key in event.changes:
                values[key] = event.changes[key]
        if "amount" in event.changes:
            amount = event.changes["amount"]
            values["currency"] = amount["currency"] if amount else None
            values["amount_minor"] = _minor(amount)
        if "title" in event.personal:
            values["title"] = str(event.personal["title"])
        values["updated_at"] = ts(event.timestamp)
        assignments = ", ".join(f"{key} = ?" for key in values)
        cur.execute(
            f"UPDATE contracts SET {assignments} WHERE id = ?",
            [*values.values(), sid(event.originator_id)],
        )

    @handles(Contract.ContractClosed)
    def _contract_closed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contracts SET status = 'closed', close_reason = ?, updated_at = ? WHERE id = ?",
            [event.reason, ts(event.timestamp), sid(event.originator_id)],
        )

    # -- payments ------------------------------------------------------------------------------

    @handles(Payment.PaymentRecorded)
    def _payment(self, event: Any, cur: ViewCursor) -> None:
        amount = Money.from_state(event.amount)
        party = dict(event.personal.get("counterparty") or {})
        bank = dict(event.bank_document or {})
        source = dict(event.source or {})
        cur.execute(
            "INSERT INTO payments (id, direction, currency, amount_minor, allocated_minor,"
            " state, suggestion_count, paid_on, company_id, contact_id, counterparty_name,"
            " counterparty_inn, counterparty_account, purpose, bank_kind, bank_number, bank_date,"
            " source_kind, source_file, source_line, recorded_at, recorded_by)"
            " VALUES (?, ?, ?, ?, 0, 'unmatched', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.direction,
                amount.currency,
                amount.minor,
                event.paid_on,
                sid(event.company_id),
                self.aliases.survivor(sid(event.contact_id)),
                str(party.get("name", ""))[:500],
                str(party.get("inn", "")),
                str(party.get("account", "")),
                str(event.personal.get("purpose", "")),
                str(bank.get("kind", "")),
                str(bank.get("number", "")),
                bank.get("date"),
                str(source.get("kind", "api")),
                source.get("file_sha256"),
                source.get("line"),
                ts(event.timestamp),
                event.actor,
            ],
        )

    def _refresh_payment(self, cur: ViewCursor, payment_id: str) -> None:
        cur.execute(
            "UPDATE payments SET allocated_minor = (SELECT COALESCE(SUM(amount_minor), 0)"
            " FROM payment_allocations WHERE payment_id = ?),"
            " suggestion_count = (SELECT COUNT(*) FROM payment_suggestions WHERE payment_id = ?)"
            " WHERE id = ?",
            [payment_id, payment_id, payment_id],
        )
        cur.execute(
            "UPDATE payments SET state = CASE WHEN allocated_minor = 0 THEN 'unmatched'"
            " WHEN allocated_minor < amount_minor THEN 'partial' ELSE 'matched' END WHERE id = ?",
            [payment_id],
        )

    def _recount_paid(self, cur: ViewCursor, target_kind: str, target_id: str) -> None:
        table = PAID_COLUMN_OF.get(target_kind)
        if table is None:
            return
        cur.execute(
            f"UPDATE {table} SET paid_minor = (SELECT COALESCE(SUM(amount_minor), 0)"
            " FROM payment_allocations WHERE target_kind = ? AND target_id = ?) WHERE id = ?",
            [target_kind, target_id, target_id],
        )

    @handles(Payment.PaymentAllocated)
    def _allocated(self, event: Any, cur: ViewCursor) -> None:
        payment_id = sid(event.originator_id) or ""
        amount = Money.from_state(event.amount)
        direction = cur.execute(
            "SELECT direction FROM payments WHERE id = ?", [payment_id]
        ).fetchone()
        cur.execute(
            "INSERT INTO payment_allocations (payment_id, target_kind, target_id, direction,"
            " currency, amount_minor, how, deal_id, company_id, contact_id, allocated_at, actor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (payment_id, target_kind, target_id) DO NOTHING",
            [
                payment_id,
                event.target_kind,
                sid(event.target_id),
                direction["direction"] if direction else "in",
                amount.currency,
                amount.minor,
                event.how,
                sid(event.deal_id),
                sid(event.company_id),
                self.aliases.survivor(sid(event.contact_id)),
                ts(event.timestamp),
                event.actor,
            ],
        )
        cur.execute(
            "DELETE FROM payment_suggestions WHERE payment_id = ? AND target_kind = ?"
            " AND target_id = ?",
            [payment_id, event.target_kind, sid(event.target_id)],
        )
        if event.company_id is not None:
            cur.execute(
                "UPDATE payments SET company_id = COALESCE(company_id, ?) WHERE id = ?",
                [sid(event.company_id), payment_id],
            )
        self._refresh_payment(cur, payment_id)
        self._recount_paid(cur, event.target_kind, sid(event.target_id) or "")

    @handles(Payment.PaymentAllocationRemoved)
    def _allocation_removed(self, event: Any, cur: ViewCursor) -> None:
        payment_id = sid(event.originator_id) or ""
        cur.execute(
            "DELETE FROM payment_allocations WHERE payment_id = ? AND target_kind = ?"
            " AND target_id = ?",
            [payment_id, event.target_kind, sid(event.target_id)],
        )
        self._refresh_payment(cur, payment_id)
        self._recount_paid(cur, event.target_kind, sid(event.target_id) or "")

    @handles(Payment.PaymentMatchSuggested)
    def _suggested(self, event: Any, cur: ViewCursor) -> None:
        payment_id = sid(event.originator_id) or ""
        amount = Money.from_state(event.amount)
        cur.execute(
            "INSERT INTO payment_suggestions (payment_id, target_kind, target_id, currency,"
            " amount_minor, reason, suggested_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (payment_id, target_kind, target_id) DO NOTHING",
            [
                payment_id,
                event.target_kind,
                sid(event.target_id),
                amount.currency,
                amount.minor,
                event.reason,
                ts(event.timestamp),
            ],
        )
        self._refresh_payment(cur, payment_id)

    @handles(Payment.PaymentSuggestionDismissed)
    def _dismissed(self, event: Any, cur: ViewCursor) -> None:
        payment_id = sid(event.originator_id) or ""
        cur.execute(
            "DELETE FROM payment_suggestions WHERE payment_id = ? AND target_kind = ?"
            " AND target_id = ?",
            [payment_id, event.target_kind, sid(event.target_id)],
        )
        self._refresh_payment(cur, payment_id)

    # -- supplier orders -----------------------------------------------------------------------

    @handles(SupplierOrder.SupplierOrderCreated)
    def _order(self, event: Any, cur: ViewCursor) -> None:
        amount = Money.from_state(event.amount)
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO supplier_orders (id, supplier_id, deal_id, display_number, number,"
            " currency, amount_minor, paid_minor, state, payment_due_on, expected_on, lines,"
            " note, sent_at, confirmed_at, received_at, created_at, updated_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'draft', ?, NULL, ?, '', NULL, NULL, NULL, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.supplier_id),
                sid(event.deal_id),
                event.display_number,
                event.number,
                amount.currency,
                amount.minor,
                event.payment_due_on,
                dumps(event.lines),
                at,
                at,
                event.actor,
            ],
        )
        self._recount_paid(cur, "supplier_order", sid(event.originator_id) or "")

    @handles(SupplierOrder.SupplierOrderStateChanged)
    def _order_state(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        column = {"sent": "sent_at", "confirmed": "confirmed_at", "received": "received_at"}
        stamp = column.get(event.state)
        extra = f", {stamp} = ?" if stamp else ""
        params: list[Any] = [event.state, event.note, at]
        if stamp:
            params.append(at)
        cur.execute(
            "UPDATE supplier_orders SET state = ?, note = ?, updated_at = ?"
            f"{extra}, expected_on = COALESCE(?, expected_on) WHERE id = ?",
            [*params, event.expected_on, sid(event.originator_id)],
        )

    # -- contacts ------------------------------------------------------------------------------

    @handles(Contact.ContactMerged)
    def _merged(self, event: Any, cur: ViewCursor) -> None:
        duplicate, survivor = str(event.originator_id), str(event.survivor_id)
        self.aliases.record(cur, duplicate, survivor)
        for table in ("documents", "contracts", "payments", "payment_allocations"):
            cur.execute(
                f"UPDATE {table} SET contact_id = ? WHERE contact_id = ?", [survivor, duplicate]
            )
