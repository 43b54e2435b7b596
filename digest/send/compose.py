"""Claimed ledger rows → a Batch: the variant's body (rendered once) plus per-recipient links
(people/links.py: the List-Unsubscribe headers and the values of the body's %%unsubscribe_url%%
and %%manage_url%%, which the backend fills in: SendGrid substitutions, or
`backends.base.personalise`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.backends.base import Batch, Recipient, RecipientTable
from digest.config import Settings
from digest.edition.options import branding
from digest.people import links
from digest.render.email import EditionView, RenderedEmail, render_edition
from digest.send.claims import Claimed, ClaimedRows


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
        return self._batch(email, self.recipients(rows), batch_id)

    def test_batch(self, addresses: Sequence[str]) -> Batch:
        """The whole edition to a few addresses, outside the ledger, subject marked as a test."""
        email = self.render("|".join(self.view.sections))
        rows = [Claimed(i, a, "", "test-send") for i, a in enumerate(addresses, 1)]
        recipients = self.recipients(rows)
        batch = self._batch(email, recipients, uuid.uuid4().hex, test=True)
        prefix = self.settings.delivery.test_subject_prefix
        return dataclasses.replace(batch, subject=prefix + batch.subject)

    def _batch(
        self,
        email: RenderedEmail,
        recipients: Sequence[Recipient],
        batch_id: str,
        test: bool = False,
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

    def recipients(self, rows: Sequence[Claimed]) -> RecipientTable:
        """The rows with their links, as columns (straight from a claim's columns)."""
        s = self.settings
        if isinstance(rows, ClaimedRows):
            ids, emails, public_ids = rows.ids, rows.emails, rows.public_ids
        else:
            ids = [r.delivery_id for r in rows]
            emails, public_ids = [r.email for r in rows], [r.public_id for r in rows]
        return links.table(
            ids, emails, public_ids, s.web.base_url, self.keys, s.delivery.unsubscribe_mailto
        )
