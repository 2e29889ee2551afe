"""Every name a rule's `when` can use: the event class it comes from and the facts it carries.

This table is the one place to add a trigger. Each event class of the log that rules see
is listed with its plain name (``MessageReceived`` is ``message.received``), the more
specific names some of its events also answer to (a form's message is ``form.submitted``
too; `events.to_trigger_event` decides which apply), and the facts a rule reads as
``event.<fact>``. Classes rules never see (rule bookkeeping, users, inboxes, ...) are
listed in `UNSEEN_EVENTS`; a test checks that every event class of the domain is in one
of the two. Names that no single event makes (the timer loop's date triggers, the
``conversation.unanswered`` shorthand, ``deal.stale``) are in `LOOP_TRIGGERS`.

The money flow (documents, contracts, payments, supplier orders) adds event names for
what people and imports do (``document.issued``, ``payment.received``, ``supplier_order.
confirmed``, ...) and date names the loop makes from the views (`MONEY_BEFORE`,
`MONEY_AFTER`; see `money_scans`): a contract expiring, an invoice or a supplier payment
due or overdue, a supplier order not confirmed. `AWAITED_TRIGGERS` (names listed before
anything made them, refused for new rules) is empty since they arrived.

The rule validator accepts these names, and the rule editor offers `OFFERED` (each has
a test that makes it fire) and shows each name's facts.
"""

from __future__ import annotations

from dataclasses import dataclass

# What every event carries beside its own facts.
COMMON_FACTS = (
    "type",
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "actor",
    "correlation_id",
)


@dataclass(frozen=True)
class EventTriggers:
    """The names one event class answers to and the facts it carries."""

    name: str  # the plain name, always among an event's names
    facts: tuple[str, ...]  # beside COMMON_FACTS
    also: tuple[str, ...] = ()  # more specific names some of these events answer to first


@dataclass(frozen=True)
class TriggerName:
    """One name a rule's `when.event` can use, with the facts a rule reads about it."""

    name: str
    facts: tuple[str, ...]
    source: str  # the event class (or "timer loop", "later release", "shorthand")


_MESSAGE = ("conversation_id", "contact_id", "channel", "direction", "text", "subject")
_TASK = ("task_id", "contact_id", "deal_id")
# Every deal event names its deal and its client; a move also says from where to where.
_DEAL = ("deal_id", "contact_id")
_DEAL_MOVE = (*_DEAL, "pipeline_id", "from_stage_id", "to_stage_id", "amount")

_DOCUMENT = (
    "document_id",
    "kind",
    "display_number",
    "number",
    "issued_on",
    "due_on",
    "amount",
    "vat",
    "deal_id",
    "contract_id",
    "supplier_order_id",
    "company_id",
    "contact_id",
    "title",
)
_CONTRACT = (
    "contract_id",
    "number",
    "signed_on",
    "starts_on",
    "ends_on",
    "amount",
    "deal_id",
    "company_id",
    "contact_id",
    "title",
)
_PAYMENT = (
    "payment_id",
    "direction",
    "amount",
    "paid_on",
    "company_id",
    "contact_id",
    "bank_document",
    "source",
    "counterparty",
    "purpose",
)
_ALLOCATION = (
    "payment_id",
    "target_kind",
    "target_id",
    "amount",
    "how",
    "deal_id",
    "company_id",
    "contact_id",
    "document_number",
    "outstanding",
    "paid_in_full",
)
ORDER_STATE_NAMES = (
    "supplier_order.sent",
    "supplier_order.confirmed",
    "supplier_order.received",
    "supplier_order.cancelled",
)

