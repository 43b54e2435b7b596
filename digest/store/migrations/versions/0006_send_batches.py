"""send batches: the ledger moves batches, rows keep a state only when it differs

Revision ID: 0006_send_batches
Revises: 0005_merge
Create Date: 2026-11-27 10:00:00

A row's state is its batch's unless it has one of its own (digest.ledger). Rows written before
this revision keep their states as their own and belong to no batch, so a send interrupted by
the upgrade still resumes. Indexes that only served per-row moves go: the full (edition_id,
status) index, the batch_id index and the partial queue index; a partial index on rows with a
state of their own and an (edition_id, batch_id) index take their place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import subscribers.models

revision = "0006_send_batches"
down_revision = "0005_merge"
branch_labels = None
depends_on = None

UTC = subscribers.models.UTCDateTime(timezone=True)
OWN_STATE = sa.text("status IS NOT NULL")
QUEUED = sa.text("status IN ('planned', 'deferred')")


def upgrade() -> None:
    op.create_table(
        "send_batches",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("variant", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTC, nullable=True),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("edition_id", "id"),
    )
    op.create_index("ix_send_batches_state", "send_batches", ["edition_id", "status", "id"])
    with op.batch_alter_table("edition_sends") as batch_op:
        batch_op.add_column(sa.Column("batches", sa.Integer(), server_default="0", nullable=False))
    # The old batch ids were random strings: the rows of earlier sends keep their own states.
    op.execute("UPDATE deliveries SET batch_id = NULL")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_queue")
        batch_op.drop_index("ix_deliveries_edition_status")
        batch_op.drop_index("ix_deliveries_batch_id")
        batch_op.drop_column("worker_id")
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=True)
        batch_op.alter_column(
            "batch_id",
            existing_type=sa.String(length=64),
            type_=sa.Integer(),
            postgresql_using="NULL",
        )
        batch_op.create_index("ix_deliveries_batch", ["edition_id", "batch_id"])
        batch_op.create_index(
            "ix_deliveries_override",
            ["edition_id", "status"],
            sqlite_where=OWN_STATE,
            postgresql_where=OWN_STATE,
        )


def downgrade() -> None:
    """Every row gets its effective state written out, then the per-row schema comes back."""
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("worker_id", sa.Integer(), nullable=True))
    batch_of = (
        "FROM send_batches b WHERE b.edition_id = deliveries.edition_id "
        "AND b.id = deliveries.batch_id"
    )
    op.execute(
        "UPDATE deliveries SET "
        f"worker_id = (SELECT b.worker_id {batch_of}), "
        f"attempts = attempts + COALESCE((SELECT b.attempts {batch_of}), 0), "
        f"not_before = (SELECT b.not_before {batch_of}), "
        f"error = (SELECT b.error {batch_of}), "
        "provider_message_id = COALESCE(provider_message_id, "
        f"(SELECT b.provider_message_id {batch_of})), "
        f"status = COALESCE((SELECT b.status {batch_of}), 'planned') "
        "WHERE status IS NULL"
    )
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_override")
        batch_op.drop_index("ix_deliveries_batch")
        batch_op.alter_column(
            "batch_id",
            existing_type=sa.Integer(),
            type_=sa.String(length=64),
            postgresql_using="batch_id::text",
        )
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=False)
        batch_op.create_index("ix_deliveries_batch_id", ["batch_id"])
        batch_op.create_index("ix_deliveries_edition_status", ["edition_id", "status"])
        batch_op.create_index(
            "ix_deliveries_queue",
            ["edition_id", "variant", "id"],
            sqlite_where=QUEUED,
            postgresql_where=QUEUED,
        )
    # Batch numbers are per edition; the old ids were unique across editions.
    op.execute(
        "UPDATE deliveries SET batch_id = CAST(edition_id AS VARCHAR(20)) || '-' || batch_id "
        "WHERE batch_id IS NOT NULL"
    )
    with op.batch_alter_table("edition_sends") as batch_op:
        batch_op.drop_column("batches")
    op.drop_index("ix_send_batches_state", table_name="send_batches")
    op.drop_table("send_batches")
