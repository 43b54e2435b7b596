"""Rendering: an edition (plain values) → subject, responsive HTML and a plain-text part.

Jinja2 with autoescape produces MJML, which mjml-python (MRML, in Rust) compiles to HTML.
Pure: no database, no network. The HTML is rendered once per variant (the set of sections a
group of subscribers gets), never per subscriber; per-recipient links are placeholders that the
backend fills in (SendGrid substitutions, or a string replace for SMTP and the outbox).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from mjml import mjml2html

from digest.errors import RenderError


@dataclass(frozen=True)
class ItemView:
    title: str
    url: str
    section: str
    summary: str = ""
    author: str | None = None
    image_url: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class EditionView:
    """Everything the templates need about one edition, detached from the database."""

    id: int
    subject: str
    intro: str
    cutoff: datetime
    items: tuple[ItemView, ...]
    # Staff's own inbox preview line; empty: the intro, else the first three headlines.
    preheader: str = ""
    # The edition's page in the public archive: the footer's "View in browser" link. None
    # when it will have none (no archive, a test send of a draft): never a dead link.
    archive_url: str | None = None

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.section for item in self.items))


@dataclass(frozen=True)
class Branding:
    publication_name: str
    publication_url: str
    postal_address: str
    title: str
    timezone: str = "UTC"
    logo_url: str | None = None
    language: str = "en"


@dataclass(frozen=True)
class WebCopy:
    """Render the public web copy (the archive page) instead of an email: the footer carries no
    per-recipient link and invites the reader to subscribe and to read past editions."""

    subscribe_url: str
    archive_url: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    preheader: str
    sections: tuple[str, ...]


def templates_dir() -> Path:
    """`templates/` beside the package in a checkout, or inside it in an installed wheel."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=lambda name: bool(name) and not str(name).endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    return env


@lru_cache(maxsize=4096)
def _wrap(text: str) -> str:
    """76-column lines for the text part; cached, as every variant wraps the same excerpts."""
    return "\n".join(textwrap.wrap(str(text), 76)) or ""


def render_edition(
    view: EditionView,
    branding: Branding,
    sections: Sequence[str] | None = None,
    *,
    web_copy: WebCopy | None = None,
) -> RenderedEmail:
    """The email for the subscribers who get `sections` (None: every section); with
    `web_copy`, the edition's public web page instead (no personal link in it)."""
    items = [i for i in view.items if sections is None or i.section in sections]
    if not items:
        raise RenderError(f"edition {view.id} has no articles in sections {list(sections or [])}")
    context = _context(view, branding, items)
    context["web_copy"] = web_copy
    try:
        mjml = environment().get_template("email/digest.mjml.j2").render(context)
        text = environment().get_template("email/digest.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template error: {exc}") from None
    html = compile_mjml(mjml)
    return RenderedEmail(
        subject=view.subject,
        html=html,
        text=_tidy_text(text),
        preheader=str(context["preheader"]),
        sections=tuple(dict.fromkeys(i.section for i in items)),
    )


def compile_mjml(source: str) -> str:
    try:
        # fonts={}: no Google Fonts <link>s (a third-party request in every open).
        return str(mjml2html(source, disable_comments=True, fonts={}))
    except ValueError as exc:
        raise RenderError(f"MJML compile error: {exc}") from None


def _context(view: EditionView, branding: Branding, items: Sequence[ItemView]) -> dict[str, object]:
    tz = ZoneInfo(branding.timezone)
    grouped: dict[str, list[dict[str, object]]] = {}
    for item in items:
        group = grouped.setdefault(item.section, [])
        group.append(
            {
                "lead": not group,
                "title": item.title,
                "url": item.url,
                "summary": item.summary,
                "image_url": item.image_url,
                "byline": _byline(item, tz),
            }
        )
    preheader = view.preheader or view.intro or " · ".join(i.title for i in items[:3])
    return {
        "subject": view.subject,
        "intro": view.intro,
        "preheader": textwrap.shorten(preheader, 140, placeholder="…"),
        "sections": list(grouped.items()),
        "section_names": list(grouped),
        "date_label": date_label(view.cutoff.astimezone(tz)),
        "language": branding.language,
        "title": branding.title,
        "publication_name": branding.publication_name,
        "publication_url": branding.publication_url,
        "postal_address": branding.postal_address,
        "logo_url": branding.logo_url,
        "archive_url": view.archive_url,
    }


def _byline(item: ItemView, tz: ZoneInfo) -> str:
    parts = []
    if item.author:
        parts.append(item.author)
    if item.published_at:
        parts.append(date_label(item.published_at.astimezone(tz)))
    return " · ".join(parts)


def date_label(when: datetime) -> str:
    return f"{when:%B} {when.day}, {when.year}"


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and len(out) >= 2 and out[-1] == "" and out[-2] == "":
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n"
