"""digest's tables: sources, articles, editions and their items, and the delivery ledger.

They share `subscribers.models.Base`, so one Alembic history covers the whole database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from subscribers.models import Base

# Edition.status values, in the order an edition moves through them (digest.edition.lifecycle
# holds the transitions); cancelled and skipped end an edition that will not be sent.
DRAFT = "draft"
APPROVED = "approved"
SENDING = "sending"
SENT = "sent"
CANCELLED = "cancelled"
SKIPPED = "skipped"
EDITION_STATUSES = (DRAFT, APPROVED, SENDING, SENT, CANCELLED, SKIPPED)
# The statuses that own their week: its articles are taken, no other edition may overlap it.
LOCKED_STATUSES = (APPROVED, SENDING, SENT)

# Delivery.status values: the ledger (see send.py for the rules that move rows between them).
PLANNED = "planned"
CLAIMED = "claimed"
SUBMITTED = "submitted"
ACCEPTED = "accepted"
FAILED = "failed"
DEFERRED = "deferred"
SKIPPED = "skipped"
DELIVERY_STATUSES = (PLANNED, CLAIMED, SUBMITTED, ACCEPTED, FAILED, DEFERRED, SKIPPED)


class Source(Base):
    """A configured source and what we learnt fetching it (validators for conditional GET)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    section: Mapped[str | None] = mapped_column(String(100))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_fetched_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer, default=0)


