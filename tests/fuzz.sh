#!/usr/bin/env bash
# Fuzzes every parser of outside bytes under libFuzzer (fuzz/, one target
# per format) and prints one line per target:
#   fuzz <target>: <executions> runs, <coverage> edges, <verdict>
#
#   bash tests/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]   (default 60 s, all)
#
# Runs on stable Rust: the targets are built with SanitizerCoverage and
# linked against libFuzzer (libfuzzer-sys, compiled with the host's C++
# compiler). Each run starts from the targets' seeds plus the inputs kept
# in fuzz/corpus/<target>/; a crashing input is written there too, so the
# normal test suite replays it (fuzz/tests/replay.rs) until it is fixed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
shift || true
host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
if (($# > 0)); then
    targets=("$@")
else
    targets=()
    for source in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$source" .rs)")
    done
fi

# --target keeps the coverage flags off build scripts and proc macros.
bin_flags=()
for target in "${targets[@]}"; do
    bin_flags+=(--bin "$target")
done
RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares" \
    cargo build --release -p doorstep-fuzz --features libfuzzer "${bin_flags[@]}" --target "$host" --target-dir "$target_dir"
bin="$target_dir/$host/release"
work="$target_dir/corpus"
# The seeds come from an ordinary build: only the targets link libFuzzer.
cargo run -q -p doorstep-fuzz --bin write-seeds -- "$work"

found=0
for target in "${targets[@]}"; do
    kept="fuzz/corpus/$target"
    mkdir -p "$kept"
    log="$work/$target.log"
    status=0
    "$bin/$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$kept/" \
        "$work/$target" "$kept" >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    edges="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
    if ((status == 0)); then
        verdict="no failure"
    else
        verdict="FAILED (exit $status): see $log; the input is in $kept/"
        found=1
    fi
    echo "fuzz $target: ${runs:-0} runs, ${edges:-0} edges, $verdict"
done
exit "$found"
