#!/usr/bin/env bash
# The crash test: a process streaming events through the event log is killed
# with SIGKILL; every event it had published must be stored, with no gap,
# and start-up recovery must stop its run as interrupted. Two rounds: 512
# events waiting at a time, killed after about 2000 (batches of many
# events, each a transaction), then one at a time, killed after about 300
# (on a SQLite file most of them written to the token journal, so the kill
# lands while the journal holds events; repeated until it did, at most five
# times). Runs against CHATPLANE_TEST_DB_URL, else a fresh SQLite file.
# Expects kill_writer next to this script (the build copies it there).
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

# kill_round NAME IN_FLIGHT LINES: writes, kills after LINES published
# seqs, checks; the check's line goes to stdout.
kill_round() {
  local url=${CHATPLANE_TEST_DB_URL:-sqlite:$tmp/$1.db}
  "$bin" write "$url" "$2" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  # The header line, then one line per published seq; wait up to 12 s.
  for _ in $(seq 1 600); do
    [ "$(wc -l <"$tmp/out")" -gt "$3" ] && break
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
}

kill_round batches 512 2000
if [ -n "${CHATPLANE_TEST_DB_URL:-}" ]; then
  kill_round one-by-one 1 300
  exit 0
fi
for try in 1 2 3 4 5; do
  line=$(kill_round "one-by-one-$try" 1 300)
  echo "$line"
  case $line in
  *"(0 of them from the token journal)"*) ;;
  *) exit 0 ;;
  esac
done
echo "test_eventlog_kill: five kills found the token journal empty each time" >&2
exit 1
