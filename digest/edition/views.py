"""A stored edition -> the plain EditionView the renderer takes (detached from the database)."""

from __future__ import annotations

from digest.render.email import EditionView, ItemView
from digest.store.models import Edition


def edition_view(edition: Edition, archive_url: str | None = None) -> EditionView:
    """`archive_url`: the edition's archive page, for the email's "View in browser" link
    (digest.edition.archive.archive_url says whether it has one)."""
    return EditionView(
        id=edition.id,
        subject=edition.subject,
        intro=edition.intro,
        preheader=edition.preheader,
        cutoff=edition.cutoff,
        archive_url=archive_url,
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
