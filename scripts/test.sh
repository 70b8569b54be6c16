#!/usr/bin/env bash
# `make test` after setup: runs every check, reports each, exits non-zero if any failed.
#   pytest (whole suite; exit 5 "no tests collected" counts as a failure), lint-imports,
#   manage.py check, ruff check ., mypy (the six packages; config in pyproject.toml).
# Arguments are passed to pytest (the Makefile passes $(PYTEST_ARGS)).
set -uo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$HONUA_ROOT" || exit 1

NAMES=()
RESULTS=()
FAILED=0
PYTEST_LOG="$(mktemp)"
trap 'rm -f "$PYTEST_LOG"' EXIT

section() { printf '\n\033[1m==== %s ====\033[0m\n' "$*"; }

record() {  # name rc [note]
    NAMES+=("$1")
    if [ "$2" -eq 0 ]; then
        RESULTS+=("ok")
    else
        RESULTS+=("FAILED (exit $2${3:+, $3})")
        FAILED=1
    fi
}

# 1. pytest
section "pytest $*"
color=()
[ -t 1 ] && color=(--color=yes)
"$VENV/bin/pytest" -p no:cacheprovider "${color[@]}" "$@" 2>&1 | tee "$PYTEST_LOG"
rc=${PIPESTATUS[0]}
case "$rc" in
    5) record pytest "$rc" "no tests were collected" ;;
    *) record pytest "$rc" ;;
esac

# 2. import contracts
section "lint-imports"
"$VENV/bin/lint-imports" --no-cache
record lint-imports $?

# 3. Django system checks
section "manage.py check"
"$VENV/bin/python" manage.py check
record "manage.py check" $?

# 4. ruff
section "ruff check ."
"$VENV/bin/ruff" check .
record "ruff check" $?

# 5. mypy
section "mypy"
"$VENV/bin/mypy" controlplane executors ogcprocesses gpserver honua browser
record mypy $?

section "make test summary"
for i in "${!NAMES[@]}"; do
    printf '  %-16s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
done

# Repeat pytest's counts as the last line, e.g. "pytest: 12 passed, 0 failed, 3 skipped".
summary="$(sed 's/\x1b\[[0-9;]*m//g' "$PYTEST_LOG" | grep -E '^(=+ )?[0-9]+ [a-z]+.* in [0-9.]+s' | tail -n1)"
if [ -n "$summary" ]; then
    count() { echo "$summary" | grep -oE "[0-9]+ $1" | awk '{s+=$1} END {print s+0}'; }
    passed="$(count 'passed')"
    failed=$(( $(count 'failed') + $(count 'errors?') ))
    skipped="$(count 'skipped')"
    echo "pytest: $passed passed, $failed failed, $skipped skipped"
fi

exit "$FAILED"
