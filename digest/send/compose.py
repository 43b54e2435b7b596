"""Claimed ledger rows → a Batch: the variant's body (rendered once) plus per-recipient links.

Every message carries `List-Unsubscribe: <https://…>[, <mailto:…>]` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 2369, RFC 8058 §3.1; docs/standards.md §1),
with a token for this subscriber alone; the body's %%unsubscribe_url%% / %%manage_url%% are
filled by the backend (SendGrid substitutions, or `backends.base.personalise`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.backends.base import Batch, Recipient
from digest.config import Settings
from digest.edition.options import branding
from digest.render.email import EditionView, RenderedEmail, render_edition
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL
from digest.send.claims import Claimed
from subscribers.tokens import MANAGE, UNSUBSCRIBE, minter


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

    def recipients(self, rows: Sequence[Claimed]) -> list[Recipient]:
        """Each row as a Recipient with its own links, in one loop: a send makes a million of
        these, so the parts every link shares are made once per batch and the tokens come
        from their minters a batch at a time (subscribers.tokens: make_token for these purposes)."""
        base = self.settings.web.base_url
        keys = tuple(self.keys)
        unsubscribe, manage = minter(keys, UNSUBSCRIBE), minter(keys, MANAGE)
        to_unsubscribe, to_manage = f"{base}/u/", f"{base}/manage/"
        mailto = self.settings.delivery.unsubscribe_mailto
        after = f">, <mailto:{mailto}?subject=unsubscribe>" if mailto else ">"
        one_click = "List-Unsubscribe=One-Click"
        public_ids = [r.public_id for r in rows]
        unsubscribe_tokens, manage_tokens = unsubscribe.many(public_ids), manage.many(public_ids)
        recipients = []
        for (delivery_id, email, _, _), token, manage_token in zip(
            rows, unsubscribe_tokens, manage_tokens, strict=True
        ):
            unsubscribe_url = to_unsubscribe + token
            substitutions = {UNSUBSCRIBE_URL: unsubscribe_url, MANAGE_URL: to_manage + manage_token}
            headers = {
                "List-Unsubscribe": f"<{unsubscribe_url}{after}",
                "List-Unsubscribe-Post": one_click,
            }
            recipients.append(Recipient(delivery_id, email, substitutions, headers))
        return recipients
