#!/usr/bin/env bash
# swift-env.sh — run SwiftPM (`swift build`, `swift test`) for the repo's Swift
# package on any machine, including Linux hosts that have no Swift toolchain.
#
#   source tests/tools/swift-env.sh
#   swift_run ios build
#   swift_run ios test 2>&1 | tee "$log"; swift_test_summary "$log"
#
#   tests/tools/swift-env.sh                  # self-check (same as `selfcheck`)
#   tests/tools/swift-env.sh run DIR ARGS...  # swift_run for non-bash callers
#   tests/tools/swift-env.sh summary LOG      # swift_test_summary
#
# If `swift` is on PATH it is used as is.  Otherwise a Debian trixie chroot with
# the distro's `swiftlang` is built once into ${DOORSTEP_CACHE:-~/.cache/doorstep}
# and every call runs inside it, with the repo bind-mounted at the same
# absolute path so paths in build products, logs and -L/-rpath flags agree
# between host and chroot.  Chroot mode needs root (debootstrap, mount, chroot).
#
# Knobs (all optional; DOORSTEP_CACHE is read when sourced, the rest per call):
#   DOORSTEP_CACHE                   cache root (chroot lives in swift-trixie/)
#   SWIFT_ENV_MODE=host|chroot       force a mode (default: host iff swift on PATH)
#   SWIFT_ENV_MIRROR=URL             Debian mirror (default: the host's apt mirror)
#   SWIFT_ENV_EXTRA_LD_LIBRARY_PATH  prepended to LD_LIBRARY_PATH for swift
#   SWIFT_ENV_EXTRA_MOUNTS=a:b       more host dirs to expose at the same path
#   SWIFT_ENV_PASSTHRU="VAR ..."     host env vars to forward into the chroot
#   CARGO_TARGET_DIR                 exposed automatically if outside the repo
#
# Functions run in subshells `( ... )` so that options, traps and `cd` never leak
# into the caller.  Note that `set -e` is silently disabled inside a function
# called as `f || ...` or `if f`, so every step that matters checks its status
# explicitly instead of relying on errexit.

SWIFT_ENV_SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
# tests/tools/swift-env.sh -> repo root; physical path, because bind mounts and
# the paths SwiftPM bakes into .build must match on both sides of the chroot.
SWIFT_ENV_REPO="$(cd "$(dirname "$SWIFT_ENV_SELF")/../.." && pwd -P)"
if [[ -z "${SWIFT_ENV_MODE:-}" ]]; then
  if command -v swift >/dev/null 2>&1; then SWIFT_ENV_MODE=host; else SWIFT_ENV_MODE=chroot; fi
fi
SWIFT_ENV_CHROOT="${DOORSTEP_CACHE:-${HOME:-/root}/.cache/doorstep}/swift-trixie"
# Where trixie's swiftlang keeps its runtime; its binaries do not find it alone.
SWIFT_ENV_RUNTIME_LIB=/usr/libexec/swift/lib/swift/linux
SWIFT_ENV_SUITE=trixie
SWIFT_ENV_PACKAGES="swiftlang libswiftlang libc6-dev libstdc++-14-dev"
# Stored in the chroot's marker; changing the recipe above forces a rebuild.
SWIFT_ENV_RECIPE="v1 debootstrap minbase $SWIFT_ENV_SUITE; $SWIFT_ENV_PACKAGES"
SWIFT_ENV_MARKER=.doorstep-swift-env

_swift_env_log() { printf 'swift-env: %s\n' "$*" >&2; }
_swift_env_die() { printf 'swift-env: ERROR: %s\n' "$*" >&2; exit 1; }

# Non-login root shells in CI often lack the sbin dirs (chroot, debootstrap).
_swift_env_path() { PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; }

swift_env_ready() (
  [[ "$SWIFT_ENV_MODE" == host ]] && { command -v swift >/dev/null; exit; }
  [[ "$(cat "$SWIFT_ENV_CHROOT/$SWIFT_ENV_MARKER" 2>/dev/null)" == "$SWIFT_ENV_RECIPE" ]]
)