EVENT_TRIGGERS: dict[str, EventTriggers] = {
    # contacts
    "ContactCreated": EventTriggers(
        "contact.created",
        ("lifecycle", "source", "responsible_id"),
        also=("lead.created",),
    ),
    "ContactIdentityAdded": EventTriggers("contact.identity_added", ("kind",)),
    "ContactRenamed": EventTriggers("contact.renamed", ()),
    "ContactAttributesChanged": EventTriggers(
        "contact.attributes_changed",
        ("values", "changed"),
        also=("contact.attribute_changed",),
    ),
    "ContactTagsAdded": EventTriggers("contact.tags_added", ("tags",), also=("tag.added",)),
    "ContactTagsRemoved": EventTriggers("contact.tags_removed", ("tags",)),
    "ContactResponsibleAssigned": EventTriggers(
        "contact.responsible_assigned", ("responsible_id",)
    ),
    "ContactLifecycleChanged": EventTriggers("contact.lifecycle_changed", ("lifecycle",)),
    "ContactCompanyLinked": EventTriggers("contact.company_linked", ("company_id",)),
    "ContactMerged": EventTriggers("contact.merged", ("survivor_id",)),
    # e.g. a webhook that asks the shop's own systems to forget the client too
    "ContactForgotten": EventTriggers("contact.forgotten", ("request_id",)),
    "ContactConsentGiven": EventTriggers(
        "contact.consent_given", ("purpose", "text_version", "via")
    ),
    "ContactConsentWithdrawn": EventTriggers("contact.consent_withdrawn", ("purpose", "via")),
    "ContactAbsorbed": EventTriggers(
        "contact.absorbed", ("duplicate_id", "tags", "values", "responsible_id", "source")
    ),
    "ContactOptedOut": EventTriggers("contact.opted_out", ("channel", "reason")),
    "ContactOptedIn": EventTriggers("contact.opted_in", ("channel", "reason")),
    # companies
    "CompanyCreated": EventTriggers("company.created", ("name",)),
    "CompanyRenamed": EventTriggers("company.renamed", ("name",)),
    "CompanyAttributesChanged": EventTriggers("company.attributes_changed", ("values",)),
    "CompanyRolesChanged": EventTriggers("company.roles_changed", ("roles",)),
    "CompanyLegalFormChanged": EventTriggers("company.legal_form_changed", ("legal_form",)),
    "CompanyRequisitesChanged": EventTriggers("company.requisites_changed", ()),
    "CompanyGroupChanged": EventTriggers("company.group_changed", ("client_group",)),
    # conversations
    "ConversationStarted": EventTriggers(
        "conversation.started",
        ("contact_id", "channel", "thread_key", "inbox_id", "subject"),
        also=("conversation.opened",),
    ),
    "ConversationAssigned": EventTriggers("conversation.assigned", ("assignee_id",)),
    "ConversationStatusChanged": EventTriggers(
        "conversation.status_changed",
        ("status", "snoozed_until"),
        also=("conversation.opened", "conversation.resolved"),
    ),
    "ConversationRead": EventTriggers("conversation.read", ()),
    # messages and calls
    "MessageReceived": EventTriggers(
        "message.received",
        (*_MESSAGE, "dedup_key", "attachments", "metadata", "source"),
        also=("form.submitted", "call.received"),
    ),
    "MessageSendRequested": EventTriggers(
        "message.send_requested", (*_MESSAGE, "attachments"), also=("message.sent",)
    ),
    "MessageNoteAdded": EventTriggers("message.note_added", _MESSAGE),
    "MessageDeliveryAttempted": EventTriggers("message.delivery_attempted", ("attempt",)),
    "MessageDelivered": EventTriggers("message.delivered", ("provider_id", "status")),
    "MessageDeliveryFailed": EventTriggers(
        "message.delivery_failed", ("reason", "permanent", "retry_at", "problem")
    ),
    "MessageDeliveryConfirmed": EventTriggers("message.delivery_confirmed", ("status",)),
    "CallUpdated": EventTriggers(
        "call.updated", ("status", "outcome", "duration", "recording_url")
    ),
    "CallMissed": EventTriggers("call.missed", ("status",)),
    # tasks
    "TaskCreated": EventTriggers(
        "task.created",
        (*_TASK, "type", "due_at", "assignee_id", "conversation_id", "title"),
    ),
    "TaskCompleted": EventTriggers("task.completed", (*_TASK, "reason")),
    "TaskCancelled": EventTriggers("task.cancelled", _TASK),
    "TaskRescheduled": EventTriggers("task.rescheduled", (*_TASK, "due_at")),
    "TaskReassigned": EventTriggers("task.reassigned", (*_TASK, "assignee_id")),
    "ReplyTaskMarkCreated": EventTriggers("reply.task_mark_created", ("conversation_id",)),
    "ReplyTaskLinked": EventTriggers("reply.task_linked", ("task_id",)),
    # deals (a deal event's contact is the deal's contact; `deal.*` facts read the deal)
    "DealCreated": EventTriggers(
        "deal.created",
        (
            *_DEAL,
            "pipeline_id",
            "stage_id",
            "company_id",
            "manager_id",
            "currency",
            "amount",
            "probability",
            "expected_close",
            "source",
            "title",
        ),
    ),
    "DealStageChanged": EventTriggers("deal.stage_changed", (*_DEAL_MOVE, "probability")),
    "DealWon": EventTriggers("deal.won", _DEAL_MOVE),
    "DealLost": EventTriggers("deal.lost", (*_DEAL_MOVE, "reason")),
    "DealLinesChanged": EventTriggers("deal.lines_changed", (*_DEAL, "lines", "amount")),
    "DealDetailsChanged": EventTriggers(
        "deal.details_changed", (*_DEAL, "title", "expected_close")
    ),
    "DealProbabilitySet": EventTriggers("deal.probability_set", (*_DEAL, "probability", "manual")),
    "DealManagerChanged": EventTriggers("deal.manager_changed", (*_DEAL, "manager_id")),
    "DealClientChanged": EventTriggers(
        "deal.client_changed", (*_DEAL, "company_id", "previous_contact_id")
    ),
    "DealConversationLinked": EventTriggers(
        "deal.conversation_linked", (*_DEAL, "conversation_id")
    ),
    # the money flow: documents, contracts, payments, supplier orders (each names its own id:
    # document_id, contract_id, payment_id, supplier_order_id)
    "DocumentIssued": EventTriggers("document.issued", _DOCUMENT),
    "DocumentSent": EventTriggers(
        "document.sent", ("document_id", "message_id", "conversation_id", "channel", "contact_id")
    ),
    "DocumentVoided": EventTriggers("document.voided", ("document_id", "reason")),
    "ContractRegistered": EventTriggers("contract.registered", _CONTRACT),
    "ContractChanged": EventTriggers(
        "contract.changed", ("contract_id", "changes", "contact_id", "title")
    ),
    "ContractClosed": EventTriggers("contract.closed", ("contract_id", "reason", "contact_id")),
    # an incoming payment is also `payment.received` (the client paid)
    "PaymentRecorded": EventTriggers("payment.recorded", _PAYMENT, also=("payment.received",)),
    # the views add what it left to pay on an invoice: `outstanding`, `paid_in_full`
    "PaymentAllocated": EventTriggers("payment.allocated", _ALLOCATION),
    "PaymentAllocationRemoved": EventTriggers(
        "payment.allocation_removed", ("payment_id", "target_kind", "target_id", "amount", "reason")
    ),
    "PaymentMatchSuggested": EventTriggers(
        "payment.match_suggested", ("payment_id", "target_kind", "target_id", "amount", "reason")
    ),
    "PaymentSuggestionDismissed": EventTriggers(
        "payment.suggestion_dismissed", ("payment_id", "target_kind", "target_id")
    ),
    "SupplierOrderCreated": EventTriggers(
        "supplier_order.created",
        (
            "supplier_order_id",
            "supplier_id",
            "deal_id",
            "display_number",
            "amount",
            "currency",
            "payment_due_on",
        ),
    ),
    # sent, confirmed, received or cancelled: also `supplier_order.<state>`
    "SupplierOrderStateChanged": EventTriggers(
        "supplier_order.state_changed",
        ("supplier_order_id", "state", "document_id", "message_id", "expected_on", "note"),
        also=ORDER_STATE_NAMES,
    ),
    # what rules did: notifications and webhook calls
    "NotificationCreated": EventTriggers(
        "notification.created",
        ("user_id", "contact_id", "conversation_id", "email", "task_id", "text"),
    ),
    "NotificationEmailed": EventTriggers("notification.emailed", ("provider_id",)),
    "NotificationRead": EventTriggers("notification.read", ()),
    "WebhookRequested": EventTriggers("webhook.requested", ("url", "payload", "secret_set")),
    "WebhookAttempted": EventTriggers("webhook.attempted", ("status", "error", "done")),
    # campaigns
    "CampaignCreated": EventTriggers(
        "campaign.created",
        ("name", "template_slug", "template_id", "segment", "channel", "per_minute"),
    ),
    "CampaignStarted": EventTriggers("campaign.started", ("template_version",)),
    "CampaignAudienceQueued": EventTriggers(
        "campaign.audience_queued", ("count", "queued", "cursor")
    ),
    "CampaignAudienceResolved": EventTriggers("campaign.audience_resolved", ("total",)),
    "CampaignPaused": EventTriggers("campaign.paused", ()),
    "CampaignResumed": EventTriggers("campaign.resumed", ()),
    "CampaignFinished": EventTriggers("campaign.finished", ("reason",)),
    "CampaignTestSent": EventTriggers(
        "campaign.test_sent", ("contact_id", "message_id", "channel")
    ),
    "CampaignRecipientQueued": EventTriggers(
        "campaign.recipient_queued", ("campaign_id", "contact_id", "channel")
    ),
    "CampaignRecipientSent": EventTriggers(
        "campaign.recipient_sent", ("message_id", "channel", "contact_id")
    ),
    "CampaignRecipientSkipped": EventTriggers("campaign.recipient_skipped", ("reason",)),
    # web forms
    "FormDefined": EventTriggers("form.defined", ("slug", "definition")),
    "FormChanged": EventTriggers("form.changed", ("definition",)),
    "FormEnabledChanged": EventTriggers("form.enabled_changed", ("enabled",)),
}

