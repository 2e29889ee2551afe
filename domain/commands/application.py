"""The Threadline application service: every command that appends to the log.

Commands are small functions run by the group-commit writer against a unit of
work; each names who caused it (`actor`: ``user:<id>``, ``channel:<name>``,
``rule:<id>``, ``cli``) and carries a correlation id, so an auditor can follow
any effect back to its cause. Every command returns `Committed`, whose
notification id lets a caller wait until the projections show its change.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Protocol
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from eventsourcing.application import Application

from threadline.domain.commands.channels import ChannelCommands
from threadline.domain.commands.consent import ConsentCommands
from threadline.domain.commands.rules import RuleCommands
from threadline.domain.infrastructure.group_commit import Committed, GroupCommitWriter
from threadline.domain.infrastructure.moved_topics import register_moved_modules
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.attributes import (
    REGISTRY_ID,
    AttributeDefinition,
    AttributeRegistry,
    AttributeScope,
    coerce_value,
)
from threadline.domain.model.calendar import CalendarCommands
from threadline.domain.model.campaign import CampaignCommands
from threadline.domain.model.company import Company
from threadline.domain.model.contact import Contact, Lifecycle, clean_source, clean_tag
from threadline.domain.model.conversation import Conversation, ConversationStatus
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.form import FormCommands
from threadline.domain.model.identities import (
    identity_claim_id,
    normalise_email,
    normalise_identity,
)
from threadline.domain.model.identity_claim import IdentityClaim
from threadline.domain.model.inbound import (
    InboundMessage,
    IngestResult,
    ingest_command,
    ingest_plan,
)
from threadline.domain.model.message import Message
from threadline.domain.model.task import Task, TaskType
from threadline.domain.model.user import Role, User, is_time_zone, new_api_token, token_hash

register_moved_modules()

USER_EMAIL_KIND = "user-email"
MAX_REPLY = 100_000
_password_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Checked against when an account has no hash (unknown, inactive, never given a
    password), so that answer costs one argon2 verification like a wrong password does."""
    return _password_hasher.hash("threadline-no-such-account")


class PasswordStore(Protocol):
    """Where password hashes live: outside the log, which can never forget one.

    The services keep them encrypted in the state database
    (`threadline.services.credentials`); the log records only that a password was set.
    """

    def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    def password_hash(self, user_id: str) -> str | None: ...


