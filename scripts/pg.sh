#!/usr/bin/env bash
# Project-local PostgreSQL 15 + PostGIS cluster for Honua.
#
#   scripts/pg.sh ensure    init (once), configure, start if not running, create role/db/extensions
#   scripts/pg.sh start     start if not running (no role/db work)
#   scripts/pg.sh stop      fast shutdown if running
#   scripts/pg.sh status    print where the cluster is and whether it runs (exit 0 if running)
#   scripts/pg.sh psql ...  superuser psql over the cluster's unix socket
#   scripts/pg.sh destroy   stop and delete the cluster (data is lost)
#
# Layout: $HONUA_DATA_DIR/pg (default .data/pg), owned by the postgres OS user, mode 0700:
#   data/          PGDATA (initdb runs once)
#   .s.PGSQL.N     the unix socket (never /var/run)
#   postgres.log   server log
# If the postgres user cannot reach the checkout (e.g. it lives under /root), or the path
# is too long for a unix socket, the cluster is kept in /var/tmp/honua-pg-<hash of the
# repo path> and .data/pg is a symlink to it.
# The server listens on 127.0.0.1:$HONUA_PG_PORT only (default 54329).
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_SUPERUSER="$(pg_os_user)"
APP_ROLE=honua
APP_PASSWORD=honua
APP_DB=honua

PG_REAL=""   # resolved cluster folder (socket dir)
PGDATA=""

[ -x "$HONUA_PG_BIN/pg_ctl" ] || die "PostgreSQL 15 not found in $HONUA_PG_BIN (run 'make setup' as root to install postgresql-15)"

fallback_dir() {
    local h
    h="$(printf '%s' "$HONUA_ROOT" | sha256sum | cut -c1-12)"
    echo "/var/tmp/honua-pg-$h"
}

# Create a folder for the cluster, owned by the cluster's OS user, mode 0700.
make_owned_dir() {
    mkdir -p "$1"
    if is_root; then chown postgres:postgres "$1"; fi
    chmod 0700 "$1"
}

pg_can_use() {  # can the cluster's OS user write in $1, and is the socket path short enough?
    local sock="$1/.s.PGSQL.$HONUA_PG_PORT"
    [ "${#sock}" -le 100 ] || return 1
    as_pg test -w "$1" -a -x "$1"
}

# Decide where the cluster lives; creates folders (and the fallback symlink) as needed.
resolve_dir() {
    mkdir -p "$HONUA_DATA_DIR"
    if [ -L "$HONUA_PG_DIR" ]; then
        PG_REAL="$(readlink -f "$HONUA_PG_DIR" || true)"
        [ -n "$PG_REAL" ] || PG_REAL="$(readlink "$HONUA_PG_DIR")"
        [ -d "$PG_REAL" ] || { log "re-creating $PG_REAL (target of $HONUA_PG_DIR)"; make_owned_dir "$PG_REAL"; }
    else
        # (Re)claim the folder unless it already holds a cluster.
        [ -e "$HONUA_PG_DIR/data/PG_VERSION" ] || make_owned_dir "$HONUA_PG_DIR"
        PG_REAL="$(cd "$HONUA_PG_DIR" && pwd -P)"
        if ! pg_can_use "$PG_REAL"; then
            if [ -e "$PG_REAL/data/PG_VERSION" ]; then
                die "the $(pg_os_user) user cannot use $PG_REAL, which already holds a cluster; move it or fix permissions"
            fi
            local fb
            fb="$(fallback_dir)"
            log "the $(pg_os_user) user cannot use $PG_REAL (unreachable folder or socket path too long);"
            log "keeping the cluster in $fb, with $HONUA_PG_DIR as a symlink to it"
            rm -rf "$PG_REAL"
            make_owned_dir "$fb"
            ln -sfn "$fb" "$HONUA_PG_DIR"
            PG_REAL="$fb"
        fi
    fi
    pg_can_use "$PG_REAL" || die "the $(pg_os_user) user cannot use $PG_REAL"
    PGDATA="$PG_REAL/data"
}

# PID of our postmaster if it runs (checked against /proc, so a stale postmaster.pid whose
# PID was reused after a reboot or a kill is not mistaken for a running server).
our_postmaster_pid() {
    local pid
    [ -f "$PGDATA/postmaster.pid" ] || return 1
    pid="$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$PGDATA" || return 1
    echo "$pid"
}

is_running() { our_postmaster_pid >/dev/null; }

is_ready() { as_pg "$HONUA_PG_BIN/pg_isready" -q -h "$PG_REAL" -p "$HONUA_PG_PORT" -d postgres -U "$PG_SUPERUSER"; }

wait_ready() {
    for _ in $(seq 1 120); do
        is_ready && return 0
        sleep 0.5
    done
    tail -n 30 "$PG_REAL/postgres.log" >&2 || true
    die "PostgreSQL in $PGDATA did not become ready on port $HONUA_PG_PORT"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

init_cluster() {
    [ -f "$PGDATA/PG_VERSION" ] && return 0
    log "initdb: new PostgreSQL 15 cluster in $PGDATA"
    make_owned_dir "$PGDATA"
    as_pg "$HONUA_PG_BIN/initdb" -D "$PGDATA" -U "$PG_SUPERUSER" -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >"$PG_REAL/initdb.log" 2>&1 \
        || { cat "$PG_REAL/initdb.log" >&2; die "initdb failed"; }
    printf "\n# Honua: settings managed by scripts/pg.sh\ninclude_if_exists = 'honua.conf'\n" \
        | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
}

# Writes PGDATA/honua.conf; returns 0 if it changed (a restart is then needed).
write_config() {
    local conf="$PGDATA/honua.conf" new
    new="$(cat <<EOF
# Managed by scripts/pg.sh: rewritten by every 'make setup'. Put your own changes in
# postgresql.auto.conf (ALTER SYSTEM) instead.
listen_addresses = '127.0.0.1'
port = $HONUA_PG_PORT
unix_socket_directories = '$PG_REAL'
max_connections = 200
shared_buffers = 256MB
effective_cache_size = 1GB
work_mem = 16MB
maintenance_work_mem = 128MB
max_wal_size = 1GB
checkpoint_completion_target = 0.9
random_page_cost = 1.1
fsync = on
timezone = 'UTC'
log_timezone = 'UTC'
log_min_duration_statement = 2000
EOF
)"
    if [ -f "$conf" ] && [ "$(cat "$conf")" = "$new" ]; then
        return 1
    fi
    printf '%s\n' "$new" | as_pg tee "$conf" >/dev/null
    return 0
}

