"""Preflight an edition: render each variant, build its message the way a send would for the
recipient with the longest links, and run the checks of render/preflight.py on it.

`digest preflight` prints the report; `digest preview` shows it; approving runs it on the full
edition and every variant that has subscribers, and a send on every variant it sends. A failed
check blocks those two unless a person overrides it (`--force --reason`, kept in the history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from digest.backends import wire_headers
from digest.backends.base import Batch, personalise
from digest.backends.mime import encoded_body, encoded_offset
from digest.config import Settings
from digest.edition.options import branding
from digest.edition.queries import get_edition, variant_counts
from digest.edition.views import edition_view
from digest.errors import EditionStateError, PreflightError, UsageError
from digest.people.links import recipients
from digest.render.email import EditionView, RenderedEmail, render_edition
from digest.render.placeholders import UNSUBSCRIBE_URL
from digest.render.preflight import Check, Sample, check

if TYPE_CHECKING:
    from digest.edition.lifecycle import Override

# The worst case for sizes: the longest address (RFC 5321 §4.5.3.1) and public id (a uuid4 hex
# in a 32-character column); tokens are signed with a stand-in key of the real keys' shape
# (a signature's length does not depend on the key), so preflight needs no secret.
LONGEST_EMAIL = "x" * 64 + "@" + ("d" * 63 + ".") * 3 + "example"
LONGEST_PUBLIC_ID = "f" * 32
SAMPLE_KEYS = ("preflight-sample-key",)
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass
class VariantReport:
    sections: tuple[str, ...]
    recipients: int | None  # subscribers who get exactly these sections; None: not counted
    checks: list[Check]
    html_bytes: int = 0  # the HTML part as sent, for the longest links

    @property
    def label(self) -> str:
        return ", ".join(self.sections)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def as_json(self) -> dict[str, Any]:
        return {
            "sections": list(self.sections),
            "recipients": self.recipients,
            "html_bytes": self.html_bytes,
            "ok": not self.failed,
            "checks": [c.as_json() for c in self.checks],
        }


@dataclass
class PreflightReport:
    edition_id: int
    version: int  # the edition's version checked: approving a later one needs a new preflight
    variants: list[VariantReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[str]:
        """One line per failed check, '[variants] check: what failed (fix: how)'; a failure
        that several variants share is one line naming them ('every variant' for all)."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for v in self.variants:
            for c in v.failed:
                groups.setdefault((c.name, c.message, c.fix), []).append(v.label)
        lines = []
        for (name, message, fix), labels in groups.items():
            where = _which(labels, len(self.variants))
            lines.append(f"[{where}] {name}: {message}" + (f" (fix: {fix})" if fix else ""))
        return lines

    @property
    def warnings(self) -> list[str]:
        """Each warning once, though most hold for every variant."""
        seen = dict.fromkeys(
            c.message for v in self.variants for c in v.checks if c.status == "warn"
        )
        return list(seen)

    def summary(self) -> str:
        failed = sum(bool(v.failed) for v in self.variants)
        checks = sum(len(v.failed) for v in self.variants)
        verdict = "passed" if self.ok else f"FAILED for {failed} of them"
        return (
            f"preflight of edition {self.edition_id}: {_variants(len(self.variants))} {verdict}"
            f" ({checks} failed checks, {len(self.warnings)} warnings)"
        )

    def require(self, force: Override | None, what: str) -> bool:
        """Raise PreflightError when a check failed and nobody overrode it; True when `force`
        let a failure through (for the history)."""
        if self.ok:
            return False
        if force is None:
            lines = "\n  ".join(self.failures)
            raise PreflightError(
                f"{self.summary()}; {what} refused:\n  {lines}\nFix it, or override with "
                "--force --reason TEXT (`digest preflight` shows the whole report)",
                self,
            )
        return True

    def note(self) -> str:
        """For the history: what preflight found."""
        if self.ok:
            return f"preflight passed ({_variants(len(self.variants))})"
        return f"preflight failed: {'; '.join(self.failures)[:500]}"

    def as_json(self) -> dict[str, Any]:
        return {
            "edition": self.edition_id,
            "ok": self.ok,
            "summary": self.summary(),
            "variants": [v.as_json() for v in self.variants],
            "warnings": self.warnings,
        }


def _which(labels: list[str], total: int) -> str:
    if len(labels) == total > 1:
        return "every variant"
    shown = "; ".join(labels[:3])
    return shown + (f"; and {len(labels) - 3} more" if len(labels) > 3 else "")


def _variants(count: int) -> str:
    return f"{count} variant{'' if count == 1 else 's'}"


