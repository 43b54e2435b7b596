"""`digest init`: a starter digest.toml a newcomer can read, edit and run.

It describes one publication with one feed, SQLite beside the file and the outbox backend (no
network, no key to send): what `digest build` and `digest send` need and nothing more, every key
commented. A test loads it with the real settings loader and builds and sends an edition from
it, so it cannot drift from what digest accepts.
"""

from __future__ import annotations

from pathlib import Path

from digest.errors import UsageError
from digest.outputs import write_files

CONFIG_NAME = "digest.toml"

STARTER_CONFIG = """\
# digest configuration, written by `digest init`. Edit [publication], [newsletter] and the
# [[sources]] below, then run `digest sources check`. Every key is described in digest's README
# ("Configuration"); any key can be overridden from the environment as DIGEST_<SECTION>__<KEY>,
# e.g. DIGEST_DELIVERY__BACKEND=smtp. Relative paths are relative to this file.
#
# Secrets never go in this file: subscriber links are signed with DIGEST_SECRET_KEY, set in the
# environment (python -c 'import secrets; print(secrets.token_urlsafe(32))' makes one), like
# DIGEST_SENDGRID_API_KEY or DIGEST_SMTP_PASSWORD when you send for real.

[publication]
name = "My Publication"                  # shown in the email's header and footer
url = "https://www.example.com"          # the publication's home page
timezone = "UTC"                         # IANA name, e.g. "Europe/Berlin": weeks are counted in it
postal_address = "1 Example Street, 12345 Example City, Country"   # in every email (CAN-SPAM)

[newsletter]
title = "The Weekly Digest"
from_email = "newsletter@example.com"    # its domain must be authenticated (SPF, DKIM, DMARC)
sections = ["News"]                      # an edition is built from these sections
# max_items = 12                         # most articles in one edition
# min_items = 3                          # a thinner week is recorded as skipped, not sent
# window_days = 7                        # "the week" is this many days before the build

# One [[sources]] table per feed, sitemap, section page or editor-picks file (README
# "Gathering"). `digest sources check` fetches them all and says what each gave.
[[sources]]
url = "https://www.example.com/feed.xml" # RSS, Atom or JSON Feed; or a path to a local file
kind = "feed"
section = "News"

[database]
url = "sqlite:///digest.db"              # beside this file; or postgresql+psycopg://user@host/db

[delivery]
backend = "outbox"                       # .eml files, one per recipient; smtp or sendgrid send mail
outbox_dir = "outbox"                    # where the outbox backend writes them

[web]
base_url = "http://127.0.0.1:8000"       # production: the public https:// address of `digest serve`
"""


def write_starter(directory: Path, option: str = "DIR") -> Path:
    """Write the starter digest.toml into `directory` (made if missing, one level deep); an
    existing digest.toml is never replaced."""
    target = directory / CONFIG_NAME
    if target.exists():
        raise UsageError(
            f"{target} already exists: digest init never overwrites a configuration "
            "(edit it, or name another DIR)"
        )
    (path,) = write_files(directory, {CONFIG_NAME: STARTER_CONFIG}, option, overwrite=False)
    return path
