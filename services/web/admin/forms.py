"""The web forms screen: list and edit (fields, mapping, thank-you, origins, rate limit).

A definition goes through `FormDefinition.create` and the form commands, the
same validation as `/api/forms`, and an `InvalidInput` is shown next to its
field: ``fields.2.options`` beside the options of the third row of the fields
table, ``mapping.email`` beside the "maps to" cell of the row named ``email``.
The fields table has a row per field plus a few blank ones; blank rows are
ignored, so a field is added by filling one in and removed by clearing it.
The consents table works the same way: a row per purpose the form asks consent
for (a published consent policy) and whether the box must be ticked;
``consents.1.purpose`` is shown beside the second filled-in row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.form import (
    DEFAULT_RATE_LIMIT,
    FIELD_TYPES,
    MAX_CONSENTS,
    FormDefinition,
)
from threadline.projections.consents import consent_policies
from threadline.projections.forms import FormRow
from threadline.projections.forms import form as form_row
from threadline.projections.forms import forms as form_rows
from threadline.services.form_links import form_links
from threadline.services.web.admin.common import (
    EditorDep,
    can_edit,
    checked,
    flashes,
    not_found,
    pager,
    text,
    wait,
)
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    redirect,
)

router = APIRouter()

ROW_KEYS = ("name", "label", "type", "options", "max_length", "placeholder", "default", "maps")
BLANK_ROWS = 3
MAX_ROWS = 60
TARGETS = ("name", "email", "phone")
BLANK_CONSENT_ROWS = 2


def _blank_row() -> dict[str, Any]:
    return {**dict.fromkeys(ROW_KEYS, ""), "type": "text", "required": False}


def _blank_consent() -> dict[str, Any]:
    return {"purpose": "", "required": False}


@dataclass
class FormDraft:
    slug: str = ""
    name: str = ""
    description: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    submit_label: str = ""
    thank_you_text: str = ""
    thank_you_url: str = ""
    origins: str = ""
    rate_limit: str = str(DEFAULT_RATE_LIMIT)
    enabled: bool = True
    consents: list[dict[str, Any]] = field(
        default_factory=lambda: [_blank_consent() for _ in range(BLANK_CONSENT_ROWS)]
    )
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, definition: dict[str, Any], enabled: bool) -> FormDraft:
        mapping = definition.get("mapping") or {}
        rows = [
            {
                **_blank_row(),
                **{k: str(f.get(k) or "") for k in ("name", "label", "type", "placeholder")},
                "default": str(f.get("default") or ""),
                "options": ", ".join(f.get("options") or []),
                "max_length": str(f.get("max_length") or ""),
                "required": bool(f.get("required")),
                "maps": mapping.get(f.get("name"), ""),
            }
            for f in definition.get("fields") or []
        ]
        return cls(
            slug=definition["slug"],
            name=definition["name"],
            description=definition.get("description", ""),
            rows=rows + [_blank_row() for _ in range(BLANK_ROWS)],
            submit_label=definition.get("submit_label", ""),
            thank_you_text=definition.get("thank_you_text", ""),
            thank_you_url=definition.get("thank_you_url", ""),
            origins="\n".join(definition.get("allowed_origins") or []),
            rate_limit=str(definition.get("rate_limit_per_minute", DEFAULT_RATE_LIMIT)),
            enabled=enabled,
            # A definition recorded before forms asked for consent has no "consents": none.
            consents=[
                {"purpose": str(c.get("purpose") or ""), "required": bool(c.get("required"))}
                for c in definition.get("consents") or []
            ]
            + [_blank_consent() for _ in range(BLANK_CONSENT_ROWS)],
        )

    @classmethod
    def new(cls) -> FormDraft:
        rows = [
            {**_blank_row(), "name": "name", "label": "Name", "maps": "name"},
            {**_blank_row(), "name": "email", "label": "E-mail", "type": "email", "maps": "email"},
            {**_blank_row(), "name": "message", "label": "Message", "type": "textarea"},
        ]
        rows[1]["required"] = True
        return cls(rows=rows + [_blank_row() for _ in range(BLANK_ROWS)])

    @classmethod
    def posted(cls, form: Any, slug: str | None = None) -> FormDraft:
        try:
            count = min(int(text(form, "rows", "0")), MAX_ROWS)
        except ValueError:
            count = 0
        rows = []
        for index in range(count):
            row: dict[str, Any] = {k: text(form, f"f{index}_{k}") for k in ROW_KEYS}
            row["required"] = checked(form, f"f{index}_required")
            rows.append(row)
        if not any(_is_blank(r) for r in rows):
            rows.append(_blank_row())
        try:
            consent_count = min(int(text(form, "consent_rows", "0")), MAX_CONSENTS * 2)
        except ValueError:
            consent_count = 0
        consents = [
            {
                "purpose": text(form, f"c{index}_purpose").strip(),
                "required": checked(form, f"c{index}_required"),
            }
            for index in range(consent_count)
        ]
        if not any(not c["purpose"] for c in consents):
            consents.append(_blank_consent())
        return cls(
            slug=slug if slug is not None else text(form, "slug").strip(),
            name=text(form, "name"),
            description=text(form, "description"),
            rows=rows,
            submit_label=text(form, "submit_label"),
            thank_you_text=text(form, "thank_you_text"),
            thank_you_url=text(form, "thank_you_url"),
            origins=text(form, "allowed_origins"),
            rate_limit=text(form, "rate_limit_per_minute").strip(),
            enabled=checked(form, "enabled"),
            consents=consents,
        )

    def definition(self) -> FormDefinition | None:
        """Validated as `/api/forms` validates; None with `errors` naming the form's fields."""
        kept = [(index, row) for index, row in enumerate(self.rows) if not _is_blank(row)]
        try:
            fields = [_field(position, row) for position, (_, row) in enumerate(kept)]
            data = {
                "slug": self.slug,
                "name": self.name,
                "description": self.description,
                "fields": fields,
                "mapping": {
                    row["name"].strip(): row["maps"].strip()
                    for _, row in kept
                    if row["maps"].strip()
                },
                "submit_label": self.submit_label,
                "thank_you_text": self.thank_you_text,
                "thank_you_url": self.thank_you_url or None,
                "allowed_origins": [
                    o.strip() for o in self.origins.replace(",", "\n").splitlines() if o.strip()
                ],
                "rate_limit_per_minute": _whole(self.rate_limit, "rate_limit_per_minute"),
                "consents": [
                    {"purpose": c["purpose"], "required": bool(c["required"])}
                    for c in self.consents
                    if c["purpose"]
                ],
            }
            return FormDefinition.create(data)
        except InvalidInput as error:
            self.fail(error, [index for index, _ in kept])
            return None

    def fail(self, error: InvalidInput, rows: list[int] | None = None) -> None:
        """Put the message next to the input it is about (row numbers as the page shows them)."""
        if rows is None:
            rows = [i for i, row in enumerate(self.rows) if not _is_blank(row)]
        parts = error.field.split(".")
        key = parts[0]
        if parts[0] == "fields" and len(parts) > 1 and parts[1].isdigit():
            position = int(parts[1])
            row = rows[position] if position < len(rows) else position
            key = f"f{row}_{parts[2] if len(parts) > 2 else 'name'}"
        elif parts[0] == "mapping" and len(parts) > 1:
            name = ".".join(parts[1:])
            matches = [i for i in rows if self.rows[i]["name"].strip() == name]
            key = f"f{matches[0]}_maps" if matches else "mapping"
        elif parts[0] == "consents" and len(parts) > 1 and parts[1].isdigit():
            filled = [i for i, c in enumerate(self.consents) if c["purpose"]]
            position = int(parts[1])
            row = filled[position] if position < len(filled) else position
            key = f"c{row}_{parts[2] if len(parts) > 2 else 'purpose'}"
        self.errors[key] = f"{error.field}: {error.message}"


