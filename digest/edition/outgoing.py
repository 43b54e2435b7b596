"""An edition's email as it will go out, for staff to look at before it does: the HTML and
the text part of the full edition or of one variant, with harmless sample links where a send
puts each subscriber's own (digest.render.placeholders), and the "View in browser" link the
send will carry. The console's previews show exactly this; nothing is stored, written or sent
(`digest preview` writes files and screenshots: digest/edition/preview.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition import archive
from digest.edition.options import branding
from digest.edition.preflight import parse_variant
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import EditionStateError
from digest.render.email import render_edition
from digest.render.placeholders import fill_preview


@dataclass(frozen=True)
class Outgoing:
    edition_id: int
    sections: tuple[str, ...]  # the variant shown: the sections its readers get
    subject: str
    preheader: str
    html: str
    text: str
    archive_url: str | None  # the "View in browser" link in it, if any

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def outgoing(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    variant: str | None,
    now: datetime,
) -> Outgoing:
    """`variant`: comma-separated sections (None or "": the full edition). A variant the
    edition does not have is a UsageError naming its sections."""
    with factory() as session:
        edition = get_edition(session, edition_id)
        if not edition.items:
            raise EditionStateError(
                f"edition {edition.id} ({edition.status}) has no articles: nothing to preview"
            )
        link = archive.expected_url(session, settings, edition, now)
        view = edition_view(edition, link)
    sections = parse_variant(view, variant) if variant else view.sections
    email = render_edition(view, branding(settings), sections)
    base = settings.web.base_url
    return Outgoing(
        edition_id=view.id,
        sections=tuple(email.sections),
        subject=email.subject,
        preheader=email.preheader,
        html=fill_preview(email.html, base),
        text=fill_preview(email.text, base),
        archive_url=link,
    )
