#!/usr/bin/env bash
# Builds the production binary as the Docker image ships it and prints its
# path: no demo (`--no-default-features`), and the C library linked in
# (`+crt-static`), so no shared library is loaded, relocated and kept
# resident (2 MB less idle RSS; the README's Performance section). glibc's
# `files` and `dns` host lookups are built into it; NSS modules loaded at
# run time (mdns, LDAP) are not available to a static binary.
# `--target` keeps the static flag off build scripts and proc macros.
# Honours CARGO_TARGET_DIR and the CARGO_PROFILE_RELEASE_* settings.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
flags="-C target-feature=+crt-static"
# Packed relative relocations (DT_RELR): 5 KB of them instead of 420 KB
# read at every start. The static binary's own start-up code applies them,
# which glibc does from 2.36 on (Debian 12, the Docker build's base).
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ -n "$glibc" ] && printf '2.36\n%s\n' "$glibc" | sort -V -C; then
  flags="$flags -C link-arg=-Wl,-z,pack-relative-relocs"
fi
RUSTFLAGS="${RUSTFLAGS:-} $flags" \
  cargo build --release --locked --no-default-features -p pomerium-jit --bin pomerium-jit \
  --target "$host" >&2
realpath "${CARGO_TARGET_DIR:-target}/$host/release/pomerium-jit"
