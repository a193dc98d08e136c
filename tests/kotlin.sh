#!/usr/bin/env bash
# The Kotlin suite: builds the core library, generates the Kotlin bindings
# from it, compiles them with the Kotlin shell (android/src/main) and its
# tests (android/src/test) on the plain JVM, and runs them with JUnit 5.
# The sync tests talk to the reference dispatch server (doorstep-sim serve),
# started here on a free loopback port and stopped when the script exits;
# its URL reaches the tests as DOORSTEP_DISPATCH_URL.
# Ends with one line: `kotlin: N passed, N failed`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
work="$target_dir/kotlin"

# shellcheck source=tools/kotlin-env.sh
source "$repo/tests/tools/kotlin-env.sh"

cargo build -p doorstep-ffi -p doorstep-sim

# The bindings are generated from, and the tests load, a private copy of the
# library: a cargo build running at the same time (another suite, an editor)
# may replace target/debug/libdoorstep_ffi.so, and bindings that do not match
# the library they load read garbage.
rm -rf "$work"
mkdir -p "$work/generated" "$work/classes" "$work/lib"
cp "$target_dir/debug/libdoorstep_ffi.so" "$work/lib/"
library="$work/lib/libdoorstep_ffi.so"

# The reference dispatch server, in memory, for as long as this script runs.
# It prints `listening on http://ADDR` once it accepts connections.
# shellcheck source=tools/dispatch-server.sh
source "$repo/tests/tools/dispatch-server.sh"
trap stop_dispatch EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cargo run -q -p doorstep-ffi --bin uniffi-bindgen -- generate \
    --library "$library" --language kotlin --no-format --out-dir "$work/generated"

mapfile -t sources < <(find "$work/generated" android/src/main/kotlin android/src/test/kotlin -name '*.kt' | sort)
echo "compiling ${#sources[@]} Kotlin files"
compile_kotlin "$work/classes" "$KOTLIN_TEST_CLASSPATH" "${sources[@]}"

# JNA finds the library through the loader path; the tests find the sample
# day through the environment.
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOORSTEP_SAMPLE_DOCUMENT="$repo/tests/scenarios/mall-pickup-run.json"
start_dispatch "$work" "$target_dir/debug/doorstep-sim"
run_junit "$KOTLIN_TEST_CLASSPATH" "$work/classes"
