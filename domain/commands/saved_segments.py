"""Saved segment commands: save a named contact filter, change it, delete it.

The filter itself is checked by the caller in the views' segment language
(`threadline.projections.segments.build_contact_filter`) before it gets here; these
commands check its shape, the name and the description, and keep names unique with a
``segment-name`` claim (released on rename and delete, so the name can be used again).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.identities import identity_claim_id
from threadline.domain.model.identity_claim import IdentityClaim
from threadline.domain.model.saved_segment import (
    SEGMENT_NAME_KIND,
    SavedSegment,
    segment_name_key,
)

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_PAIRS = 200
MAX_VALUE = 500
RELEASED = UUID(int=0)  # the owner of a name no segment holds any more


def clean_segment_name(name: str) -> str:
    return " ".join(required_text("name", name, MAX_NAME).split())


def clean_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput("description", f"is limited to {MAX_DESCRIPTION} characters")
    return description.strip()


def clean_pairs(pairs: Iterable[tuple[str, str] | list[str]]) -> list[list[str]]:
    """The filter as a list of [key, value] texts (at most `MAX_PAIRS`)."""
    cleaned: list[list[str]] = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise InvalidInput(f"filter[{i}]", "a pair of texts: [key, value]")
        key, value = pair
        if not key.strip() or len(key) > MAX_NAME or len(value) > MAX_VALUE:
            raise InvalidInput(f"filter.{key[:50]}", f"a key and a value of at most {MAX_VALUE}")
        cleaned.append([key.strip(), value])
    if len(cleaned) > MAX_PAIRS:
        raise InvalidInput("filter", f"at most {MAX_PAIRS} conditions")
    return cleaned


def _claim_name(unit: UnitOfWork, name: str, owner: UUID, actor: str, correlation_id: str) -> None:
    key = segment_name_key(name)
    claim = unit.find(identity_claim_id(SEGMENT_NAME_KIND, key), IdentityClaim)
    if claim is None:
        unit.add(IdentityClaim.claim(SEGMENT_NAME_KIND, key, owner, actor, correlation_id))
    elif claim.owner_id == RELEASED:
        claim.transfer(owner, actor, correlation_id)
    elif claim.owner_id != owner:
        raise Conflict(f"a segment named {name!r} exists")


def _release_name(
    unit: UnitOfWork, name: str, owner: UUID, actor: str, correlation_id: str
) -> None:
    claim = unit.find(identity_claim_id(SEGMENT_NAME_KIND, segment_name_key(name)), IdentityClaim)
    if claim is not None and claim.owner_id == owner:
        claim.transfer(RELEASED, actor, correlation_id)


class SavedSegmentCommands(Commands):
    def save_segment(
        self,
        name: str,
        pairs: Iterable[tuple[str, str] | list[str]],
        actor: str,
        *,
        description: str = "",
        segment_id: UUID | None = None,
    ) -> Committed[UUID]:
        """A new saved segment (`Conflict` when the name is taken)."""
        clean_name = clean_segment_name(name)
        clean = clean_pairs(pairs)
        text = clean_description(description)
        new_id = segment_id or uuid4()
        correlation_id = str(new_id)

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                raise Conflict(f"segment {new_id} exists")
            _claim_name(unit, clean_name, new_id, actor, correlation_id)
            unit.add(
                SavedSegment(
                    id=new_id,
                    name=clean_name,
                    pairs=clean,
                    personal={"description": text},
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            return new_id

        return self.writer.submit(command)

    def change_segment(
        self,
        segment_id: UUID,
        actor: str,
        *,
        name: str | None = None,
        pairs: Iterable[tuple[str, str] | list[str]] | None = None,
        description: str | None = None,
    ) -> Committed[bool]:
        """Change any of name, filter and description; True when something changed."""
        clean_name = clean_segment_name(name) if name is not None else None
        clean = clean_pairs(pairs) if pairs is not None else None
        text = clean_description(description) if description is not None else None
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> bool:
            segment = unit.get(segment_id, SavedSegment)
            if segment.deleted:
                raise Conflict(f"the segment {segment.name!r} is deleted")
            old_name = segment.name
            if clean_name is not None and segment_name_key(clean_name) != segment_name_key(
                old_name
            ):
                _claim_name(unit, clean_name, segment_id, actor, correlation_id)
                _release_name(unit, old_name, segment_id, actor, correlation_id)
            return segment.change(clean_name, clean, text, actor, correlation_id)

        return self.writer.submit(command)

    def delete_segment(self, segment_id: UUID, actor: str) -> Committed[None]:
        """Delete the segment and free its name (`Conflict` if deleted already)."""
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            segment = unit.get(segment_id, SavedSegment)
            segment.delete(actor, correlation_id)
            _release_name(unit, segment.name, segment_id, actor, correlation_id)

        return self.writer.submit(command)

    def saved_segment(self, segment_id: UUID) -> SavedSegment | None:
        """The segment from the log (None if there is none or it is deleted)."""
        found = self._read_unit().find(segment_id, SavedSegment)
        return None if found is None or found.deleted else found
