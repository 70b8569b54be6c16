# shellcheck shell=bash
# Shared settings for Honua's helper scripts. Source it; do not execute it.
# Every value can be overridden from the environment (see README, "Configuration").

HONUA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export HONUA_ROOT

# Same default as honua/settings.py (HONUA_DATA_DIR).
HONUA_DATA_DIR="${HONUA_DATA_DIR:-$HONUA_ROOT/.data}"
HONUA_PG_PORT="${HONUA_PG_PORT:-54329}"
HONUA_PG_BIN="${HONUA_PG_BIN:-/usr/lib/postgresql/15/bin}"
# The cluster lives here (a folder of its own, or a symlink to /var/tmp/honua-pg-<hash>
# when the postgres user cannot reach the checkout). PGDATA is "$HONUA_PG_DIR/data".
# shellcheck disable=SC2034  # used by the scripts that source this file
HONUA_PG_DIR="$HONUA_DATA_DIR/pg"
# shellcheck disable=SC2034
VENV="$HONUA_ROOT/.venv"

log()  { printf '\033[1;34m[honua]\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m[honua] warning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31m[honua] error:\033[0m %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# The OS user that owns and runs the cluster: PostgreSQL refuses to run as root.
pg_os_user() { if is_root; then echo postgres; else id -un; fi; }

# Run a command as the cluster's OS user, from "/" so that an unreadable cwd
# (e.g. a checkout under /root) does not bother initdb/pg_ctl/psql. fd 9 (setup.sh's
# lock) is closed so that the server it may start does not hold the lock forever.
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@" 9>&-)
    else
        (cd / && "$@" 9>&-)
    fi
}
