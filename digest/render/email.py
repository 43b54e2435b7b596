"""Rendering: an edition (plain values) → subject, responsive HTML and a plain-text part.

Jinja2 with autoescape produces MJML, which mjml-python (MRML, in Rust) compiles to HTML.
Pure: no database, no network. The HTML is rendered once per variant (the set of sections a
group of subscribers gets), never per subscriber; per-recipient links are placeholders that the
backend fills in (SendGrid substitutions, or a string replace for SMTP and the outbox).

Every email digest sends (the edition, the confirmation, the welcome) goes through
`render_mail`: one layout (templates/email/_layout.mjml.j2), one palette for light and one for
dark mode, the publication's own templates first when it has any (Branding.templates_dir).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from mjml import mjml2html

from digest.colors import DARK, LIGHT, Palette
from digest.errors import RenderError
from digest.render.inert import clean, finalize, subject_value, url_value
from digest.render.words import (
    fill_intro,
    join_names,
    preheader,
    preheader_padding,
    sentence_cut,
)

# More stories than this in a variant: an "In this edition" list after the lead story.
CONTENTS_AFTER = 8
# The content column's side padding in the templates: images are the column minus twice this.
GUTTER = 24


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
    # Staff's intro, or the configured default; {sections}, {stories} and {count} are filled
    # in per variant (render/words.py), so a reader of one section is told about that one.
    intro: str
    cutoff: datetime
    items: tuple[ItemView, ...]
    # Staff's own inbox preview line; empty: each variant's first headlines.
    preheader: str = ""
    # The edition's page in the public archive, for the footer's "View in browser" link; None
    # while it has none, and then the link is left out (never a dead link).
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
    light: Palette = LIGHT
    dark: Palette = DARK
    font_body: str = "Helvetica, Arial, sans-serif"
    font_headline: str = "Georgia, 'Times New Roman', serif"
    content_width: int = 600
    logo_width: int = 180
    dark_logo_url: str | None = None
    # The publication's own templates (an absolute folder), tried before ours file by file.
    templates_dir: str | None = None


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


@dataclass(frozen=True)
class Mail:
    """A rendered email that is not an edition (the confirmation, the welcome)."""

    subject: str
    html: str
    text: str


def templates_dir() -> Path:
    """`templates/` beside the package in a checkout, or inside it in an installed wheel."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


@lru_cache(maxsize=8)
def environment(custom: str | None = None) -> jinja2.Environment:
    """The email templates: `custom`'s files first (a publication's overrides, file by file),
    then ours, which stay reachable as "digest/NAME" so an override can include or extend the
    file it replaces."""
    ours = jinja2.FileSystemLoader(templates_dir() / "email")
    loaders: list[jinja2.BaseLoader] = [ours, jinja2.PrefixLoader({"digest": ours})]
    if custom is not None:
        loaders.insert(0, jinja2.FileSystemLoader(custom))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=lambda name: bool(name) and not str(name).endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates do not change while digest runs: no stat per render
        # Every printed value made inert: no placeholder, no mangled attribute (render/inert.py).
        finalize=finalize,
    )
    env.filters["wrap"] = _wrap
    return env


@lru_cache(maxsize=4096)
def _wrap(text: str) -> str:
    """76-column lines for the text part; cached, as every variant wraps the same excerpts."""
    return "\n".join(textwrap.wrap(str(text), 76)) or ""


@dataclass(frozen=True)
class Sources:
    """What the templates make of one variant, before MJML compiles: the MJML and the text part.
    render_edition compiles it; the node-MJML comparison test and bench/render.py use it too."""

    subject: str
    mjml: str
    text: str
    preheader: str
    sections: tuple[str, ...]


def render_sources(
    view: EditionView,
    branding: Branding,
    sections: Sequence[str] | None = None,
    *,
    web_copy: WebCopy | None = None,
) -> Sources:
    """The templates' output for the subscribers who get `sections` (None: every section); with
    `web_copy`, the edition's public web page instead (no personal link in it)."""
    items = [i for i in view.items if sections is None or i.section in sections]
    if not items:
        raise RenderError(f"edition {view.id} has no articles in sections {list(sections or [])}")
    context = _context(view, branding, items)
    context["web_copy"] = web_copy
    mjml, text = _render_pair("digest", context, branding)
    return Sources(
        subject=subject_value(view.subject),
        mjml=mjml,
        text=_tidy_text(text),
        preheader=str(context["preheader"]),
        sections=tuple(context["section_names"]),
    )


