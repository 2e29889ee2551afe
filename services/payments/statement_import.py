"""Importing a bank file (a 1C ``kl_to_1c.txt`` statement or a CSV): preview, then record.

The whole file is read and checked before anything is recorded, so a broken file records
nothing and the person fixes it and imports it again (`ImportFileError` names the line).
Each payment gets an id derived from what identifies it at the bank, so the same file (or
an overlapping statement: a month's statement after the daily ones) records nothing twice.
The preview (`preview_import`) and the import (`apply_import`) plan the same way; the
import plans again, because the views may have changed since the person looked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol
from uuid import UUID, uuid4

from threadline.domain.commands.payments import MAX_BATCH, Allocation, PaymentEntry, PaymentInput
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind, payment_id_for
from threadline.projections.documents import document
from threadline.projections.payments import payment, recorded_payment_ids
from threadline.projections.sql import ViewReader
from threadline.projections.supplier_orders import supplier_order
from threadline.services.payments.cbe_model import StatementError
from threadline.services.payments.cbe_reader import read_statement
from threadline.services.payments.csv_payments import PaymentFileError, parse_or_raise
from threadline.services.payments.matching import Matcher, MatchOutcome, OutcomeKind, PaymentFacts

MAX_FILE_BYTES = 50 * 1024 * 1024
ALREADY_RECORDED = "already_recorded"
_MAGIC = b"1CClientBankExchange"
_BOM = b"\xef\xbb\xbf"


class ImportFileError(InvalidInput):
    """The file cannot be imported; nothing was recorded. `line` is the line at fault (0:
    the file as a whole). An `InvalidInput` of the field ``file``, so the API answers 422."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__("file", f"line {line}: {message}" if line else message)
        self.line = line
        self.reason = message

    def __str__(self) -> str:
        return self.message


class PaymentsApp(Protocol):
    """What the import needs of the application: recording payments."""

    def record_payments(self, entries: list[PaymentEntry], actor: str) -> Committed[list[UUID]]: ...


class ImportRuntime(Protocol):
    """The runtime's parts the import uses (a `Runtime` is one)."""

    @property
    def app(self) -> PaymentsApp: ...

    @property
    def views(self) -> ViewReader: ...

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class BankLine:
    """One payment of a file, in the same shape whichever format it came in."""

    line: int
    key: str
    direction: Direction
    amount: Money
    paid_on: date
    counterparty: dict[str, str]
    purpose: str
    bank_document: dict[str, Any]


@dataclass(frozen=True)
class PlannedPayment:
    line: int
    payment_id: UUID
    direction: str
    amount: Money
    paid_on: date
    counterparty_name: str
    counterparty_inn: str
    purpose: str
    already_recorded: bool
    outcome: str  # an `OutcomeKind` value, or "already_recorded"
    target_label: str
    reason: str
    entry: PaymentEntry | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ImportPlan:
    file_sha256: str
    file_format: str  # "1c" | "csv"
    encoding: str
    items: list[PlannedPayment]
    warnings: list[str]
    counts: dict[str, int]

    @property
    def to_record(self) -> int:
        return sum(1 for item in self.items if not item.already_recorded)


@dataclass(frozen=True)
class ImportResult:
    recorded: int
    already_recorded: int
    matched: int
    partial: int
    suggested: int
    unmatched: int
    outgoing_linked: int
    overpaid: int = 0
    payment_ids: list[UUID] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: ImportPlan | None = field(default=None, repr=False, compare=False)
    """The plan the import followed (made again at the import, not the preview's)."""


# -- reading the file --------------------------------------------------------------------------


def is_1c_statement(data: bytes) -> bool:
    """A 1C statement starts with its magic line (in any of its encodings it is ASCII)."""
    return data.removeprefix(_BOM).lstrip(b" \t\r\n").startswith(_MAGIC)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _with_occurrence(lines: list[BankLine]) -> list[BankLine]:
    """Two payments of one file with the same key (the same payer paying the same amount
    twice a day without a document number) stay two: the second gets "#2" and so on. The
    same file read again numbers them the same way, so its ids are the same."""
    seen: dict[str, int] = {}
    result = []
    for item in lines:
        count = seen.get(item.key, 0) + 1
        seen[item.key] = count
        if count > 1:
            item = BankLine(**{**item.__dict__, "key": f"{item.key}#{count}"})
        result.append(item)
    return result


