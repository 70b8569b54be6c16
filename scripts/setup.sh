#!/usr/bin/env bash
# First half of `make setup` (the Django steps follow in the Makefile):
#   1. system packages: apt-get installs whatever of APT_PACKAGES is missing
#      (`apt-get update` only when something is missing; skipped with HONUA_SKIP_APT=1)
#   2. .venv from `python3` on PATH (>= 3.11; pyenv's is fine), `pip install -e '.[dev]'`
#      again only when pyproject.toml is newer than .venv/.honua-installed
#   3. the database: unless DATABASE_URL is set, the project-local PostgreSQL/PostGIS
#      cluster (scripts/pg.sh ensure)
#   4. the job browser's map library: `npm ci` in frontend/ (again only when its lock
#      changed), its dist files copied into browser/static/browser/vendor/
#
#   scripts/setup.sh              all of the above
#   scripts/setup.sh test-extras  pip install $HONUA_TEST_PIP_PACKAGES into .venv (if changed),
#                                 `npm ci` of the JS interop client (if node and npm exist), and
#                                 Debian's chromium for the browser tests (tests/browser)
# Idempotent, and serialised with flock so that concurrent runs do not race.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

APT_PACKAGES=(
    postgresql-15 postgresql-15-postgis-3 postgresql-contrib
    libgdal32 libgeos-c1v5 libproj25
    python3-venv python3-dev gcc
)
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.honua-installed"
EXTRAS_STAMP="$VENV/.honua-test-extras"

# pip, with its (noisy build-backend) output in .venv/pip.log, shown only on failure.
pip_q() {
    if ! "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" >"$VENV/pip.log" 2>&1; then
        tail -n 40 "$VENV/pip.log" >&2
        die "pip $* failed (full log: $VENV/pip.log)"
    fi
}

ensure_apt() {
    if [ "${HONUA_SKIP_APT:-0}" = 1 ]; then
        log "HONUA_SKIP_APT=1: not checking system packages"
        return 0
    fi
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! is_root; then
        die "missing system packages: ${missing[*]} (as root: apt-get install ${missing[*]}; or set HONUA_SKIP_APT=1)"
    fi
    command -v apt-get >/dev/null || die "missing system packages ${missing[*]} and no apt-get (not Debian?)"
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }

ensure_venv() {
    if [ -x "$VENV/bin/python" ] && py_ok "$VENV/bin/python"; then
        :
    else
        command -v "$PYTHON" >/dev/null || die "$PYTHON not found on PATH"
        py_ok "$PYTHON" || die "Honua needs Python >= 3.11; $(command -v "$PYTHON") is $("$PYTHON" -V 2>&1)"
        [ -e "$VENV" ] && { warn "$VENV is broken or too old: re-creating it"; rm -rf "$VENV"; }
        log "creating $VENV with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
        "$PYTHON" -m venv "$VENV"
        pip_q install --upgrade pip
    fi
    if [ ! -f "$STAMP" ] || [ "$HONUA_ROOT/pyproject.toml" -nt "$STAMP" ]; then
        log "pip install -e '.[dev]'"
        (cd "$HONUA_ROOT" && pip_q install -e '.[dev]')
        touch "$STAMP"
    fi
}

ensure_test_extras() {
    local want="${HONUA_TEST_PIP_PACKAGES:-}"
    want="$(echo "$want" | xargs)"   # normalise whitespace
    [ -n "$want" ] || return 0
    if [ -f "$EXTRAS_STAMP" ] && [ "$(cat "$EXTRAS_STAMP")" = "$want" ] && [ ! "$STAMP" -nt "$EXTRAS_STAMP" ]; then
        return 0
    fi
    log "pip install (test only): $want"
    # shellcheck disable=SC2086  # a space-separated list of requirement specs
    pip_q install $want
    printf '%s' "$want" >"$EXTRAS_STAMP"
}

# The ArcGIS Maps SDK for JavaScript (@arcgis/core, ~390 MB in node_modules) for
# tests/gpserver/interop: `npm ci` from the committed package-lock.json, again only when the
# lock changed. Skipped (the tests then skip) without node >= 18 and npm. Each attempt is
# bounded (npm has been seen to stall idle after its downloads) and retried.
JS_INTEROP_DIR="$HONUA_ROOT/tests/gpserver/interop/js"

