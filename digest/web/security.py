"""Headers every answer gets (a 500 too), and CSRF protection for human-facing forms.

Token pages must leak their token nowhere: `Referrer-Policy: no-referrer`, no third-party
assets (the CSP allows nothing from anywhere else, and the CSS is inline), no caching
(docs/standards.md §5; CWE-598). Forms use a signed double-submit cookie: the cookie holds a random
value, the form a signature of it, so a cross-site page can neither read nor forge the pair.
The RFC 8058 one-click endpoint is the one POST without it (the RFC forbids cookies there).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from typing import NamedTuple

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.web.logs import redact

CSRF_COOKIE = "digest_csrf"
# Over https the cookie's name carries the __Host- prefix: browsers then accept it only with
# Secure, Path=/ and no Domain, so a sibling subdomain (or a plain-http page) cannot plant one.
CSRF_COOKIE_HTTPS = f"__Host-{CSRF_COOKIE}"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_S = 12 * 3600
HSTS_MAX_AGE_S = 365 * 24 * 3600
_NONCE = re.compile(r"[0-9a-f]{32}")
logger = logging.getLogger("digest.web")


def style_hash(css: str) -> str:
    """The CSP source for our one inline <style> block, so no other style can run."""
    digest = hashlib.sha256(css.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def security_headers(css: str, *, https: bool = False) -> list[tuple[bytes, bytes]]:
    """Every answer's headers; with an https base_url also HSTS (browsers then refuse plain
    http for the site for a year, so a network attacker cannot strip TLS from a later visit)."""
    csp = (
        f"default-src 'none'; style-src {style_hash(css)}; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    headers = [
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"cache-control", b"no-store"),
    ]
    if https:
        headers.append((b"strict-transport-security", f"max-age={HSTS_MAX_AGE_S}".encode()))
    return headers


Headers = Sequence[tuple[bytes, bytes]]

# The API docs page runs Swagger UI: scripts, styles, fonts and its requests, from our origin
# only (digest/web/api_docs.py serves the files). Nothing else is loosened.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# An archived edition is the email as sent: its <style> blocks and style attributes, and the
# images it shows (the publication's, over https). Still no script, form, frame or font.
ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def console_csp(css: str, *, frames: bool = False) -> str:
    """The staff console's pages: its stylesheet and script are files from our own origin (no
    inline script, no third party), its script reads the staff API (connect-src), and the
    public pages' one inline stylesheet (its hash) styles the error and sign-in pages under
    /staff. `frames`: the edition pages show the email previews in iframes of our own origin."""
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self' {style_hash(css)}; "
        "img-src 'self' data:; connect-src 'self'; "
        + ("frame-src 'self'; " if frames else "")
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


# An email preview, shown in an iframe of an edition page: the email's own <style> blocks,
# style attributes and https images, nothing that runs (the sandbox directive: no script, no
# form, an opaque origin even for our own pages), framed by our own pages only.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
)


class PathHeaders(NamedTuple):
    """Headers that replace the defaults on `path` (exactly, or every path under it); with
    `errors`, on its error answers too (the console shows its refusals on its own pages)."""

    path: str
    headers: Headers
    exact: bool = False
    errors: bool = False

    def matches(self, path: str) -> bool:
        return path == self.path if self.exact else path.startswith(self.path)


def page_overrides(css: str = "") -> list[PathHeaders]:
    """The pages whose headers differ from the defaults, most specific first. `css`: the
    public pages' inline stylesheet, which the console's pages allow too (its hash)."""
    public = (b"cache-control", b"public, max-age=300")
    console = (b"content-security-policy", console_csp(css).encode())
    editions = (b"content-security-policy", console_csp(css, frames=True).encode())
    preview = [
        (b"content-security-policy", PREVIEW_CSP.encode()),
        (b"x-frame-options", b"SAMEORIGIN"),
    ]
    assets = (b"cache-control", b"private, no-cache")  # revalidated: a new version shows
    return [
        PathHeaders("/staff/preview/", preview),
        PathHeaders("/staff/assets/", [console, assets]),
        PathHeaders("/staff/editions/", [editions], errors=True),
        PathHeaders("/staff/", [console], errors=True),
        PathHeaders("/staff", [console], exact=True, errors=True),
        PathHeaders("/api/docs/assets/", [(b"cache-control", b"private, max-age=3600")]),
        PathHeaders("/api/docs", [(b"content-security-policy", DOCS_CSP.encode())], exact=True),
        PathHeaders("/archive/feed.xml", [public], exact=True),
        PathHeaders("/archive/", [public], exact=True),  # the index: our page, our strict CSP
        PathHeaders("/archive/", [(b"content-security-policy", ARCHIVE_CSP.encode()), public]),
    ]


class SecurityMiddleware:
    """Pure ASGI (no per-request task switch): adds the headers to every answer, and answers an
    unexpected error itself, so that a 500 carries them too (Starlette's own error page sits
    outside every middleware, and uvicorn's has no headers at all). The error is logged with
    its traceback; the client learns nothing about it. Paths under an override get some
    headers of their own instead of the defaults (the first that matches)."""

    def __init__(
        self, app: ASGIApp, headers: Headers, overrides: Sequence[PathHeaders] = ()
    ) -> None:
        self.app = app
        self.headers = list(headers)
        self.names = {name for name, _ in headers}
        self.overrides = [o._replace(headers=self._merged(o.headers)) for o in overrides]

    def _merged(self, extra: Headers) -> list[tuple[bytes, bytes]]:
        names = {name for name, _ in extra}
        return [(k, v) for k, v in self.headers if k not in names] + list(extra)

    def headers_for(self, path: str, status: int = 200) -> list[tuple[bytes, bytes]]:
        """A path's headers; an error's are the defaults (never cached, nor styled like the
        page it stands for) unless the override says otherwise."""
        for override in self.overrides:
            if override.matches(path):
                return list(override.headers) if status < 400 or override.errors else self.headers
        return self.headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        path = str(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                own = [(k, v) for k, v in message.get("headers", []) if k not in self.names]
                message["headers"] = own + self.headers_for(path, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            where = f"{scope.get('method')} {redact(str(scope.get('path', '')))}"
            logger.exception("unexpected error answering %s", where)
            if started:
                raise  # half an answer is out: uvicorn closes the connection
            await _server_error(send_with_headers)


async def _server_error(send: Send) -> None:
    body = b"Something went wrong on our side. Please try again later.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Csrf:
    """Signed double-submit tokens. Keys rotate like the link keys (newest first)."""

    def __init__(self, keys: Sequence[str], secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt="digest.csrf")
        self.secure = secure
        self.cookie = CSRF_COOKIE_HTTPS if secure else CSRF_COOKIE

    def nonce_for(self, request: Request) -> str:
        """The browser's existing nonce, or a new one (set it with `set_cookie`)."""
        value = request.cookies.get(self.cookie, "")
        return value if _NONCE.fullmatch(value) else secrets.token_hex(16)

    def token(self, nonce: str) -> str:
        return str(self._serializer.dumps(nonce))

    def set_cookie(self, response: Response, nonce: str) -> None:
        response.set_cookie(
            self.cookie,
            nonce,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )

    def valid(self, request: Request, submitted: str | None) -> bool:
        cookie = request.cookies.get(self.cookie, "")
        if not submitted or not _NONCE.fullmatch(cookie):
            return False
        try:
            value = self._serializer.loads(submitted, max_age=CSRF_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(value, str) and secrets.compare_digest(value, cookie)
