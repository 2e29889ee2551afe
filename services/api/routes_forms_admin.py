"""Defining web forms: `/api/forms` (managers and admins write, every role reads).

A definition is validated by the domain (`FormDefinition.create`), so the API
and any other caller refuse the same things with the same 422 naming the field;
a mapping to ``attributes.<key>`` must name an attribute defined beforehand
(``POST /api/attributes``), and each of `consents` a consent policy published
beforehand (``PUT /api/consent-policies/{purpose}``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.form import DEFAULT_RATE_LIMIT, Form, FormDefinition
from threadline.projections.base import ts
from threadline.projections.forms import forms
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.form_links import form_links
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api/forms", tags=["forms"])


class FormFieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="[a-z0-9_]{1,40}; the key the field is posted under")
    label: str = ""
    type: str = Field(
        "text",
        description="text, email, phone, textarea, select, checkbox, number, date, hidden, file",
    )
    required: bool = False
    options: list[str] = Field(default_factory=list, description="the choices of a select")
    max_length: int | None = None
    placeholder: str = ""
    default: str = Field("", description="a pre-filled value; what a hidden field sends")


class FormConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(description="a published consent policy's purpose (a slug)")
    required: bool = Field(False, description="the form is refused unless the box is ticked")


CONSENTS_DESCRIPTION = (
    "consents the form asks for, at most 10: a separate, unticked box per purpose, labelled"
    " with the policy's title and showing its text; posted as consent:<purpose>"
)


class FormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str
    name: str
    description: str = ""
    fields: list[FormFieldIn]
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description='field name -> "name", "email", "phone" or "attributes.<key>"; '
        "at least one field must map to email or phone",
    )
    submit_label: str = ""
    thank_you_text: str = ""
    thank_you_url: str | None = Field(None, description="where a browser goes after sending")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description='sites that may post from the browser (https://shop.example), or ["*"] '
        "for every site; the form's own page is always allowed",
    )
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT
    consents: list[FormConsentIn] = Field(default_factory=list, description=CONSENTS_DESCRIPTION)
    enabled: bool = True


class FormPatch(BaseModel):
    """Only what is given changes; a given list or mapping replaces the old one whole."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    fields: list[FormFieldIn] | None = None
    mapping: dict[str, str] | None = None
    submit_label: str | None = None
    thank_you_text: str | None = None
    thank_you_url: str | None = None
    allowed_origins: list[str] | None = None
    rate_limit_per_minute: int | None = None
    consents: list[FormConsentIn] | None = None
    enabled: bool | None = None


class FormOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str
    fields: list[dict[str, Any]]
    mapping: dict[str, str]
    submit_label: str
    thank_you_text: str
    thank_you_url: str
    allowed_origins: list[str]
    rate_limit_per_minute: int
    consents: list[dict[str, Any]] = Field(
        default_factory=list, description="[{purpose, required}]"
    )
    enabled: bool
    page_url: str
    embed_url: str
    embed_snippet: str
    created_at: str | None = None
    updated_at: str | None = None


class FormListOut(BaseModel):
    items: list[FormOut]
    total: int


def _describe(
    runtime: Runtime,
    form_id: str,
    definition: dict[str, Any],
    enabled: bool,
    created_at: str | None,
    updated_at: str | None,
) -> FormOut:
    links = form_links(runtime.settings.public_url, definition["slug"])
    return FormOut(
        id=form_id,
        **FormDefinition.from_dict(definition).as_dict(),
        enabled=enabled,
        page_url=links.page_url,
        embed_url=links.embed_url,
        embed_snippet=links.embed_snippet,
        created_at=created_at,
        updated_at=updated_at,
    )


def _from_aggregate(runtime: Runtime, form: Form) -> FormOut:
    return _describe(
        runtime,
        str(form.id),
        form.definition,
        form.enabled,
        ts(form.created_on),
        ts(form.modified_on),
    )


def _load(runtime: Runtime, slug: str) -> Form:
    form = runtime.app.form(slug)
    if form is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"form {slug!r} not found")
    return form


@router.post("", response_model=FormOut, status_code=status.HTTP_201_CREATED)
def define_form(body: FormIn, runtime: RuntimeDep, principal: ManagerDep) -> FormOut:
    """Define a form; 409 when the slug is taken, 422 naming the field of a bad definition."""
    data = body.model_dump(exclude={"enabled"})
    definition = FormDefinition.create(data)
    committed = runtime.app.define_form(definition, principal.actor)
    last = committed.notification_id
    if not body.enabled:
        last = runtime.app.change_form(
            definition.slug, principal.actor, enabled=False
        ).notification_id
    runtime.wait_for_views(last)
    return _from_aggregate(runtime, _load(runtime, definition.slug))


@router.get("", response_model=FormListOut)
def list_forms(runtime: RuntimeDep, principal: PrincipalDep) -> FormListOut:
    items = [
        _describe(runtime, row.id, row.definition, row.enabled, row.created_at, row.updated_at)
        for row in forms(runtime.views)
    ]
    return FormListOut(items=items, total=len(items))


@router.get("/{slug}", response_model=FormOut)
def get_form(slug: str, runtime: RuntimeDep, principal: PrincipalDep) -> FormOut:
    return _from_aggregate(runtime, _load(runtime, slug))


@router.patch("/{slug}", response_model=FormOut)
def change_form(slug: str, body: FormPatch, runtime: RuntimeDep, principal: ManagerDep) -> FormOut:
    """Change what is given and switch the form on or off; records nothing when nothing changed."""
    form = _load(runtime, slug)
    given = body.model_fields_set - {"enabled"}
    definition = None
    if given:
        data = dict(form.definition)
        data.update(body.model_dump(include=given))
        definition = FormDefinition.create(data)
    committed = runtime.app.change_form(
        form.slug, principal.actor, definition=definition, enabled=body.enabled
    )
    runtime.wait_for_views(committed.notification_id)
    return _from_aggregate(runtime, _load(runtime, slug))