def render_edition(
    view: EditionView,
    branding: Branding,
    sections: Sequence[str] | None = None,
    *,
    web_copy: WebCopy | None = None,
) -> RenderedEmail:
    """The email for the subscribers who get `sections` (None: every section); with
    `web_copy`, the edition's public web page instead (no personal link in it)."""
    sources = render_sources(view, branding, sections, web_copy=web_copy)
    return RenderedEmail(
        subject=sources.subject,
        html=compile_mjml(sources.mjml),
        text=sources.text,
        preheader=sources.preheader,
        sections=sources.sections,
    )


def render_mail(name: str, context: Mapping[str, Any], branding: Branding) -> Mail:
    """Any other email (templates `name`.mjml.j2 and `name`.txt.j2) in the editions' layout;
    `context` must hold its subject and preheader."""
    subject, mjml, text = mail_sources(name, context, branding)
    return Mail(subject, compile_mjml(mjml), text)


def mail_sources(name: str, context: Mapping[str, Any], branding: Branding) -> tuple[str, str, str]:
    """render_mail's subject, MJML and text part, before MJML compiles (the node-MJML test)."""
    full = {**layout_context(branding), **context}
    full["preheader_padding"] = preheader_padding(str(full["preheader"]))
    mjml, text = _render_pair(name, full, branding)
    return subject_value(str(full["subject"])), mjml, _tidy_text(text)


def compile_mjml(source: str) -> str:
    try:
        # fonts={}: no Google Fonts <link>s (a third-party request in every open).
        return str(mjml2html(source, disable_comments=True, fonts={}))
    except ValueError as exc:
        raise RenderError(f"MJML compile error: {exc}") from None


def _render_pair(name: str, context: Mapping[str, Any], branding: Branding) -> tuple[str, str]:
    env = environment(branding.templates_dir)
    try:
        mjml = env.get_template(f"{name}.mjml.j2").render(context)
        text = env.get_template(f"{name}.txt.j2").render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or "a template"
        raise RenderError(f"template error: {where}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"template error in {name}: {exc}") from None
    return mjml, text


def layout_context(branding: Branding) -> dict[str, Any]:
    """What the layout (header, palettes, footer) needs, the same in every email."""
    return {
        "language": branding.language,
        "title": branding.title,
        "publication_name": branding.publication_name,
        "publication_url": branding.publication_url,
        "postal_address": branding.postal_address,
        "logo_url": branding.logo_url,
        "dark_logo_url": branding.dark_logo_url,
        "logo_width": branding.logo_width,
        "width": branding.content_width,
        "inner_width": branding.content_width - 2 * GUTTER,
        "light": branding.light,
        "dark": branding.dark,
        "font_body": branding.font_body,
        "font_headline": branding.font_headline,
        # The footer's parts; each email says which it shows.
        "why": "",
        "personal_links": False,
        "archive_url": None,
        "web_copy": None,
    }


def _context(view: EditionView, branding: Branding, items: Sequence[ItemView]) -> dict[str, Any]:
    """One variant: its lead story (its first), the rest by section, its own intro, preheader
    and footer line. Every value from outside is cleaned on its way in (render/inert.py)."""
    tz = ZoneInfo(branding.timezone)
    cards = [_card(item, tz) for item in items]
    lead, rest = cards[0], cards[1:]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for card in rest:
        group = grouped.setdefault(card["section"], [])
        card["featured"] = bool(card["image_url"]) and not group
        group.append(card)
    names = list(dict.fromkeys(card["section"] for card in cards))
    text = preheader(clean(view.preheader), [card["title"] for card in cards])
    return {
        **layout_context(branding),
        "subject": clean(view.subject),
        "preheader": text,
        "preheader_padding": preheader_padding(text),
        "intro": fill_intro(clean(view.intro), names, len(items)),
        "lead": lead,
        "sections": list(grouped.items()),
        "contents": len(items) > CONTENTS_AFTER,
        "section_names": names,
        "sections_label": join_names(names),
        "every_section": len(names) == len({clean(s) for s in view.sections}),
        "date_label": date_label(view.cutoff.astimezone(tz)),
        "archive_url": url_value(view.archive_url) if view.archive_url else None,
    }


def _card(item: ItemView, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "title": clean(item.title),
        "url": url_value(item.url),
        "section": clean(item.section),
        "summary": sentence_cut(clean(item.summary)),
        "image_url": url_value(item.image_url) if item.image_url else None,
        "byline": _byline(item, tz),
        "featured": False,
    }


def _byline(item: ItemView, tz: ZoneInfo) -> str:
    parts = []
    author = clean(item.author or "")
    if author:
        parts.append(author)
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
