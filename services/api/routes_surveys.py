"""The satisfaction survey: its settings, a conversation's score, and the public score links.

`GET/PUT /api/surveys/settings` switch the survey after a resolution on or off, for every
inbox or the named ones, with the question's text (admin writes; managers read).
`GET /api/surveys/conversations/{id}` is a conversation's latest survey and score (the
conversation's own item carries it as `survey` too). `/s/{token}` is the link of one score
in an e-mail survey: GET shows a one-button page and changes nothing (mail scanners open
links), POST records the score; a forged or altered token is a 404.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from threadline.domain.model.survey import DEFAULT_QUESTION, MAX_QUESTION
from threadline.services.api.deps import AdminDep, ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.routes_unsubscribe import PAGE
from threadline.services.surveys import survey_field, survey_links_of

router = APIRouter(tags=["surveys"])

Token = Annotated[str, Path(max_length=200)]


class SurveySettingsIn(BaseModel):
    enabled: bool
    inboxes: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list,
        max_length=200,
        description="inbox slugs that send the survey; empty: every inbox",
    )
    question: str = Field(default=DEFAULT_QUESTION, max_length=MAX_QUESTION)


class SurveySettingsOut(BaseModel):
    enabled: bool
    inboxes: list[str]
    question: str


class SurveyOut(BaseModel):
    sent_at: str
    score: int | None = None
    answered_at: str | None = None
    answered_via: str | None = None


class ConversationSurveyOut(BaseModel):
    conversation_id: str
    survey: SurveyOut | None = None


@router.get("/api/surveys/settings", response_model=SurveySettingsOut)
def get_settings(runtime: RuntimeDep, principal: ManagerDep) -> SurveySettingsOut:
    return SurveySettingsOut(**runtime.app.survey_settings())


@router.put("/api/surveys/settings", response_model=SurveySettingsOut)
def put_settings(
    body: SurveySettingsIn, runtime: RuntimeDep, principal: AdminDep
) -> SurveySettingsOut:
    runtime.app.save_survey_settings(
        body.enabled, list(body.inboxes), body.question, principal.actor
    )
    return SurveySettingsOut(**runtime.app.survey_settings())


@router.get("/api/surveys/conversations/{conversation_id}", response_model=ConversationSurveyOut)
def get_conversation_survey(
    conversation_id: UUID, runtime: RuntimeDep, principal: PrincipalDep
) -> ConversationSurveyOut:
    field = survey_field(runtime.views, str(conversation_id))
    return ConversationSurveyOut(
        conversation_id=str(conversation_id),
        survey=None if field is None else SurveyOut(**field),
    )


def _verified(runtime: Any, token: str) -> tuple[UUID, int, int]:
    links = survey_links_of(runtime.app)
    found = None if links is None else links.verify_score(token)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this survey link is not valid")
    return found


@router.get("/s/{token}", response_class=HTMLResponse)
def survey_page(token: Token, runtime: RuntimeDep) -> HTMLResponse:
    _conversation, _resolution, score = _verified(runtime, token)
    body = (
        f"<h1>{score} / 5</h1><p>Send this score?</p>"
        f"<form method=post action='/s/{escape(token)}'>"
        f"<button type=submit>{score} / 5</button></form>"
    )
    return HTMLResponse(PAGE.format(title="Survey", body=body))


@router.post("/s/{token}", response_class=HTMLResponse)
def survey_answer(token: Token, runtime: RuntimeDep) -> HTMLResponse:
    conversation_id, resolution, score = _verified(runtime, token)
    recorded = runtime.app.answer_survey_by_link(conversation_id, resolution, score).value
    if recorded:
        body = "<h1>Thank you!</h1><p>Your score is recorded.</p>"
    else:
        body = "<h1>Thank you!</h1><p>This survey is already answered or closed.</p>"
    return HTMLResponse(PAGE.format(title="Survey", body=body))
