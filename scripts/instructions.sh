#!/usr/bin/env bash
# Counts the instructions one `GET /` costs in user space, as the README's
# performance section reports them: the production binary built with symbols,
# run under `valgrind --tool=callgrind` by the load test's harness (fake Zero,
# fake signer, 4,000 assertions for 1,000 people); counters zeroed after a
# warm-up that puts every assertion into the token cache, then `wrk -c4` for a
# measured stretch. Instruction counts do not depend on the machine's speed.
# Needs valgrind and wrk (Debian: apt-get install valgrind wrk).
# Settings: WARMUP (seconds, 45), MEASURE (seconds, 10), SYMBOLS_DIR (the
# cargo target directory of the build with symbols, target/symbols). A shorter
# warm-up leaves assertions unverified, and their signature checks are then
# counted too (20 s gave twice the steady figure).
# Under valgrind aws-lc cannot use the CPU's SHA extensions, so the token
# cache's SHA-256 counts several times what it costs on the CPU itself.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (Debian: apt-get install valgrind wrk)" >&2; exit 2; }
done
warmup=${WARMUP:-45}
measure=${MEASURE:-10}
bin=$(scripts/build-symbols.sh)
work=$(mktemp -d)
trap 'kill ${pid:-} ${harness:-} 2>/dev/null || true; rm -rf "$work"' EXIT
# The harness clears the app's environment: the paths are written into the wrapper.
cat > "$work/app" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.%p "$bin" "\$@"
WRAP
chmod +x "$work/app"
PJ_BIN="$work/app" PJ_HOLD=$((warmup + measure + 120)) PJ_SECONDS=1 PJ_RUNS=1 \
  target/release/examples/loadtest > "$work/harness.log" 2>&1 &
harness=$!
for _ in $(seq 300); do
  grep -q 'load it with' "$work/harness.log" && break
  kill -0 "$harness" 2>/dev/null || { cat "$work/harness.log" >&2; exit 1; }
  sleep 1
done
line=$(grep 'load it with' "$work/harness.log") || { echo "error: the app did not start" >&2; exit 1; }
pid=$(sed -E 's/.*pid ([0-9]+),.*/\1/' <<<"$line")
read -r -a load <<<"$(sed -E 's/.*load it with: wrk (.*); held.*/\1/' <<<"$line")"
wrk -t1 -c4 -d"${warmup}s" "${load[@]}" >/dev/null
callgrind_control -z "$pid" >/dev/null
requests=$(wrk -t1 -c4 -d"${measure}s" "${load[@]}" | awk '/requests in/ {print $1}')
callgrind_control -d "$pid" >/dev/null
sleep 2
profile=$(ls -t "$work"/callgrind.* | head -1)
total=$(callgrind_annotate "$profile" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
cp "$profile" target/callgrind.out
echo "GET /: $requests requests, $total instructions, $((total / requests)) per request"
echo "profile: target/callgrind.out (callgrind_annotate --inclusive=yes target/callgrind.out)"
