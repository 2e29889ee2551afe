"""Call commands: a voice call's progress, from the provider's status callbacks."""

from __future__ import annotations

from uuid import UUID

from threadline.domain.commands.base import Commands
from threadline.domain.commands.delivery import message_correlation
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.message import CallOutcome, Message

MISSED_CALL_STATUSES = frozenset({"busy", "no-answer", "canceled", "failed"})
FINAL_CALL_STATUSES = MISSED_CALL_STATUSES | {"completed"}


class CallCommands(Commands):
    def record_call_status(
        self,
        call_message_id: UUID,
        status: str,
        actor: str,
        duration: int | None = None,
        recording_url: str | None = None,
    ) -> Committed[str | None]:
        """Apply one call status callback; repeated callbacks record nothing new.

        Returns the outcome recorded, or None when the callback changed nothing.
        """

        def command(unit: UnitOfWork) -> str | None:
            call = unit.get(call_message_id, Message)
            correlation_id = message_correlation(call)
            if status in MISSED_CALL_STATUSES:
                if call.call_outcome == CallOutcome.MISSED.value:
                    return None
                call.miss_call(status, actor, correlation_id)
                return CallOutcome.MISSED.value
            if recording_url:
                outcome = CallOutcome.VOICEMAIL.value
            elif status in ("completed", "in-progress"):
                # A call already missed or sent to voicemail stays so; "completed" then only
                # brings the duration.
                kept = (CallOutcome.MISSED.value, CallOutcome.VOICEMAIL.value)
                outcome = (
                    call.call_outcome if call.call_outcome in kept else CallOutcome.ANSWERED.value
                )
            else:
                outcome = call.call_outcome or CallOutcome.RINGING.value
            if call.call_status == status and call.call_outcome == outcome and not recording_url:
                return None
            if call.call_status in FINAL_CALL_STATUSES and status not in FINAL_CALL_STATUSES:
                return None  # a late "ringing" after "completed" changes nothing
            call.update_call(status, outcome, duration, recording_url, actor, correlation_id)
            return outcome

        return self.writer.submit(command)
