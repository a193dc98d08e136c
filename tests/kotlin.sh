#!/usr/bin/env bash
# The Kotlin suite: builds the core library, generates the Kotlin bindings
# from it, compiles them with the Kotlin shell (android/src/main) and its
# tests (android/src/test) on the plain JVM, and runs them with JUnit 5.
# Ends with one line: `kotlin: N passed, N failed`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
work="$target_dir/kotlin"

# shellcheck source=tools/kotlin-env.sh
source "$repo/tests/tools/kotlin-env.sh"

cargo build -p doorstep-ffi
library="$target_dir/debug/libdoorstep_ffi.so"

rm -rf "$work"
mkdir -p "$work/generated" "$work/classes"
cargo run -q -p doorstep-ffi --bin uniffi-bindgen -- generate \
    --library "$library" --language kotlin --no-format --out-dir "$work/generated"

mapfile -t sources < <(find "$work/generated" android/src/main/kotlin android/src/test/kotlin -name '*.kt' | sort)
echo "compiling ${#sources[@]} Kotlin files"
compile_kotlin "$work/classes" "$KOTLIN_TEST_CLASSPATH" "${sources[@]}"

# JNA finds the library through the loader path; the tests find the sample
# day through the environment.
export LD_LIBRARY_PATH="$target_dir/debug${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOORSTEP_SAMPLE_DOCUMENT="$repo/tests/scenarios/mall-pickup-run.json"
run_junit "$KOTLIN_TEST_CLASSPATH" "$work/classes"
