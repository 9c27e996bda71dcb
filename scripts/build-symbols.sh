#!/usr/bin/env bash
# Builds what the profiling scripts (instructions.sh, hot-code.sh) run: the
# load test's harness, and the production binary with its symbols kept, in
# SYMBOLS_DIR (a cargo target directory, target/symbols by default: the
# release profile strips symbols, and a build without stripping is a build
# of its own). Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
symbols=${SYMBOLS_DIR:-target/symbols}
cargo build --release --locked -p pomerium-jit --example loadtest >&2
CARGO_TARGET_DIR="$symbols" CARGO_PROFILE_RELEASE_STRIP=false scripts/build-production.sh