def _is_blank(row: dict[str, Any]) -> bool:
    return not any(str(row.get(k) or "").strip() for k in ROW_KEYS if k != "type")


def _whole(value: str, name: str) -> int | None:
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(name, "a whole number") from None


def _field(position: int, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"].strip(),
        "label": row["label"],
        "type": row["type"] or "text",
        "required": bool(row["required"]),
        "options": [o.strip() for o in row["options"].split(",") if o.strip()],
        "max_length": _whole(row["max_length"], f"fields.{position}.max_length"),
        "placeholder": row["placeholder"],
        "default": row["default"],
    }


def _row(user: WebUser, slug: str) -> FormRow | None:
    return form_row(user.runtime.views, slug)


def _links(user: WebUser, row: FormRow) -> dict[str, str]:
    links = form_links(user.runtime.settings.public_url, row.definition["slug"])
    return {"page_url": links.page_url, "embed_snippet": links.embed_snippet}


def _editor(
    user: WebUser,
    draft: FormDraft,
    row: FormRow | None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    return user.render(
        "admin/form_edit.html",
        status_code=status_code,
        draft=draft,
        form=row,
        links=_links(user, row) if row else None,
        field_types=FIELD_TYPES,
        targets=TARGETS,
        policies=consent_policies(user.runtime.views),
        flashes=flashes(user, done),
        editable=can_edit(user),
    )


@router.get("/forms")
def forms_list(user: WebUserDep, page: int = 1, done: str | None = None) -> HTMLResponse:
    runtime = user.runtime
    paging = pager(runtime, "forms", page)
    rows = form_rows(runtime.views, paging.size, paging.offset)
    items = [{**asdict(r), **_links(user, r)} for r in rows]
    return user.render(
        "admin/forms_list.html",
        forms=items,
        pager=paging,
        flashes=flashes(user, done),
        editable=can_edit(user),
    )


@router.get("/forms/new")
def form_new(user: WebUserDep) -> HTMLResponse:
    return _editor(user, FormDraft.new(), None)


@router.post("/forms/new")
def form_create(user: EditorDep, form: FormDep) -> Response:
    return _save(user, FormDraft.posted(form), None)


@router.get("/forms/{slug}")
def form_edit(slug: str, user: WebUserDep, done: str | None = None) -> HTMLResponse:
    row = _row(user, slug)
    if row is None:
        return not_found(user, user._("No such form."))
    draft = FormDraft.of(row.definition, row.enabled)
    return _editor(user, draft, row, done=done)


@router.post("/forms/{slug}")
def form_update(slug: str, user: EditorDep, form: FormDep) -> Response:
    row = _row(user, slug)
    if row is None:
        return not_found(user, user._("No such form."))
    return _save(user, FormDraft.posted(form, slug=row.slug), row)


def _save(user: WebUser, draft: FormDraft, row: FormRow | None) -> Response:
    runtime = user.runtime
    definition = draft.definition()
    if definition is None:
        return _editor(user, draft, row, 422)
    try:
        if row is None:
            committed = runtime.app.define_form(definition, user.actor)
            if not draft.enabled:
                committed = runtime.app.change_form(definition.slug, user.actor, enabled=False)
        else:
            committed = runtime.app.change_form(
                definition.slug, user.actor, definition=definition, enabled=draft.enabled
            )
    except InvalidInput as error:
        draft.fail(error)
        return _editor(user, draft, row, 422)
    except COMMAND_ERRORS as error:
        draft.errors["slug" if row is None else "form"] = message_of(user, error)
        return _editor(user, draft, row, status_of(error))
    wait(runtime, committed)
    return redirect(f"/admin/forms/{definition.slug}", "saved")