# Event classes rules never see: the automation's own bookkeeping and the set-up.
UNSEEN_EVENTS = frozenset(
    {
        "RuleCreated",
        "RuleChanged",
        "RuleEnabledChanged",
        "RuleFired",
        "TimerScheduled",
        "TimerFired",
        "TimerCancelled",
        "InboxCreated",
        "InboxReconfigured",
        "InboxEnabledChanged",
        "UserCreated",
        "UserPasswordChanged",
        "UserTokenIssued",
        "UserTokenRevoked",
        "UserRoleChanged",
        "UserLocaleChanged",
        "UserTimezoneChanged",
        "UserDeactivated",
        "IdentityClaimed",
        "IdentityClaimTransferred",
        "IdentityClaimReleased",
        "PolicyPublished",  # a consent policy's text: the business's own, no rule's business
        "PolicyRevised",
        "AttributeRegistryCreated",
        "AttributeDefined",
        "CalendarSaved",
        "CalendarChanged",
        "TemplateSaved",
        "TemplateChanged",
        "DocumentTemplateSaved",
        "DocumentTemplateChanged",
        "DocumentTemplateReset",
        # the sales set-up: pipelines and their stages, the catalogue, exchange rates
        "PipelineCreated",
        "PipelineRenamed",
        "StageAdded",
        "StageChanged",
        "StagesReordered",
        "LostReasonsChanged",
        "PipelineArchived",
        "ProductCreated",
        "ProductChanged",
        "ProductArchived",
        "PriceListCreated",
        "PriceListChanged",
        "PriceListPricesSet",
        "ExchangeRateRecorded",
        "ExchangeRateCorrected",
        # a document series' counter (the document itself is `document.issued`)
        "SeriesStarted",
        "NumberTaken",
        # the reports' inputs: sales plans, marketing spend, saved segments (read by reports,
        # campaigns and rules, never a cause), and the satisfaction survey's bookkeeping
        "SalesPlanSet",
        "SalesPlanChanged",
        "SalesPlanCleared",
        "MarketingSpendRecorded",
        "MarketingSpendCorrected",
        "MarketingSpendRemoved",
        "SegmentSaved",
        "SegmentChanged",
        "SegmentDeleted",
        "SurveySettingsSaved",
        "SurveySettingsChanged",
        "ConversationSurveyStarted",
        "SurveySent",
        "SurveyAnswered",
    }
)