def read_1c(data: bytes) -> tuple[list[BankLine], str, list[str]]:
    """The statement's payments to or from its own accounts, its encoding and warnings.

    The id key is what the bank keeps for a payment whichever statement lists it: our
    account, the document's date and number, the amount, the direction and the other side's
    account (else its ИНН). Names and purposes are left out, because banks shorten and
    re-spell them between a daily and a monthly statement.
    """
    try:
        statement = read_statement(data)
    except StatementError as error:
        raise ImportFileError(error.line, error.reason) from None
    warnings = list(statement.warnings)
    ours = statement.account_numbers
    lines: list[BankLine] = []
    for doc in statement.documents:
        pays_in = bool(doc.payee_account) and doc.payee_account in ours
        pays_out = bool(doc.payer_account) and doc.payer_account in ours
        if pays_in and pays_out:
            warnings.append(
                f"line {doc.line}: a transfer between the statement's own accounts; skipped"
            )
            continue
        direction = statement.direction(doc)
        if direction is None:
            warnings.append(
                f"line {doc.line}: document {doc.number} is neither to nor from the"
                f" statement's accounts ({', '.join(sorted(ours)) or 'none listed'}); skipped"
            )
            continue
        if doc.amount <= 0:
            warnings.append(f"line {doc.line}: document {doc.number} has no amount; skipped")
            continue
        if direction == "in":
            own, other = doc.payee_account, "payer"
            paid_on = doc.received_on or doc.date
        else:
            own, other = doc.payer_account, "payee"
            paid_on = doc.written_off_on or doc.date
        party = {
            "name": getattr(doc, f"{other}_name"),
            "inn": getattr(doc, f"{other}_inn"),
            "kpp": getattr(doc, f"{other}_kpp"),
            "account": getattr(doc, f"{other}_account"),
            "bik": getattr(doc, f"{other}_bik"),
        }
        amount = Money(doc.amount, "RUB")
        key = "|".join(
            [
                "1c",
                own,
                doc.date.isoformat(),
                doc.number,
                str(amount.rounded().amount),
                direction,
                party["account"] or _digits(party["inn"]),
            ]
        )
        lines.append(
            BankLine(
                line=doc.line,
                key=key,
                direction=Direction(direction),
                amount=amount,
                paid_on=paid_on,
                counterparty={k: v for k, v in party.items() if v},
                purpose=doc.purpose[:2000],
                bank_document={
                    "kind": doc.kind,
                    "number": doc.number,
                    "date": doc.date.isoformat(),
                },
            )
        )
    return _with_occurrence(lines), statement.encoding, warnings


def read_csv(data: bytes) -> tuple[list[BankLine], str, list[str]]:
    """A CSV's payments. The key is the day, the document number, the amount with its
    currency, the direction and the other side's account or ИНН (a CSV names no account of
    ours); the purpose joins it when there is no document number to tell payments apart."""
    try:
        parsed = parse_or_raise(data)
    except PaymentFileError as error:
        raise ImportFileError(error.line, error.message) from None
    lines: list[BankLine] = []
    for row in parsed.rows:
        amount = Money(row.amount, row.currency)
        party = {
            "name": row.counterparty_name,
            "inn": row.counterparty_inn,
            "kpp": row.counterparty_kpp,
            "account": row.counterparty_account,
            "bik": row.counterparty_bik,
        }
        parts = [
            "csv",
            row.paid_on.isoformat(),
            row.document_number,
            str(amount.rounded().amount),
            amount.currency,
            row.direction,
            row.counterparty_account or _digits(row.counterparty_inn),
        ]
        if not row.document_number:
            parts.append(row.purpose)
        bank_document: dict[str, Any] = {"kind": "", "number": row.document_number}
        if row.document_date is not None:
            bank_document["date"] = row.document_date.isoformat()
        lines.append(
            BankLine(
                line=row.line,
                key="|".join(parts),
                direction=Direction(row.direction),
                amount=amount,
                paid_on=row.paid_on,
                counterparty={k: v for k, v in party.items() if v},
                purpose=row.purpose[:2000],
                bank_document=bank_document,
            )
        )
    return _with_occurrence(lines), parsed.encoding, []


