"""The pipeline settings screen: funnels, their stages, lost reasons, archiving.

Every change goes through the pipeline commands the API uses (`create_pipeline`,
`update_pipeline`, `add_stage`, `change_stage`, `reorder_stages`), so a page refuses what the
API refuses and shows the message next to the field it names. A stage's id is made once and
never changes: renaming or reordering stages changes no past figure, because the stage
history and every deal refer to stage ids (the page says so). A stage's meaning (open, won,
lost) cannot change; a new stage is added instead. The up and down buttons post the whole new
order, which is what `reorder_stages` takes, so two managers reordering at once cannot lose a
stage: the second order is refused if it does not name every stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.pipeline import clean_stage
from threadline.projections.pipelines import PipelineRow, StageRow
from threadline.projections.pipelines import pipeline as pipeline_row
from threadline.projections.pipelines import pipelines as pipeline_rows
from threadline.services.web.admin.common import (
    EditorDep,
    can_edit,
    checked,
    flashes,
    not_found,
    text,
    wait,
)
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, parse_id, redirect

router = APIRouter()

MEANINGS = ("open", "won", "lost")
NEW_ROWS = 8
MAX_ROWS = 60
# The stages a new pipeline starts with in the form (names in the manager's language).
STARTER_STAGES = (
    ("New", "open", "10", "7"),
    ("In progress", "open", "50", "7"),
    ("Won", "won", "100", "0"),
    ("Lost", "lost", "0", "0"),
)


@dataclass
class PipelineDraft:
    """The "new pipeline" form as typed: name, stage rows, lost reasons, messages by field."""

    name: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    lost_reasons: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, user: WebUser) -> PipelineDraft:
        rows = [
            {"name": user._(name), "meaning": meaning, "probability": p, "stale_days": days}
            for name, meaning, p, days in STARTER_STAGES
        ]
        return cls(rows=rows + [blank_row() for _ in range(NEW_ROWS - len(rows))])

    @classmethod
    def posted(cls, form: FormData) -> PipelineDraft:
        rows = []
        for index in range(min(whole(text(form, "rows"), 0), MAX_ROWS)):
            rows.append({k: text(form, f"s{index}_{k}").strip() for k in blank_row()})
        return cls(name=text(form, "name"), rows=rows, lost_reasons=text(form, "lost_reasons"))

    def stages(self) -> list[dict[str, Any]]:
        """The filled rows as `create_pipeline` takes them (blank rows are left out).

        Each row is checked here as the command will check it, so that a refusal names
        its row (``stages.2.probability``), not just a field that every row has.
        """
        out = []
        for index, row in enumerate(self.rows):
            if not row["name"]:
                continue
            try:
                stage = clean_stage(
                    str(index),
                    row["name"],
                    row["meaning"] or "open",
                    number(row["probability"], "probability"),
                    number(row["stale_days"], "stale_days") or 0,
                )
            except InvalidInput as error:
                raise InvalidInput(f"stages.{index}.{error.field}", error.message) from None
            out.append(
                {
                    "name": stage.name,
                    "meaning": stage.meaning,
                    "probability": stage.probability,
                    "stale_days": stage.stale_days,
                }
            )
        return out


def blank_row() -> dict[str, str]:
    return {"name": "", "meaning": "open", "probability": "", "stale_days": ""}


def whole(value: str, default: int) -> int:
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 6 else default


def number(value: str, name: str) -> int | None:
    """A whole number typed in a field (empty: not given); anything else names the field."""
    value = value.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 5):
        raise InvalidInput(name, "a whole number")
    return int(value)


def lines(value: str) -> list[str]:
    """Lost reasons, one a line."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def moved(stages: list[StageRow], index: int, step: int) -> list[str]:
    """The whole order of stage ids with the stage at `index` moved one place up or down."""
    order = [s.id for s in stages]
    other = index + step
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    return order


# -- the list and "new pipeline" ---------------------------------------------------------------


def render_list(
    user: WebUser, draft: PipelineDraft, status_code: int = 200, flash: str | None = None
) -> HTMLResponse:
    return user.render(
        "admin/pipelines_list.html",
        status_code=status_code,
        pipelines=pipeline_rows(user.runtime.views, include_archived=True),
        draft=draft,
        meanings=MEANINGS,
        editable=can_edit(user),
        flashes=flashes(user, flash),
    )


@router.get("/pipelines")
def pipelines_page(user: WebUserDep, done: str | None = None) -> HTMLResponse:
    return render_list(user, PipelineDraft.new(user), flash=done)


@router.post("/pipelines", response_model=None)
def create_pipeline(user: EditorDep, form: FormDep) -> Response:
    draft = PipelineDraft.posted(form)
    try:
        committed = user.runtime.app.create_pipeline(
            actor=user.actor,
            name=draft.name,
            stages=draft.stages(),
            lost_reasons=lines(draft.lost_reasons),
        )
    except COMMAND_ERRORS as error:
        draft.errors = {placed(error): message_of(user, error)}
        if len(draft.rows) < MAX_ROWS:
            draft.rows.append(blank_row())
        return render_list(user, draft, status_of(error))
    wait(user.runtime, committed)
    return redirect(f"/admin/pipelines/{committed.value}", "created")