class Article(Base):
    """A candidate article, deduplicated on its canonical URL; updated when its content changes."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    guid: Mapped[str | None] = mapped_column(String(2000), index=True)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(300))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    section: Mapped[str | None] = mapped_column(String(100), index=True)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # "missing" (no date: first_seen_at stands in) or "future" (dated after the fetch).
    date_flag: Mapped[str | None] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    source_url: Mapped[str | None] = mapped_column(String(2000))
    is_pick: Mapped[bool] = mapped_column(Boolean, default=False)
    pick_note: Mapped[str | None] = mapped_column(Text)
    # Editor picks (issue 3): when it was picked (a pick counts in the week it was picked), and
    # the editor's title and section, which win over the article's own without overwriting them.
    picked_at: Mapped[datetime | None]
    pick_title: Mapped[str | None] = mapped_column(String(500))
    pick_section: Mapped[str | None] = mapped_column(String(100))


class Edition(Base):
    """One issue of the newsletter for the week ending at `cutoff`."""

    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT, index=True)
    window_start: Mapped[datetime]
    # A week is identified by its cut-off: one edition per cut-off (two racing builds: one wins).
    cutoff: Mapped[datetime] = mapped_column(index=True, unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(Text, default="")
    intro: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    built_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(200))
    # sha256 of the content as approved: the send renders exactly this or refuses.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Why it was skipped or cancelled (the history keeps every reason; this is the last one).
    status_reason: Mapped[str | None] = mapped_column(Text)
    send_started_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # Optimistic lock (digest.edition.lifecycle.bump): a build or an edit that read an older
    # version loses, and says so. Only builds and edits bump it; the send engine does not.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    items: Mapped[list[EditionItem]] = relationship(
        back_populates="edition", cascade="all, delete-orphan", order_by="EditionItem.position"
    )
    edits: Mapped[list[EditionEdit]] = relationship(
        back_populates="edition", cascade="all, delete-orphan", order_by="EditionEdit.id"
    )
    history: Mapped[list[EditionEvent]] = relationship(
        back_populates="edition", cascade="all, delete-orphan", order_by="EditionEvent.id"
    )

    @property
    def sections(self) -> list[str]:
        seen: dict[str, None] = {}
        for item in self.items:
            seen.setdefault(item.section, None)
        return list(seen)


class EditionItem(Base):
    """An article in an edition, with its content frozen at build time and its rank explained."""

    __tablename__ = "edition_items"
    __table_args__ = (UniqueConstraint("edition_id", "article_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    url: Mapped[str] = mapped_column(String(2000))
    summary: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(300))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[datetime | None]
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)

    edition: Mapped[Edition] = relationship(back_populates="items")


class EditionEdit(Base):
    """A staff edit of a draft, kept apart from the ranking so that a rebuild re-applies it.

    kind: pin, drop or move (with `article_id`; a move's `value` is {"position": n} or
    {"section": s}), or subject, preheader or intro (`value` is {"text": ...})."""

    __tablename__ = "edition_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))

    edition: Mapped[Edition] = relationship(back_populates="edits")


class EditionEvent(Base):
    """The history: every build, edit and status change of an edition, with who, when and why."""

    __tablename__ = "edition_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    # --force was given: this event passed a gate that would have refused it.
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(Text)

    edition: Mapped[Edition] = relationship(back_populates="history")


class Delivery(Base):
    """The ledger: one row per (edition, subscriber), written before any provider call.

    A row belongs to a SendBatch (`batch_id`, numbered within the edition) and takes its state
    from it while `status` is NULL: a batch of a thousand moves claimed → submitted → accepted
    with one small UPDATE each. `status` is set only for a row whose state differs from its
    batch's (skipped, failed alone, deferred alone, settled by a webhook event, uncertain); the
    row's own error, not_before and attempts then speak for it (digest.ledger: effective state).
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        # A batch's rows, for its claim (and for moving part of it to another batch).
        Index("ix_deliveries_batch", "edition_id", "batch_id"),
        # Only rows with a state of their own: the exceptions every count and report adds to
        # the batches' totals. A million rows that follow their batch are not in it. It is
        # partial on PostgreSQL too: migration 0006 creates it there with postgresql_where.
        # Declaring that here would make SQLAlchemy import its PostgreSQL dialect (~70 ms,
        # asyncio included) into every command's start-up, SQLite users' too.
        Index(
            "ix_deliveries_override",
            "edition_id",
            "status",
            sqlite_where=text("status IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    # The address is frozen with the audience: a later change of address gets the next edition.
    email: Mapped[str] = mapped_column(String(320))
    # The sections this recipient gets, joined with "|": one rendered body per variant.
    variant: Mapped[str] = mapped_column(String(1000))
    # NULL: the state of the row's batch (see above). Rows of sends made before batches existed
    # (migration 0006) have a state of their own and no batch.
    status: Mapped[str | None] = mapped_column(String(16))
    batch_id: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The subscriber's opaque id, frozen with the audience: a claim needs it for the links
    # without joining subscribers for every row.
    public_id: Mapped[str | None] = mapped_column(String(32))


class SendBatch(Base):
    """Up to `batch_size` recipients of one variant that move through the ledger together.

    Planned with the audience (one per batch_size rows of a variant); a claim may split off
    the rows it cannot take, and a refused batch is split in parts (digest.ledger). Numbered
    within the edition (`edition_sends.batches` hands out the next number), so planning needs
    no global sequence.
    """

    __tablename__ = "send_batches"
    __table_args__ = (
        # The claim: the lowest-numbered batch of the edition in a state (planned, deferred).
        Index("ix_send_batches_state", "edition_id", "status", "id"),
    )

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    variant: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16))
    # How many deliveries name this batch (with or without a state of their own).
    size: Mapped[int] = mapped_column(Integer)
    # The worker that claimed it: a resume tells a crashed worker's batches by it.
    worker_id: Mapped[int | None] = mapped_column(Integer)
    # Tries of this batch; a row's own `attempts` counts its tries in earlier batches.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- Delivery engine (issue 5): one send per edition, its workers, ESP events and counters ---

# EditionSend.state values.
SEND_RUNNING = "sending"
SEND_CANCELLED = "cancelled"
SEND_FINISHED = "finished"


class EditionSend(Base):
    """The send of one edition: its cancel flag and the engagement counters from ESP events."""

    __tablename__ = "edition_sends"

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), default=SEND_RUNNING)
    planned: Mapped[int] = mapped_column(Integer, default=0)
    # Batch numbers handed out so far (send_batches.id runs from 0 to batches - 1).
    batches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    opens: Mapped[int] = mapped_column(Integer, default=0)
    # Opens SendGrid flags as machine opens (Apple Mail Privacy Protection): not a reader.
    machine_opens: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    # The subscriber change log's last `seq` when the audience was frozen (SQLite; NULL on
    # PostgreSQL and for sends planned before the log): claims check the subscribers changed
    # after it (digest.send.changes).
    changes_from: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SubscriberChange(Base):
    """A subscriber whose status, pause or sections changed, or who was erased: one row per
    change, written by triggers on `subscribers` (SQLite, migration 0013), whatever wrote the
    change. AUTOINCREMENT: a `seq` is never handed out twice, even after old rows are pruned."""

    __tablename__ = "subscriber_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(Integer)


