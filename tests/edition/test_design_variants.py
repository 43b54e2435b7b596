"""Every variant of the demo week passes preflight in the new design (issue 13), and each one's
inbox line and intro speak of its own sections only."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.build import build_edition
from digest.edition.options import branding
from digest.edition.preflight import preflight_view
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.render.email import render_edition


def test_every_variant_of_the_demo_week_passes_preflight_and_speaks_of_its_sections(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = build_edition(factory, settings, now).edition.id
    with factory() as session:
        view = edition_view(get_edition(session, edition_id))
    sections = view.sections
    assert len(sections) == 5
    variants = [c for r in range(1, 6) for c in itertools.combinations(sections, r)]
    report = preflight_view(settings, view, [(v, None) for v in variants], now)
    assert report.ok, report.failures
    assert len(report.variants) == 31
    for variant in variants:
        email = render_edition(view, branding(settings), variant)
        own = {i.title for i in view.items if i.section in variant}
        assert set(email.preheader.split(" · ")) <= own, (variant, email.preheader)
        others = [s for s in sections if s not in variant]
        intro = email.text.split("=" * 60, 1)[1].split("\n\n", 2)[1]
        assert intro.startswith("The week in ") and not any(s in intro for s in others)
    one = render_edition(view, branding(settings), ["Europe"])
    assert "The week in Europe: 2 stories our editors think you should not miss." in one.html
