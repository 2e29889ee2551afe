"""What every web page depends on: the logged-in operator, the CSRF check, rendering.

Pages declare `WebUserDep` (any logged-in user) or `WebWriterDep` (not an
auditor); every unsafe request (POST, PUT, PATCH, DELETE) must carry the
session's CSRF token, in the form field ``csrf_token`` or the ``X-CSRF-Token``
header that the layout makes HTMX send. An unauthenticated page request is
redirected to the login page (HTMX requests get ``HX-Redirect``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from threadline.projections.users import user as user_row
from threadline.services.runtime import Runtime
from threadline.services.web.i18n import environment, gettext, pick_locale
from threadline.services.web.local_time import zone
from threadline.services.web.sessions import COOKIE, Session, SessionStore

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


@dataclass
class WebUser:
    """The operator behind a page request, with what the templates need."""

    request: Request
    runtime: Runtime
    session: Session
    id: str
    email: str
    name: str
    role: str
    locale: str
    timezone: str = "UTC"  # the user's own, else THREADLINE_TIMEZONE
    flashes: list[str] = field(default_factory=list)

    @property
    def actor(self) -> str:
        return f"user:{self.id}"

    @property
    def zone(self) -> tzinfo:
        """The time zone this user reads and types times in."""
        return zone(self.timezone)

    @property
    def can_write(self) -> bool:
        return self.role != "auditor"

    @property
    def csrf(self) -> str:
        return self.session.csrf

    def _(self, message: str) -> str:
        return gettext(self.locale)(message)

    def render(self, template: str, status_code: int = 200, **data: Any) -> HTMLResponse:
        html = environment(self.locale).get_template(template).render(user=self, **data)
        return HTMLResponse(html, status_code=status_code)


def sessions(request: Request) -> SessionStore:
    store: SessionStore | None = getattr(request.app.state, "web_sessions", None)
    if store is None:
        runtime: Runtime = request.app.state.runtime
        store = SessionStore(runtime.state_db)
        request.app.state.web_sessions = store
    return store


async def web_user(request: Request) -> WebUser:
    runtime: Runtime = request.app.state.runtime
    session = sessions(request).load(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired(str(request.url.path))
    row = user_row(runtime.views, session.user_id)
    if row is None or not row.active:
        raise LoginRequired(str(request.url.path))
    user = WebUser(
        request=request,
        runtime=runtime,
        session=session,
        id=str(row.id),
        email=str(row.email),
        name=str(row.name),
        role=str(row.role),
        locale=pick_locale(row.locale),
        timezone=str(row.timezone or runtime.settings.timezone),
    )
    if request.method in UNSAFE:
        await check_csrf(request, session)
    return user


async def check_csrf(request: Request, session: Session) -> None:
    token = request.headers.get("X-CSRF-Token")
    if not token:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
    if not token or not hmac.compare_digest(token, session.csrf):
        raise Forbidden(
            "the form has expired or did not come from this app (CSRF); reload the page"
        )


async def web_writer(user: Annotated[WebUser, Depends(web_user)]) -> WebUser:
    if not user.can_write:
        raise Forbidden(user._("Auditors can look at everything but change nothing."))
    return user


WebUserDep = Annotated[WebUser, Depends(web_user)]
WebWriterDep = Annotated[WebUser, Depends(web_writer)]


def login_redirect(request: Request, next_url: str) -> Response:
    target = f"/login?next={quote(next_url)}"
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return Response(status_code=303, headers={"Location": target})


def forbidden_page(request: Request, message: str) -> Response:
    env = environment(pick_locale(None))
    html = env.get_template("error.html").render(user=None, title="403", message=message)
    return HTMLResponse(html, status_code=403)
