"""Consent evidence: who agreed to (or withdrew from) what, when, through which channel.

GDPR Art. 7(1) says the controller "shall be able to demonstrate" consent; the ICO lists what
to keep: who, when, how, and exactly what they were told (docs/standards.md §4). Every state change
of a subscriber appends one Consent row built here, and the wording behind each
consent_text_version is stored once in consent_texts, never edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from subscribers.errors import ConsentTextChanged, StaleConsentText, SubscriberError
from subscribers.models import Consent, ConsentText, Subscriber

# Consent.event values.
SUBSCRIBE = "subscribe"
# A request for an address that bounced or complained: kept as evidence, nothing sent.
SUBSCRIBE_REFUSED = "subscribe-refused"
CONFIRM = "confirm"
PREFERENCES = "preferences"
PAUSE = "pause"
RESUME = "resume"
UNSUBSCRIBE = "unsubscribe"
IMPORT = "import"
ADMIN_ADD = "admin-add"

# Widths of the Consent columns: longer values are cut, never refused (evidence must be kept).
_SOURCE_MAX, _IP_MAX, _UA_MAX = 500, 64, 500


@dataclass(frozen=True)
class Evidence:
    """How a request reached us: the channel (a form, one-click header, the CLI, an import
    file), the client's IP and user agent, and the consent text version it was shown."""

    source: str
    ip: str | None = None
    user_agent: str | None = None
    consent_text_version: str | None = None


def operator_evidence(source: str | None) -> Evidence:
    """The evidence for someone an operator adds as already confirmed: consent held elsewhere
    must say where it was given, or there is no proof of it (docs/standards.md §4)."""
    if not (source or "").strip():
        raise SubscriberError("--confirmed needs --source TEXT: where this person opted in")
    return Evidence(source=f"{(source or '').strip()} (added by an operator)")


def record(
    subscriber: Subscriber,
    event: str,
    evidence: Evidence,
    now: datetime,
    **detail: Any,
) -> Consent:
    """Append one event to the subscriber's consent history."""
    row = Consent(
        event=event,
        at=now,
        source=evidence.source[:_SOURCE_MAX],
        ip=evidence.ip[:_IP_MAX] if evidence.ip else None,
        user_agent=evidence.user_agent[:_UA_MAX] if evidence.user_agent else None,
        consent_text_version=evidence.consent_text_version,
        detail=detail or None,
    )
    subscriber.consents.append(row)
    return row


def register_consent_text(session: Session, version: str, text: str, now: datetime) -> None:
    """Keep the wording of `version`; a changed wording under an old version is refused,
    because every consent already recorded under that version would then point at the wrong
    words."""
    stored = session.get(ConsentText, version)
    if stored is None:
        session.add(ConsentText(version=version, text=text, first_used_at=now))
        session.flush()
    elif stored.text != text:
        raise ConsentTextChanged(
            f"the consent text for version {version!r} differs from the one recorded on "
            f"{stored.first_used_at:%Y-%m-%d}: give the new wording a new "
            "[subscribers] consent_text_version"
        )


def check_consent_version(shown: str | None, current: str) -> None:
    """Consent counts only for the wording the person was shown: a request naming another
    version (the terms changed while the page was open, or a client cached an old text) is
    refused. None means the request named no version (the JSON API lets a client omit it);
    the subscription is then recorded under the current text."""
    if shown is not None and shown != current:
        raise StaleConsentText(shown, current)
