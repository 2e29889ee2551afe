"""Request and response models of the sales API: pipelines, deals, stage history, hand-over.

Money goes out as ``{"amount": "1900.00", "currency": "RUB"}``: a decimal string, exact, with
its currency beside it. The views keep integer minor units; those never reach a client, so a
client never has to know how many decimals a currency has. Decimals come in as strings (exact)
or numbers; the domain checks them and answers 422 with the field's path when they are wrong.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.money import Money
from threadline.services.api.schemas import CurrencyCode
from threadline.services.hand_over import ALL_KINDS, HandOverKind

DecimalIn = (
    Annotated[str, Field(max_length=40)] | int | Annotated[float, Field(allow_inf_nan=False)]
)
"""A decimal as a string ("1900.50", exact) or a number."""

Meaning = Literal["open", "won", "lost"]
Probability = Annotated[int, Field(ge=0, le=100, description="percent")]
StaleDays = Annotated[int, Field(ge=0, le=3650, description="0: never stale")]
StageId = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Annotated[str, Field(max_length=200)]


class MoneyOut(BaseModel):
    """An amount with its currency; never added to an amount of another currency."""

    amount: str = Field(..., examples=["1900.00"])
    currency: str = Field(..., examples=["RUB"])

    @classmethod
    def of_minor(cls, minor: int, currency: str) -> MoneyOut:
        money = Money.from_minor(minor, currency)
        return cls(amount=str(money.amount), currency=money.currency)


# -- pipelines --------------------------------------------------------------------------------


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=120)
    meaning: Meaning = "open"
    probability: Probability | None = Field(None, description="default: by meaning")
    stale_days: StaleDays = 0


class NewStageIn(StageIn):
    position: Annotated[int, Field(ge=0, le=1000)] | None = Field(
        None, description="0-based place among the stages; default: last"
    )


class PipelineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=120)
    stages: list[StageIn] = Field(..., min_length=1, max_length=50)
    lost_reasons: list[Reason] = Field(default_factory=list, max_length=100)


class PipelinePatch(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=120)
    lost_reasons: list[Reason] | None = Field(None, max_length=100)
    archived: bool | None = None


class StagePatch(BaseModel):
    """Only the fields given change; the stage's id and meaning never do."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=120)
    probability: Probability | None = None
    stale_days: StaleDays | None = None


class StageOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order: list[StageId] = Field(..., min_length=1, max_length=50, description="every stage id")


class StageOut(BaseModel):
    id: str
    name: str
    meaning: str
    probability: int
    stale_days: int
    position: int


class PipelineOut(BaseModel):
    id: str
    name: str
    archived: bool
    lost_reasons: list[str]
    stages: list[StageOut]
    created_at: str
    updated_at: str


class PipelineListOut(BaseModel):
    items: list[PipelineOut]


# -- deals ------------------------------------------------------------------------------------


class DealLineIn(BaseModel):
    """A line item. With `product_id`, what is left out (name, price, cost, VAT) comes from the
    catalogue. `discount` is in percent; a negative `quantity` is a refund."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, max_length=64, description="keep a line's id across changes")
    product_id: UUID | None = None
    name: str | None = Field(None, max_length=500)
    quantity: DecimalIn = 1
    price: DecimalIn | None = None
    cost: DecimalIn | None = None
    discount: DecimalIn | None = None
    vat: Literal["standard", "reduced", "zero", "none"] | None = None
    vat_included: bool | None = None
    unit: str | None = Field(None, max_length=20)

    def raw(self) -> dict[str, Any]:
        """As the domain takes a line: only what was given (the catalogue fills the rest)."""
        values = self.model_dump(exclude_none=True)
        if "product_id" in values:
            values["product_id"] = str(values["product_id"])
        return values


Lines = Annotated[list[DealLineIn], Field(max_length=200)]


class DealIn(BaseModel):
    """A new deal: a contact and / or a company; without lines, `amount` makes one line."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(..., min_length=1, max_length=300)
    pipeline_id: UUID
    stage_id: StageId | None = Field(None, description="default: the first open stage")
    contact_id: UUID | None = None
    company_id: UUID | None = None
    manager_id: UUID | Literal["me"] | None = None
    currency: CurrencyCode = "RUB"
    lines: Lines = Field(default_factory=list)
    amount: DecimalIn | None = None
    expected_close: str | None = Field(None, max_length=10, description="YYYY-MM-DD")
    conversation_id: UUID | None = Field(
        None, description="the conversation it came from: linked, and its inquiry's source"
    )


