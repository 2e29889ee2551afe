"""Login, logout and the language switch."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from threadline.domain.commands.passwords import check_password
from threadline.domain.model.errors import InvalidInput
from threadline.projections.users import user_by_email
from threadline.services.runtime import Runtime
from threadline.services.web.deps import WebUserDep, sessions
from threadline.services.web.i18n import environment, gettext, pick_locale
from threadline.services.web.login_limit import LoginLimiter
from threadline.services.web.sessions import COOKIE, LIFETIME

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "tl_login_csrf"
limiter = LoginLimiter()


def _secure(request: Request) -> bool:
    runtime: Runtime = request.app.state.runtime
    return runtime.settings.public_url.startswith("https://")


def _safe_next(next_url: str | None) -> str:
    """Only paths of this app: an open redirect would help a phishing mail."""
    if not next_url or not next_url.startswith("/") or next_url.startswith("//"):
        return "/inbox"
    return next_url


def _login_page(
    request: Request, next_url: str, error: str = "", email: str = "", status_code: int = 200
) -> HTMLResponse:
    locale = pick_locale(request.query_params.get("lang"))
    error = gettext(locale)(error) if error else ""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    html = (
        environment(locale)
        .get_template("login.html")
        .render(user=None, csrf=token, next_url=next_url, error=error, email=email)
    )
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/inbox",
) -> Response:
    next_url = _safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(request, next_url, "The form expired; please try again.", email, 403)
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(address, email)
    if wait > 0:
        refused = _login_page(
            request, next_url, "Too many attempts; wait a minute and try again.", email, 429
        )
        refused.headers["Retry-After"] = str(int(wait) + 1)
        return refused
    runtime: Runtime = request.app.state.runtime
    row = user_by_email(runtime.views, email.strip().lower())
    stored = runtime.credentials.password_hash(row.id) if row and row.active else None
    # `check_password` runs argon2 even without a stored hash, so an unknown, inactive or
    # password-less account answers as slowly as a wrong password: timing tells nothing.
    if not check_password(stored, password) or row is None:
        limiter.failed(address, email)
        return _login_page(request, next_url, "Wrong e-mail or password.", email, 401)
    limiter.succeeded(address, email)
    session_id, _ = sessions(request).create(row.id)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, user: WebUserDep) -> Response:
    sessions(request).destroy(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.post("/me/locale")
def change_locale(
    user: WebUserDep, locale: Annotated[str, Form()], back: Annotated[str, Form()] = "/inbox"
) -> Response:
    committed = user.runtime.app.set_locale(UUID(user.id), pick_locale(locale), user.actor)
    user.runtime.wait_for_views(committed.notification_id)
    return RedirectResponse(_safe_next(back), status_code=303)


@router.post("/me/timezone")
def change_timezone(
    user: WebUserDep, timezone: Annotated[str, Form()], back: Annotated[str, Form()] = "/inbox"
) -> Response:
    try:
        committed = user.runtime.app.set_timezone(UUID(user.id), timezone.strip(), user.actor)
    except InvalidInput:
        return user.render(
            "error.html",
            status_code=422,
            title=user._("Unknown time zone"),
            message=user._("Pick a time zone from the list."),
        )
    user.runtime.wait_for_views(committed.notification_id)
    return RedirectResponse(_safe_next(back), status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    if sessions(request).load(request.cookies.get(COOKIE)) is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/inbox", status_code=303)
