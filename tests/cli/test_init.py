"""`digest init [DIR]`: the starter digest.toml loads with the real settings loader, and a week
can be built and sent from it (its one feed pointed at a local file; the outbox backend)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.starter import STARTER_CONFIG
from tests.conftest import EXAMPLES


@pytest.fixture
def own_config(cli, monkeypatch: pytest.MonkeyPatch):
    """The CLI without the demo's overrides: the starter's own database and outbox."""
    for name in ("DIGEST_CONFIG", "DIGEST_DATABASE__URL", "DIGEST_DELIVERY__OUTBOX_DIR"):
        monkeypatch.delenv(name)
    return cli


def test_init_writes_a_starter_that_loads_and_says_what_to_run_next(
    own_config, tmp_path: Path
) -> None:
    target = tmp_path / "newsletter"
    code, out, err = own_config("init", str(target))
    assert code == 0, err
    path = target / "digest.toml"
    assert path.read_text() == STARTER_CONFIG
    settings = load_settings(path)
    assert settings.delivery.backend == "outbox"
    assert settings.database_url == f"sqlite:///{target.resolve()}/digest.db"
    assert [s.kind for s in settings.sources] == ["feed"]
    assert f"Wrote {path}" in out
    for n, command in enumerate(("sources check", "build", "preview"), start=1):
        assert f"  {n}. digest --config {path} {command}" in out
    assert "DIGEST_SECRET_KEY" in out


def test_init_never_overwrites(own_config, tmp_path: Path) -> None:
    assert own_config("init", str(tmp_path))[0] == 0
    (tmp_path / "digest.toml").write_text("# mine\n")
    code, out, err = own_config("init", str(tmp_path))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: {tmp_path / 'digest.toml'} already exists: digest init never overwrites a "
        "configuration (edit it, or name another DIR)"
    )
    assert (tmp_path / "digest.toml").read_text() == "# mine\n"


def test_init_into_a_missing_parent_is_one_line(own_config, tmp_path: Path) -> None:
    code, _, err = own_config("init", str(tmp_path / "no" / "such"))
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_the_starter_builds_and_sends_a_week(own_config, tmp_path: Path) -> None:
    own_config("init", str(tmp_path))
    path = tmp_path / "digest.toml"
    feed = EXAMPLES / "feeds" / "europe.xml"  # offline: the feed is a local file
    path.write_text(
        path.read_text().replace('url = "https://www.example.com/feed.xml"', f'url = "{feed}"')
    )
    people = tmp_path / "people.csv"
    people.write_text(
        "email,status,source,consented_at\n"
        "ann@example.com,active,signup form,2026-01-05T10:00:00Z\n"
        "bob@example.com,active,signup form,2026-01-06T10:00:00Z\n"
    )
    config = ("--config", str(path))
    steps = [
        ("sources", "check", "--now", "2026-11-20T09:00"),
        ("subscribers", "import", str(people)),
        ("build", "--now", "2026-11-20T09:00"),
        ("preview", "--out", str(tmp_path / "preview")),
        ("edition", "approve", "1"),
        ("send", "--now", "2026-11-20T09:30"),
    ]
    for step in steps:
        code, out, err = own_config(*config, *step)
        assert code == 0, f"{step}: {out}{err}"
    assert "2 recipients planned: 2 accepted." in out
    sent = sorted((tmp_path / "outbox" / "edition-1").glob("*.eml"))
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sent]
    assert sorted(m["To"] for m in messages) == ["ann@example.com", "bob@example.com"]
    assert {m["From"] for m in messages} == {"newsletter@example.com"}
    assert (tmp_path / "digest.db").exists()  # beside the file, as the starter says