_TASK_DATE = ("task_id", "due_at", "assignee_id")
# What the money-flow date triggers carry: the row as the views show it (money as
# {amount, currency}, which conditions order by amount), and its links.
_MONEY_DATE = ("date", "fires_at", "business_days", "company_id", "contact_id", "deal_id")
_CONTRACT_DATE = (*_MONEY_DATE, "contract_id", "number", "title", "signed_on", "ends_on",
                  "days_left", "amount", "amount_text")  # fmt: skip
_INVOICE_DATE = (*_MONEY_DATE, "document_id", "kind", "number", "title", "issued_on", "due_on",
                 "amount", "amount_text", "paid", "outstanding", "outstanding_text", "currency",
                 "days_left", "days_overdue")  # fmt: skip
_ORDER_DATE = (*_MONEY_DATE, "supplier_order_id", "supplier_id", "number", "state",
               "payment_due_on", "amount", "amount_text", "payable", "payable_text", "currency",
               "days_left", "days_overdue")  # fmt: skip

# Names the runner's loop makes (no single event), and the shorthand the validator rewrites.
LOOP_TRIGGERS: dict[str, tuple[str, ...]] = {
    "task.due_soon": _TASK_DATE,
    "task.overdue": _TASK_DATE,
    "birthday": ("date",),
    "schedule": ("occurrence",),
    "conversation.unanswered": _MESSAGE,  # message.received, delayed, cancelled by a reply
    # an open deal past its stage's "stale after N days", once per stay in the stage
    "deal.stale": ("deal_id", "stage_id", "stage_entered_at", "stale_days", "manager_id"),
    # the money flow's dates (`money_scans`): once per cause, on the rule's business calendar
    "contract.expiring": _CONTRACT_DATE,
    "payment.due": _INVOICE_DATE,
    "payment.overdue": _INVOICE_DATE,
    "supplier_order.unconfirmed": (*_ORDER_DATE, "sent_at", "expected_on", "days_waiting"),
    "supplier_payment.due": _ORDER_DATE,
    "supplier_payment.overdue": _ORDER_DATE,
}

