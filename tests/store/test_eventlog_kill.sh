#!/usr/bin/env bash
# The crash test: a process streaming events through the event log is killed
# with SIGKILL after about 2000 committed events; every event it had
# published must be stored, with no gap, and start-up recovery must stop its
# run as interrupted. Runs against CHATPLANE_TEST_DB_URL, else a fresh SQLite
# file. Expects kill_writer next to this script (the build copies it there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/kill_writer
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
url=${CHATPLANE_TEST_DB_URL:-sqlite:$tmp/kill.db}

"$bin" write "$url" >"$tmp/out" 2>"$tmp/err" &
pid=$!
# The header line, then one line per published seq; wait up to 12 s.
for _ in $(seq 1 600); do
  [ "$(wc -l <"$tmp/out")" -gt 2000 ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "test_eventlog_kill: the writer exited before it was killed:" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
  sleep 0.02
done
# The group's redirection also silences bash's own "Killed" notice.
{
  kill -KILL "$pid"
  wait "$pid" || true
} 2>/dev/null
pid=

"$bin" check "$url" "$tmp/out"
