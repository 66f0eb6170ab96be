"""What every page handler shares: the browser (its session, anti-forgery binding and
language), rendering a template in that language, and the cookies we set.

A page handler is as thin as a JSON route: it reads a form, calls the same service as the
API, and renders or redirects. Security headers of every page are set here: a CSP of
``'self'`` only (no inline script or style), no framing, no referrer (token-bearing URLs never
leak to other origins), and ``no-store`` (form pages must not be cached).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
import structlog
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from auth_service import i18n
from auth_service.audit.context import RequestContext
from auth_service.config.settings import Settings
from auth_service.problems import ServiceError, problem
from auth_service.services import Services
from auth_service.sessions.service import BrowserSession
from auth_service.ui import messages
from auth_service.ui.safety import AntiForgery, origin_of, safe_return_to
from auth_service.web.deps import ContextDep, ServicesDep, get_context

# No form-action: a sign-in or consent post ends in a redirect to the client's registered
# redirect URI, and Chromium applies form-action to every redirect of a form's navigation.
log = structlog.get_logger(__name__)

PAGE_CSP = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
LANGUAGE_COOKIE = "auth_lang"
CSRF_FIELD = "csrf_token"


@problem(403, "form-forged", "The form did not come from this site or has expired")
class FormForged(ServiceError):
    """The anti-forgery token or the request's origin is wrong."""


@dataclass
class Browser:
    """The browser making this page request."""

    request: Request
    context: RequestContext
    session: BrowserSession | None
    session_cookie: str | None
    anti_forgery_cookie: str
    language: str
    set_anti_forgery: bool = False
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)

    @property
    def binding(self) -> str:
        """What this browser's forms and flows are bound to: its session once signed in."""
        if self.session is not None and self.session_cookie:
            return "s:" + self.session_cookie
        return "a:" + self.anti_forgery_cookie


