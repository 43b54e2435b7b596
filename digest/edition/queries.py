"""Reading editions back: the one way every face and the engine find an edition."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from digest.errors import NotFoundError
from digest.store.models import Edition


def get_edition(session: Session, edition_id: int | None) -> Edition:
    """The given edition, or the newest one when no id is given."""
    query = select(Edition).options(selectinload(Edition.items))
    if edition_id is None:
        edition = session.scalar(query.order_by(Edition.cutoff.desc(), Edition.id.desc()).limit(1))
        if edition is None:
            raise NotFoundError("no edition yet: run `digest build` first")
        return edition
    edition = session.scalar(query.where(Edition.id == edition_id))
    if edition is None:
        raise NotFoundError(f"no edition with id {edition_id}")
    return edition
