"""subscribers: single-use confirmation nonce, consent texts, confirmation rate limit

Revision ID: 0003_subscribers
Revises: 0001_initial
Create Date: 2026-11-25 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import subscribers.models

revision = "0003_subscribers"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirm_nonce", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("requested_at", subscribers.models.UTCDateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "consent_texts",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_used_at", subscribers.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "confirmation_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sent_at", subscribers.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email_hash", "slot"),
    )
    with op.batch_alter_table("confirmation_sends", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_confirmation_sends_sent_at"), ["sent_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("confirmation_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_confirmation_sends_sent_at"))
    op.drop_table("confirmation_sends")
    op.drop_table("consent_texts")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("requested_at")
        batch_op.drop_column("confirm_nonce")
