"""Request and response models of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _storable_instant(value: datetime) -> datetime:
    """Refuse instants the views cannot write: `0001-01-01T00:00+14:00` is before year 1 in
    UTC, and its `OverflowError` would stop the projection that stores it, for good."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("expected a date and time between the years 1000 and 9000")
    return value


Instant = Annotated[datetime, AfterValidator(_storable_instant)]
"""Every date and time the API takes (due times, snoozes, filters)."""


class Sender(BaseModel):
    name: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    telegram_id: int | str | None = None
    visitor_id: str | None = Field(None, max_length=128)


# A whole number stays whole ("1500", not "1500.0"); a fraction is read through its shortest
# repr, so 12.1 is "12.1". Send a string for an exact figure of many digits.
CostNumber = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, allow_inf_nan=False)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217, e.g. RUB")]


class SourceMoneyIn(BaseModel):
    """An amount with its currency, as events and views show it back."""

    model_config = ConfigDict(extra="forbid")
    amount: Annotated[str, Field(max_length=40)] | CostNumber = Field(
        ..., description='a decimal string ("1500.50") or a number'
    )
    currency: CurrencyCode


class SourceIn(BaseModel):
    """Where a lead or an inquiry came from. `acquisition_cost` is money: the object
    ``{"amount": "1500.50", "currency": "RUB"}``, or (as older clients send it) a number or
    numeric string with its currency in `acquisition_currency` (RUB when left out)."""

    model_config = ConfigDict(extra="forbid")
    form: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    referrer: str | None = None
    acquisition_cost: CostNumber | Annotated[str, Field(max_length=40)] | SourceMoneyIn | None = (
        None
    )
    acquisition_currency: CurrencyCode | None = None


class InboundIn(BaseModel):
    """A message from the generic API channel (any system that can POST JSON)."""

    model_config = ConfigDict(populate_by_name=True)
    channel: str = Field("api", pattern=r"^[a-z0-9_-]{1,32}$")
    external_id: str = Field(..., min_length=1, max_length=512, description="the dedup key")
    sender: Sender = Field(..., alias="from")
    subject: str = Field("", max_length=998)
    text: str = Field("", max_length=200_000)
    html: str = Field("", max_length=500_000)
    thread: str | None = Field(None, max_length=512)
    source: SourceIn | None = None


class InboundOut(BaseModel):
    message_id: UUID
    contact_id: UUID
    conversation_id: UUID
    duplicate: bool


class ListOut(BaseModel):
    items: list[dict[str, Any]]
    total: int | None = None


class IdentityIn(BaseModel):
    kind: Literal["email", "phone", "telegram", "web"]
    value: str = Field(..., min_length=1, max_length=320)


class ContactIn(BaseModel):
    name: str = Field("", max_length=200)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=100)
    lifecycle: Literal["lead", "qualified", "customer", "churned"] = "lead"
    responsible_id: UUID | None = None
    source: SourceIn | None = None


class ContactPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    attributes: dict[str, Any] | None = None
    tags: list[str] | None = Field(None, max_length=100)
    add_tags: list[str] | None = Field(None, max_length=100)
    remove_tags: list[str] | None = Field(None, max_length=100)
    lifecycle: Literal["lead", "qualified", "customer", "churned"] | None = None
    responsible_id: UUID | None = None
    company_id: UUID | None = None
    identities: list[IdentityIn] | None = Field(None, max_length=20)


class IdOut(BaseModel):
    id: UUID


class AttachmentIn(BaseModel):
    """A file uploaded with `POST /api/attachments`, named by its SHA-256."""

    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    filename: str = Field(..., min_length=1, max_length=255)
    content_type: str | None = Field(None, max_length=255)


class MessageIn(BaseModel):
    text: str = Field(..., min_length=1, max_length=100_000)
    internal: bool = False
    channel: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,32}$")
    client_message_id: UUID | None = Field(
        None, description="idempotency key: the same id twice records one reply"
    )
    attachments: list[AttachmentIn] = Field(
        default_factory=list, max_length=20, description="uploaded files to send with a reply"
    )
    document_ids: list[UUID] = Field(
        default_factory=list,
        max_length=20,
        description="issued documents whose PDFs go with a reply (one alone is recorded as "
        "sent to the client)",
    )


class MessageOut(BaseModel):
    message_id: UUID
    internal: bool
    state: str


class AssignIn(BaseModel):
    assignee_id: UUID | Literal["me"] | None = None


class StatusIn(BaseModel):
    status: Literal["open", "pending", "resolved", "snoozed"]
    snoozed_until: Instant | None = None


class TaskIn(BaseModel):
    title: str = Field(..., min_length=1, max_length=500)
    type: Literal[
        "call", "email", "sms", "whatsapp", "telegram", "web", "meeting", "proposal", "other"
    ] = "other"
    due_at: Instant | None = None
    assignee_id: UUID | Literal["me"] | None = None
    contact_id: UUID | None = None
    deal_id: UUID | None = None
    conversation_id: UUID | None = None
    notes: str = Field("", max_length=10_000)


class RescheduleIn(BaseModel):
    due_at: Instant


class AttributeIn(BaseModel):
    key: str = Field(..., pattern=r"^[a-z][a-z0-9_]{0,62}$")
    label: str = Field(..., min_length=1, max_length=200)
    type: Literal["text", "number", "date", "choice", "multi_choice", "boolean"]
    options: list[str] = Field(default_factory=list, max_length=200)
    personal: bool = False
    scope: Literal["contact", "company"] = "contact"


class UserIn(BaseModel):
    email: str = Field(..., max_length=320)
    role: Literal["admin", "manager", "operator", "auditor"]
    name: str = Field("", max_length=200)
    password: str | None = Field(None, min_length=8, max_length=200)
    locale: Literal["en", "ru"] = "en"


class UserCreatedOut(BaseModel):
    id: UUID
    token: str = Field(..., description="shown once; store it now")


class ErrorOut(BaseModel):
    """Every refusal but 422: `detail` says why, in one sentence."""

    detail: str


class FieldError(BaseModel):
    """One reason a request was not valid, and where (`["body", "text"]`, `["query", "limit"]`)."""

    model_config = ConfigDict(extra="allow")
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Every 422: `detail` is a list naming each field that is wrong, FastAPI's own shape."""

    detail: list[FieldError]


MAX_OFFSET = 2**63 - 1
"""The largest offset or position a paged list takes: what a database integer column holds
(a larger one is a 422, not an `OverflowError` in the driver)."""

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="how many rows to skip")]
"""The `offset` of every paged list."""
