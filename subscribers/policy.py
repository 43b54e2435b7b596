"""The publication's rules for subscribers, and the lookups every transition shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers import ratelimit
from subscribers.addresses import normalise_email
from subscribers.errors import InvalidSections, UnknownSubscriber
from subscribers.models import Subscriber


@dataclass(frozen=True)
class Policy:
    """The publication's rules, from its configuration."""

    sections: tuple[str, ...]
    confirm_ttl: timedelta = timedelta(hours=72)
    limits: ratelimit.ConfirmationLimits = field(default_factory=ratelimit.ConfirmationLimits)
    max_pause_weeks: int = 12
    pending_expiry: timedelta = timedelta(days=7)


def find_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(Subscriber.email == normalise_email(email))
    ).first()


def get_by_email(session: Session, email: str) -> Subscriber:
    found = find_by_email(session, email)
    if found is None:
        raise UnknownSubscriber(f"no subscriber with the address {normalise_email(email)}")
    return found


def find_by_public_id(session: Session, public_id: str) -> Subscriber | None:
    return session.scalars(select(Subscriber).where(Subscriber.public_id == public_id)).first()


def check_sections(
    sections: Sequence[str] | None, known: Sequence[str], *, allow_all: bool = True
) -> list[str] | None:
    """The sections to store: None means every section (and the ones added later)."""
    if sections is None:
        return None
    chosen = list(dict.fromkeys(s.strip() for s in sections if s.strip()))
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise InvalidSections(f"unknown section(s): {', '.join(map(repr, unknown))}")
    if not chosen:
        if allow_all:
            return None
        raise InvalidSections("choose at least one section (or unsubscribe from everything)")
    return None if set(chosen) == set(known) else [s for s in known if s in chosen]
