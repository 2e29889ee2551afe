"""Bulk hand-over of a departing user's clients, open deals and open tasks (admin or manager).

The plan is made from the views and carried out by `threadline.services.hand_over`: one event
per item, one correlation id for the whole hand-over, items that changed hands meanwhile left
alone. The answer comes once the views show the new owners.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from threadline.services.api.deal_schemas import HandOverIn, HandOverOut
from threadline.services.api.deps import ManagerDep, RuntimeDep
from threadline.services.hand_over import hand_over

router = APIRouter(prefix="/api/users", tags=["admin"])


@router.post("/{user_id}/hand-over", response_model=HandOverOut)
def hand_over_user(
    user_id: UUID, body: HandOverIn, runtime: RuntimeDep, principal: ManagerDep
) -> HandOverOut:
    """Give `user_id`'s items of `kinds` to `to_user_ids` (several: shared round-robin).

    Returns how many items of each kind changed hands, what the user had (`planned`), and
    the correlation id every event of the hand-over carries.
    """
    outcome = hand_over(
        runtime.app, runtime.views, user_id, body.to_user_ids, principal.actor, body.kinds
    )
    runtime.wait_for_views(outcome.notification_id)
    return HandOverOut(
        correlation_id=outcome.correlation_id,
        contacts=outcome.contacts,
        deals=outcome.deals,
        tasks=outcome.tasks,
        planned=outcome.planned,
    )
