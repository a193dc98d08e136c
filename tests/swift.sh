#!/usr/bin/env bash
# swift.sh — test the iOS shell (ios/, a Swift package) against the Rust core.
#
#   tests/swift.sh
#
# 1. builds libdoorstep_ffi and doorstep-sim (debug) with cargo;
# 2. generates the Swift bindings from that library (uniffi-bindgen, config in
#    uniffi.toml) into ios/Sources/ — generated files are git-ignored;
# 3. starts the reference dispatch server (doorstep-sim serve, in memory, on a
#    free loopback port) for the sync tests, which find it through
#    DOORSTEP_DISPATCH_URL, and stops it when the script exits;
# 4. runs `swift test` in ios/ linked against the library (through
#    tests/tools/swift-env.sh, which supplies a Swift toolchain on Linux hosts
#    that have none), keeping the log in <target>/swift/test.log.
#
# The last line printed is always `swift: N passed, N failed`. Exits non-zero
# if the build or any test failed, or if no tests ran. Respects
# CARGO_TARGET_DIR (default: <repo>/target).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"

target="${CARGO_TARGET_DIR:-$repo/target}"
[[ "$target" == /* ]] || target="$repo/$target"  # cargo reads it relative to cwd
case "$(uname -s)" in
  Darwin) libname=libdoorstep_ffi.dylib ;;
  *) libname=libdoorstep_ffi.so ;;
esac
built="$target/debug/$libname"
# The bindings are generated from, and the tests link and load, a private copy
# of the library: a cargo build running at the same time may replace
# target/debug's, and bindings that do not match the library read garbage.
libdir="$target/swift/lib"
lib="$libdir/$libname"

# Whatever happens, the last line is the summary (tests/run-all.sh reads it);
# like run-all.sh, a suite that could not run counts as one failure.
gen="" summarized=0
# shellcheck source=tools/dispatch-server.sh
source "$repo/tests/tools/dispatch-server.sh"
finish() {
  local rc=$?
  stop_dispatch
  [[ -z "$gen" ]] || rm -rf "$gen"
  if ((!summarized)); then
    echo "swift.sh: failed before the tests ran (status $rc)" >&2
    echo "swift: 0 passed, 1 failed"
    ((rc != 0)) || rc=1
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "swift.sh: building doorstep-ffi and doorstep-sim" >&2
cargo build -p doorstep-ffi -p doorstep-sim
[[ -f "$built" ]] || { echo "swift.sh: ERROR: cargo did not produce $built" >&2; exit 1; }
mkdir -p "$libdir"
cp "$built" "$lib.tmp" && mv -f "$lib.tmp" "$lib"

echo "swift.sh: generating Swift bindings from $lib" >&2
gen="$(mktemp -d "${TMPDIR:-/tmp}/doorstep-swift-bindings.XXXXXX")"
cargo run -q -p doorstep-ffi --bin uniffi-bindgen -- generate --library "$lib" \
  --language swift --no-format --out-dir "$gen"

# Copy only what changed, so SwiftPM does not recompile identical sources.
# The generated doorstep_ffiFFI.modulemap is not used: the package has its own
# (ios/Sources/doorstep_ffiFFI/module.modulemap), which also links the library.
place() {
  local from="$gen/$1" to="$repo/ios/Sources/$2/$1"
  [[ -f "$from" ]] || { echo "swift.sh: ERROR: uniffi-bindgen did not write $1" >&2; exit 1; }
  mkdir -p "$(dirname "$to")"
  cmp -s "$from" "$to" || cp "$from" "$to"
}
place DoorstepCore.swift DoorstepCore
place doorstep_ffiFFI.h doorstep_ffiFFI

# shellcheck source=tools/swift-env.sh
source "$repo/tests/tools/swift-env.sh"

logdir="$target/swift"
mkdir -p "$logdir"
log="$logdir/test.log"

# SwiftPM's incremental build does not recompile the code that uses the
# generated bindings when only DoorstepCore.swift changed (the tests see it
# through Doorstep's `@_exported import`): the tests would keep the old
# layout of the core's records and read garbage, or crash, against the new
# library. So whenever the bindings differ from those of the last build,
# build from clean (the package builds in seconds).
stamp="$repo/ios/.build/doorstep-bindings.sha256"
bindings_sum="$(cd "$repo/ios/Sources" && sha256sum DoorstepCore/DoorstepCore.swift doorstep_ffiFFI/doorstep_ffiFFI.h)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$bindings_sum" ]]; then
  echo "swift.sh: the generated bindings changed; building ios/ from clean" >&2
  swift_run "$repo/ios" package clean
  mkdir -p "$(dirname "$stamp")"
  printf '%s\n' "$bindings_sum" >"$stamp"
fi

# The reference dispatch server prints `listening on http://ADDR` once it
# accepts connections. The chroot shares the host's network, so the tests
# reach it at the same address; swift-env.sh forwards the variable.
start_dispatch "$logdir" "$target/debug/doorstep-sim"
SWIFT_ENV_PASSTHRU="${SWIFT_ENV_PASSTHRU:+$SWIFT_ENV_PASSTHRU }DOORSTEP_DISPATCH_URL"

# -L to link, -rpath so the test binary finds the library when it runs.
link=(-Xlinker -L"$libdir" -Xlinker -rpath -Xlinker "$libdir")

echo "swift.sh: swift test in ios/ (log: $log)" >&2
set +e
swift_run "$repo/ios" test "${link[@]}" 2>&1 | tee "$log"
test_rc=${PIPESTATUS[0]}
summary="$(swift_test_summary "$log")"
summary_rc=$?
set -e

[[ $test_rc == 0 ]] || echo "swift.sh: swift test exited with status $test_rc" >&2
if ((summary_rc == 2)); then  # no test ran: the build failed
  summary="swift: 0 passed, 1 failed"
fi
summarized=1
echo "$summary"
if ((test_rc != 0 || summary_rc != 0)); then
  exit 1
fi