# The mirror apt already uses here is known to be reachable (CI networks are
# often locked down to it); understands one-line and deb822 source formats.
_swift_env_mirror() {
  if [[ -n "${SWIFT_ENV_MIRROR:-}" ]]; then echo "$SWIFT_ENV_MIRROR"; return; fi
  local uri
  while read -r uri; do
    # Only a plain Debian archive will do: not -security, not Ubuntu, not file:.
    if [[ "$uri" =~ ^https?://.*/debian/?$ ]]; then echo "${uri%/}"; return; fi
  done < <({
    sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list
    sed -nE 's/^URIs:[[:space:]]*//Ip' /etc/apt/sources.list.d/*.sources
  } 2>/dev/null | tr -s '[:blank:]' '\n')
  echo http://deb.debian.org/debian
}

# Mounts a chroot needs, made inside a private mount namespace so they vanish
# with the process: nothing can leak onto the host or stack up across calls,
# even if the caller is SIGKILLed (a trap-based umount could not promise that).
# A private /dev (tmpfs + the few host nodes) rather than an rbind of the
# host's: the host /dev/shm may itself be stacked, and a cache on a `nodev`
# filesystem would make device nodes created by debootstrap unusable.
_swift_env_ns_sysmounts() {
  local root=$1 n
  # A fresh proc can be refused where the host's /proc has masked paths
  # (container runtimes); the host's own is then good enough.
  mount -t proc proc "$root/proc" 2>/dev/null || mount --rbind /proc "$root/proc" || return 1
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev" || return 1
  for n in null zero full random urandom tty; do
    [[ -e "/dev/$n" ]] || continue
    : >"$root/dev/$n" && mount --bind "/dev/$n" "$root/dev/$n" || return 1
  done
  mkdir -p "$root/dev/shm" "$root/dev/pts" || return 1
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm" || return 1
  ln -s /proc/self/fd "$root/dev/fd" && ln -s fd/0 "$root/dev/stdin" &&
    ln -s fd/1 "$root/dev/stdout" && ln -s fd/2 "$root/dev/stderr"
}

# Runs as `unshare -m` child: bootstrap + apt-get into a fresh temp dir.
_swift_env_ns_build() {
  local tmp=$1 mirror=$2 v env=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true)
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -n "${!v:-}" ]] && env+=("$v=${!v}")
  done
  debootstrap --variant=minbase "$SWIFT_ENV_SUITE" "$tmp" "$mirror" || return 1
  _swift_env_ns_sysmounts "$tmp" || return 1
  cp -L /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true  # for apt only
  chroot "$tmp" /usr/bin/env -i "${env[@]}" apt-get update || return 1
  # shellcheck disable=SC2086
  chroot "$tmp" /usr/bin/env -i "${env[@]}" apt-get install -y --no-install-recommends \
    $SWIFT_ENV_PACKAGES || return 1
  chroot "$tmp" /usr/bin/env -i "${env[@]}" apt-get clean || return 1
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp/etc/resolv.conf"
  chroot "$tmp" /usr/bin/env -i "${env[@]}" LD_LIBRARY_PATH="$SWIFT_ENV_RUNTIME_LIB" swift --version
}

# rm -rf through a live bind mount would delete host files (and
# --one-file-system does not stop it: a bind of the same fs has the same
# st_dev).  Mounts only ever live in private namespaces, but check anyway.
_swift_env_rm_tree() {
  local d=$1
  [[ -e "$d" ]] || return 0
  if awk -v d="$d" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
    /proc/self/mountinfo; then
    _swift_env_die "refusing to delete $d: something is mounted under it"
  fi
  rm -rf --one-file-system "$d"
}

_swift_env_require_root() {
  [[ "$(id -u)" == 0 ]] ||
    _swift_env_die "no swift on PATH and chroot mode needs root (debootstrap, mount, chroot); run as root or install a Swift toolchain"
  unshare -m --propagation private true 2>/dev/null ||
    _swift_env_die "cannot create a mount namespace (unshare -m); the container needs CAP_SYS_ADMIN, or install a Swift toolchain"
}

# Idempotent: cheap when the toolchain is ready, builds it otherwise.
swift_env_ensure() (
  swift_env_ready && exit 0
  _swift_env_path
  [[ "$SWIFT_ENV_MODE" == chroot ]] || _swift_env_die "SWIFT_ENV_MODE=host but no swift on PATH"
  _swift_env_require_root
  export DEBIAN_FRONTEND=noninteractive
  cache=$(dirname "$SWIFT_ENV_CHROOT")
  mkdir -p "$cache" || _swift_env_die "cannot create cache dir $cache"

  # One builder at a time; the others wait and then find the marker.
  exec {lock}>"$SWIFT_ENV_CHROOT.lock" || _swift_env_die "cannot open lock in $cache"
  if ! flock -n "$lock"; then
    _swift_env_log "waiting for another process building $SWIFT_ENV_CHROOT"
    flock "$lock" || _swift_env_die "flock failed"
  fi
  swift_env_ready && exit 0

  free_kb=$(df -Pk "$cache" | awk 'NR == 2 { print $4 }')
  ((free_kb > 4 * 1024 * 1024)) ||
    _swift_env_die "need ~4 GB free in $cache for the Swift chroot, have $((free_kb / 1024)) MB"

  buildlog="$SWIFT_ENV_CHROOT.build.log"
  : >"$buildlog"
  if ! command -v debootstrap >/dev/null 2>&1; then
    _swift_env_log "installing debootstrap on the host"
    command -v apt-get >/dev/null 2>&1 ||
      _swift_env_die "debootstrap missing and no apt-get to install it; install debootstrap or Swift"
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap; } \
      >>"$buildlog" 2>&1 </dev/null; then
      tail -n 20 "$buildlog" >&2
      _swift_env_die "apt-get install debootstrap failed (log: $buildlog)"
    fi
  fi

  # Leftovers of interrupted builds (we hold the lock, so nobody owns them).
  for d in "$SWIFT_ENV_CHROOT".tmp.* "$SWIFT_ENV_CHROOT".stale.*; do _swift_env_rm_tree "$d"; done

  # Build beside the final location and rename into place only once complete,
  # so an interrupted build can never be mistaken for a usable one.
  tmp=$(mktemp -d "$SWIFT_ENV_CHROOT.tmp.XXXXXX") || _swift_env_die "mktemp failed in $cache"
  trap '_swift_env_rm_tree "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  chmod 0755 "$tmp"  # it becomes the chroot's /
  mirror=$(_swift_env_mirror)
  _swift_env_log "building Swift toolchain chroot ($SWIFT_ENV_SUITE, $mirror) at $SWIFT_ENV_CHROOT; one-off, ~2 min, ~2.6 GB; log: $buildlog"
  start=$SECONDS
  if ! unshare -m --propagation private bash "$SWIFT_ENV_SELF" __ns-build "$tmp" "$mirror" >>"$buildlog" 2>&1 </dev/null; then
    tail -n 40 "$buildlog" >&2
    _swift_env_die "building the Swift chroot failed (full log: $buildlog)"
  fi
  printf '%s\n' "$SWIFT_ENV_RECIPE" >"$tmp/$SWIFT_ENV_MARKER" || _swift_env_die "cannot write marker"
  if [[ -e "$SWIFT_ENV_CHROOT" ]]; then  # outdated recipe or unmarked
    mv -T "$SWIFT_ENV_CHROOT" "$SWIFT_ENV_CHROOT.stale.$$" || _swift_env_die "cannot move old chroot aside"
    _swift_env_rm_tree "$SWIFT_ENV_CHROOT.stale.$$"
  fi
  mv -T "$tmp" "$SWIFT_ENV_CHROOT" || _swift_env_die "cannot move chroot into place"
  trap - EXIT
  _swift_env_log "chroot ready in $((SECONDS - start)) s: $(tail -n 2 "$buildlog" | head -n 1)"
)

# Runs as `unshare -m` child: mount, then exec swift inside the chroot.
_swift_env_ns_run() {
  local root=$1 dir=$2 binds=() b v env
  shift 2
  IFS=: read -r -a binds <<<"$SWIFT_ENV_BINDS"
  # Mount points for binds must exist before / goes read-only; those under
  # /tmp are made again below, inside the fresh tmpfs.
  for b in "${binds[@]}"; do mkdir -p "$root$b" 2>/dev/null; done
  # Read-only / keeps the cached toolchain pristine whatever a build does;
  # scratch space is a per-run tmpfs.  SwiftPM 6.0 takes its ~/.swiftpm from
  # the passwd entry, not $HOME, so /root itself must be writable.
  mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" || return 1
  _swift_env_ns_sysmounts "$root" || return 1
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp" || return 1
  mount -t tmpfs -o mode=0700,nosuid,nodev tmpfs "$root/root" || return 1
  for b in "${binds[@]}"; do
    mkdir -p "$root$b" && mount --bind "$b" "$root$b" || return 1
  done
  # A clean environment: host locale, PATH or LD_LIBRARY_PATH entries point at
  # bookworm files that would break trixie's binaries or are simply absent.
  env=(PATH=/usr/local/bin:/usr/bin:/bin HOME=/root TMPDIR=/tmp LANG=C.UTF-8
    "LD_LIBRARY_PATH=${SWIFT_ENV_EXTRA_LD_LIBRARY_PATH:+$SWIFT_ENV_EXTRA_LD_LIBRARY_PATH:}$SWIFT_ENV_RUNTIME_LIB")
  for v in ${SWIFT_ENV_PASSTHRU:-}; do [[ -n "${!v+x}" ]] && env+=("$v=${!v}"); done
  # shellcheck disable=SC2016  # expanded by the shell inside the chroot
  exec chroot "$root" /usr/bin/env -i "${env[@]}" /bin/sh -c \
    'cd "$1" && shift && exec swift "$@"' swift-env "$dir" "$@"
}

# swift_run DIR ARGS... — `swift ARGS...` with DIR as the working directory.
swift_run() (
  [[ $# -ge 1 ]] || _swift_env_die "usage: swift_run DIR [SWIFT ARGS...]"
  dir=$(cd "$1" 2>/dev/null && pwd -P) || _swift_env_die "swift_run: no such directory: $1"
  shift
  if [[ "$SWIFT_ENV_MODE" == host ]]; then
    cd "$dir" || exit 1
    if [[ -n "${SWIFT_ENV_EXTRA_LD_LIBRARY_PATH:-}" ]]; then
      export LD_LIBRARY_PATH="$SWIFT_ENV_EXTRA_LD_LIBRARY_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    exec swift "$@"
  fi
  _swift_env_path
  swift_env_ensure || exit 1
  _swift_env_require_root
  visible() { local b; for b in "${binds[@]}"; do [[ "$1/" == "$b/"* ]] && return 0; done; return 1; }
  binds=("$SWIFT_ENV_REPO")
  IFS=: read -r -a extra <<<"${SWIFT_ENV_EXTRA_MOUNTS:-}"
  for b in "${extra[@]}"; do
    [[ -n "$b" ]] || continue
    b=$(cd "$b" 2>/dev/null && pwd -P) || _swift_env_die "SWIFT_ENV_EXTRA_MOUNTS: no such directory: $b"
    visible "$b" || binds+=("$b")
  done
  if [[ "${CARGO_TARGET_DIR:-}" == /* && -d "$CARGO_TARGET_DIR" ]]; then
    b=$(cd "$CARGO_TARGET_DIR" && pwd -P)
    visible "$b" || binds+=("$b")
  fi
  visible "$dir" ||
    _swift_env_die "swift_run: $dir is not visible in the chroot (only ${binds[*]}); add it to SWIFT_ENV_EXTRA_MOUNTS"
  # The namespace helper is a new process: hand it these explicitly, as the
  # caller may have set them without exporting.
  SWIFT_ENV_BINDS=$(IFS=:; echo "${binds[*]}")
  export SWIFT_ENV_BINDS SWIFT_ENV_EXTRA_LD_LIBRARY_PATH SWIFT_ENV_PASSTHRU
  for v in ${SWIFT_ENV_PASSTHRU:-}; do export "${v?}"; done
  exec unshare -m --propagation private bash "$SWIFT_ENV_SELF" __ns-run "$SWIFT_ENV_CHROOT" "$dir" "$@"
)

# swift_test_summary LOG — print `swift: N passed, N failed` for a captured
# `swift test` log (XCTest and Swift Testing output, both may be present).
# Counts tests, not assertions: XCTest's "Executed N tests, with M failures"
# counts failed assertions, and Swift Testing's final line counts issues, so
# per-test result lines are counted instead.  A test that started but never
# reported (the test process crashed) counts as failed; tests a crash kept
# from starting are not counted.  With `swift test --parallel`, XCTest prints
# only "[k/n] Testing Mod.Cls/test" for passing tests (and full output for
# failing ones), so there the XCTest total comes from those lines.  Exit
# status: 0 all passed, 1 some failed, 2 no results found (build failed?).
swift_test_summary() (
  [[ -r "${1:-}" ]] || _swift_env_die "usage: swift_test_summary LOGFILE"
  # Strip ANSI colour in case the log came from a terminal.
  sed -E 's/\x1b\[[0-9;]*m//g' "$1" | awk '
    # XCTest, Linux: Test Case '\''Cls.test'\'' passed (0.001 seconds)
    #         macOS: Test Case '\''-[Mod.Cls test]'\'' passed (0.001 seconds).
    /^Test Case .* started/                 { xs++; next }
    /^Test Case .* passed \(/               { xp++; next }
    /^Test Case .* failed \(/               { xf++; next }
    /^Test Case .* skipped \(/              { xk++; next }
    /^\[[0-9]+\/[0-9]+\] Testing /           { xn++; next }
    # Swift Testing: "<symbol> Test name() passed after 0.001 seconds."
    / Test run (started|with [0-9]+ tests?)/ { st = 1; next }
    /^[^ ]+ Test .* started\.$/              { ss++; next }
    /^[^ ]+ Test .* passed after [0-9.]+ seconds/ { sp++; next }
    /^[^ ]+ Test .* failed after [0-9.]+ seconds/ { sf++; next }
    /^[^ ]+ Test .* skipped/                 { sk++; next }
    END {
      xc = xs - xp - xf - xk; if (xc < 0) xc = 0
      if (xn > 0) { xp = xn - xf - xc - xk; if (xp < 0) xp = 0 }
      sc = ss - sp - sf - sk; if (sc < 0) sc = 0
      p = xp + sp; f = xf + xc + sf + sc
      printf "swift: %d passed, %d failed\n", p, f
      if (f > 0) exit 1
      if (xs + xn + ss == 0 && !st) exit 2
    }'
  rc=${PIPESTATUS[1]}
  ((rc == 2)) && _swift_env_log "no test results found in $1"
  exit "$rc"
)

# ---------------------------------------------------------------------------
# Self-check: a throwaway package shaped like the real one (C module map over
# a host-built .so, Swift wrapper, XCTest + Swift Testing tests), built and
# tested through swift_run, including a deliberately failing run to check that
# failures are counted and propagated.
_swift_env_selfcheck() (
  sc="$SWIFT_ENV_REPO/target/swift-selfcheck"  # target/ is git-ignored
  lib="$sc/lib" pkg="$sc/pkg"
  _swift_env_log "mode=$SWIFT_ENV_MODE repo=$SWIFT_ENV_REPO"
  t0=$SECONDS
  swift_env_ensure || exit 1
  t1=$SECONDS
  rm -rf "$sc" || _swift_env_die "cannot remove $sc"
  mkdir -p "$lib" "$pkg/Sources/foo" "$pkg/Sources/FooKit" "$pkg/Tests/FooKitTests" ||
    _swift_env_die "cannot create $sc"

  cat >"$sc/foo.c" <<'EOF'
#include "foo.h"
int foo_add(int a, int b) { return a + b; }
const char *foo_name(void) { return "foo"; }
EOF
  cat >"$pkg/Sources/foo/foo.h" <<'EOF'
#pragma once
int foo_add(int a, int b);
const char *foo_name(void);
EOF
  cat >"$pkg/Sources/foo/module.modulemap" <<'EOF'
module foo {
    header "foo.h"
    link "foo"
    export *
}
EOF
  # Built by the host compiler, as libdoorstep_ffi.so will be by cargo.
  gcc -shared -fPIC -Wall -Werror -I"$pkg/Sources/foo" -Wl,-soname,libfoo.so \
    -o "$lib/libfoo.so" "$sc/foo.c" || _swift_env_die "gcc failed to build libfoo.so"

  cat >"$pkg/Package.swift" <<'EOF'
// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "SelfCheck",
    products: [.library(name: "FooKit", targets: ["FooKit"])],
    targets: [
        .systemLibrary(name: "foo", path: "Sources/foo"),
        .target(name: "FooKit", dependencies: ["foo"]),
        .testTarget(name: "FooKitTests", dependencies: ["FooKit"]),
    ]
)
EOF
  cat >"$pkg/Sources/FooKit/FooKit.swift" <<'EOF'
import foo

public enum FooKit {
    public static func add(_ a: Int32, _ b: Int32) -> Int32 { foo_add(a, b) }
    public static var name: String { String(cString: foo_name()) }
    public static func addLater(_ a: Int32, _ b: Int32) async -> Int32 {
        await Task.detached { foo_add(a, b) }.value
    }
}
EOF
  cat >"$pkg/Tests/FooKitTests/FooKitTests.swift" <<'EOF'
import Foundation
import Testing
import XCTest
@testable import FooKit

// SWIFT_SELFCHECK_FAIL=1 makes one XCTest and one Swift Testing test fail.
let shouldFail = ProcessInfo.processInfo.environment["SWIFT_SELFCHECK_FAIL"] == "1"

final class FooKitTests: XCTestCase {
    func testAdd() {
        XCTAssertEqual(FooKit.add(2, 3), shouldFail ? 6 : 5)
        XCTAssertEqual(FooKit.name, "foo")
    }
    func testAsync() async throws {
        let sum = await FooKit.addLater(40, 2)
        XCTAssertEqual(sum, 42)
    }
}

@Test func swiftTestingAdd() {
    #expect(FooKit.add(1, 1) == (shouldFail ? 3 : 2))
}

@Test func swiftTestingAsync() async {
    #expect(await FooKit.addLater(1, 2) == 3)
}
EOF

  # -L for the link step; -rpath so the test binary finds the .so at run
  # time without LD_LIBRARY_PATH (the path is the same inside the chroot).
  flags=(-Xlinker -L"$lib" -Xlinker -rpath -Xlinker "$lib")
  log="$sc/test.log"
  swift_run "$pkg" build --build-tests "${flags[@]}" || _swift_env_die "swift build failed"
  swift_run "$pkg" test "${flags[@]}" >"$log" 2>&1
  rc=$?
  cat "$log"
  [[ $rc == 0 ]] || _swift_env_die "swift test failed (exit $rc)"
  got=$(swift_test_summary "$log")
  [[ "$got" == "swift: 4 passed, 0 failed" ]] || _swift_env_die "unexpected summary: $got"
  _swift_env_log "passing run: $got"

  SWIFT_SELFCHECK_FAIL=1 SWIFT_ENV_PASSTHRU=SWIFT_SELFCHECK_FAIL \
    swift_run "$pkg" test "${flags[@]}" >"$sc/fail.log" 2>&1
  rc=$?
  [[ $rc != 0 ]] || _swift_env_die "deliberately failing swift test exited 0"
  got=$(swift_test_summary "$sc/fail.log")
  [[ "$got" == "swift: 2 passed, 2 failed" ]] ||
    { cat "$sc/fail.log"; _swift_env_die "unexpected summary for failing run: $got"; }
  _swift_env_log "failing run (expected): $got, exit $rc"

  if [[ "$SWIFT_ENV_MODE" == chroot ]] && grep -q -F " $SWIFT_ENV_CHROOT" /proc/self/mountinfo; then
    _swift_env_die "mounts leaked onto the host under $SWIFT_ENV_CHROOT"
  fi
  _swift_env_log "self-check OK (toolchain ready in $((t1 - t0)) s, package build+tests $((SECONDS - t1)) s)"
)

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-selfcheck}" in
    selfcheck) _swift_env_selfcheck ;;
    run) shift; swift_run "$@" ;;
    summary) shift; swift_test_summary "$@" ;;
    ensure) swift_env_ensure ;;
    # Internal: executed inside a fresh mount namespace by the functions above.
    __ns-build) shift; _swift_env_ns_build "$@" ;;
    __ns-run) shift; _swift_env_ns_run "$@" ;;
    *) _swift_env_die "usage: $0 [selfcheck | ensure | run DIR ARGS... | summary LOG]" ;;
  esac
fi
