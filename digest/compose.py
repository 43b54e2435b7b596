"""Claimed ledger rows → a Batch: the variant's body (rendered once) plus per-recipient links.

Every message carries `List-Unsubscribe: <https://…>[, <mailto:…>]` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 2369, RFC 8058 §3.1; standards.md §1),
with a token for this subscriber alone; the body's %%unsubscribe_url%% / %%manage_url%% are
filled by the backend (SendGrid substitutions, or `render.personalise`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.backends.base import Batch, Recipient
from digest.claims import Claimed
from digest.config import Settings
from digest.edition import branding
from digest.render import MANAGE_URL, UNSUBSCRIBE_URL, EditionView, RenderedEmail, render_edition
from subscribers.tokens import MANAGE, UNSUBSCRIBE, make_token


def list_id(settings: Settings) -> str:
    domain = settings.newsletter.from_email.rsplit("@", 1)[-1]
    slug = "".join(ch if ch.isalnum() else "-" for ch in settings.newsletter.title.lower())
    return f"{settings.newsletter.title} <{slug.strip('-')}.{domain}>"


@dataclass
class Composer:
    """Builds batches for one edition; renders each variant the first time it is needed."""

    settings: Settings
    view: EditionView
    now: datetime
    keys: Sequence[str]
    renders: dict[str, RenderedEmail] = field(default_factory=dict)

    def render(self, variant: str) -> RenderedEmail:
        if variant not in self.renders:
            sections = variant.split("|") if variant else None
            self.renders[variant] = render_edition(self.view, branding(self.settings), sections)
        return self.renders[variant]

    def batch(self, rows: Sequence[Claimed], batch_id: str) -> Batch:
        """One variant's rows (the ledger claims one variant at a time) as one Batch."""
        email = self.render(rows[0].variant)
        recipients = [self.recipient(r.delivery_id, r.email, r.public_id) for r in rows]
        return self._batch(email, recipients, batch_id)

    def test_batch(self, addresses: Sequence[str]) -> Batch:
        """The whole edition to a few addresses, outside the ledger, subject marked as a test."""
        email = self.render("|".join(self.view.sections))
        recipients = [self.recipient(i, a, "test-send") for i, a in enumerate(addresses, 1)]
        batch = self._batch(email, recipients, uuid.uuid4().hex, test=True)
        prefix = self.settings.delivery.test_subject_prefix
        return dataclasses.replace(batch, subject=prefix + batch.subject)

    def _batch(
        self, email: RenderedEmail, recipients: list[Recipient], batch_id: str, test: bool = False
    ) -> Batch:
        nl = self.settings.newsletter
        return Batch(
            batch_id=batch_id,
            edition_id=self.view.id,
            subject=email.subject,
            html=email.html,
            text=email.text,
            from_email=nl.from_email,
            from_name=nl.from_name,
            reply_to=nl.reply_to,
            headers={"List-Id": list_id(self.settings)},
            recipients=recipients,
            test=test,
        )

    def recipient(self, delivery_id: int, email: str, public_id: str) -> Recipient:
        base = self.settings.web.base_url
        unsubscribe = f"{base}/u/{make_token(self.keys, UNSUBSCRIBE, public_id, self.now)}"
        manage = f"{base}/manage/{make_token(self.keys, MANAGE, public_id, self.now)}"
        header = f"<{unsubscribe}>"
        mailto = self.settings.delivery.unsubscribe_mailto
        if mailto:
            header += f", <mailto:{mailto}?subject=unsubscribe>"
        return Recipient(
            delivery_id=delivery_id,
            email=email,
            substitutions={UNSUBSCRIBE_URL: unsubscribe, MANAGE_URL: manage},
            headers={
                "List-Unsubscribe": header,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