ensure_test_js() {
    [ -f "$JS_INTEROP_DIR/package-lock.json" ] || return 0
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        warn "node/npm not found: the @arcgis/core interop tests will be skipped"
        return 0
    fi
    if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
        warn "node $(node --version) is older than 18: the @arcgis/core interop tests will be skipped"
        return 0
    fi
    local stamp="$JS_INTEROP_DIR/node_modules/.honua-lock-sha256" sum attempt
    sum="$(sha256sum "$JS_INTEROP_DIR/package-lock.json" "$JS_INTEROP_DIR/package.json" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        return 0
    fi
    log "npm ci (test only): tests/gpserver/interop/js"
    for attempt in 1 2 3; do
        if (cd "$JS_INTEROP_DIR" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
            >"$VENV/npm.log" 2>&1; then
            printf '%s' "$sum" >"$stamp"
            return 0
        fi
        warn "npm ci failed or stalled (attempt $attempt of 3)"
    done
    tail -n 40 "$VENV/npm.log" >&2
    die "npm ci in $JS_INTEROP_DIR failed (full log: $VENV/npm.log)"
}

# The job browser's map library (Leaflet, pinned in frontend/package-lock.json), served as
# static files: no CDN, no tile server. node and npm come from Debian when missing.
FRONTEND_DIR="$HONUA_ROOT/frontend"
VENDOR_DIR="$HONUA_ROOT/browser/static/browser/vendor"

ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    [ "${HONUA_SKIP_APT:-0}" = 1 ] && die "node and npm are needed for the job browser's map library (HONUA_SKIP_APT=1: install them yourself)"
    is_root || die "node and npm are needed for the job browser's map library (as root: apt-get install nodejs npm)"
    log "installing system packages: nodejs npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm
}

ensure_frontend() {
    local stamp="$FRONTEND_DIR/node_modules/.honua-lock-sha256" sum attempt installed=0
    sum="$(sha256sum "$FRONTEND_DIR/package-lock.json" "$FRONTEND_DIR/package.json" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        installed=1
    else
        ensure_node
        log "npm ci: frontend (the job browser's map library)"
        for attempt in 1 2 3; do
            if (cd "$FRONTEND_DIR" && timeout 300 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
                >"$VENV/npm-frontend.log" 2>&1; then
                printf '%s' "$sum" >"$stamp"
                installed=1
                break
            fi
            warn "npm ci failed or stalled (attempt $attempt of 3)"
        done
    fi
    if [ "$installed" != 1 ]; then
        tail -n 40 "$VENV/npm-frontend.log" >&2
        die "npm ci in $FRONTEND_DIR failed (full log: $VENV/npm-frontend.log)"
    fi
    local dist="$FRONTEND_DIR/node_modules/leaflet/dist" target="$VENDOR_DIR/leaflet"
    if [ ! -f "$target/.honua-lock-sha256" ] || [ "$(cat "$target/.honua-lock-sha256")" != "$sum" ]; then
        rm -rf "$target"
        mkdir -p "$target"
        cp "$dist/leaflet.js" "$dist/leaflet.css" "$target/"
        cp -r "$dist/images" "$target/"
        printf '%s' "$sum" >"$target/.honua-lock-sha256"
    fi
}

# Debian's chromium for tests/browser (driven by the Python playwright package through its
# executable_path: playwright never downloads a browser here).
ensure_chromium() {
    command -v chromium >/dev/null && return 0
    if [ "${HONUA_SKIP_APT:-0}" = 1 ] || ! is_root; then
        warn "chromium is missing: tests/browser will fail (as root: apt-get install chromium)"
        return 0
    fi
    log "installing system packages (test only): chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium
}

ensure_db() {
    if [ -n "${DATABASE_URL:-}" ]; then
        log "DATABASE_URL is set: using it, not the project-local PostgreSQL cluster"
        return 0
    fi
    "$HONUA_ROOT/scripts/pg.sh" ensure
}

mkdir -p "$HONUA_DATA_DIR"
exec 9>"$HONUA_DATA_DIR/.setup.lock"
if ! flock -n 9; then
    log "another 'make setup' is running in this checkout: waiting for it"
    flock 9
fi

case "${1:-all}" in
    all)
        ensure_apt
        ensure_venv
        ensure_frontend
        ensure_db
        ;;
    test-extras)
        ensure_test_extras
        ensure_test_js
        ensure_chromium
        ;;
    *) die "usage: $0 [all|test-extras]" ;;
esac