def preflight_edition(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int | None,
    now: datetime,
    variant: str | None = None,
) -> PreflightReport:
    """`variant` (comma-separated section names) checks that one; otherwise the full edition
    and every variant that has subscribers at `now`."""
    with factory() as session:
        edition = get_edition(session, edition_id)
        view = edition_view(edition)
        if not edition.items:
            raise EditionStateError(
                f"edition {edition.id} ({edition.status}) has no articles: nothing to check"
            )
        counts = variant_counts(session, edition, now)
        version = edition.version
    if variant is not None:
        chosen = parse_variant(view, variant)
        wanted: list[tuple[tuple[str, ...], int | None]] = [
            (chosen, counts.get("|".join(chosen), 0))
        ]
    else:
        wanted = variants_of(view, counts)
    return preflight_view(settings, view, wanted, now, version)


def variants_of(
    view: EditionView, counts: dict[str, int]
) -> list[tuple[tuple[str, ...], int | None]]:
    """The full edition first, then each subscribers' variant (key: sections joined by |)."""
    full = tuple(view.sections)
    found: list[tuple[tuple[str, ...], int | None]] = [(full, counts.get("|".join(full)))]
    found += [(tuple(key.split("|")), n) for key, n in counts.items() if key != "|".join(full)]
    return found


def parse_variant(view: EditionView, text: str) -> tuple[str, ...]:
    """'Europe, Asia' -> the edition's sections in its own order; a name it lacks is an error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    by_fold = {s.casefold(): s for s in view.sections}
    unknown = [n for n in names if n.casefold() not in by_fold]
    if not names or unknown:
        raise UsageError(
            f"--variant {text!r}: "
            + (
                f"edition {view.id} has no section {', '.join(map(repr, unknown))}"
                if unknown
                else "no section named"
            )
            + f"; its sections are: {', '.join(view.sections)}"
        )
    chosen = {by_fold[n.casefold()] for n in names}
    return tuple(s for s in view.sections if s in chosen)


def preflight_view(
    settings: Settings,
    view: EditionView,
    variants: Sequence[tuple[tuple[str, ...], int | None]],
    now: datetime,
    version: int = 0,
    renders: dict[str, RenderedEmail] | None = None,
) -> PreflightReport:
    """Check each variant. `renders` receives each variant's rendered email (key: its sections
    joined by "|"), for a send to use instead of rendering it again."""
    report = PreflightReport(view.id, version)
    headers = None  # the same for every variant: built once
    for sections, count in variants:
        email = render_edition(view, branding(settings), sections)
        if renders is not None:
            renders["|".join(sections)] = email
        made = sample(settings, view, email, now, headers)
        headers = made.headers
        report.variants.append(
            VariantReport(tuple(sections), count, check(made), len(made.html_part))
        )
    return report


def sample(
    settings: Settings,
    view: EditionView,
    email: RenderedEmail,
    now: datetime,
    headers: Sequence[tuple[str, str]] | None = None,
) -> Sample:
    """`email` as the recipient with the longest links would get it from the configured
    backend. `headers`: that message's headers, when another variant's sample built them."""
    base = settings.web.base_url
    row = (0, LONGEST_EMAIL, "", LONGEST_PUBLIC_ID)
    recipient = recipients([row], base, SAMPLE_KEYS, settings.delivery.unsubscribe_mailto)[0]
    values = dict(recipient.substitutions)
    html, text = personalise(email.html, values), personalise(email.text, values)
    part = encoded_body(html)
    if headers is None:
        # Headers do not depend on the bodies: the backend builds this recipient's message
        # with empty ones (a whole message costs 10 ms to build and throw away).
        nl = settings.newsletter
        batch = Batch("preflight", view.id, email.subject, "", "", nl.from_email, [])
        headers = wire_headers(settings.delivery.backend, batch, recipient, now)
    return Sample(
        subject=email.subject,
        preheader=email.preheader,
        html=html,
        html_part=part,
        unsubscribe_offset=encoded_offset(part, values[UNSUBSCRIBE_URL]),
        text=text,
        headers=headers,
        unsubscribe_url=values[UNSUBSCRIBE_URL],
        postal_address=settings.publication.postal_address,
        content=_content(view),
        http_allowed=(urlsplit(base).hostname or "") in _LOOPBACK,
    )


def _content(view: EditionView) -> str:
    parts = [view.subject, view.intro, view.preheader]
    for item in view.items:
        parts += [item.title, item.summary, item.section, item.author or "", item.url]
    return "\n".join(parts)
