"""What a rule action is: one class that checks, prepares and applies one kind of `then` item.

An action class is a frozen dataclass of its typed settings, registered by its `kind`
(the key of the ``then`` item: ``{add_tag: vip}``) with `@register`, like channel
adapters. It answers three questions, at three moments:

- `validate` (a class method, when a rule is saved): is this item well formed? It
  returns the item's normalised JSON, which is what the log stores, or raises
  `RuleError` naming the offending path.
- `prepare` (when the rule fires, outside the write): what needs a read — a rendered
  template, the chosen assignee, a channel. It gets a `PrepareContext`.
- `apply` (inside the firing's unit of work): append the effect and describe it for
  the firing's record. It gets an `ApplyContext` and what `prepare` found.

`parse` builds the action from the stored JSON, once, when a rule is loaded.
Adding an action is adding one module to this package (`registry` finds it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar
from uuid import UUID, uuid5

from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.triggers.assignees import Assignee
from threadline.triggers.events import TriggerEvent
from threadline.triggers.outbound import Composed, Refusal
from threadline.triggers.rule_checks import SaveChecks
from threadline.triggers.templates import render


class AssigneeChooser(Protocol):
    def pick(self, assignee: Assignee, facts: Mapping[str, Any], rule_id: UUID) -> UUID | None:
        """The user an assignee setting names for this firing (None: nobody)."""
        ...


class MessageComposer(Protocol):
    def rule_message(
        self, template: str, wanted: str, facts: Mapping[str, Any], message_id: UUID
    ) -> Composed | Refusal:
        """`template` composed for the contact of `facts` on the `wanted` channel, or why not."""
        ...


def effect_id_for(firing: UUID, index: int) -> UUID:
    """The id of what the `index`-th action of a firing makes (a message, a notification...)."""
    return uuid5(firing, f"action-{index}")


@dataclass(frozen=True)
class PrepareContext:
    """What an action may read while its rule fires (before the write)."""

    rule_id: UUID
    rule_name: str
    event: TriggerEvent
    facts: Mapping[str, Any]
    now: datetime
    effect_id: UUID  # what `apply` will record the effect as (see `effect_id_for`)
    assignees: AssigneeChooser
    messages: MessageComposer

    def text(self, text: str) -> str:
        """A task title or a notification, rendered with the rule's facts."""
        rendered = render({"default": {"text": text}}, "default", self.facts)
        return rendered.text or text


@dataclass(frozen=True)
class ApplyContext:
    """Where an action appends its effect: the firing's unit of work and its identity."""

    unit: UnitOfWork
    event: TriggerEvent
    effect_id: UUID  # deterministic per firing and action index (`effect_id_for`)
    actor: str
    correlation_id: str
    contact: Contact | None  # the event's contact, if it has one


@dataclass(frozen=True)
class PreparedAction:
    """One action with what was looked up for it; `skip` says why it does nothing."""

    action: RuleAction
    skip: str = ""
    rendered: dict[str, Any] = field(default_factory=dict)
    channel: str = ""
    assignee_id: UUID | None = None
    due_at: datetime | None = None

    @property
    def kind(self) -> str:
        return self.action.item_kind


@dataclass(frozen=True)
class RuleAction(ABC):
    """One kind of `then` item. Subclasses are frozen dataclasses of their settings."""

    kind: ClassVar[str]
    # The keys of the action's object (nothing else reaches the log); empty: not an object.
    keys: ClassVar[frozenset[str]] = frozenset()
    # True for `stop`: a firing rule ends the list of rules for that event.
    stops: ClassVar[bool] = False

    @property
    def item_kind(self) -> str:
        """The key of the rule's `then` item (what the firing's effect names)."""
        return self.kind

    @classmethod
    @abstractmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        """The item's normalised value, as the log stores it; `RuleError` if it is wrong."""

    @classmethod
    @abstractmethod
    def parse(cls, spec: Any) -> RuleAction:
        """The action from its saved (normalised) value."""

    def prepare(self, context: PrepareContext) -> PreparedAction:
        """Look up what `apply` needs; errors here skip the action with their text."""
        return PreparedAction(self)

    @abstractmethod
    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        """Append the effect; return what the firing records of it (beside ``action``)."""


ACTIONS: dict[str, type[RuleAction]] = {}

ActionClass = TypeVar("ActionClass", bound=type[RuleAction])


def register(action: ActionClass) -> ActionClass:
    """Class decorator: make an action usable in rules under its `kind`."""
    ACTIONS[action.kind] = action
    return action


@dataclass(frozen=True)
class SkippedAction(RuleAction):
    """A saved item no action can run: its kind is not registered (a rule from a newer
    release), or its action cannot read it. The firing records it as skipped, with why."""

    kind: ClassVar[str] = ""
    name: str = ""
    reason: str = ""

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        raise NotImplementedError("such an item is refused when a rule is saved")

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(reason=str(spec))

    @property
    def item_kind(self) -> str:
        return self.name

    def prepare(self, context: PrepareContext) -> PreparedAction:
        return PreparedAction(self, skip=self.reason)

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        return {"skipped": prepared.skip}
