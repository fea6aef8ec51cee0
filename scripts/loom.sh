#!/usr/bin/env bash
# Runs every loom model of the protocols (src/loom_models.rs).
# LOOM_MAX_PREEMPTIONS bounds the search (default 2); pass a test-name
# filter as the first argument to run one model.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg kthread_loom ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
exec cargo test --release --lib --features async "${1:-loom_}" -- --nocapture
