"""HTML pages: Jinja2 (autoescaped) over templates/web/, one template per page on base.html.

Every page is self-contained: the stylesheet is inlined from templates/web/style.css (its hash
is the only style the CSP allows), no fonts, scripts or images from anywhere.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from digest.render.email import templates_dir
from digest.web.security import CSRF_FIELD, Csrf


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir() / "web"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


@cache
def stylesheet() -> str:
    return (templates_dir() / "web" / "style.css").read_text(encoding="utf-8")


class Pages:
    """Renders pages with what every page needs: the publication's name, the stylesheet, and a
    CSRF token (with its cookie) for any form on the page."""

    def __init__(self, publication: str, title: str, csrf: Csrf) -> None:
        self.base = {"publication": publication, "title": title, "css": stylesheet()}
        self.csrf = csrf

    def render(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        *,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        nonce = self.csrf.nonce_for(request)
        html = (
            environment()
            .get_template(template)
            .render(
                **self.base, csrf_field=CSRF_FIELD, csrf_token=self.csrf.token(nonce), **context
            )
        )
        response = HTMLResponse(html, status_code=status_code, headers=headers)
        self.csrf.set_cookie(response, nonce)
        return response

    def public(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """A page without forms for everyone (the archive): no CSRF cookie, so it can be
        cached and shared."""
        html = environment().get_template(template).render(**self.base, **context)
        return HTMLResponse(html, status_code=status_code)