def read_file(data: bytes) -> tuple[str, list[BankLine], str, list[str]]:
    """(format, payments, encoding, warnings) of a whole file, or `ImportFileError`."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            0, f"the file is larger than {MAX_FILE_BYTES // 2**20} MB; split it into smaller files"
        )
    if not data.strip():
        raise ImportFileError(0, "the file is empty")
    if is_1c_statement(data):
        return ("1c", *read_1c(data))
    return ("csv", *read_csv(data))


# -- planning ----------------------------------------------------------------------------------


def entry_for(
    item: BankLine, outcome: MatchOutcome, payment_id: UUID, source: dict[str, Any]
) -> PaymentEntry:
    return PaymentEntry(
        PaymentInput(
            payment_id=payment_id,
            direction=item.direction,
            amount=item.amount,
            paid_on=item.paid_on,
            counterparty=dict(item.counterparty),
            purpose=item.purpose,
            bank_document=dict(item.bank_document),
            source=source,
            company_id=outcome.company_id,
        ),
        outcome.allocations,
        outcome.suggestions,
    )


def _planned(
    item: BankLine,
    payment_id: UUID,
    outcome: str,
    label: str,
    reason: str,
    entry: PaymentEntry | None = None,
) -> PlannedPayment:
    return PlannedPayment(
        line=item.line,
        payment_id=payment_id,
        direction=item.direction.value,
        amount=item.amount,
        paid_on=item.paid_on,
        counterparty_name=item.counterparty.get("name", ""),
        counterparty_inn=item.counterparty.get("inn", ""),
        purpose=item.purpose,
        already_recorded=entry is None,
        outcome=outcome,
        target_label=label,
        reason=reason,
        entry=entry,
    )


def plan_lines(
    db: ViewReader, lines: list[BankLine], source_kind: str, file_sha256: str
) -> list[PlannedPayment]:
    ids = [payment_id_for(item.key) for item in lines]
    recorded = recorded_payment_ids(db, [str(i) for i in ids])
    matcher = Matcher(db)
    items = []
    for item, payment_id in zip(lines, ids, strict=True):
        if str(payment_id) in recorded:
            items.append(
                _planned(
                    item,
                    payment_id,
                    ALREADY_RECORDED,
                    "",
                    "recorded before (from this file or an overlapping one)",
                )
            )
            continue
        facts = PaymentFacts(
            item.direction, item.amount, item.counterparty.get("inn", ""), item.purpose
        )
        outcome = matcher.match(facts)
        source = {"kind": source_kind, "file_sha256": file_sha256, "line": item.line}
        entry = entry_for(item, outcome, payment_id, source)
        items.append(
            _planned(
                item, payment_id, outcome.kind.value, outcome.target_label, outcome.reason, entry
            )
        )
    return items


def _counts(items: list[PlannedPayment]) -> dict[str, int]:
    counts = {kind.value: 0 for kind in OutcomeKind}
    counts[ALREADY_RECORDED] = 0
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    counts["total"] = len(items)
    return counts


def preview_import(runtime: ImportRuntime, data: bytes, filename: str = "") -> ImportPlan:
    """What importing `data` would do, line by line; records nothing.

    `filename` is only for the messages; the format is told by the content (a 1C statement
    starts with ``1CClientBankExchange``; anything else is read as CSV).
    """
    file_format, lines, encoding, warnings = read_file(data)
    digest = hashlib.sha256(data).hexdigest()
    source_kind = "statement" if file_format == "1c" else "csv"
    items = plan_lines(runtime.views, lines, source_kind, digest)
    if not lines:
        warnings = [*warnings, f"{filename or 'the file'} holds no payments"]
    return ImportPlan(digest, file_format, encoding, items, warnings, _counts(items))


def apply_import(
    runtime: ImportRuntime,
    data: bytes,
    actor: str,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Record the file's payments not recorded yet, matched as `preview_import` says now.

    Batches of at most 1000 payments, each one transaction; the views are waited for
    after each, so the result (and the next page) shows them. `progress(done, total)`.
    If a target changed under the import (an invoice voided, a payment allocated by a
    person meanwhile), the batch is refused whole; the rest of the file is then planned
    again against the views as they are and recorded, once. A second refusal is raised.
    """
    plan = preview_import(runtime, data)
    final = list(plan.items)
    recorded: list[UUID] = []
    outcome_of: dict[UUID, str] = {}
    total = plan.to_record
    if progress is not None:
        progress(0, total)
    for attempt in range(2):
        pending = [
            (index, item, item.entry)
            for index, item in enumerate(plan.items)
            if item.entry is not None and item.payment_id not in outcome_of
        ]
        try:
            for start in range(0, len(pending), MAX_BATCH):
                batch = pending[start : start + MAX_BATCH]
                committed = runtime.app.record_payments([entry for _, _, entry in batch], actor)
                now = set(committed.value)
                for index, item, _ in batch:
                    if item.payment_id in now:
                        outcome_of[item.payment_id] = item.outcome
                        final[index] = item
                recorded.extend(committed.value)
                runtime.wait_for_views(committed.notification_id)
                if progress is not None:
                    progress(min(len(outcome_of), total), total)
            break
        except (Conflict, InvalidInput, NotFound):
            if attempt:
                raise
            plan = preview_import(runtime, data)
            for index, item in enumerate(plan.items):
                if item.payment_id not in outcome_of:
                    final[index] = item
            total = len(outcome_of) + plan.to_record
    if progress is not None:
        progress(total, total)
    outcomes = list(outcome_of.values())
    return ImportResult(
        recorded=len(recorded),
        already_recorded=len(final) - len(recorded),
        matched=outcomes.count(OutcomeKind.MATCHED.value),
        partial=outcomes.count(OutcomeKind.PARTIAL.value),
        suggested=outcomes.count(OutcomeKind.SUGGESTED.value),
        unmatched=outcomes.count(OutcomeKind.UNMATCHED.value),
        outgoing_linked=outcomes.count(OutcomeKind.OUTGOING_LINKED.value),
        overpaid=outcomes.count(OutcomeKind.OVERPAID.value),
        payment_ids=recorded,
        warnings=plan.warnings,
        plan=ImportPlan(
            plan.file_sha256, plan.file_format, plan.encoding, final, plan.warnings, _counts(final)
        ),
    )


