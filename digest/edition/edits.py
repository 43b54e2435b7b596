"""Staff edits of a draft: pin, drop, move, subject, preheader, intro; approve and the other
status changes. The CLI's `digest edition ...` commands (and the console) call these.

An edit is recorded (digest.store.models.EditionEdit) and the edition recomposed from the stored
week, so a later rebuild applies the same edits to fresh articles. Each call is one transaction:
a refused edit changes nothing. Editing an approved edition returns it to draft, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from digest.config import Settings
from digest.edition import lifecycle
from digest.edition.articles import find_article, week_filter
from digest.edition.build import compose, published_article_ids, write_items
from digest.edition.preflight import PreflightReport, preflight_edition
from digest.errors import EditionStateError, NotFoundError, UsageError
from digest.gather.candidate import Candidate
from digest.gather.sanitize import plain_chars
from digest.store.db import transaction
from digest.store.models import APPROVED, DRAFT, Article, Edition, EditionEdit

TEXTS = ("subject", "preheader", "intro")
# Longest texts staff may set: a subject past ~100 characters is cut by every inbox anyway.
TEXT_LIMITS = {"subject": 300, "preheader": 250, "intro": 5000}


@dataclass
class EditResult:
    edition_id: int
    status: str
    # What the person should know: an approval undone, an edit that did not take effect.
    warnings: list[str] = field(default_factory=list)
    position: int | None = None
    # Approving: the preflight it passed (or that --force let through).
    preflight: PreflightReport | None = None


def load(session: Session, edition_id: int) -> Edition:
    edition = session.scalar(
        select(Edition)
        .where(Edition.id == edition_id)
        .options(selectinload(Edition.items), selectinload(Edition.edits))
    )
    if edition is None:
        raise NotFoundError(f"no edition with id {edition_id} (see `digest edition list`)")
    return edition


@contextmanager
def _editing(factory: sessionmaker[Session], edition_id: int) -> Iterator[tuple[Session, Edition]]:
    with transaction(factory) as session:
        edition = load(session, edition_id)
        seen = edition.version
        yield session, edition
        lifecycle.bump(session, edition, seen, "this edit")


def _approvable(factory: sessionmaker[Session], edition_id: int) -> bool:
    """Worth a preflight: a draft with articles (approve explains any other refusal)."""
    with factory() as session:
        edition = load(session, edition_id)
        return edition.status == DRAFT and bool(edition.items)


def resolve_article(session: Session, ref: str) -> Article:
    """ARTICLE on the command line: an article id, or its URL (any form that canonicalises to
    the stored one, its http:// or https:// copy alike, as a build matches articles)."""
    ref = ref.strip()
    if ref.isdigit():
        article = session.get(Article, int(ref))
        if article is None:
            raise NotFoundError(f"no article with id {ref} (see `digest articles list`)")
        return article
    if not ref.lower().startswith(("http://", "https://")):
        raise UsageError(f"{ref!r} is neither an article id nor an http(s) URL")
    # The build's own identity of an article: its canonical URL, http and https alike.
    article = find_article(session, Candidate(url=ref, title=""))
    if article is None:
        article = session.scalar(select(Article).where(Article.url == ref))
    if article is None:
        raise NotFoundError(f"no stored article has the URL {ref} (see `digest articles list`)")
    return article


def _editable(session: Session, edition: Edition, actor: str, now: datetime) -> list[str]:
    if edition.status == DRAFT:
        return []
    if edition.status == APPROVED:
        lifecycle.unapprove(session, edition, actor, now, reason="edited after approval")
        return [
            f"edition {edition.id} was approved; this edit returned it to draft: approve it "
            f"again with `digest edition approve {edition.id}`"
        ]
    raise EditionStateError(
        f"edition {edition.id} is {edition.status}: it can no longer be edited"
        + (
            " (rebuild its week with `digest build`)"
            if edition.status in ("skipped", "cancelled")
            else ""
        )
    )


def _record_and_recompose(
    session: Session,
    edition: Edition,
    settings: Settings,
    edit: EditionEdit,
    summary: str,
    now: datetime,
) -> list[str]:
    edition.edits.append(edit)
    lifecycle.record(session, edition, "edited", edit.actor, now, detail=summary)
    composed = compose(session, edition, settings)
    write_items(session, edition, composed.chosen)
    session.flush()
    return composed.stale_edits


def _item_edit(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    ref: str,
    actor: str,
    now: datetime,
    kind: str,
    value: dict[str, Any],
    check: Callable[[Session, Edition, Article], None],
) -> EditResult:
    with _editing(factory, edition_id) as (session, edition):
        warnings = _editable(session, edition, actor, now)  # a sent edition: say that first
        article = resolve_article(session, ref)
        check(session, edition, article)
        edit = EditionEdit(kind=kind, article_id=article.id, value=value, at=now, actor=actor)
        summary = f"{kind} article {article.id} ({article.title[:80]})" + (
            f" {value}" if value else ""
        )
        stale = _record_and_recompose(session, edition, settings, edit, summary, now)
        position = next((i.position for i in edition.items if i.article_id == article.id), None)
        return EditResult(edition.id, edition.status, warnings + stale, position)


def _in_edition(otherwise: str) -> Callable[[Session, Edition, Article], None]:
    """The check of an edit that needs the article in the edition (drop, move)."""

    def check(session: Session, edition: Edition, article: Article) -> None:
        if article.id not in {i.article_id for i in edition.items}:
            raise EditionStateError(
                f"article {article.id} is not in edition {edition.id}: {otherwise}"
            )

    return check


def pin(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    ref: str,
    actor: str,
    now: datetime,
    *,
    lead: bool = False,
) -> EditResult:
    """Keep an article in, whatever the ranking says; with `lead`, also make it the lead story
    (the latest lead pin wins; without one the lead is the highest score). It must be of this
    week and not carried by another approved or sent edition."""

    def check(session: Session, edition: Edition, article: Article) -> None:
        in_week = session.scalar(
            select(Article.id).where(
                Article.id == article.id, week_filter(edition.window_start, edition.cutoff)
            )
        )
        tz = settings.publication.tz
        if in_week is None:
            when = article.published_at or article.first_seen_at
            raise EditionStateError(
                f"article {article.id} ({when.astimezone(tz):%Y-%m-%d %H:%M}) is outside edition "
                f"{edition.id}'s week ({edition.window_start.astimezone(tz):%Y-%m-%d %H:%M} to "
                f"{edition.cutoff.astimezone(tz):%Y-%m-%d %H:%M}): not pinned"
            )
        if article.id in published_article_ids(session, edition.id):
            raise EditionStateError(
                f"article {article.id} is already in an approved or sent edition: not pinned"
            )

    value: dict[str, Any] = {"lead": True} if lead else {}
    return _item_edit(factory, settings, edition_id, ref, actor, now, "pin", value, check)


def drop(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    ref: str,
    actor: str,
    now: datetime,
) -> EditResult:
    """Keep an article out; the next best takes its place."""

    check = _in_edition("nothing to drop")
    return _item_edit(factory, settings, edition_id, ref, actor, now, "drop", {}, check)


def move(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    ref: str,
    actor: str,
    now: datetime,
    *,
    position: int | None = None,
    section: str | None = None,
) -> EditResult:
    """To a position in the whole edition's reading order, or into another section. An item stays
    with its section, so the position it ends at can differ (the result says where it is)."""
    if (position is None) == (section is None):
        raise UsageError("say where to: --to POSITION or --section SECTION (one of them)")
    if position is not None and position < 1:
        raise UsageError(f"--to {position}: positions start at 1")
    if section is not None and section not in settings.newsletter.sections:
        known = ", ".join(settings.newsletter.sections)
        raise UsageError(f"--section {section!r} is not one of the newsletter's sections ({known})")
    value: dict[str, Any] = {"position": position} if position is not None else {"section": section}

    check = _in_edition("pin it first")
    return _item_edit(factory, settings, edition_id, ref, actor, now, "move", value, check)


def set_text(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    kind: str,
    text: str,
    actor: str,
    now: datetime,
) -> EditResult:
    """The subject, preheader or intro; an empty text goes back to the configured default."""
    if kind not in TEXTS:
        raise UsageError(f"{kind!r} is not one of {', '.join(TEXTS)}")
    # Control characters, lone surrogates and bidi overrides never reach an email: MJML cannot
    # compile them, and one pasted into the intro would stop the whole edition from rendering.
    text = plain_chars(text).strip()
    if kind == "subject" and ("\n" in text or "\r" in text):
        raise UsageError("a subject is one line")
    if len(text) > TEXT_LIMITS[kind]:
        raise UsageError(f"the {kind} is {len(text)} characters; at most {TEXT_LIMITS[kind]}")
    with _editing(factory, edition_id) as (session, edition):
        warnings = _editable(session, edition, actor, now)
        edit = EditionEdit(kind=kind, article_id=None, value={"text": text}, at=now, actor=actor)
        shown = text if len(text) <= 60 else text[:59] + "…"
        stale = _record_and_recompose(session, edition, settings, edit, f"{kind}: {shown!r}", now)
        return EditResult(edition.id, edition.status, warnings + stale)


def change_status(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    action: str,
    actor: str,
    now: datetime,
    *,
    reason: str | None = None,
    force: lifecycle.Override | None = None,
) -> EditResult:
    """approve (after a preflight of the full edition and every variant that has
    subscribers), unapprove, cancel or skip."""
    checked = None
    if action == "approve" and _approvable(factory, edition_id):
        checked = preflight_edition(factory, settings, edition_id, now)
    with _editing(factory, edition_id) as (session, edition):
        if action == "approve":
            lifecycle.approve(session, edition, settings, actor, now, force, checked)
        elif action == "unapprove":
            lifecycle.unapprove(session, edition, actor, now, reason)
        elif action == "cancel":
            lifecycle.cancel(session, edition, actor, now, reason)
        elif action == "skip":
            lifecycle.skip(session, edition, actor, now, reason or "")
        else:
            raise UsageError(f"unknown action {action!r}")
        return EditResult(edition.id, edition.status, preflight=checked)
