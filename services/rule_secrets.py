"""Rule webhook secrets live in the secret store, never in the immutable log.

A rule is stored as events, and events cannot be removed: a literal
``webhook: {secret: s3cret}`` written into a `RuleCreated` event would stay
readable by anyone with the log (backups, replicas, auditors) for ever, and
could not be rotated away. So every path that saves a rule goes through
`save_rule` here: a literal secret is put into the secret store (the same store
as inbox secrets, under the slug ``rule:<rule id>``, one entry per webhook URL)
and the event records only `SECRET_MARK` — "a secret is set". ``${ENV_NAME}``
references stay in the rule as they are (they hold no secret), and sending
``********`` back unchanged keeps the stored secret. The webhook worker reads
the secret with `stored_secret` at call time.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol
from uuid import UUID, uuid4

from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.errors import InvalidInput

SECRET_MARK = "********"


class SecretsStore(Protocol):
    """The secret store (`channel_state.SecretStore`): secrets by slug and name."""

    def get_all(self, slug: str) -> dict[str, str]: ...

    def put(self, slug: str, values: dict[str, str]) -> None: ...


class RuleLog(Protocol):
    """Saves a rule definition to the log (`Threadline.save_rule`)."""

    def save_rule(
        self, definition: dict[str, Any], actor: str, rule_id: UUID | None = None
    ) -> Committed[UUID]: ...


def _slug(rule_id: UUID) -> str:
    return f"rule:{rule_id}"


def _name(url: str) -> str:
    """One secret per webhook URL of the rule (hashed: a URL may be long)."""
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:32]


def is_reference(secret: str) -> bool:
    """``${ENV_NAME}``: read from the environment at call time, not a secret itself."""
    return secret.strip().startswith("${")


def stored_secret(secrets: SecretsStore, rule_id: UUID, url: str) -> str | None:
    return secrets.get_all(_slug(rule_id)).get(_name(url))


def store_secrets(
    secrets: SecretsStore, rule_id: UUID, definition: dict[str, Any]
) -> dict[str, Any]:
    """The definition to record: literal webhook secrets stored aside, `SECRET_MARK` instead."""
    actions: list[Any] = []
    to_store: dict[str, str] = {}
    for index, action in enumerate(definition.get("then", [])):
        spec = action.get("webhook") if isinstance(action, dict) else None
        secret = str(spec.get("secret") or "") if isinstance(spec, dict) else ""
        if not isinstance(spec, dict) or not secret or is_reference(secret):
            actions.append(action)
            continue
        url = str(spec["url"])
        if secret == SECRET_MARK:
            if _name(url) not in to_store and stored_secret(secrets, rule_id, url) is None:
                raise InvalidInput(
                    f"then[{index}].webhook.secret",
                    "no secret is stored for this URL; write the secret itself",
                )
        else:
            to_store[_name(url)] = secret
        actions.append({"webhook": {**spec, "secret": SECRET_MARK}})
    if to_store:
        secrets.put(_slug(rule_id), to_store)
    return {**definition, "then": actions}


def save_rule(
    secrets: SecretsStore,
    rules: RuleLog,
    definition: dict[str, Any],
    actor: str,
    rule_id: UUID | None = None,
) -> Committed[UUID]:
    """`Application.save_rule` with the secrets kept out of the log (stored first: a crash
    between the two leaves an unused secret, never a rule whose secret is missing)."""
    wanted = rule_id or uuid4()
    recorded = store_secrets(secrets, wanted, definition)
    return rules.save_rule(recorded, actor, rule_id=wanted)


def with_stored_secrets(
    secrets: SecretsStore, rule_id: UUID, definition: dict[str, Any]
) -> dict[str, Any]:
    """The definition with `SECRET_MARK` replaced by the stored secret (the CLI export)."""
    actions = []
    for action in definition.get("then", []):
        spec = action.get("webhook") if isinstance(action, dict) else None
        if isinstance(spec, dict) and spec.get("secret") == SECRET_MARK:
            secret = stored_secret(secrets, rule_id, str(spec.get("url")))
            action = {"webhook": {**spec, "secret": secret or ""}}
        actions.append(action)
    return {**definition, "then": actions}
