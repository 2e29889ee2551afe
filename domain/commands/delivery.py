"""Delivery commands: what happened to an outbound message at its provider.

The delivery worker records an attempt before it calls the provider, then the
outcome; a provider's later reports (status callbacks) only move a message
forward. The provider's id for a message is claimed like an identity, so a
callback finds our message without a view.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from threadline.domain.commands.base import Commands
from threadline.domain.commands.identity_claims import claim_identity, claim_owner
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.message import DeliveryState, Direction, Message

PROVIDER_REFERENCE_KIND = "provider"
PROVIDER_PROGRESS = {"queued": 0, "sent": 1, "delivered": 2}
"""How far an outbound message got at its provider; reports only ever move it forward."""


def provider_reference(channel: str, provider_id: str) -> tuple[str, str]:
    """The claim kind/value that maps a provider's id (a Twilio SID) back to our message."""
    return f"{PROVIDER_REFERENCE_KIND}:{channel}", provider_id


def message_correlation(message: Message) -> str:
    """Delivery events share the correlation id of the request that caused them."""
    return message.correlation_id or str(message.id)


class DeliveryCommands(Commands):
    def start_delivery_attempt(self, message_id: UUID, actor: str) -> Committed[int | None]:
        """Record an attempt before calling the provider; None when the message must not be
        sent (already delivered, failed for good, or an earlier attempt has no outcome)."""

        def command(unit: UnitOfWork) -> int | None:
            message = unit.get(message_id, Message)
            if message.direction != Direction.OUTBOUND.value:
                raise InvalidInput("message_id", "only outbound messages are delivered")
            if message.state != DeliveryState.REQUESTED.value or message.attempt_open:
                return None
            attempt = message.attempts + 1
            message.start_attempt(attempt, actor, message_correlation(message))
            return attempt

        return self.writer.submit(command)

    def record_delivered(
        self,
        message_id: UUID,
        provider_id: str,
        actor: str,
        channel: str = "",
        status: str = "sent",
    ) -> Committed[None]:
        """The provider took the message; `status` is its word then (`sent` or `queued`)."""

        def command(unit: UnitOfWork) -> None:
            message = unit.get(message_id, Message)
            if message.state == DeliveryState.DELIVERED.value:
                return
            correlation_id = message_correlation(message)
            message.mark_delivered(provider_id, actor, correlation_id, status)
            kind, value = provider_reference(channel or message.channel, provider_id)
            if claim_owner(unit, kind, value) is None:
                claim_identity(unit, kind, value, message.id, actor, correlation_id)

        return self.writer.submit(command)

    def record_delivery_failed(
        self,
        message_id: UUID,
        reason: str,
        permanent: bool,
        actor: str,
        retry_at: datetime | None = None,
        problem: str = "",
    ) -> Committed[None]:
        """`reason` is the technical detail; `problem` the plain reason operators read."""

        def command(unit: UnitOfWork) -> None:
            message = unit.get(message_id, Message)
            if message.state == DeliveryState.FAILED.value:
                return
            message.mark_failed(
                reason[:1000], permanent, actor, message_correlation(message), retry_at, problem
            )

        return self.writer.submit(command)

    def message_for_provider_id(self, channel: str, provider_id: str) -> UUID | None:
        """Which of our messages a provider's id belongs to (for status callbacks)."""
        return claim_owner(self._read_unit(), *provider_reference(channel, provider_id))

    def record_provider_status(
        self, message_id: UUID, status: str, reason: str, actor: str, problem: str = ""
    ) -> Committed[None]:
        """A provider's later word on an outbound message: sent, delivered, or failed after
        all. Reports come out of order (a `sent` after the `delivered`): a message only moves
        forward (queued, sent, delivered), so a late report records nothing."""

        def command(unit: UnitOfWork) -> None:
            message = unit.get(message_id, Message)
            correlation_id = message_correlation(message)
            if status in PROVIDER_PROGRESS:
                if message.state != DeliveryState.DELIVERED.value:
                    return  # failed already, or not handed over (yet): nothing to confirm
                reached = PROVIDER_PROGRESS.get(message.provider_status or "sent", 0)
                if PROVIDER_PROGRESS[status] > reached:
                    message.confirm_delivery(status, actor, correlation_id)
            elif (
                status in ("failed", "undelivered")
                and message.state != DeliveryState.FAILED.value
                and message.provider_status != "delivered"  # the handset has it already
            ):
                message.mark_failed(reason or status, True, actor, correlation_id, None, problem)

        return self.writer.submit(command)