clear_stale() {
    if [ -f "$PGDATA/postmaster.pid" ]; then
        warn "removing stale $PGDATA/postmaster.pid (its process is gone)"
        rm -f "$PGDATA/postmaster.pid"
    fi
    rm -f "$PG_REAL"/.s.PGSQL.*
}

start_cluster() {
    local changed="$1"
    if is_running; then
        if [ "$changed" = yes ]; then
            log "configuration changed: restarting PostgreSQL"
            as_pg "$HONUA_PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_REAL/postgres.log" -w -t 120 -s -m fast restart \
                || { tail -n 30 "$PG_REAL/postgres.log" >&2; die "pg_ctl restart failed"; }
        fi
    else
        clear_stale
        if port_in_use "$HONUA_PG_PORT"; then
            die "port 127.0.0.1:$HONUA_PG_PORT is taken by another program; set HONUA_PG_PORT to a free port"
        fi
        log "starting PostgreSQL on 127.0.0.1:$HONUA_PG_PORT (data: $PGDATA)"
        as_pg "$HONUA_PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_REAL/postgres.log" -w -t 120 -s start \
            || { tail -n 30 "$PG_REAL/postgres.log" >&2; die "pg_ctl start failed"; }
    fi
    wait_ready
}

su_psql() {
    as_pg "$HONUA_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_REAL" -p "$HONUA_PG_PORT" -U "$PG_SUPERUSER" "$@"
}

ensure_objects() {
    su_psql -d postgres <<SQL
SET client_min_messages = warning;
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
    CREATE ROLE $APP_ROLE;
  END IF;
END\$\$;
ALTER ROLE $APP_ROLE LOGIN CREATEDB CREATEROLE PASSWORD '$APP_PASSWORD';
SELECT 'CREATE DATABASE $APP_DB OWNER $APP_ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$APP_DB')\gexec
SQL
    local db
    for db in "$APP_DB" template1; do
        su_psql -d "$db" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis;"
    done
}

cmd_ensure() {
    resolve_dir
    init_cluster
    local changed=no
    if write_config; then changed=yes; fi
    start_cluster "$changed"
    ensure_objects
    log "PostgreSQL ready: postgis://$APP_ROLE:$APP_PASSWORD@127.0.0.1:$HONUA_PG_PORT/$APP_DB (socket dir $PG_REAL)"
}

cmd_start() {
    resolve_dir
    [ -f "$PGDATA/PG_VERSION" ] || die "no cluster in $PGDATA yet: run 'make setup'"
    start_cluster no
}

# Paths without creating anything (stop/status/destroy must not create folders).
peek_dir() {
    if [ -e "$HONUA_PG_DIR" ]; then
        PG_REAL="$(readlink -f "$HONUA_PG_DIR")"
        PGDATA="$PG_REAL/data"
        return 0
    fi
    return 1
}

cmd_stop() {
    if ! peek_dir || ! is_running; then
        log "PostgreSQL (port $HONUA_PG_PORT, $HONUA_PG_DIR) is not running"
        return 0
    fi
    log "stopping PostgreSQL in $PGDATA"
    as_pg "$HONUA_PG_BIN/pg_ctl" -D "$PGDATA" -w -t 120 -s -m fast stop
}

cmd_status() {
    if ! peek_dir; then
        echo "no cluster at $HONUA_PG_DIR"
        return 3
    fi
    if [ -L "$HONUA_PG_DIR" ]; then
        echo "cluster folder: $HONUA_PG_DIR -> $PG_REAL"
    else
        echo "cluster folder: $HONUA_PG_DIR"
    fi
    if is_running; then
        echo "running: pid $(our_postmaster_pid), 127.0.0.1:$(sed -n 4p "$PGDATA/postmaster.pid")"
        return 0
    fi
    echo "not running"
    return 3
}

cmd_destroy() {
    cmd_stop
    if [ -L "$HONUA_PG_DIR" ]; then
        local target
        target="$(readlink "$HONUA_PG_DIR")"
        case "$target" in
            /var/tmp/honua-pg-*) rm -rf -- "$target" ;;
            *) warn "not deleting unexpected symlink target $target" ;;
        esac
        rm -f -- "$HONUA_PG_DIR"
    elif [ -d "$HONUA_PG_DIR" ]; then
        rm -rf -- "$HONUA_PG_DIR"
    fi
    log "deleted the local PostgreSQL cluster"
}

case "${1:-ensure}" in
    ensure) cmd_ensure ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    psql) shift; resolve_dir; su_psql "$@" ;;
    destroy) cmd_destroy ;;
    *) die "usage: $0 ensure|start|stop|status|psql [args]|destroy" ;;
esac