class MemoryPasswordStore:
    """A `PasswordStore` for an application without a state database (domain tests)."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}

    def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        self._hashes[str(user_id)] = password_hash

    def password_hash(self, user_id: str) -> str | None:
        return self._hashes.get(str(user_id))


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidInput("password", "a password has at least 8 characters")
    return _password_hasher.hash(password)


def argon2_verify(password_hash: str, password: str) -> bool:
    """The one place a password is checked (the login tests count the calls)."""
    return _password_hasher.verify(password_hash, password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return argon2_verify(password_hash, password)
    except Exception:
        return False


def check_password(password_hash: str | None, password: str) -> bool:
    """`verify_password` that costs the same whether or not there is a hash to check."""
    if not password_hash:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(password_hash, password)


def _text(field: str, value: str, limit: int) -> str:
    if not value or not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"is limited to {limit} characters")
    return value


class Threadline(
    ChannelCommands,
    FormCommands,
    RuleCommands,
    CalendarCommands,
    CampaignCommands,
    ConsentCommands,
    Application[UUID],
):
    """The event-sourced core: contacts, conversations, messages, tasks, users."""

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

    def _on_commit(self, notification_id: int) -> None:
        for listener in list(self.commit_listeners):
            listener(notification_id)

    def close(self) -> None:
        self.writer.close()
        super().close()

    # -- inbound ---------------------------------------------------------------------------

    def ingest(self, message: InboundMessage) -> Committed[IngestResult]:
        """Append one inbound message (or report it as a duplicate); safe to call concurrently."""
        return self.writer.submit(ingest_command(message), ingest_plan(message))

    # -- conversations -----------------------------------------------------------------------

    def reply(
        self,
        conversation_id: UUID,
        text: str,
        actor: str,
        channel: str | None = None,
        html: str = "",
        message_id: UUID | None = None,
        correlation_id: str = "",
    ) -> Committed[UUID]:
        """Record `MessageSendRequested` on the conversation's channel (or another of the client's)."""
        _text("text", text, MAX_REPLY)
        new_id = message_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id  # an idempotent retry of the same reply
            conversation = unit.get(conversation_id, Conversation)
            unit.add(
                Message.request_send(
                    id=new_id,
                    conversation_id=conversation.id,
                    contact_id=conversation.contact_id,
                    channel=channel or conversation.channel,
                    personal={"text": text, "html": html},
                    attachments=[],
                    actor=actor,
                    correlation_id=correlation_id or str(new_id),
                )
            )
            if conversation.status == ConversationStatus.OPEN.value:
                conversation.change_status(
                    ConversationStatus.PENDING.value, None, actor, correlation_id or str(new_id)
                )
            return new_id

        return self.writer.submit(command)

    def add_note(
        self,
        conversation_id: UUID,
        text: str,
        actor: str,
        correlation_id: str = "",
        message_id: UUID | None = None,
    ) -> Committed[UUID]:
        """An internal note; `message_id` makes a retry of the same note one note, as a reply."""
        _text("text", text, MAX_REPLY)
        new_id = message_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id  # an idempotent retry of the same note
            conversation = unit.get(conversation_id, Conversation)
            unit.add(
                Message.add_note(
                    id=new_id,
                    conversation_id=conversation.id,
                    contact_id=conversation.contact_id,
                    channel=conversation.channel,
                    personal={"text": text},
                    actor=actor,
                    correlation_id=correlation_id or str(new_id),
                )
            )
            return new_id

        return self.writer.submit(command)

    def assign_conversation(
        self, conversation_id: UUID, assignee_id: UUID | None, actor: str, correlation_id: str = ""
    ) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            if assignee_id is not None:
                unit.get(assignee_id, User)
            conversation = unit.get(conversation_id, Conversation)
            if conversation.assignee_id != assignee_id:
                conversation.assign(assignee_id, actor, correlation_id or str(uuid4()))

        return self.writer.submit(command)

    def change_conversation_status(
        self,
        conversation_id: UUID,
        status: str,
        actor: str,
        snoozed_until: datetime | None = None,
        correlation_id: str = "",
    ) -> Committed[None]:
        try:
            new_status = ConversationStatus(status)
        except ValueError:
            raise InvalidInput(
                "status", f"one of {[s.value for s in ConversationStatus]}"
            ) from None
        if new_status is ConversationStatus.SNOOZED and snoozed_until is None:
            raise InvalidInput("snoozed_until", "a snoozed conversation needs a wake-up time")

        def command(unit: UnitOfWork) -> None:
            conversation = unit.get(conversation_id, Conversation)
            if (
                conversation.status != new_status.value
                or snoozed_until != conversation.snoozed_until
            ):
                conversation.change_status(
                    new_status.value,
                    snoozed_until if new_status is ConversationStatus.SNOOZED else None,
                    actor,
                    correlation_id or str(uuid4()),
                )

        return self.writer.submit(command)

    def mark_conversation_read(self, conversation_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            unit.get(conversation_id, Conversation).mark_read(actor, str(uuid4()))

        return self.writer.submit(command)

    # -- contacts ---------------------------------------------------------------------------

    def attribute_registry(self) -> AttributeRegistry | None:
        def command(unit: UnitOfWork) -> AttributeRegistry | None:
            return unit.find(REGISTRY_ID, AttributeRegistry)

        # Read-only: run in the caller's thread, not through the writer.
        return command(self._read_unit())

    def define_attribute(self, definition: AttributeDefinition, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            correlation_id = str(uuid4())
            registry = unit.find(REGISTRY_ID, AttributeRegistry)
            if registry is None:
                registry = unit.add(AttributeRegistry(actor=actor, correlation_id=correlation_id))
            registry.define(definition, actor, correlation_id)

        return self.writer.submit(command)

    def create_contact(
        self,
        actor: str,
        name: str,
        identities: list[tuple[str, str]] = (),  # type: ignore[assignment]
        attributes: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        source: dict[str, Any] | None = None,
        lifecycle: str = Lifecycle.LEAD.value,
        responsible_id: UUID | None = None,
    ) -> Committed[UUID]:
        normalised = [normalise_identity(k, v, self.default_region) for k, v in identities]
        if not name.strip() and not normalised:
            # Nothing would tell this row from the next "Unnamed client": refuse it.
            raise InvalidInput(
                "name", "a contact needs a name or an identity (e-mail, phone, Telegram id)"
            )
        cleaned_source = clean_source(source)
        cleaned_tags = sorted({clean_tag(t) for t in tags or []})
        _lifecycle(lifecycle)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            for identity in normalised:
                if unit.exists(identity.claim_id):
                    raise Conflict(f"{identity.kind} {identity.value} belongs to another contact")
            contact = unit.add(
                Contact(
                    personal={
                        "display_name": name.strip() or (normalised[0].value if normalised else ""),
                        "identities": [i.as_dict() for i in normalised],
                    },
                    lifecycle=lifecycle,
                    source=cleaned_source,
                    responsible_id=responsible_id,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            for identity in normalised:
                unit.add(
                    IdentityClaim.claim(
                        str(identity.kind), identity.value, contact.id, actor, correlation_id
                    )
                )
            if attributes:
                _set_attributes(unit, contact, attributes, actor, correlation_id)
            if cleaned_tags:
                contact.add_tags(cleaned_tags, actor, correlation_id)
            return contact.id

        return self.writer.submit(command)

    def update_contact(
        self,
        contact_id: UUID,
        actor: str,
        name: str | None = None,
        attributes: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        lifecycle: str | None = None,
        responsible_id: UUID | bool | None = False,
        identities: list[tuple[str, str]] | None = None,
        company_id: UUID | bool | None = False,
    ) -> Committed[None]:
        """Change what is given; `False` for the optional ids means "leave as it is"."""
        if name is not None and not name.strip():
            raise InvalidInput("name", "must not be empty")
        if lifecycle is not None:
            _lifecycle(lifecycle)
        wanted_tags = None if tags is None else {clean_tag(t) for t in tags}
        plus = {clean_tag(t) for t in add_tags or []}
        minus = {clean_tag(t) for t in remove_tags or []}
        normalised = [normalise_identity(k, v, self.default_region) for k, v in identities or []]
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            contact = unit.get(contact_id, Contact)
            if name is not None and name.strip() != contact.display_name:
                contact.rename({"display_name": name.strip()}, actor, correlation_id)
            if attributes:
                _set_attributes(unit, contact, attributes, actor, correlation_id)
            current = set(contact.tags)
            target = (wanted_tags if wanted_tags is not None else current) | plus
            target -= minus
            if target - current:
                contact.add_tags(sorted(target - current), actor, correlation_id)
            if current - target:
                contact.remove_tags(sorted(current - target), actor, correlation_id)
            if lifecycle is not None and lifecycle != contact.lifecycle:
                contact.change_lifecycle(lifecycle, actor, correlation_id)
            if responsible_id is not False and responsible_id != contact.responsible_id:
                if isinstance(responsible_id, UUID):
                    unit.get(responsible_id, User)
                contact.assign_responsible(
                    responsible_id if isinstance(responsible_id, UUID) else None,
                    actor,
                    correlation_id,
                )
            if company_id is not False and company_id != contact.company_id:
                if isinstance(company_id, UUID):
                    unit.get(company_id, Company)
                contact.link_company(
                    company_id if isinstance(company_id, UUID) else None, actor, correlation_id
                )
            for identity in normalised:
                claim = unit.find(identity.claim_id, IdentityClaim)
                if claim is not None and claim.owner_id != contact.id:
                    raise Conflict(f"{identity.kind} {identity.value} belongs to another contact")
                if claim is None:
                    unit.add(
                        IdentityClaim.claim(
                            str(identity.kind), identity.value, contact.id, actor, correlation_id
                        )
                    )
                if not contact.has_identity(str(identity.kind), identity.value):
                    contact.add_identity(
                        str(identity.kind), {"value": identity.value}, actor, correlation_id
                    )

        return self.writer.submit(command)

    # -- companies --------------------------------------------------------------------------

    def create_company(
        self, actor: str, name: str, attributes: dict[str, Any] | None = None
    ) -> Committed[UUID]:
        _text("name", name, 300)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            company = unit.add(
                Company(name=name.strip(), actor=actor, correlation_id=correlation_id)
            )
            if attributes:
                registry = unit.find(REGISTRY_ID, AttributeRegistry)
                values, personal = _coerce_all(registry, attributes, AttributeScope.COMPANY)
                company.change_attributes(values, personal, actor, correlation_id)
            return company.id

        return self.writer.submit(command)

    # -- tasks ------------------------------------------------------------------------------

    def create_task(
        self,
        actor: str,
        title: str,
        type: str = TaskType.OTHER.value,
        due_at: datetime | None = None,
        assignee_id: UUID | None = None,
        contact_id: UUID | None = None,
        deal_id: UUID | None = None,
        conversation_id: UUID | None = None,
        notes: str = "",
    ) -> Committed[UUID]:
        _text("title", title, 500)
        try:
            task_type = TaskType(type)
        except ValueError:
            raise InvalidInput("type", f"one of {[t.value for t in TaskType]}") from None
        if due_at is not None and due_at.tzinfo is None:
            raise InvalidInput("due_at", "a due time needs a time zone")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            linked_contact = contact_id
            if assignee_id is not None:
                unit.get(assignee_id, User)
            if contact_id is not None:
                unit.get(contact_id, Contact)
            if conversation_id is not None:
                conversation = unit.get(conversation_id, Conversation)
                linked_contact = linked_contact or conversation.contact_id
            task = unit.add(
                Task(
                    type=task_type.value,
                    due_at=due_at,
                    assignee_id=assignee_id,
                    contact_id=linked_contact,
                    deal_id=deal_id,
                    conversation_id=conversation_id,
                    personal={"title": title.strip(), "notes": notes},
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            return task.id

        return self.writer.submit(command)

    def complete_task(self, task_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            task = unit.get(task_id, Task)
            if not task.is_open:
                raise Conflict(f"task {task_id} is already {task.status}")
            task.complete(task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    def cancel_task(self, task_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            task = unit.get(task_id, Task)
            if not task.is_open:
                raise Conflict(f"task {task_id} is already {task.status}")
            task.cancel(task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    def reschedule_task(self, task_id: UUID, due_at: datetime, actor: str) -> Committed[None]:
        if due_at.tzinfo is None:
            raise InvalidInput("due_at", "a due time needs a time zone")

        def command(unit: UnitOfWork) -> None:
            task = unit.get(task_id, Task)
            if not task.is_open:
                raise Conflict(f"task {task_id} is already {task.status}")
            task.reschedule(due_at, task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    def reassign_task(self, task_id: UUID, assignee_id: UUID | None, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            if assignee_id is not None:
                unit.get(assignee_id, User)
            task = unit.get(task_id, Task)
            task.reassign(assignee_id, task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    # -- users ------------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        role: str,
        actor: str,
        name: str = "",
        password: str | None = None,
        locale: str = "en",
    ) -> Committed[tuple[UUID, str]]:
        """Create an account and issue its first API token; returns (user id, token)."""
        address = normalise_email(email)
        try:
            user_role = Role(role)
        except ValueError:
            raise InvalidInput("role", f"one of {[r.value for r in Role]}") from None
        password_hash = hash_password(password) if password else None
        token = new_api_token()
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> tuple[UUID, str]:
            if unit.exists(identity_claim_id(USER_EMAIL_KIND, address)):
                raise Conflict(f"a user with email {address} exists")
            user = unit.add(
                User(
                    email=address,
                    name=name.strip() or address.split("@")[0],
                    role=user_role.value,
                    password_set=password_hash is not None,
                    locale=locale,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            unit.add(IdentityClaim.claim(USER_EMAIL_KIND, address, user.id, actor, correlation_id))
            user.issue_token(token_hash(token), "initial", actor, correlation_id)
            return user.id, token

        committed = self.writer.submit(command)
        if password_hash is not None:
            # After the commit: a refused command (the e-mail is taken) leaves no hash behind.
            self.passwords.set_password_hash(committed.value[0], password_hash)
        return committed

    def issue_token(self, user_id: UUID, label: str, actor: str) -> Committed[str]:
        token: str = new_api_token()

        def command(unit: UnitOfWork) -> str:
            unit.get(user_id, User).issue_token(token_hash(token), label, actor, str(uuid4()))
            return token

        return self.writer.submit(command)

    def set_password(self, user_id: UUID, password: str, actor: str) -> Committed[None]:
        """Record that the password changed (no hash in the log) and store its hash."""
        password_hash = hash_password(password)

        def command(unit: UnitOfWork) -> None:
            unit.get(user_id, User).change_password(actor, str(uuid4()))

        committed = self.writer.submit(command)
        self.passwords.set_password_hash(user_id, password_hash)
        return committed

    def set_locale(self, user_id: UUID, locale: str, actor: str) -> Committed[None]:
        if locale not in ("en", "ru"):
            raise InvalidInput("locale", "en or ru")

        def command(unit: UnitOfWork) -> None:
            user = unit.get(user_id, User)
            if user.locale != locale:
                user.change_locale(locale, actor, str(uuid4()))

        return self.writer.submit(command)

    def set_timezone(self, user_id: UUID, timezone: str, actor: str) -> Committed[None]:
        """Show this user's times in `timezone` (an IANA name; "" for the default)."""
        if timezone and not is_time_zone(timezone):
            raise InvalidInput("timezone", "an IANA time zone such as Europe/Moscow")

        def command(unit: UnitOfWork) -> None:
            user = unit.get(user_id, User)
            if user.timezone != timezone:
                user.change_timezone(timezone, actor, str(uuid4()))

        return self.writer.submit(command)

    def user_id_by_email(self, email: str) -> UUID | None:
        address = normalise_email(email)
        claim = self._read_unit().find(identity_claim_id(USER_EMAIL_KIND, address), IdentityClaim)
        return None if claim is None else claim.owner_id


def _lifecycle(value: str) -> Lifecycle:
    try:
        return Lifecycle(value)
    except ValueError:
        raise InvalidInput("lifecycle", f"one of {[v.value for v in Lifecycle]}") from None


def _coerce_all(
    registry: AttributeRegistry | None, attributes: dict[str, Any], scope: AttributeScope
) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for key, raw in attributes.items():
        if registry is None:
            raise InvalidInput(f"attributes.{key}", "no such attribute is defined")
        definition = registry.definition(key, scope)
        value = coerce_value(definition, raw)
        (personal if definition.personal else values)[key] = value
    return values, personal


def _set_attributes(
    unit: UnitOfWork, contact: Contact, attributes: dict[str, Any], actor: str, correlation_id: str
) -> None:
    registry = unit.find(REGISTRY_ID, AttributeRegistry)
    values, personal = _coerce_all(registry, attributes, AttributeScope.CONTACT)
    changed_values = {k: v for k, v in values.items() if contact.attributes.get(k) != v}
    changed_personal = {k: v for k, v in personal.items() if contact.attributes.get(k) != v}
    if changed_values or changed_personal:
        contact.change_attributes(changed_values, changed_personal, actor, correlation_id)
