"""A stored edition -> the plain EditionView the renderer takes (detached from the database)."""

from __future__ import annotations

from digest.render.email import EditionView, ItemView
from digest.store.models import Edition


def edition_view(edition: Edition) -> EditionView:
    return EditionView(
        id=edition.id,
        subject=edition.subject,
        intro=edition.intro,
        preheader=edition.preheader,
        cutoff=edition.cutoff,
        items=tuple(
            ItemView(
                title=i.title,
                url=i.url,
                section=i.section,
                summary=i.summary,
                author=i.author,
                image_url=i.image_url,
                published_at=i.published_at,
            )
            for i in edition.items
        ),
    )