class SendWorker(Base):
    """A process working on a send; its heartbeat tells a resume whether its rows are orphans."""

    __tablename__ = "send_workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class LinkClick(Base):
    """Clicks per article link per edition, from SendGrid click events."""

    __tablename__ = "link_clicks"
    __table_args__ = (UniqueConstraint("edition_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class WebhookEvent(Base):
    """An ESP event we processed, kept once per sg_event_id (SendGrid repeats events)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sg_event_id: Mapped[str] = mapped_column(String(100), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    edition_id: Mapped[int | None] = mapped_column(Integer)
    delivery_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # bounce type (bounce | blocked), drop reason, or the clicked URL.
    detail: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime]


# --- Scheduling (issue 14): what the scheduler did for each slot, and the claim on it ---

# ScheduleRun.step values: the draft built before the slot, and the send at it.
STEP_BUILD = "build"
STEP_SEND = "send"
# ScheduleRun.state values. Final: done, skipped, failed. The others are looked at again by
# the next run: waiting (for approval, until the send window closes), interrupted (a send
# stopped by SIGTERM, resumed) and running (taken over when its owner stopped updating it).
RUN_RUNNING = "running"
RUN_WAITING = "waiting"
RUN_INTERRUPTED = "interrupted"
RUN_DONE = "done"
RUN_SKIPPED = "skipped"
RUN_FAILED = "failed"
RUN_FINAL = (RUN_DONE, RUN_SKIPPED, RUN_FAILED)


class ScheduleRun(Base):
    """One step of one slot: the database-level claim that makes it happen once.

    The row is inserted by whichever process starts the step first (the unique slot and step
    refuse the others) and moved on by conditional UPDATEs, so two schedulers, a scheduler and
    a cron `digest run-due`, or three of them started in the same second, build and send a slot
    once. `outcome` is what happened, in a line (a skip's reason, a failure's error)."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("slot", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[datetime]
    step: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    edition_id: Mapped[int | None] = mapped_column(ForeignKey("editions.id", ondelete="SET NULL"))
    # host and pid of the process that holds (or last held) the step.
    owner: Mapped[str] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    # Staff were told of this state (a waiting step tells them once, not at every look).
    notified: Mapped[bool] = mapped_column(Boolean, default=False)


# --- Staff (issue 15): accounts, API tokens, console sessions; and the shared rate limits ---

# StaffMember.role values: editors read everything, edit drafts and send tests; publishers also
# approve, send and cancel (digest.staff.roles holds the rules).
EDITOR = "editor"
PUBLISHER = "publisher"
STAFF_ROLES = (EDITOR, PUBLISHER)


class StaffMember(Base):
    """Someone who runs the newsletter: signs in to the console, holds API tokens. Their email
    is the name every edition's history records for what they did."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # argon2id, in the PHC string format argon2-cffi writes (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class StaffToken(Base):
    """An API token: only its SHA-256 is kept (the token is 256 random bits, so a plain hash
    cannot be reversed or guessed); the token itself is shown once, when it is made."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class StaffSession(Base):
    """A signed-in browser. The cookie carries a random id (signed); this row, found by the id's
    SHA-256, is what makes it valid, so logging out or removing the person ends it at once."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token this session's forms and unsafe API requests must carry (X-CSRF-Token).
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class RateLimit(Base):
    """One rate-limited key's state (digest.store.ratelimit): the theoretical arrival time of
    GCRA, in epoch seconds, which is a token bucket held in one number. Shared by every process
    on the database, so a limit holds behind a load balancer."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)
    # Whether the last hit was allowed (the upsert returns it: one statement decides and counts).
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)
