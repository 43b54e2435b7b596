"""Start-up: `digest --help`, every `digest COMMAND --help` and a database command load only what
they need (README "Development"). These are module-set assertions, not timings: a help page that
imports the database layer, the settings, the gatherer, the renderer, the mailer, the web stack
or the scheduler fails here, naming the page and the modules; bench/startup.py has the times.

Each command module imports its work inside the command (see digest/cli/__init__.py); a command
added by anyone is walked here the day it is added.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from digest.store.db import alembic_config, make_engine, schema_heads
from tests.conftest import ROOT, TEST_SECRET
from tests.send_helpers import digest_env

# Never loaded to print help. A prefix covers its submodules.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "jinja2",
    "mjml",
    "httpx",
    "apscheduler",
    "feedparser",
    "selectolax",
    "nh3",
    "fastapi",
    "starlette",
    "uvicorn",
    "sendgrid",
    "email_validator",
    "tomlkit",
    "yaml",
    "pydantic_settings",
    "digest.config",
    "digest.store",
    "digest.send",
    "digest.gather",
    "digest.render",
    "digest.edition",
    "digest.web",
    "digest.people",
    "digest.ledger",
    "digest.backends",
    "digest.rank",
    "subscribers.models",
    "subscribers.lifecycle",
    "subscribers.importer",
)
# Light modules under a heavy prefix, fine to load for help: a package's empty __init__, and
# digest.web.logs (a regular expression `digest serve`'s log filter needs before the app).
LIGHT = ("digest.web", "digest.web.logs")

# Runs in a fresh interpreter: renders the root's help and every command's, in the order a
# person might, and reports the heavy modules loaded after each page (none, we expect).
HELP_SCRIPT = """
import json, sys
import typer.main
from digest.cli import app, main

HEAVY = tuple(json.loads(sys.argv[1]))
LIGHT = set(json.loads(sys.argv[2]))

def heavy():
    loaded = [m for m in sys.modules if m not in LIGHT]
    return sorted({h for h in HEAVY for m in loaded if m == h or m.startswith(h + ".")})

def pages(command, path):
    for name, sub in command.commands.items():
        yield [*path, name]
        if hasattr(sub, "commands"):
            yield from pages(sub, [*path, name])

report = {}
for page in [[]] + list(pages(typer.main.get_command(app), [])):
    sys.argv = ["digest", *page, "--help"]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, (page, exc.code)
    loaded = heavy()
    if loaded:
        report[" ".join(page) or "(root)"] = loaded
        break
print(json.dumps({"pages": len(list(pages(typer.main.get_command(app), []))) + 1, "heavy": report}))
"""


def run_python(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env or digest_env({"COLUMNS": "120"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_no_help_page_loads_the_database_the_settings_or_the_work() -> None:
    report = json.loads(run_python(HELP_SCRIPT, json.dumps(HEAVY), json.dumps(LIGHT)))
    assert report["pages"] > 40  # the walk saw every command
    assert report["heavy"] == {}, (
        "a help page imported what only the command needs (import it inside the command; "
        f"README 'Development'): {report['heavy']}"
    )


DATABASE_SCRIPT = """
import sys
from digest.cli import main
sys.argv = ["digest", "edition", "list"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(sorted({m.split(".")[0] for m in sys.modules if m.startswith(("alembic", "jinja2",
      "httpx", "feedparser", "uvicorn", "fastapi", "pydantic_settings"))}))
"""


def test_a_database_command_on_a_current_schema_imports_no_migration_tool(tmp_path: Path) -> None:
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'digest.db'}",
            "DIGEST_SECRET_KEY": TEST_SECRET,
        }
    )
    # The first run creates the schema (Alembic runs); the second finds it current.
    run_python(DATABASE_SCRIPT, env=env)
    assert run_python(DATABASE_SCRIPT, env=env) == "[]"


def test_the_heads_read_from_the_revision_files_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    engine = make_engine("sqlite://")
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert schema_heads() == frozenset(script.get_heads())


def test_version(cli) -> None:
    from digest import __version__

    code, out, _ = cli("--version")
    assert code == 0 and out == f"digest {__version__}\n"


def test_the_cli_names_the_same_edition_texts_as_the_core() -> None:
    """`digest edition subject|preheader|intro` are registered from the CLI's own tuple (so that
    --help need not import digest.edition); it must be the core's."""
    from digest.cli.editions import TEXTS
    from digest.edition.edits import TEXTS as CORE_TEXTS

    assert TEXTS == CORE_TEXTS


def test_revision_ids_are_read_however_they_are_written() -> None:
    from digest.store.db import _assignments

    assert _assignments('revision = "b"\ndown_revision = "a"\n') == {
        "revision": "b",
        "down_revision": "a",
    }
    typed = 'revision: str = "b"\ndown_revision: str | Sequence[str] | None = None\n'
    assert _assignments(typed) == {"revision": "b", "down_revision": None}
    merge = 'revision = "m"\ndown_revision = (\n    "a",\n    "b",\n)\n'
    assert _assignments(merge) == {"revision": "m", "down_revision": ("a", "b")}
