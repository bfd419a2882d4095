#!/usr/bin/env bash
# The full bench runs behind docs/benchmarks.md: every scenario against ours,
# the Socket.IO peer and the raw baseline, one after the other, on this
# machine's loopback interface. Takes about 50 minutes (S5 alone is 3 × 10).
#
#   bench/run-full.sh [OUT_DIR]        # default bench-results/<UTC date>
#
# Needs redis-server, node/npm (the peer installs its packages on first
# start) and a file-descriptor hard limit of at least 11,000.
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-bench-results/$(date -u +%Y-%m-%d)}
mkdir -p "$out"

# 10,000 connections need 10,000+ descriptors in the bench and in each
# system's process (they inherit this limit).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 11000 ]; then
  echo "run-full.sh: the open-files hard limit is $(ulimit -Hn); 11000 are needed" >&2
  exit 1
fi

cargo build --release --locked -p bench -p edge-gateway -p functions --bins
bench=./target/release/bench

run() {
  local name=$1
  shift
  echo "== $name: bench $*" >&2
  "$bench" --json "$out/$name.json" "$@" | tee "$out/$name.md"
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpus: $(nproc)"
  free -g | sed -n 2p
  redis-server --version
  node --version
  git rev-parse HEAD
} >"$out/machine.txt"

run s1-latency latency
run s1-latency-5k latency --rate 5000 --tick-rate 0
run s2-connections connections --connections 10000
run s3-fanout fanout --holders 10000
run s4-bandwidth bandwidth
run s5-soak soak --seconds 600
echo "Results in $out." >&2