# The money-flow date names, with how many days `when` counts by default: before the date
# (`when.days_before`) or after it (`when.days_after`). See `money_scans`.
MONEY_BEFORE: dict[str, int] = {
    "contract.expiring": 30,
    "payment.due": 1,
    "supplier_payment.due": 1,
}
MONEY_AFTER: dict[str, int] = {
    "payment.overdue": 1,
    "supplier_payment.overdue": 1,
    "supplier_order.unconfirmed": 2,  # days after it was sent
}
MONEY_DATES = (*MONEY_BEFORE, *MONEY_AFTER)

# Names earlier releases listed before anything could make them. The validator refuses
# new rules on them with `AWAITED_MESSAGE`; a rule stored before still loads. Empty since
# contracts and payments arrived (issue 14).
AWAITED_TRIGGERS: tuple[str, ...] = ()
AWAITED_MESSAGE = "is not made by anything yet; not available"

# The names the rule editor offers in its list, in this order (others are typed in).
OFFERED: tuple[str, ...] = (
    "message.received",
    "message.sent",
    "lead.created",
    "form.submitted",
    "call.received",
    "call.missed",
    "conversation.opened",
    "conversation.resolved",
    "conversation.unanswered",
    "task.created",
    "task.due_soon",
    "task.overdue",
    "contact.attribute_changed",
    "tag.added",
    "birthday",
    "schedule",
    "deal.created",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "deal.stale",
    "task.completed",
    "task.cancelled",
    "contract.expiring",
    "payment.due",
    "payment.overdue",
    "supplier_order.unconfirmed",
    "supplier_payment.due",
    "supplier_payment.overdue",
    "document.issued",
    "document.sent",
    "contract.registered",
    "payment.received",
    "payment.allocated",
    "supplier_order.confirmed",
)


def _all_names() -> dict[str, TriggerName]:
    names: dict[str, TriggerName] = {}
    for event_class, triggers in EVENT_TRIGGERS.items():
        facts = (*COMMON_FACTS, *triggers.facts)
        for name in (triggers.name, *triggers.also):
            known = names.get(name)
            merged = facts if known is None else tuple(dict.fromkeys((*known.facts, *facts)))
            source = event_class if known is None else f"{known.source}, {event_class}"
            names[name] = TriggerName(name, merged, source)
    for name, facts in LOOP_TRIGGERS.items():
        names.setdefault(name, TriggerName(name, ("type", *facts), "timer loop"))
    return names


TRIGGER_NAMES: dict[str, TriggerName] = _all_names()


def event_triggers(event_class: str) -> EventTriggers | None:
    """The entry of an event class (by class name), None for the ones rules never see."""
    return EVENT_TRIGGERS.get(event_class)


def is_trigger_name(name: str) -> bool:
    return name in TRIGGER_NAMES


def is_awaited(name: str) -> bool:
    """A name listed before anything made it: refused for new rules (none at present)."""
    return name in AWAITED_TRIGGERS


def facts_of(name: str) -> tuple[str, ...]:
    """The `event.<fact>` fields a rule on `name` can read (empty for an unknown name)."""
    known = TRIGGER_NAMES.get(name)
    return known.facts if known is not None else ()
