"""edition lifecycle: one edition per cut-off, approval that freezes content, staff edits and
a history of who did what

Revision ID: 0007_edition_lifecycle
Revises: 0006_send_batches
Create Date: 2026-12-07 06:00:00

Editions built before this revision keep their status; a draft of theirs has no edits and no
history yet. The cut-off index becomes unique: builds before it already replaced a draft of the
same cut-off, so no database holds two editions for one week unless two builds raced, which is
the case the unique index now turns into a clear refusal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import subscribers.models

revision = "0007_edition_lifecycle"
down_revision = "0006_send_batches"
branch_labels = None
depends_on = None

UTC = subscribers.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Plain ALTER TABLE, never a batch copy: SQLite recreates a table by dropping it, and
    # dropping `editions` with foreign keys on would cascade to every item and delivery.
    op.add_column("editions", sa.Column("preheader", sa.Text(), server_default="", nullable=False))
    op.add_column("editions", sa.Column("built_at", UTC, nullable=True))
    op.add_column("editions", sa.Column("approved_by", sa.String(length=200), nullable=True))
    op.add_column("editions", sa.Column("content_hash", sa.String(length=64), nullable=True))
    op.add_column("editions", sa.Column("status_reason", sa.Text(), nullable=True))
    op.add_column(
        "editions", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )
    op.drop_index("ix_editions_cutoff", table_name="editions")
    op.create_index("ix_editions_cutoff", "editions", ["cutoff"], unique=True)
    op.create_table(
        "edition_edits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_edition_edits_edition_id", "edition_edits", ["edition_id"])
    op.create_table(
        "edition_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_edition_events_edition_id", "edition_events", ["edition_id"])


def downgrade() -> None:
    op.drop_index("ix_edition_events_edition_id", table_name="edition_events")
    op.drop_table("edition_events")
    op.drop_index("ix_edition_edits_edition_id", table_name="edition_edits")
    op.drop_table("edition_edits")
    op.drop_index("ix_editions_cutoff", table_name="editions")
    op.create_index("ix_editions_cutoff", "editions", ["cutoff"])
    for column in ("version", "status_reason", "content_hash", "approved_by", "built_at"):
        op.drop_column("editions", column)  # SQLite 3.35+ drops a plain column in place
    op.drop_column("editions", "preheader")
