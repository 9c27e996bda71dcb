#!/usr/bin/env bash
# Measures pomerium-jit on this machine against the targets of the README's
# performance table (loopback only, bounded runs): start-up, idle RSS,
# GET / at concurrency 64 against a minimal axum server with the same body
# size, peak RSS, GET /admin at concurrency 16 with 1,000 and 10,000 people,
# a burst of 100 approvals. Each request carries a different assertion.
# Settings: PJ_SECONDS (per run, 10), PJ_RUNS (GET / runs, 3),
# PJ_ADMIN_USERS (10000), LOG_FORMAT; see crates/pomerium-jit/examples/loadtest.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y wrk
  else
    echo "error: wrk is not installed; install it (Debian/Ubuntu: sudo apt-get install wrk)" >&2
    exit 2
  fi
fi
# The binary measured is the production build, as in the Docker image.
cargo build --release --locked -p pomerium-jit --example loadtest
PJ_BIN=$(scripts/build-production.sh) exec target/release/examples/loadtest
