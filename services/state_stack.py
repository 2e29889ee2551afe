"""The state database of one process: secrets and password hashes, encrypted, never in the log.

It holds what must not be an event (inbox and rule secrets, operators' password
hashes, sessions, channel positions). By default it is the views database; a
separate one when the views URL names one (`state_url_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from threadline.domain.commands.application import Threadline
from threadline.projections.sql import ViewDatabase
from threadline.services.config import Settings
from threadline.services.credentials import CredentialStore
from threadline.services.pseudonym_key import PseudonymKeyStore, open_pseudonyms
from threadline.services.secret_box import SecretBox, open_secret_box
from threadline.services.store import library_env, state_url_for


@dataclass(frozen=True)
class StateStack:
    db: ViewDatabase
    factory: Any  # the library's factory when the state has a database of its own, else None
    secret_box: SecretBox
    credentials: CredentialStore


def open_state(
    settings: Settings, views_url: str, views: ViewDatabase, app: Threadline
) -> StateStack:
    """Open the state database, its secret box and the credentials; hand the app its passwords.

    Password hashes an older version recorded in the log are imported (once) here.
    """
    state_url = state_url_for(views_url)
    factory: Any = None
    db = views
    if state_url != views_url:
        factory = InfrastructureFactory.construct(Environment("state", library_env(state_url)))
        db = ViewDatabase(factory.tracking_recorder())
    # Inbox secrets and password hashes: encrypted in the state database, never in the log.
    secret_box = open_secret_box(settings, state_url, db)
    credentials = CredentialStore(db, secret_box)
    credentials.encrypt_plaintext()
    app.passwords = credentials
    credentials.import_from_log(app)
    # The key of the ids derived from personal values: checked against the store, installed.
    open_pseudonyms(
        app.recorder,
        not app.recorder.max_notification_id(),
        PseudonymKeyStore(db, secret_box),
        settings.pseudonym_key,
    )
    return StateStack(db=db, factory=factory, secret_box=secret_box, credentials=credentials)
