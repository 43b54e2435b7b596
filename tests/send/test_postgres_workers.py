"""Scale-out on PostgreSQL: `digest send --workers 2` runs two `digest worker` processes that
share one send through FOR UPDATE SKIP LOCKED; every subscriber still gets exactly one copy."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import select

from digest.ledger import tally
from digest.send.claims import claimed_by
from digest.store.db import session_factory
from digest.store.models import ACCEPTED, SENT, Edition
from tests.conftest import ROOT, TEST_SECRET
from tests.fakes.sendgrid import FakeSendGrid
from tests.send_helpers import add_subscribers, digest_env, make_edition, postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
KEY = "SG.pg-test-key"


def test_two_worker_processes_share_a_send_exactly_once(postgres_url: str, now: datetime) -> None:
    with postgres_schema(postgres_url) as engine, FakeSendGrid(KEY) as fake:
        factory = session_factory(engine)
        make_edition(factory, now)
        add_subscribers(factory, 400, now)
        # A real API's round trip (a quarter second a request): one worker alone would need
        # five seconds for the 20 batches, so the second has joined long before the end.
        fake.on_request = lambda number, outcome: time.sleep(0.25)
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        url = postgres_url + "?" + urllib.parse.urlencode({"options": f"-csearch_path={schema}"})
        env = digest_env(
            {
                "DIGEST_CONFIG": str(ROOT / "digest.toml"),
                "DIGEST_DATABASE__URL": url,
                "DIGEST_DELIVERY__BACKEND": "sendgrid",
                "DIGEST_DELIVERY__SENDGRID_HOST": fake.url,
                "DIGEST_DELIVERY__BATCH_SIZE": "20",
                "DIGEST_SENDGRID_API_KEY": KEY,
                "DIGEST_SECRET_KEY": TEST_SECRET,
            }
        )
        result = subprocess.run(
            [sys.executable, "-m", "digest", "send", "--workers", "2", "--now", "2026-11-20T09:00"],
            cwd=ROOT,
            env=env,
            text=True,
            capture_output=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        assert "400 accepted" in result.stdout
        assert set(Counter(r.email for r in fake.received).values()) == {1}
        assert len(fake.received) == 400
        with factory() as session:
            per_worker = dict(claimed_by(session, 1))
            statuses = set(tally.statuses(session, 1).values())
            edition_status = session.scalar(select(Edition.status))
    assert len(per_worker) == 2 and min(per_worker.values()) >= 10, per_worker
    assert statuses == {ACCEPTED} and edition_status == SENT
