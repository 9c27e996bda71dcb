#!/usr/bin/env bash
# Measures pomerium-jit on this machine (loopback only, bounded runs):
# GET / at concurrency 64 against a hello-world baseline, GET /admin with
# 1,000 entries, a burst of 100 approvals, idle and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v oha >/dev/null || cargo install --locked oha
cargo build --release --locked --bin pomerium-jit --example loadtest
exec target/release/examples/loadtest
