"""Preflight, as the scheduler asks for it: the one door to the email checks (issue 12).

The scheduler reads three things of a preflight: `ok`, `failures` and `warnings`. Issue 12's
`digest.edition.preflight.preflight_edition(factory, settings, edition_id, now)` returns them
(its PreflightReport), and approval and sending run it themselves; until it is merged, this
function runs the checks the renderer already has, on the whole edition and on every variant
that would be sent: a variant that does not render, a subject longer than 100 characters and
an HTML body Gmail would clip are failures; the renderer's other remarks are warnings. When
issue 12 lands, this function's body becomes one call to `preflight_edition`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.options import branding
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import RenderError
from digest.ledger.moves import variant_key
from digest.render.email import render_edition
from digest.render.preflight import CLIP_BUDGET_BYTES
from subscribers.lifecycle import recipients_for

SUBJECT_LIMIT = 100


@dataclass
class Preflight:
    ok: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def preflight(
    factory: sessionmaker[Session], settings: Settings, edition_id: int, now: datetime
) -> Preflight:
    """Would this edition reach its readers intact if it were sent at `now`?"""
    with factory() as session:
        edition = get_edition(session, edition_id)
        view = edition_view(edition)
        variants = Counter(
            variant_key(a.sections) for a in recipients_for(session, edition.sections, now)
        )
    failures: list[str] = []
    warnings: list[str] = []
    if len(view.subject) > SUBJECT_LIMIT:
        failures.append(
            f"the subject is {len(view.subject)} characters; inboxes cut it past "
            f"{SUBJECT_LIMIT} (`digest edition subject {edition_id} TEXT`)"
        )
    for sections in [None, *(key.split("|") for key in sorted(variants))]:
        name = "the whole edition" if sections is None else "variant " + ", ".join(sections)
        try:
            rendered = render_edition(view, branding(settings), sections)
        except RenderError as exc:
            failures.append(f"{name}: {exc}")
            continue
        clipped = len(rendered.html.encode()) > CLIP_BUDGET_BYTES
        for remark in rendered.warnings:
            if clipped and "Gmail clips" in remark:
                failures.append(f"{name}: {remark}")
            else:
                warnings.append(remark)
    return Preflight(not failures, failures, list(dict.fromkeys(warnings)))
