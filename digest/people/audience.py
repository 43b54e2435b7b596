"""digest's side of the subscriber domain: its rules from Settings, its errors as DigestErrors,
and the consent text registered before anyone is shown it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import ConfigError, NotFoundError, SubscriberStateError, UsageError
from digest.store.db import transaction
from subscribers.consent import register_consent_text
from subscribers.errors import (
    ConsentTextChanged,
    InvalidEmail,
    InvalidPause,
    InvalidSections,
    SubscriberError,
    Suppressed,
    UnknownSubscriber,
)
from subscribers.policy import Policy
from subscribers.ratelimit import ConfirmationLimits


def policy(settings: Settings) -> Policy:
    s = settings.subscribers
    return Policy(
        sections=tuple(settings.newsletter.sections),
        confirm_ttl=timedelta(hours=s.confirm_ttl_hours),
        limits=ConfirmationLimits(
            min_interval=timedelta(minutes=s.confirm_interval_minutes),
            daily_cap=s.confirm_daily_cap,
        ),
        max_pause_weeks=s.max_pause_weeks,
        pending_expiry=timedelta(days=s.pending_expiry_days),
    )


def register_consent(factory: sessionmaker[Session], settings: Settings, now: datetime) -> None:
    """Store the configured consent wording under its version, or refuse to start when the
    wording changed under an old version (the evidence would point at the wrong words)."""
    s = settings.subscribers
    try:
        with transaction(factory) as session:
            register_consent_text(session, s.consent_text_version, s.consent_text, now)
    except ConsentTextChanged as exc:
        raise ConfigError(f"[subscribers] consent_text: {exc}") from None


@contextmanager
def as_digest_errors() -> Iterator[None]:
    """The subscriber domain's refusals as the one-line CLI errors."""
    try:
        yield
    except UnknownSubscriber as exc:
        raise NotFoundError(str(exc)) from None
    except Suppressed as exc:
        raise SubscriberStateError(str(exc)) from None
    except (InvalidEmail, InvalidSections, InvalidPause) as exc:
        raise UsageError(str(exc)) from None
    except SubscriberError as exc:
        raise UsageError(str(exc)) from None
