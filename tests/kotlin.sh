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
dispatch_pid=""
stop_dispatch() {
    [[ -n "$dispatch_pid" ]] || return 0
    kill "$dispatch_pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$dispatch_pid" 2>/dev/null && ((waited < 50)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL "$dispatch_pid" 2>/dev/null || true
    wait "$dispatch_pid" 2>/dev/null || true
    dispatch_pid=""
}
trap stop_dispatch EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_dispatch() { # LOGDIR
    local out="$1/dispatch.out" err="$1/dispatch.err" line="" waited=0
    : >"$out"
    "$target_dir/debug/doorstep-sim" serve --addr 127.0.0.1:0 >"$out" 2>"$err" </dev/null &
    dispatch_pid=$!
    # Up to 30 s for the first whole line; give up at once if the server died.
    while (($(wc -l <"$out") < 1)); do
        if ! kill -0 "$dispatch_pid" 2>/dev/null; then
            echo "kotlin.sh: ERROR: the dispatch server exited before listening:" >&2
            cat "$err" >&2
            return 1
        fi
        if ((waited >= 300)); then
            echo "kotlin.sh: ERROR: the dispatch server did not start within 30 s" >&2
            cat "$err" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    line="$(head -n 1 "$out")"
    if [[ "$line" != "listening on http://"* ]]; then
        echo "kotlin.sh: ERROR: unexpected first line from the dispatch server: $line" >&2
        return 1
    fi
    export DOORSTEP_DISPATCH_URL="${line#listening on }"
    echo "kotlin.sh: dispatch server at $DOORSTEP_DISPATCH_URL" >&2
}

cargo run -q -p doorstep-ffi --bin uniffi-bindgen -- generate \
    --library "$library" --language kotlin --no-format --out-dir "$work/generated"

mapfile -t sources < <(find "$work/generated" android/src/main/kotlin android/src/test/kotlin -name '*.kt' | sort)
echo "compiling ${#sources[@]} Kotlin files"
compile_kotlin "$work/classes" "$KOTLIN_TEST_CLASSPATH" "${sources[@]}"

# JNA finds the library through the loader path; the tests find the sample
# day through the environment.
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOORSTEP_SAMPLE_DOCUMENT="$repo/tests/scenarios/mall-pickup-run.json"
start_dispatch "$work"
run_junit "$KOTLIN_TEST_CLASSPATH" "$work/classes"
