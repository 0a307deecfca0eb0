#!/usr/bin/env bash
# Fuzzes every decoder of bytes from disk or the network (fuzz/fuzz_targets: chunk, query,
# response, segment, keys, manifest) for SECONDS each (default 100: ten minutes in all).
# Needs the nightly toolchain; installs cargo-fuzz if missing. Crashes land in fuzz/artifacts/.
#
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-100}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo run -q -p encsearch --example fuzz_seeds -- fuzz/corpus
for t in chunk query response segment keys manifest; do
  echo "== fuzz target $t, ${secs} s"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked)" || true
  test ! -d "fuzz/artifacts/$t" || test -z "$(ls -A "fuzz/artifacts/$t")" || { echo "crash in $t: fuzz/artifacts/$t"; exit 1; }
done
echo "no crashes"
