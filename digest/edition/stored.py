"""The stored articles as staff see them: which belong to a week, and the week's list.

Apart from digest.edition.articles (which stores what the gatherer brings), so that listing
them (`digest articles list`) loads neither the gatherer nor its parsers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from digest.store.models import Article


def week_filter(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Published in [start, end), or undated and first seen in [start, end], or picked in it.

    An undated article seen by this very build was first seen at `end` (now): it belongs to this
    week. A future-dated article is not trusted: its date is after the cut-off, so it stays out
    until a later week's window reaches that date.
    """
    published = and_(Article.published_at >= start, Article.published_at < end)
    undated = and_(
        Article.published_at.is_(None), Article.first_seen_at >= start, Article.first_seen_at <= end
    )
    picked = and_(Article.is_pick.is_(True), Article.picked_at >= start, Article.picked_at <= end)
    return or_(published, undated, picked)


def list_articles(
    session: Session, start: datetime | None, end: datetime | None, section: str | None = None
) -> list[Article]:
    """Every stored candidate of the week (or all of them), newest first, for staff."""
    query = select(Article)
    if start is not None and end is not None:
        query = query.where(week_filter(start, end))
    if section:
        query = query.where(or_(Article.pick_section == section, Article.section == section))
    effective = func.coalesce(Article.published_at, Article.first_seen_at)
    return list(session.scalars(query.order_by(effective.desc(), Article.id.desc())))
