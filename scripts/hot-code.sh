#!/usr/bin/env bash
# Regenerates crates/pomerium-jit/hot-code.ld, the list of functions the
# release binary's linker puts first and together (see that crate's build.rs).
#
# The production binary built with symbols runs the load test up to its
# burst of approvals (start-up, idle, GET /, GET /admin, snapshot reloads,
# requests filed and approved, the syncs they make) under
# `valgrind --tool=callgrind`; every function of the binary that ran is
# listed, in the order it first ran (counts dumped every 2 million basic
# blocks; the start-ups of the processes stopped at once come first), the
# most instructions first within each dump: the code of an idle service is
# the start of the list. Names are kept without their hash, so the list
# still matches after unrelated changes; a function renamed or added since
# simply lands among the rest until the next run.
# Needs valgrind, wrk and python3 (Debian: apt-get install valgrind wrk).
# Settings: SYMBOLS_DIR (the cargo target directory of the build with
# symbols, target/symbols), PJ_SECONDS (per wrk run, 3).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind wrk python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (Debian: apt-get install valgrind wrk python3)" >&2; exit 2; }
done
bin=$(scripts/build-symbols.sh)
# The profiles are kept for a look (callgrind_annotate) until the next run.
work=target/hot-code-profiles
rm -rf "$work" && mkdir -p "$work" && work=$(realpath "$work")
# The harness clears the app's environment: the paths are written into the
# wrapper. It stops the app with SIGKILL, which callgrind cannot outlive:
# counts are dumped every 2 million basic blocks (a fraction of a second
# under valgrind), which also tells which code ran first.
cat > "$work/app" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
  --dump-every-bb=2000000 --callgrind-out-file=$work/callgrind.%p "$bin" "\$@"
WRAP
chmod +x "$work/app"
# Under valgrind the app is some fifty times slower: the run takes about
# five minutes and is stopped once the burst of approvals is done (what
# follows runs the same code with more people).
PJ_BIN="$work/app" PJ_SECONDS=${PJ_SECONDS:-3} PJ_RUNS=1 PJ_ADMIN_USERS=1000 \
  target/release/examples/loadtest > "$work/harness.log" 2>&1 &
harness=$!
until grep -q "burst of 100" "$work/harness.log"; do
  kill -0 "$harness" 2>/dev/null || { cat "$work/harness.log" >&2; exit 1; }
  sleep 2
done
kill "$harness"
# The app, left without its harness, shuts down on SIGTERM and writes its last counts.
pkill -TERM -f -- "--callgrind-out-file=$work/" || true
while pgrep -f -- "--callgrind-out-file=$work/" >/dev/null; do sleep 1; done
python3 scripts/hot-code.py "$bin" "$work" crates/pomerium-jit/hot-code.ld