class Pages:
    """Rendering and cookies for the hosted pages (one per process)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("auth_service.ui", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.anti_forgery = AntiForgery(services.master_key.derive("ui-anti-forgery"))

    @property
    def settings(self) -> Settings:
        return self._services.settings  # swapped by hot reload: read it each time

    @property
    def secure(self) -> bool:
        return self.settings.server.public_url.startswith("https://")

    @property
    def session_cookie(self) -> str:
        # __Host-: only over https, for this host only, path /: no subdomain can set it.
        return "__Host-auth_session" if self.secure else "auth_session"

    @property
    def anti_forgery_cookie(self) -> str:
        return "__Host-auth_csrf" if self.secure else "auth_csrf"

    # ---- requests ----------------------------------------------------------------------

    def language(self, request: Request, asked: str | None = None) -> str:
        """``ui_locales`` (OAuth2) or ``asked``, then the language switch's cookie, then
        ``Accept-Language``, then the configured default."""
        preferences = [*(asked or "").split(), request.cookies.get(LANGUAGE_COOKIE, "")]
        preferences += i18n.parse_accept_language(request.headers.get("accept-language"))
        return i18n.choose(preferences, self.settings.ui.default_locale)

    def check_form(self, browser: Browser, token: str | None) -> None:
        """Refuse a form post that did not come from our own page in this browser."""
        request = browser.request
        allowed = {
            origin_of(self.settings.server.public_url),
            f"{request.url.scheme}://{request.url.netloc}".lower(),
        }
        same_site = AntiForgery.same_site(
            request.headers.get("origin"), request.headers.get("sec-fetch-site"), allowed
        )
        if not same_site or not self.anti_forgery.valid(browser.binding, token):
            raise FormForged

    def return_to(self, candidate: str | None) -> str | None:
        return safe_return_to(candidate, self.settings.server.public_url)

    # ---- responses ---------------------------------------------------------------------

    def render(
        self, browser: Browser, template: str, *, status: int = 200, **context: Any
    ) -> Response:
        translations = i18n.translations(browser.language)
        ui = self.settings.ui
        html = self.env.get_template(template).render(
            _=translations.gettext,
            ngettext=translations.ngettext,
            lang=browser.language,
            languages=[(code, i18n.display_name(code)) for code in i18n.languages()],
            product=ui.product_name,
            has_logo=ui.logo_file is not None,
            csrf_field=CSRF_FIELD,
            csrf_token=self.anti_forgery.token(browser.binding),
            signed_in=browser.session,
            here=browser.request.url.path,
            registration_open=self.settings.features.registration,
            reset_open=self.settings.features.password_reset,
            passkey_sign_in=self.settings.mfa.enabled and self.settings.mfa.passkeys,
            **context,
        )
        return self.finish(browser, HTMLResponse(html, status_code=status, headers=PAGE_HEADERS))

    @staticmethod
    def gettext(browser: Browser) -> Callable[[str], str]:
        return i18n.translations(browser.language).gettext

    def error_text(self, browser: Browser, exc: ServiceError) -> str:
        return messages.describe(exc, i18n.translations(browser.language).gettext)

    def error_page(self, browser: Browser, exc: ServiceError) -> Response:
        """The friendly error page for a failure that ends the step (with a reference id)."""
        return self.render(
            browser,
            "error.html",
            status=exc.problem.status,
            message=self.error_text(browser, exc),
            reference=browser.context.request_id or "",
        )

    def redirect(self, browser: Browser, path: str, **query: str) -> Response:
        """303 to one of our own paths (never built from the Host header)."""
        target = path + (f"?{urlencode(query)}" if query else "")
        return self.finish(browser, RedirectResponse(target, status_code=303, headers=PAGE_HEADERS))

    def finish(self, browser: Browser, response: Response) -> Response:
        """Set the cookies this request decided on."""
        if browser.set_anti_forgery:
            self._cookie(response, self.anti_forgery_cookie, browser.anti_forgery_cookie, None)
        for name, value, max_age in browser.cookies:
            self._cookie(response, name, value, max_age)
        return response

    def _cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def sign_in(self, browser: Browser, cookie: str) -> None:
        """Give the browser its new session cookie (replacing any earlier one); forms
        rendered from now on are bound to it."""
        ttl = self.settings.tokens.refresh_absolute_ttl_seconds
        browser.cookies.append((self.session_cookie, cookie, ttl))
        browser.session_cookie = cookie

    def sign_out(self, browser: Browser) -> None:
        """Clear the session cookie; the page rendered next is a signed-out one."""
        browser.cookies.append((self.session_cookie, "", 0))
        browser.session = None
        browser.session_cookie = None

    def set_language(self, browser: Browser, language: str) -> None:
        browser.cookies.append((LANGUAGE_COOKIE, language, 365 * 24 * 3600))


class PageRoute(APIRoute):
    """A page answers in HTML whatever goes wrong: a failure a handler did not turn into a
    form message (a forged form, a malformed path) becomes the friendly error page, and an
    unexpected one is logged and shown as one too, with the reference id of the log line."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (ServiceError, RequestValidationError) as exc:
                return await _failure_page(request, exc)
            except Exception as exc:
                log.error(
                    "unhandled_exception",
                    error=type(exc).__name__,
                    path=request.url.path,
                    exc_info=exc,
                )
                return await _failure_page(request, exc)

        return page_handler


async def _failure_page(request: Request, exc: Exception) -> Response:
    pages: Pages = request.app.state.pages
    services: Services = request.app.state.services
    ctx = await get_context(request)
    browser = await get_browser(request, pages, services, ctx)
    if isinstance(exc, ServiceError):
        return pages.error_page(browser, exc)
    gettext = pages.gettext(browser)
    status = 400 if isinstance(exc, RequestValidationError) else 500
    return pages.render(
        browser,
        "error.html",
        status=status,
        message=gettext(messages.GENERIC),
        reference=ctx.request_id or "",
    )


async def get_pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


PagesDep = Annotated[Pages, Depends(get_pages)]


async def get_browser(
    request: Request, pages: PagesDep, services: ServicesDep, ctx: ContextDep
) -> Browser:
    """The browser of a page request: its live session (one statement), its anti-forgery
    cookie (made on its first visit) and its language."""
    session_cookie = request.cookies.get(pages.session_cookie)
    session = await services.sessions.browser_session(session_cookie) if session_cookie else None
    anti_forgery = request.cookies.get(pages.anti_forgery_cookie)
    fresh = anti_forgery is None or not 20 <= len(anti_forgery) <= 64
    if fresh:
        anti_forgery = secrets.token_urlsafe(32)
    assert anti_forgery is not None
    return Browser(
        request,
        ctx.with_actor(session.identity.id) if session else ctx,
        session,
        session_cookie if session else None,
        anti_forgery,
        pages.language(request),
        set_anti_forgery=fresh,
    )


BrowserDep = Annotated[Browser, Depends(get_browser)]
