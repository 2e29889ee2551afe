"""Who a rule's task, assignment or notification goes to: the `assignee` part of an action.

``assignee`` is one of `ASSIGNEE_MODES`: the contact's (or task's, or conversation's)
``responsible`` operator — with a ``team`` the least busy of it when there is none —,
the ``deal_manager`` (the manager of the event's deal, else as ``responsible``), a ``round_robin`` or the ``least_busy`` of a team, one ``user`` (``user:<id>`` or
``user_id``), or ``unassigned``. A team lists user ids and ``role:<role>`` for every
active user with that role. Checked when the rule is saved (`validate_assignee`),
parsed into `Assignee`, and resolved when the rule fires (`AssigneePicker`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.projections.sql import ViewReader
from threadline.projections.tasks import open_task_counts
from threadline.projections.users import active_user_ids_with_role
from threadline.triggers.rule_checks import RuleError, string
from threadline.triggers.state_store import StateStore

ASSIGNEE_MODES = (
    "responsible",
    "deal_manager",
    "round_robin",
    "least_busy",
    "user",
    "unassigned",
)
# The modes that name one person and fall back to the least busy of a `team`.
OWNER_MODES = ("responsible", "deal_manager")
MAX_TEAM = 200


@dataclass(frozen=True)
class Assignee:
    mode: str = "responsible"
    user_id: UUID | None = None  # mode `user`
    team: tuple[str, ...] = ()  # user ids and role:<role>

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> Assignee:
        """From a saved (normalised) action object."""
        mode = str(spec.get("assignee", "responsible"))
        user = spec.get("user_id")
        return cls(
            mode=mode,
            user_id=UUID(str(user)) if mode == "user" and user else None,
            team=tuple(str(member) for member in spec.get("team") or ()),
        )


def validate_assignee(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """The `assignee`, `user_id` and `team` keys of an action object, normalised."""
    assignee = string(f"{path}.assignee", spec.get("assignee", "responsible"))
    mode, _, rest = assignee.partition(":")
    if mode not in ASSIGNEE_MODES:
        raise RuleError(f"{path}.assignee", f"one of {', '.join(ASSIGNEE_MODES)}")
    out: dict[str, Any] = {"assignee": mode}
    if mode == "user":
        user = rest or spec.get("user_id")
        try:
            out["user_id"] = str(UUID(str(user)))
        except ValueError:
            raise RuleError(f"{path}.user_id", "a user id") from None
    team = spec.get("team")
    if mode in ("round_robin", "least_busy") or (mode in OWNER_MODES and team):
        # `responsible` with a team: the contact's owner, else the least busy of the team.
        if not isinstance(team, list) or not team:
            raise RuleError(f"{path}.team", "a list of user ids (or role:operator) to share it")
        if len(team) > MAX_TEAM:
            raise RuleError(f"{path}.team", f"at most {MAX_TEAM} members")
        out["team"] = [_member(member, f"{path}.team") for member in team]
    return out


def _member(member: Any, path: str) -> str:
    """A user id, or ``role:<role>`` for every active user with that role."""
    text = string(path, member)
    if text.startswith("role:"):
        if text[5:] not in ("admin", "manager", "operator"):
            raise RuleError(path, "role:admin, role:manager or role:operator")
        return text
    try:
        return str(UUID(text))
    except ValueError:
        raise RuleError(path, f"{text!r} is not a user id or role:<role>") from None


class AssigneePicker:
    """Resolves an `Assignee` for one firing: round-robin turns are kept in the state store."""

    def __init__(self, views: ViewReader, turns: StateStore) -> None:
        self.views = views
        self.turns = turns

    def pick(self, assignee: Assignee, facts: Mapping[str, Any], rule_id: UUID) -> UUID | None:
        mode = assignee.mode
        if mode == "unassigned":
            return None
        if mode == "user":
            if assignee.user_id is None:
                raise KeyError("user_id")
            return assignee.user_id
        if mode in OWNER_MODES:
            event = facts.get("event") or {}
            manager = (facts.get("deal") or {}).get("manager_id")
            owner = (manager if mode == "deal_manager" else None) or (
                (
                    event.get("assignee_id")
                    if str(event.get("type", "")).startswith("task")
                    else None
                )
                or (facts.get("contact") or {}).get("responsible_id")
                or (facts.get("conversation") or {}).get("assignee_id")
            )
            if owner:
                return UUID(str(owner))
            if not assignee.team:
                return None
            mode = "least_busy"
        team = self._team(assignee.team)
        if not team:
            return None
        if mode == "round_robin":
            key = f"round-robin:{rule_id}"
            turn = int(self.turns.get(key) or 0)
            self.turns.set(key, str(turn + 1))
            return UUID(team[turn % len(team)])
        counts = open_task_counts(self.views, team)
        return UUID(min(team, key=lambda member: (counts[member], team.index(member))))

    def _team(self, members: Sequence[str]) -> list[str]:
        """User ids, with ``role:<role>`` expanded to the active users of that role."""
        team: list[str] = []
        for member in members:
            if member.startswith("role:"):
                team.extend(active_user_ids_with_role(self.views, member[5:]))
            else:
                team.append(member)
        return list(dict.fromkeys(team))
