#!/usr/bin/env bash
# Fuzzes every decoder of bytes from disk or the network (fuzz/fuzz_targets: chunk, query,
# response, segment, keys, manifest, fine_query, fine_response, hot_cache, score_stream,
# service_messages) for SECONDS each
# (default 55: ten minutes in all).
# Needs the nightly toolchain; installs cargo-fuzz if missing. Crashes land in fuzz/artifacts/.
#
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-55}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo run -q -p encsearch --example fuzz_seeds -- fuzz/corpus
targets=${TARGETS:-chunk query response segment keys manifest fine_query fine_response hot_cache score_stream service_messages}
mkdir -p fuzz/logs
for t in $targets; do
  echo "== fuzz target $t, ${secs} s"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 \
    > "fuzz/logs/$t.log" 2>&1 || true
  grep -aE "Done [0-9]+ runs|number_of_executed_units|SUMMARY|panicked" "fuzz/logs/$t.log" || tail -n 5 "fuzz/logs/$t.log"
  if [ -d "fuzz/artifacts/$t" ] && [ -n "$(ls -A "fuzz/artifacts/$t")" ]; then
    echo "crash in $t: fuzz/artifacts/$t (log: fuzz/logs/$t.log)"
    exit 1
  fi
done
echo "no crashes"
