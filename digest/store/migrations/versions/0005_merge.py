"""Merge the gathering, subscribers and delivery branches into one history.

Revision ID: 0005_merge
Revises: 0002_gather, 0003_subscribers, 0004_delivery
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0005_merge"
down_revision = ("0002_gather", "0003_subscribers", "0004_delivery")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: the three branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