# -- one payment (the API) ---------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentTarget:
    """What a person says a payment pays; `amount` None: all it can (see `_share`)."""

    kind: TargetKind
    target_id: UUID
    amount: Money | None = None


@dataclass(frozen=True)
class PaymentRequest:
    direction: Direction
    amount: Money
    paid_on: date
    counterparty: dict[str, str] = field(default_factory=dict)
    purpose: str = ""
    bank_document: dict[str, Any] = field(default_factory=dict)
    client_payment_id: str | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    target: PaymentTarget | None = None


@dataclass(frozen=True)
class SingleResult:
    payment_id: UUID
    recorded: bool  # False: `client_payment_id` was recorded before; nothing changed
    outcome: MatchOutcome


def api_payment_id(client_payment_id: str | None) -> UUID:
    """A client's own id for its retries (the same id again is the same payment)."""
    if client_payment_id is None:
        return uuid4()
    return payment_id_for(f"api|{client_payment_id}")


def _share(db: ViewReader, request: PaymentRequest, target: PaymentTarget) -> Money:
    """A named target with no amount takes the whole payment, but an invoice or a supplier
    order only what is still due on it (the rest stays unallocated, not overpaid)."""
    if target.amount is not None:
        return target.amount
    due: Money | None = None
    if target.kind == TargetKind.INVOICE:
        invoice = document(db, target.target_id)
        due = None if invoice is None else invoice.outstanding
    elif target.kind == TargetKind.SUPPLIER_ORDER:
        order = supplier_order(db, target.target_id)
        due = None if order is None else order.payable
    if due is None or due.currency != request.amount.currency:
        return request.amount
    if due.amount <= 0:
        raise Conflict(f"the {target.kind.value} has nothing left to pay")
    return due if due.amount < request.amount.amount else request.amount


def _named_target(db: ViewReader, request: PaymentRequest, target: PaymentTarget) -> MatchOutcome:
    share = _share(db, request, target)
    if request.direction == Direction.OUT:
        kind = OutcomeKind.OUTGOING_LINKED
    elif share.amount < request.amount.amount:
        kind = OutcomeKind.OVERPAID
    else:
        kind = OutcomeKind.MATCHED
        if target.kind == TargetKind.INVOICE:
            invoice = document(db, target.target_id)
            if invoice is not None and invoice.outstanding.amount > share.amount:
                kind = OutcomeKind.PARTIAL
    allocation = Allocation(target.kind, target.target_id, share, AllocationHow.MANUAL)
    return MatchOutcome(kind, (allocation,), (), request.company_id, "named by the request", "")


def record_single_payment(
    runtime: ImportRuntime, request: PaymentRequest, actor: str
) -> tuple[SingleResult, int | None]:
    """Record one payment (the API's), matched like an imported one unless it names what it
    pays; returns the result and the notification id to wait for (None: nothing new)."""
    payment_id = api_payment_id(request.client_payment_id)
    if request.client_payment_id is not None and payment(runtime.views, payment_id) is not None:
        return SingleResult(payment_id, False, MatchOutcome(OutcomeKind.UNMATCHED)), None
    if request.target is not None:
        outcome = _named_target(runtime.views, request, request.target)
    else:
        facts = PaymentFacts(
            request.direction,
            request.amount,
            request.counterparty.get("inn", ""),
            request.purpose,
        )
        outcome = Matcher(runtime.views).match(facts)
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id,
            direction=request.direction,
            amount=request.amount,
            paid_on=request.paid_on,
            counterparty=dict(request.counterparty),
            purpose=request.purpose,
            bank_document=dict(request.bank_document),
            source={"kind": "api"},
            company_id=request.company_id or outcome.company_id,
            contact_id=request.contact_id,
        ),
        outcome.allocations,
        outcome.suggestions,
    )
    committed = runtime.app.record_payments([entry], actor)
    recorded = payment_id in committed.value
    return SingleResult(payment_id, recorded, outcome), committed.notification_id
