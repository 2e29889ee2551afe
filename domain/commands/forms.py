"""Form commands: define a web form, change it, switch it on or off, read it by slug.

A definition is validated on its own by `FormDefinition.create`; what needs the
store is checked here: that a mapping to ``attributes.<key>`` names an attribute
the registry defines, of a type the field can feed, and that every consent the form
asks for names a published consent policy (the box shows the policy's title and text).
"""

from __future__ import annotations

from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.attributes import REGISTRY_ID, AttributeRegistry, AttributeType
from threadline.domain.model.consent_policy import ConsentPolicy, consent_policy_id
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.form import Form, FormDefinition, form_id_for
from threadline.domain.model.inbox import clean_slug


def check_attribute_mapping(unit: UnitOfWork, definition: FormDefinition) -> None:
    """Every ``attributes.<key>`` target must be a defined contact attribute the field can feed."""
    mapped = definition.attribute_mapping()
    if not mapped:
        return
    registry = unit.find(REGISTRY_ID, AttributeRegistry)
    for name, key in mapped.items():
        where = f"mapping.{name}"
        try:
            if registry is None:
                raise InvalidInput(where, "")
            attribute = registry.definition(key)
        except InvalidInput:
            raise InvalidInput(
                where,
                f"no contact attribute {key!r} is defined; define it first (POST /api/attributes)",
            ) from None
        form_field = definition.field(name)
        if form_field is None:  # _clean_mapping already refused this
            raise InvalidInput(where, "the form has no such field")
        choices = (AttributeType.CHOICE, AttributeType.MULTI_CHOICE)
        if form_field.type == "select" and attribute.type in choices:
            unknown = [o for o in form_field.options if o not in attribute.options]
            if unknown:
                raise InvalidInput(
                    where,
                    f"options {unknown} are not among the attribute's {list(attribute.options)}",
                )
        if form_field.type == "checkbox" and attribute.type not in (
            AttributeType.BOOLEAN,
            AttributeType.TEXT,
        ):
            raise InvalidInput(where, "a checkbox feeds a boolean or text attribute")


def check_consents(unit: UnitOfWork, definition: FormDefinition) -> None:
    """Every consent must name a published policy: its box shows that policy's title and text."""
    for index, consent in enumerate(definition.consents):
        if unit.find(consent_policy_id(consent.purpose), ConsentPolicy) is None:
            raise InvalidInput(
                f"consents.{index}.purpose",
                f"no consent policy {consent.purpose!r} is published; publish its text first"
                f" (PUT /api/consent-policies/{consent.purpose})",
            )


def check_definition(unit: UnitOfWork, definition: FormDefinition) -> None:
    """What a definition needs from the store: its attributes and its consent policies."""
    check_attribute_mapping(unit, definition)
    check_consents(unit, definition)


class FormCommands(Commands):
    """Commands of web forms; a mixin of `Threadline`, submitted through the group-commit writer."""

    def define_form(self, definition: FormDefinition, actor: str) -> Committed[UUID]:
        """Record a new form; `Conflict` when the slug is taken."""
        form_id = form_id_for(definition.slug)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(form_id):
                raise Conflict(f"a form with slug {definition.slug!r} exists")
            check_definition(unit, definition)
            unit.add(
                Form(
                    id=form_id,
                    slug=definition.slug,
                    definition=definition.as_dict(),
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            return form_id

        return self.writer.submit(command)

    def change_form(
        self,
        slug: str,
        actor: str,
        definition: FormDefinition | None = None,
        enabled: bool | None = None,
    ) -> Committed[UUID]:
        """Replace the definition and/or switch the form on or off; records nothing unchanged."""
        form_id = form_id_for(slug)
        if definition is not None and definition.slug != clean_slug(slug):
            raise InvalidInput("slug", "the slug of a form cannot change")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            form = unit.find(form_id, Form)
            if form is None:
                raise NotFound("form", slug)
            if definition is not None:
                check_definition(unit, definition)
                wanted = definition.as_dict()
                # Compared as read back: a definition recorded before a key existed (no
                # "consents") equals the same definition saved again with its default.
                if wanted != form.spec.as_dict():
                    form.change(wanted, actor, correlation_id)
            if enabled is not None and enabled != form.enabled:
                form.set_enabled(enabled, actor, correlation_id)
            return form_id

        return self.writer.submit(command)

    def form(self, slug: str) -> Form | None:
        """The form with this slug, read now (not through the writer); None if there is none."""
        try:
            form_id = form_id_for(slug)
        except InvalidInput:
            return None
        return self._read_unit().find(form_id, Form)
