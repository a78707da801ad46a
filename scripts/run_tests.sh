#!/usr/bin/env bash
# The whole suite: SQLite, then PostgreSQL when reachable, then the browser journeys when Chromium is installed.
# REQUIRE_POSTGRES=1 / REQUIRE_BROWSER=1 (set by CI) turn a skip into a failure.
set -u
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=teleexpertise.settings_test
PG_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/teleexpertise}"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
REPORTS=$(mktemp -d)
declare -a summary
failed=0

run_suite() {  # name, then env assignments and pytest arguments
  local name=$1; shift
  echo "=== $name ==="
  if env "$@" --junitxml="$REPORTS/$name.xml"; then summary+=("$name: ran, passed")
  else summary+=("$name: ran, FAILED"); failed=1; fi
}

skip_suite() {  # name, reason, required?
  if [ "$3" = "1" ]; then summary+=("$1: REQUIRED but skipped ($2)"); failed=1
  else summary+=("$1: skipped ($2)"); fi
}

echo "=== migrations check ==="
if DATABASE_URL="sqlite:///:memory:" $BIN/python manage.py makemigrations --check --dry-run >/dev/null; then
  summary+=("migrations: up to date")
else summary+=("migrations: MISSING (run makemigrations)"); failed=1; fi

echo "=== lint ==="
if $BIN/ruff check --quiet .; then summary+=("lint: clean"); else summary+=("lint: FINDINGS (ruff check .)"); failed=1; fi

run_suite sqlite DATABASE_URL="sqlite:///:memory:" $BIN/pytest -q -m "not browser"

if $BIN/python - "$PG_URL" <<'PY' 2>/dev/null
import sys, dj_database_url, psycopg
cfg = dj_database_url.parse(sys.argv[1])
psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], password=cfg["PASSWORD"] or None,
                dbname="postgres", connect_timeout=3).close()
PY
then
  run_suite postgres DATABASE_URL="$PG_URL" $BIN/pytest -q -m "not browser"
else
  skip_suite postgres "no PostgreSQL reachable at $PG_URL" "${REQUIRE_POSTGRES:-0}"
fi

if [ -x "$CHROMIUM" ]; then
  run_suite browser DATABASE_URL="sqlite:///:memory:" CHROMIUM_PATH="$CHROMIUM" DJANGO_ALLOW_ASYNC_UNSAFE=true \
    $BIN/pytest -q -m browser
else
  skip_suite browser "Chromium not found at $CHROMIUM (Debian package: chromium)" "${REQUIRE_BROWSER:-0}"
fi

echo
echo "=== summary ==="
printf '  %s\n' "${summary[@]}"
$BIN/python - "$REPORTS" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
t = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in t:
            t[key] += int(suite.get(key, 0))
failed = t["failures"] + t["errors"]
print(f"total: {t['tests'] - failed - t['skipped']} passed, {failed} failed, {t['skipped']} skipped")
PY
rm -rf "$REPORTS"
exit $failed
