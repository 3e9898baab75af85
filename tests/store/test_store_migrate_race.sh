#!/usr/bin/env bash
# Two `chatplane migrate` processes started at the same moment on one fresh
# PostgreSQL database must apply every migration exactly once between them:
# the migration lock makes the second wait, and it then finds nothing left
# to do.
#   tests/store/test_store_migrate_race.sh BIN URL [ROUNDS]
# BIN is the chatplane binary; URL a postgres:// URL of a server where the
# URL's user may create databases (scripts/pg-test-cluster gives one). Each
# round drops and recreates the database chatplane_race on that server.
# Prints "migrate race: N passed, M failed" (one test per round) and appends
# "migrate-race N M" to build/results.txt for scripts/summary.
set -uo pipefail

bin=$1 url=$2 rounds=${3:-5}
case "$url" in
postgres://* | postgresql://*) ;;
*)
  echo "test_store_migrate_race: URL must be a postgres:// URL, got '$url'" >&2
  exit 2
  ;;
esac

# The same server, one database for administration and one to race on.
base=${url%%\?*}
base=${base%/*}
admin_url="$base/postgres"
race_url="$base/chatplane_race"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql_admin() {
  PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d "$admin_url" "$@"
}

# Runs one round; prints what went wrong and returns 1 on failure.
round() {
  local r=$1 ok=1
  psql_admin -c 'DROP DATABASE IF EXISTS chatplane_race WITH (FORCE)' \
    -c 'CREATE DATABASE chatplane_race' || return 1

  # Both processes wait for a line on one FIFO; writing two lines releases
  # them together. Holding the FIFO open read-write first means neither
  # side blocks in open(), whichever comes first.
  local go="$work/go.$r"
  mkfifo "$go"
  exec 3<>"$go"
  local i pids=()
  for i in 1 2; do
    (read -r _ <"$go" && exec "$bin" migrate --db "$race_url") >"$work/out.$r.$i" 2>&1 3>&- &
    pids+=($!)
  done
  sleep 0.2
  printf 'go\ngo\n' >&3
  exec 3>&-

  local rc
  for i in 1 2; do
    wait "${pids[$((i - 1))]}"
    rc=$?
    if [ $rc -ne 0 ]; then
      echo "round $r: process $i exited $rc:" >&2
      sed 's/^/  /' "$work/out.$r.$i" >&2
      ok=0
    fi
  done

  # Every version that either process reports applying, exactly once.
  local twice
  twice=$(cat "$work/out.$r.1" "$work/out.$r.2" | sed -n 's/^applied \([0-9]*\) .*/\1/p' |
    sort | uniq -d)
  if [ -n "$twice" ]; then
    echo "round $r: applied twice: $twice" >&2
    ok=0
  fi
  local applied latest
  applied=$(cat "$work/out.$r.1" "$work/out.$r.2" | grep -c '^applied ')
  latest=$(cat "$work/out.$r.1" "$work/out.$r.2" |
    sed -n 's/^schema is at version \([0-9]*\)$/\1/p' | head -1)

  # The table agrees: every version once, from 1 to latest. Versions are
  # numbered as changes are planned, so the build may skip some: the count
  # is what the processes applied, not latest.
  local rows
  rows=$(psql -X -At -v ON_ERROR_STOP=1 -d "$race_url" \
    -c 'SELECT count(*), count(DISTINCT version), min(version), max(version)
        FROM schema_migrations') || return 1
  if [ -z "$latest" ] || [ "$rows" != "$applied|$applied|1|$latest" ] ||
    [ "$applied" -lt 1 ]; then
    echo "round $r: schema_migrations has count|distinct|min|max = $rows," \
      "processes applied $applied, latest is '${latest}'" >&2
    ok=0
  fi
  [ $ok -eq 1 ]
}

passed=0 failed=0
for r in $(seq 1 "$rounds"); do
  if round "$r"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
psql_admin -c 'DROP DATABASE IF EXISTS chatplane_race WITH (FORCE)' || true

echo "migrate race: $passed passed, $failed failed"
mkdir -p build
echo "migrate-race $passed $failed" >>build/results.txt
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
