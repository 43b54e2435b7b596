"""The subscriber domain's tables, and the declarative Base every table in the project shares.

`subscribers` sits below `digest`: digest's models import this Base, never the other way round.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Subscriber.status values (subscribers/states.py). Only `active` subscribers are ever mailed
# (see recipients_for).
from subscribers.states import ACTIVE as ACTIVE
from subscribers.states import BOUNCED as BOUNCED
from subscribers.states import COMPLAINED as COMPLAINED
from subscribers.states import ERASED as ERASED
from subscribers.states import PENDING as PENDING
from subscribers.states import STATUSES as STATUSES
from subscribers.states import UNSUBSCRIBED as UNSUBSCRIBED


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC, hand back aware datetimes: SQLite would otherwise return naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, one step straight to the stored text. SQLAlchemy would chain
        process_bind_param and the dialect's formatter; a 100,000-row import binds half a
        million datetimes, and the chain is most of its cost. The text is SQLAlchemy's own
        SQLite DATETIME format, byte for byte (a property test holds it to that)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTCDateTime column")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def new_public_id() -> str:
    return uuid.uuid4().hex


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Opaque id for signed links: tokens carry this, never the email address.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    # None means every section, including ones added later.
    sections: Mapped[list[str] | None] = mapped_column(JSON)
    paused_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # The open double opt-in request: a confirmation link is good only while its nonce matches
    # this one (single use: confirming clears it), and only for confirm_ttl after it was signed.
    confirm_nonce: Mapped[str | None] = mapped_column(String(32))
    # When the latest subscribe request came in: never-confirmed rows expire from here.
    requested_at: Mapped[datetime | None]
    # The open request's name and sections (None: every section), set whenever a request
    # opens (confirm_nonce) and applied only when its link is used: an anonymous request must
    # not rewrite what a person (or an operator) stored before they confirm it.
    requested_name: Mapped[str | None] = mapped_column(String(200))
    requested_sections: Mapped[list[str] | None] = mapped_column(JSON)

    consents: Mapped[list[Consent]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", order_by="Consent.id"
    )

    def __repr__(self) -> str:  # no email in reprs: they end up in logs
        return f"<Subscriber {self.id} {self.status}>"


class Consent(Base):
    """Evidence: who agreed to what, when, how, and which consent text they were shown."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    consent_text_version: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    subscriber: Mapped[Subscriber] = relationship(back_populates="consents")


class Suppression(Base):
    """Addresses that must never be added again, kept only as a keyed hash (erasure-safe)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)


class ConsentText(Base):
    """The exact wording each consent_text_version stood for, kept as evidence (ICO: record
    "exactly what they were told"). Rows are never changed: a new wording needs a new version."""

    __tablename__ = "consent_texts"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime]


class ConfirmationSend(Base):
    """One row per confirmation email sent: the per-address rate limit, shared by every process.

    Keyed by the address's keyed hash, so it holds no address and survives erasure. `slot` is
    the send time divided by the minimum interval: the unique constraint stops two processes
    racing past the interval check for the same address.
    """

    __tablename__ = "confirmation_sends"
    __table_args__ = (UniqueConstraint("email_hash", "slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    slot: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(index=True)


Index("ix_subscribers_status_paused", Subscriber.status, Subscriber.paused_until)
