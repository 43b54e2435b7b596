"""The demo edition, built once per session the way `make demo` builds it: the bundled examples/
feeds at the demo's cut-off (Friday 2026-11-20 09:00 in New York), on a database of its own.
No network and no subprocess: about half a second."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.edition.build import build_edition
from digest.edition.options import branding
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.render.email import Branding, EditionView
from digest.store.db import make_engine, session_factory
from tests.conftest import DEMO_NOW, ROOT, TEST_SECRET


@dataclass(frozen=True)
class Demo:
    view: EditionView
    branding: Branding
    base_url: str  # [web] base_url: `digest preview` fills its sample links from it


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Demo:
    tmp = tmp_path_factory.mktemp("demo-edition")
    shutil.copy(template_db, tmp / "digest.db")
    with pytest.MonkeyPatch.context() as env:  # a developer's DIGEST_* must not change it
        for key in [k for k in os.environ if k.startswith("DIGEST_")]:
            env.delenv(key)
        settings = load_settings(
            ROOT / "digest.toml",
            database={"url": f"sqlite:///{tmp / 'digest.db'}"},
            delivery={"backend": "outbox", "outbox_dir": str(tmp / "outbox")},
            secret_key=TEST_SECRET,
        )
    engine = make_engine(settings.database_url)
    try:
        factory = session_factory(engine)
        report = build_edition(factory, settings, DEMO_NOW)
        with factory() as session:
            view = edition_view(get_edition(session, report.edition.id))
    finally:
        engine.dispose()
    return Demo(view, branding(settings), settings.web.base_url)