def placed(error: Exception) -> str:
    """The key of the field an error is about (``stages.2.name`` by the third row's name)."""
    return error.field if isinstance(error, InvalidInput) else "form"


# -- one pipeline ------------------------------------------------------------------------------


def render_pipeline(
    user: WebUser,
    found: PipelineRow,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    flash: str | None = None,
) -> HTMLResponse:
    stages = found.stages
    same = [s.id for s in stages]
    return user.render(
        "admin/pipeline_edit.html",
        status_code=status_code,
        pipeline=found,
        stages=stages,
        orders={
            s.id: {"up": moved(stages, i, -1), "down": moved(stages, i, 1), "same": same}
            for i, s in enumerate(stages)
        },
        meanings=MEANINGS,
        errors=errors or {},
        typed=typed or {},
        editable=can_edit(user),
        flashes=flashes(user, flash),
    )


def find(user: WebUser, pipeline_id: str) -> PipelineRow | None:
    known = parse_id(pipeline_id)
    return pipeline_row(user.runtime.views, known) if known else None


def missing(user: WebUser) -> HTMLResponse:
    return not_found(user, user._("No such pipeline."))


@router.get("/pipelines/{pipeline_id}")
def pipeline_page(pipeline_id: str, user: WebUserDep, done: str | None = None) -> HTMLResponse:
    found = find(user, pipeline_id)
    return missing(user) if found is None else render_pipeline(user, found, flash=done)


def change(
    user: WebUser,
    pipeline_id: str,
    command: Any,
    error_key: str,
    typed: dict[str, str] | None = None,
) -> Response:
    """Run one change of a pipeline; a refusal shows the page again with the message."""
    found = find(user, pipeline_id)
    if found is None:
        return missing(user)
    try:
        committed = command(UUID(found.id))
    except COMMAND_ERRORS as error:
        key = error_key
        if isinstance(error, InvalidInput) and error_key.endswith(".") and error.field:
            key = f"{error_key}{error.field}"
        errors = {key: message_of(user, error)}
        return render_pipeline(user, found, status_of(error), errors, typed)
    wait(user.runtime, committed)
    return redirect(f"/admin/pipelines/{found.id}", "saved")


@router.post("/pipelines/{pipeline_id}/name", response_model=None)
def rename(pipeline_id: str, user: EditorDep, form: FormDep) -> Response:
    name = text(form, "name")
    return change(
        user,
        pipeline_id,
        lambda pid: user.runtime.app.update_pipeline(pid, user.actor, name=name),
        "name",
        {"rename.name": name},
    )


@router.post("/pipelines/{pipeline_id}/lost-reasons", response_model=None)
def lost_reasons(pipeline_id: str, user: EditorDep, form: FormDep) -> Response:
    typed = text(form, "lost_reasons")
    return change(
        user,
        pipeline_id,
        lambda pid: user.runtime.app.update_pipeline(pid, user.actor, lost_reasons=lines(typed)),
        "lost_reasons",
        {"lost_reasons": typed},
    )


@router.post("/pipelines/{pipeline_id}/archive", response_model=None)
def archive(pipeline_id: str, user: EditorDep, form: FormDep) -> Response:
    """Archive (off the board's pipeline picker; its deals and history stay) or bring back."""
    archived = checked(form, "archived")
    return change(
        user,
        pipeline_id,
        lambda pid: user.runtime.app.update_pipeline(pid, user.actor, archived=archived),
        "archive",
    )


@router.post("/pipelines/{pipeline_id}/stages", response_model=None)
def add_stage(pipeline_id: str, user: EditorDep, form: FormDep) -> Response:
    typed = {k: text(form, k).strip() for k in ("name", "meaning", "probability", "stale_days")}

    def command(pid: UUID) -> Any:
        return user.runtime.app.add_stage(
            pid,
            user.actor,
            name=typed["name"],
            meaning=typed["meaning"] or "open",
            probability=number(typed["probability"], "probability"),
            stale_days=number(typed["stale_days"], "stale_days") or 0,
        )

    return change(user, pipeline_id, command, "new.", {f"new.{k}": v for k, v in typed.items()})


@router.post("/pipelines/{pipeline_id}/stages/{stage_id}", response_model=None)
def change_stage(pipeline_id: str, stage_id: str, user: EditorDep, form: FormDep) -> Response:
    """A stage's name, default probability and "stale after" days (its id stays)."""
    typed = {k: text(form, k).strip() for k in ("name", "probability", "stale_days")}

    def command(pid: UUID) -> Any:
        return user.runtime.app.change_stage(
            pid,
            stage_id,
            user.actor,
            name=typed["name"],
            probability=number(typed["probability"], "probability"),
            stale_days=number(typed["stale_days"], "stale_days"),
        )

    key = f"stage:{stage_id}."
    return change(user, pipeline_id, command, key, {key + k: v for k, v in typed.items()})


@router.post("/pipelines/{pipeline_id}/order", response_model=None)
def reorder(pipeline_id: str, user: EditorDep, form: FormDep) -> Response:
    """The whole new order of stage ids (an up or down button posts the order it makes)."""
    order = [v for v in form.getlist("order") if isinstance(v, str)]
    return change(
        user,
        pipeline_id,
        lambda pid: user.runtime.app.reorder_stages(pid, order, user.actor),
        "order",
    )
