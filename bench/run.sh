#!/usr/bin/env bash
# kopf-rs vs Python Kopf vs a bare kube-runtime Controller, on the same workload against
# `fake-apiserver serve` (bench/src/compare/mod.rs says what is measured).
#
#   bench/run.sh            release build (not timed), N = 100, 1k, 10k; writes bench/RESULTS.md and
#                           bench/throughput.svg, with the in-process benchmarks' figures
#   bench/run.sh --quick    N = 100 with the debug binaries `cargo test --workspace` builds (nothing
#                           new to build after it); prints the figures and ratios (what .ci/run does)
#
# Anything after the mode goes to bench-compare (e.g. `--sizes 1000 --contenders kopf-rs,kopf`).
# Python Kopf comes from the venv .ci/clients.sh installs (once per machine, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
if [ "${1:-}" = "--quick" ]; then
  quick=true
  shift
fi

source .ci/clients.sh
target="${CARGO_TARGET_DIR:-$(pwd)/target}"

if $quick; then
  echo "== building (the debug binaries of cargo test --workspace)"
  cargo test --workspace --no-run --quiet
  "$target/debug/bench-compare" --sizes 100 --cap 60 --profile debug \
    --command "bench/run.sh --quick" "$@"
else
  echo "== building (release)"
  cargo build --release --quiet -p fake-apiserver -p kopf-bench --bins
  "$target/release/bench-compare" --out bench/RESULTS.md --plot bench/throughput.svg --in-process \
    --command "bench/run.sh" "$@"
fi
