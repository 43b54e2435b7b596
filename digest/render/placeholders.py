"""The per-recipient placeholders a rendered body carries; a backend fills them per recipient
(SendGrid substitutions, or `backends.base.personalise`), so one body serves a whole batch."""

UNSUBSCRIBE_URL = "%%unsubscribe_url%%"
MANAGE_URL = "%%manage_url%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, MANAGE_URL)
