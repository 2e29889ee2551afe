"""The Threadline application service: every command that appends to the log.

Commands are small functions run by the group-commit writer against a unit of
work; each names who caused it (`actor`: ``user:<id>``, ``channel:<name>``,
``rule:<id>``, ``cli``) and carries a correlation id, so an auditor can follow
any effect back to its cause. Every command returns `Committed`, whose
notification id lets a caller wait until the projections show its change.

The commands live in one module per aggregate or use case (contacts, users,
tasks, conversations, ingest, delivery, ...), each a mixin; this class composes
them with the library's `Application` and owns the writer.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper

from threadline.domain.commands.attributes import AttributeCommands
from threadline.domain.commands.calendars import CalendarCommands
from threadline.domain.commands.calls import CallCommands
from threadline.domain.commands.campaigns import CampaignCommands
from threadline.domain.commands.companies import CompanyCommands
from threadline.domain.commands.consent import ConsentCommands
from threadline.domain.commands.contacts import ContactCommands
from threadline.domain.commands.contracts import ContractCommands
from threadline.domain.commands.conversations import ConversationCommands
from threadline.domain.commands.deals import DealCommands
from threadline.domain.commands.delivery import DeliveryCommands
from threadline.domain.commands.document_templates import DocumentTemplateCommands
from threadline.domain.commands.documents import DocumentCommands
from threadline.domain.commands.forget import ForgetCommands
from threadline.domain.commands.forms import FormCommands
from threadline.domain.commands.hand_over import HandOverCommands
from threadline.domain.commands.inboxes import InboxCommands
from threadline.domain.commands.ingest import IngestCommands
from threadline.domain.commands.marketing_spend import MarketingSpendCommands
from threadline.domain.commands.passwords import MemoryPasswordStore, PasswordStore
from threadline.domain.commands.payments import PaymentCommands
from threadline.domain.commands.pipelines import PipelineCommands
from threadline.domain.commands.products import ProductCommands
from threadline.domain.commands.rules import RuleCommands
from threadline.domain.commands.sales_plans import SalesPlanCommands
from threadline.domain.commands.saved_segments import SavedSegmentCommands
from threadline.domain.commands.supplier_orders import SupplierOrderCommands
from threadline.domain.commands.surveys import SurveyCommands
from threadline.domain.commands.tasks import TaskCommands
from threadline.domain.commands.templates import TemplateCommands
from threadline.domain.commands.users import UserCommands
from threadline.domain.infrastructure.group_commit import GroupCommitWriter
from threadline.domain.infrastructure.moved_topics import register_moved_modules
from threadline.domain.infrastructure.personal_cipher import PersonalDataMapper

register_moved_modules()


class Threadline(
    IngestCommands,
    ConversationCommands,
    ContactCommands,
    ForgetCommands,
    ConsentCommands,
    AttributeCommands,
    CompanyCommands,
    TaskCommands,
    UserCommands,
    InboxCommands,
    DeliveryCommands,
    CallCommands,
    RuleCommands,
    TemplateCommands,
    CalendarCommands,
    CampaignCommands,
    FormCommands,
    PipelineCommands,
    DealCommands,
    ProductCommands,
    DocumentTemplateCommands,
    DocumentCommands,
    ContractCommands,
    PaymentCommands,
    SupplierOrderCommands,
    SalesPlanCommands,
    HandOverCommands,
    SavedSegmentCommands,
    MarketingSpendCommands,
    SurveyCommands,
    Application[UUID],
):
    """The event-sourced core: contacts, conversations, messages, tasks, users, deals."""

    name = "Threadline"
    env: ClassVar[dict[str, str]] = {"IS_SNAPSHOTTING_ENABLED": "n"}

    def __init__(
        self, env: dict[str, str] | None = None, default_region: str | None = None
    ) -> None:
        super().__init__(env)
        self.default_region = default_region
        self.passwords: PasswordStore = MemoryPasswordStore()
        self.writer = GroupCommitWriter(self)
        self.commit_listeners: list[Any] = []
        self.writer.on_commit = self._on_commit

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper, sealing each event's personal part with its contact's key
        once the runtime hands it a keyring (`personal_cipher`)."""
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PersonalDataMapper
        )

    @property
    def personal_mapper(self) -> PersonalDataMapper:
        mapper = self.mapper
        assert isinstance(mapper, PersonalDataMapper)
        return mapper

    def _on_commit(self, notification_id: int) -> None:
        for listener in list(self.commit_listeners):
            listener(notification_id)

    def close(self) -> None:
        self.writer.close()
        super().close()
