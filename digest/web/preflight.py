"""`GET /api/editions/{id}/preflight`'s one call into the core, kept behind this function while
issue 12's `digest.edition.preflight.preflight_edition` lands on main: until then it renders the
edition (or one variant) and reports the renderer's own checks (size against Gmail's clipping,
images without alt text, the unsubscribe and preferences links)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.options import branding
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import UsageError
from digest.render.email import render_edition


def preflight_report(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    now: datetime,
    variant: Sequence[str] | None = None,
) -> dict[str, Any]:
    with factory() as session:
        edition = get_edition(session, edition_id)
        view = edition_view(edition)
    if variant is not None:
        unknown = [s for s in variant if s not in view.sections]
        if unknown or not variant:
            known = ", ".join(view.sections) or "none"
            raise UsageError(f"variant: {', '.join(unknown)} not in edition {edition_id} ({known})")
    rendered = render_edition(view, branding(settings), variant)
    checks = [{"name": "renders", "status": "ok", "message": f"{len(rendered.html)} bytes of HTML"}]
    checks += [{"name": "render", "status": "warning", "message": w} for w in rendered.warnings]
    return {
        "edition_id": edition_id,
        "variant": list(rendered.sections),
        "ok": not rendered.warnings,
        "checks": checks,
    }
