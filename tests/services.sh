#!/usr/bin/env bash
# Installs and starts what the tests need, when it can: Debian's Chromium (browser tests), a
# PostgreSQL server on 127.0.0.1 (ledger tests on both databases) and the official MJML compiler
# (npm `mjml` on Debian's node, in tests/.node/: compared with mjml-python, timed by the bench)
# with axe-core beside it (the accessibility checks of the browser tests). It writes what it started to
# tests/.services.env, which tests/conftest.py reads. Without root a missing service is reported
# here and its tests skip with that reason; under CI=true they fail instead (see conftest.py).
set -uo pipefail
cd "$(dirname "$0")"
ENV_FILE=.services.env
PG_PORT=${DIGEST_TEST_PG_PORT:-54329}
PG_DIR=${DIGEST_TEST_PG_DIR:-/tmp/digest-test-pg-$(id -u)}
: > "$ENV_FILE"

as_root() { [ "$(id -u)" -eq 0 ]; }
apt_updated=0
apt_install() {
    as_root || return 1
    if [ $apt_updated -eq 0 ]; then
        echo "services: apt-get update" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 && apt_updated=1
    fi
    echo "services: apt-get install $*" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# --- Chromium -------------------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium || echo "services: Chromium is not installed and cannot be (need root)" >&2
fi
[ -x /usr/bin/chromium ] && echo "DIGEST_TEST_CHROMIUM=/usr/bin/chromium" >> "$ENV_FILE"

# --- PostgreSQL -----------------------------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
    apt_install postgresql || echo "services: PostgreSQL is not installed and cannot be (need root)" >&2
fi
BIN=$(pg_bin)
if [ -n "$BIN" ]; then
    # PostgreSQL refuses to run as root: run it as the postgres user when we are root.
    if as_root; then RUN=(runuser -u postgres --); OWNER=postgres; else RUN=(); OWNER=$(id -un); fi
    if [ ! -f "$PG_DIR/PG_VERSION" ]; then
        mkdir -p "$PG_DIR" && as_root && chown postgres "$PG_DIR"
        "${RUN[@]}" "$BIN/initdb" -D "$PG_DIR" -U "$OWNER" --auth=trust -E UTF8 >/dev/null \
            || echo "services: initdb failed" >&2
    fi
    if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then
        "${RUN[@]}" "$BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-h 127.0.0.1 -p $PG_PORT -k /tmp -c fsync=off -c max_connections=200" start >/dev/null \
            || { echo "services: PostgreSQL did not start; see $PG_DIR/server.log" >&2; tail -5 "$PG_DIR/server.log" >&2; }
    fi
    if "${RUN[@]}" "$BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1; then
        "${RUN[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$OWNER" -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname='digest_test'" | grep -q 1 \
            || "${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$OWNER" digest_test
        echo "DIGEST_TEST_POSTGRES_URL=postgresql+psycopg://$OWNER@127.0.0.1:$PG_PORT/digest_test" >> "$ENV_FILE"
    fi
fi
# --- Node packages: MJML (the official compiler) and axe-core (accessibility checks) --------
# Pinned: a new version is a deliberate change here, checked by tests/render/test_mjml_node.py
# and tests/web/test_console_browser.py. Both go into tests/.node/ in ONE npm command: npm
# prunes what its own command did not name, so installing one after the other would remove
# the first.
MJML_VERSION=4.18.0
AXE_VERSION=4.14.1
NODE_DIR=.node
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || echo "services: node and npm are not installed and cannot be (need root)" >&2
fi
node_version() {  # the installed version of npm package $1, or nothing
    node -p "require('./$NODE_DIR/node_modules/$1/package.json').version" 2>/dev/null
}
if command -v npm >/dev/null 2>&1 \
    && { [ "$(node_version mjml)" != "$MJML_VERSION" ] || [ "$(node_version axe-core)" != "$AXE_VERSION" ]; }; then
    echo "services: npm install mjml@$MJML_VERSION axe-core@$AXE_VERSION into tests/$NODE_DIR" >&2
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --no-save --loglevel=error \
        "mjml@$MJML_VERSION" "axe-core@$AXE_VERSION" >/dev/null 2>&1 \
        || echo "services: npm install mjml@$MJML_VERSION axe-core@$AXE_VERSION failed" >&2
fi
[ "$(node_version mjml)" = "$MJML_VERSION" ] && [ -x "$NODE_DIR/node_modules/.bin/mjml" ] \
    && echo "DIGEST_TEST_MJML=$PWD/$NODE_DIR/node_modules/.bin/mjml" >> "$ENV_FILE"
[ "$(node_version axe-core)" = "$AXE_VERSION" ] && [ -f "$NODE_DIR/node_modules/axe-core/axe.min.js" ] \
    && echo "DIGEST_TEST_AXE=$PWD/$NODE_DIR/node_modules/axe-core/axe.min.js" >> "$ENV_FILE"

echo "services: $(tr '\n' ' ' < "$ENV_FILE")" >&2
exit 0
