#!/usr/bin/env bash
# Oxbow's one test command: on a fresh machine it installs what the tests need (Debian packages,
# a Go toolchain if the machine's is missing or too old, Kafka's jars from Maven Central, the
# Kubernetes control plane built from the upstream Go modules), lints, builds, starts the testbed
# (real kube-apiserver/etcd/controller-manager/scheduler, real Kafka, three node agents running pods
# as processes) and runs every test. Needs root (the pod network).
# Everything downloaded or built is cached outside the repository ($OXBOW_CACHE_DIR, default
# ~/.cache/oxbow; Go's and Cargo's usual caches), keyed by version.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never
# Debian packages, Go toolchain, cache and state folders; defines `log`.
. e2e/setup.sh

log "lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log "build"
cargo build --workspace --all-targets --locked

# The binary the workspace build just made: `cargo run -p e2e` would resolve features for e2e
# alone and rebuild shared dependencies.
testbed="${CARGO_TARGET_DIR:-$root/target}/debug/testbed"

log "testbed prepare (control plane binaries, Kafka jars, Kafka image)"
"$testbed" prepare

log "testbed up"
cleanup() { "$testbed" down || true; }
trap cleanup EXIT
# Assigned first: `eval "$(...)"` alone would hide a failed `up`.
# Three nodes, so that pods move between nodes (and addresses) as on a real cluster.
exports=$("$testbed" up --nodes 3)
eval "$exports"

log "tests"
cargo test --workspace --locked --no-fail-fast -- --test-threads=4
log "done"
