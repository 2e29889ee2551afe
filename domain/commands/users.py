"""User commands: accounts, API tokens, passwords, locale and time zone.

A user's login e-mail is an identity claim of kind ``user-email``, so two accounts
can never share an address, and finding a user by e-mail needs no view.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.commands.identity_claims import claim_identity, claim_owner
from threadline.domain.commands.passwords import PasswordStore, hash_password
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_email
from threadline.domain.model.user import Role, User, is_time_zone, new_api_token, token_hash

USER_EMAIL_KIND = "user-email"


class UserCommands(Commands):
    """Accounts and their settings; password hashes go to `passwords`, never to the log."""

    passwords: PasswordStore

    def create_user(
        self,
        email: str,
        role: str,
        actor: str,
        name: str = "",
        password: str | None = None,
        locale: str = "en",
    ) -> Committed[tuple[UUID, str]]:
        """Create an account and issue its first API token; returns (user id, token)."""
        address = normalise_email(email)
        try:
            user_role = Role(role)
        except ValueError:
            raise InvalidInput("role", f"one of {[r.value for r in Role]}") from None
        password_hash = hash_password(password) if password else None
        token = new_api_token()
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> tuple[UUID, str]:
            user = unit.add(
                User(
                    email=address,
                    name=name.strip() or address.split("@")[0],
                    role=user_role.value,
                    password_set=password_hash is not None,
                    locale=locale,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            claim_identity(
                unit,
                USER_EMAIL_KIND,
                address,
                user.id,
                actor,
                correlation_id,
                taken=f"a user with email {address} exists",
            )
            user.issue_token(token_hash(token), "initial", actor, correlation_id)
            return user.id, token

        committed = self.writer.submit(command)
        if password_hash is not None:
            # After the commit: a refused command (the e-mail is taken) leaves no hash behind.
            self.passwords.set_password_hash(committed.value[0], password_hash)
        return committed

    def issue_token(self, user_id: UUID, label: str, actor: str) -> Committed[str]:
        token: str = new_api_token()

        def command(unit: UnitOfWork) -> str:
            unit.get(user_id, User).issue_token(token_hash(token), label, actor, str(uuid4()))
            return token

        return self.writer.submit(command)

    def set_password(self, user_id: UUID, password: str, actor: str) -> Committed[None]:
        """Record that the password changed (no hash in the log) and store its hash."""
        password_hash = hash_password(password)

        def command(unit: UnitOfWork) -> None:
            unit.get(user_id, User).change_password(actor, str(uuid4()))

        committed = self.writer.submit(command)
        self.passwords.set_password_hash(user_id, password_hash)
        return committed

    def set_locale(self, user_id: UUID, locale: str, actor: str) -> Committed[None]:
        if locale not in ("en", "ru"):
            raise InvalidInput("locale", "en or ru")

        def command(unit: UnitOfWork) -> None:
            user = unit.get(user_id, User)
            if user.locale != locale:
                user.change_locale(locale, actor, str(uuid4()))

        return self.writer.submit(command)

    def set_timezone(self, user_id: UUID, timezone: str, actor: str) -> Committed[None]:
        """Show this user's times in `timezone` (an IANA name; "" for the default)."""
        if timezone and not is_time_zone(timezone):
            raise InvalidInput("timezone", "an IANA time zone such as Europe/Moscow")

        def command(unit: UnitOfWork) -> None:
            user = unit.get(user_id, User)
            if user.timezone != timezone:
                user.change_timezone(timezone, actor, str(uuid4()))

        return self.writer.submit(command)

    def user_id_by_email(self, email: str) -> UUID | None:
        return claim_owner(self._read_unit(), USER_EMAIL_KIND, normalise_email(email))