class DealPatch(BaseModel):
    """Only the fields given change; `probability: null` goes back to the stage's default,
    `expected_close`, `manager_id` or `company_id` null clear it."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=300)
    expected_close: str | None = Field(None, max_length=10, description="YYYY-MM-DD")
    probability: Probability | None = None
    manager_id: UUID | Literal["me"] | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None


class DealLinesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: Lines


class StageMoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage_id: StageId
    reason: Reason = Field("", description="needed when the stage is a lost one")
    pipeline_id: UUID | None = Field(None, description="move to another pipeline's stage")


class WonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage_id: StageId | None = Field(None, description="default: the first won stage")


class LostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(..., description="one of the pipeline's lost reasons")
    stage_id: StageId | None = Field(None, description="default: the first lost stage")


class ConversationLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: UUID


class DealLineOut(BaseModel):
    id: str
    position: int
    product_id: str | None
    name: str
    unit: str
    quantity: str
    price: MoneyOut
    cost: MoneyOut
    discount: str = Field(..., description="percent")
    vat: str
    vat_rate: str | None = Field(..., description="percent; null: without VAT")
    vat_included: bool
    net: MoneyOut
    vat_amount: MoneyOut
    total: MoneyOut
    cost_total: MoneyOut
    profit: MoneyOut


class DealOut(BaseModel):
    """A deal: money with its currency; `lines` only on the single deal."""

    id: str
    title: str
    pipeline_id: str
    pipeline: str
    stage_id: str
    stage: str
    stage_meaning: str
    status: str
    contact_id: str | None
    company_id: str | None
    manager_id: str | None
    currency: str
    net: MoneyOut
    vat: MoneyOut
    total: MoneyOut
    cost: MoneyOut
    profit: MoneyOut
    probability: int
    probability_manual: bool
    expected_close: str | None
    source: dict[str, Any]
    lost_reason: str | None
    stage_entered_at: str
    created_at: str
    updated_at: str
    closed_at: str | None
    created_by: str
    lines: list[DealLineOut] | None = None
    conversations: list[str] | None = None


class MoveOut(BaseModel):
    outcome: Literal["moved", "won", "lost", "unchanged"]
    deal: DealOut


class DealListOut(BaseModel):
    items: list[DealOut]
    total: int


class HistoryEntryOut(BaseModel):
    at: str
    source: Literal["deal", "task", "communication"]
    kind: str
    actor: str
    title: str
    data: dict[str, Any]
    ref_id: str
    conversation_id: str | None
    channel: str | None
    direction: str | None


class HistoryOut(BaseModel):
    items: list[HistoryEntryOut]


class StageStayOut(BaseModel):
    """One stay of a deal in a stage: entered by `kind` (created, moved, won, lost)."""

    id: str
    deal_id: str
    pipeline_id: str
    kind: str
    from_stage_id: str | None
    from_stage: str | None = Field(..., description="the stage's current name")
    stage_id: str
    stage: str = Field(..., description="the stage's current name")
    entered_at: str
    left_at: str | None
    actor: str
    manager_id: str | None
    contact_id: str | None
    amount: MoneyOut = Field(..., description="the deal's total at that moment")
    probability: int
    reason: str | None
    seconds_in_stage: float = Field(..., description="until it left, or until now")


class StageHistoryOut(BaseModel):
    items: list[StageStayOut]


# -- hand-over --------------------------------------------------------------------------------


class HandOverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_user_ids: list[UUID] = Field(
        ..., min_length=1, max_length=50, description="several: shared round-robin"
    )
    kinds: list[HandOverKind] = Field(default_factory=lambda: list(ALL_KINDS), min_length=1)


class HandOverOut(BaseModel):
    correlation_id: str
    contacts: int
    deals: int
    tasks: int
    planned: dict[str, int] = Field(..., description="what the user had when it started")
