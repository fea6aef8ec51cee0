#!/usr/bin/env bash
# Builds and tests the library with the oldest Rust it promises to support:
# the `rust-version` of Cargo.toml, from Debian's rustc-web/cargo-web packages
# (bookworm carries 1.85 beside the security update's newer release).
#
# It works on a copy of the committed tree with its own lock file, resolved
# with cargo's MSRV-aware fallback: a dev-dependency whose newest release
# needs a newer compiler is taken at its newest release that does not. The
# repository's Cargo.lock is untouched, and so is the default toolchain (the
# packages install /usr/bin/cargo, which rustup's ~/.cargo/bin shadows; this
# script calls them by their full paths).
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$msrv" ] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }

have() { [ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q "^rustc $msrv\.[0-9]* "; }
if ! have; then
    apt-get update -qq
    version=$(apt-cache madison rustc-web | awk -v v="$msrv." 'index($3, v) == 1 { print $3; exit }')
    [ -n "$version" ] || { echo "msrv: Debian has no rustc-web $msrv.x" >&2; apt-cache madison rustc-web >&2; exit 1; }
    apt-get install -y -qq "rustc-web=$version" "cargo-web=$version" \
        "libstd-rust-web-dev=$version" "libstd-rust-web-$msrv=$version" >/dev/null
fi
have || { echo "msrv: /usr/bin/rustc is not $msrv: $(/usr/bin/rustc --version)" >&2; exit 1; }
/usr/bin/rustc --version
/usr/bin/cargo --version

copy=$(mktemp -d /tmp/kthread-msrv.XXXXXX)
trap 'rm -rf "$copy"' EXIT
git ls-files -z | xargs -0 tar -c | tar -x -C "$copy"

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR="${MSRV_TARGET_DIR:-$PWD/target/msrv}"
export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback
cd "$copy"
rm -f Cargo.lock
/usr/bin/cargo generate-lockfile
/usr/bin/cargo build -q -p kthread --all-features
/usr/bin/cargo test -q -p kthread --all-features
