"""Subscriber.status values, in a module of their own that imports nothing: the CLI names them
in its help, and `digest --help` must not load the database layer to print them."""

from __future__ import annotations

# Only `active` subscribers are ever mailed (see recipients_for).
PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
ERASED = "erased"
STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED, ERASED)
