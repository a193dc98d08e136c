#!/usr/bin/env bash
# Kotlin/JVM test toolchain: install-if-missing + environment for compiling and
# running Kotlin JUnit 5 tests (kotlin.test, kotlinx.coroutines, JNA).
#
#   source tests/tools/kotlin-env.sh      # installs what is missing, exports vars,
#                                         # defines compile_kotlin / run_junit
#   bash tests/tools/kotlin-env.sh        # same, then an end-to-end self-check
#
# Why these sources: the only registries reachable from our machines (and CI)
# are Debian apt, npm, PyPI and crates.io -- no Maven Central, no Gradle, no
# JetBrains downloads.  So JNA and JUnit 5 come from Debian, and the Kotlin JVM
# compiler (which also bundles kotlin-test and kotlinx-coroutines) comes from
# the npm package `kotlin-compiler`.
#
# Every step checks first and only installs what is absent, so sourcing this on
# a warm machine costs well under a second and touches no network.
#
# Typical use (compile everything in ONE compile_kotlin call -- each compiler
# start costs seconds):
#   compile_kotlin "$out" "$KOTLIN_TEST_CLASSPATH" bindings/*.kt tests/*.kt
#   JUNIT_JAVA_OPTS="-Djna.library.path=$cdylib_dir" \
#       run_junit "$KOTLIN_TEST_CLASSPATH" "$out"   # last line: kotlin: N passed, N failed
#
# Knobs (environment):
#   DOORSTEP_CACHE      cache root, default $HOME/.cache/doorstep.  The compiler
#                       lives outside the repo so fresh clones (CI) reuse it.
#   KOTLIN_JAVA_OPTS    JVM options for the compiler (default: see KOTLINC_JAVA_OPTS).
#   KOTLINC_FLAGS       kotlinc flags for compile_kotlin (default -nowarn).
#   KOTLIN_CDS=0        do not use/create the compiler's class-data archive.
#   JUNIT_JAVA_OPTS     JVM options for the tests run by run_junit.

# Sourced or executed?  Sourcing must never `exit` the caller's shell, and must
# not change its shell options, so everything below lives in functions that
# `return` a status.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    _kenv_sourced=0
else
    _kenv_sourced=1
fi

# install_debian_packages: the one apt runner (root or sudo -n, lock waits, retries).
# shellcheck source=debian-packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

KOTLIN_VERSION=2.4.20
# Debian's JUnit 5 console launcher and JNA install to this fixed, policy-defined
# location; it is not a path of this particular machine.
_KENV_JAVA_SHARE=/usr/share/java

_kenv_die() {
    echo "kotlin-env: ERROR: $*" >&2
    return 1
}

_kenv_log() {
    echo "kotlin-env: $*" >&2
}

# Installed means dpkg says so AND the file we need is there: a half-removed
# package (status "rc", or a deleted jar) must trigger a reinstall.
_kenv_deb_ok() { # PKG FILE
    [[ -e "$2" ]] &&
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

_kenv_install_debs() {
    local missing=()
    _kenv_deb_ok libjna-java "$_KENV_JAVA_SHARE/jna.jar" || missing+=(libjna-java)
    _kenv_deb_ok junit5 "$_KENV_JAVA_SHARE/junit-platform-console-standalone.jar" || missing+=(junit5)
    # Our machine kind ships Java and Node, but a fresh machine of another kind
    # may not; pull them from Debian only then (kotlinc needs just a JRE).
    command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
    command -v npm >/dev/null 2>&1 || missing+=(npm)

    ((${#missing[@]} == 0)) && return 0

    command -v apt-get >/dev/null 2>&1 ||
        { _kenv_die "missing ${missing[*]} and apt-get is not available"; return 1; }
    # Fail now, not after five apt retries, when we cannot become root.
    [[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null ||
        { _kenv_die "missing ${missing[*]}; need root or passwordless sudo to install"; return 1; }
    _kenv_log "installing Debian packages: ${missing[*]}"
    # The package lists on a fresh machine are empty or stale, so refresh once --
    # but only on this path, keeping warm runs offline and fast.
    if ! install_debian_packages "${missing[@]}"; then
        _kenv_die "apt-get install ${missing[*]} failed"
        return 1
    fi
}

_kenv_install_kotlinc() {
    local root="${DOORSTEP_CACHE:-$HOME/.cache/doorstep}"
    local dir="$root/kotlin-$KOTLIN_VERSION"
    local pkg="node_modules/kotlin-compiler"

    # Both the launcher and the stdlib must be there: a partially extracted
    # tree would otherwise be taken as installed forever.
    if [[ -x "$dir/$pkg/bin/kotlinc" && -f "$dir/$pkg/lib/kotlin-stdlib.jar" ]]; then
        KOTLIN_HOME="$dir/$pkg"
        return 0
    fi

    command -v npm >/dev/null 2>&1 || { _kenv_die "npm not found"; return 1; }
    mkdir -p "$root" || { _kenv_die "cannot create $root"; return 1; }
    _kenv_log "installing kotlin-compiler@$KOTLIN_VERSION from npm into $dir"

    # Install into a private staging dir and rename into place, so an
    # interrupted download never leaves a tree that looks complete, and two
    # concurrent first runs cannot corrupt each other.
    local stage
    stage=$(mktemp -d "$root/.kotlin-$KOTLIN_VERSION.XXXXXX") ||
        { _kenv_die "mktemp in $root failed"; return 1; }
    if ! npm install --prefix "$stage" --no-audit --no-fund --no-save \
        --no-package-lock --loglevel=error "kotlin-compiler@$KOTLIN_VERSION" \
        </dev/null >&2; then
        rm -rf "$stage"
        _kenv_die "npm install kotlin-compiler@$KOTLIN_VERSION failed"
        return 1
    fi
    # npm tarballs do not always keep the exec bit on shell launchers.
    chmod +x "$stage/$pkg/bin/"* 2>/dev/null || true
    # mktemp -d made it private; the compiler is not a secret.
    chmod 755 "$stage"
    if [[ -x "$dir/$pkg/bin/kotlinc" && -f "$dir/$pkg/lib/kotlin-stdlib.jar" ]]; then
        # A concurrent installer finished first and may already be compiling
        # from its copy: keep it, drop ours.
        rm -rf "$stage"
    else
        rm -rf "$dir"
        mv -T "$stage" "$dir" 2>/dev/null || rm -rf "$stage"
    fi
    [[ -x "$dir/$pkg/bin/kotlinc" && -f "$dir/$pkg/lib/kotlin-stdlib.jar" ]] ||
        { _kenv_die "kotlin-compiler installed but $dir/$pkg/bin/kotlinc is missing"; return 1; }
    KOTLIN_HOME="$dir/$pkg"
}

_kenv_need_file() { # VAR PATH
    [[ -f "$2" ]] || { _kenv_die "$1 not found at $2"; return 1; }
}

_kenv_export() {
    export KOTLIN_HOME
    export KOTLINC="$KOTLIN_HOME/bin/kotlinc"
    export KOTLIN_LIB="$KOTLIN_HOME/lib"
    export JNA_JAR="$_KENV_JAVA_SHARE/jna.jar"
    export JUNIT_CONSOLE_JAR="$_KENV_JAVA_SHARE/junit-platform-console-standalone.jar"
    export COROUTINES_JAR="$KOTLIN_LIB/kotlinx-coroutines-core-jvm.jar"

    _kenv_need_file KOTLINC "$KOTLINC" &&
        _kenv_need_file JNA_JAR "$JNA_JAR" &&
        _kenv_need_file JUNIT_CONSOLE_JAR "$JUNIT_CONSOLE_JAR" &&
        _kenv_need_file COROUTINES_JAR "$COROUTINES_JAR" &&
        _kenv_need_file kotlin-stdlib "$KOTLIN_LIB/kotlin-stdlib.jar" || return 1

    local j tj=()
    for j in kotlin-test.jar kotlin-test-junit5.jar; do
        [[ -f "$KOTLIN_LIB/$j" ]] && tj+=("$KOTLIN_LIB/$j")
    done
    ((${#tj[@]})) || { _kenv_die "no kotlin-test jars in $KOTLIN_LIB"; return 1; }
    export KOTLIN_TEST_JARS
    KOTLIN_TEST_JARS=$(IFS=:; echo "${tj[*]}")

    # One classpath for both compiling and running tests.  The JUnit Jupiter
    # API (+ opentest4j / apiguardian, which its signatures reference) is
    # listed separately rather than via the console-standalone jar: putting
    # the standalone jar on the *test* classpath would load JUnit twice.
    # kotlin-stdlib is explicit because kotlinc adds it only at compile time.
    local jars=(
        "$KOTLIN_LIB/kotlin-stdlib.jar"
        "${tj[@]}"
        "$COROUTINES_JAR"
        "$JNA_JAR"
    )
    for j in junit-jupiter-api.jar junit-platform-commons.jar opentest4j.jar apiguardian-api.jar; do
        [[ -f "$_KENV_JAVA_SHARE/$j" ]] && jars+=("$_KENV_JAVA_SHARE/$j")
    done
    export KOTLIN_TEST_CLASSPATH
    KOTLIN_TEST_CLASSPATH=$(IFS=:; echo "${jars[*]}")

    # JVM options for the compiler.  C1-only JIT (TieredStopAtLevel=1) halves
    # kotlinc's CPU time on 2 cores: a single-shot compile never lives long
    # enough to profit from C2, which otherwise competes for the same cores.
    export KOTLINC_JAVA_OPTS="${KOTLIN_JAVA_OPTS:--Xmx1g -Xss4m -XX:+UseParallelGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m}"

    # AppCDS archive of the compiler's classes: cuts ~2-3 s of JVM start-up per
    # compile.  Keyed by JDK build and compiler location, because HotSpot
    # silently ignores an archive that does not match -- it would just stop
    # helping rather than break.
    local javabin key
    javabin=$(readlink -f "$(command -v java)")
    key=$(stat -c '%s-%Y' "${javabin%/bin/java}/lib/server/libjvm.so" 2>/dev/null || true)
    key=$(printf '%s|%s|%s' "$javabin" "$key" "$KOTLIN_HOME" | md5sum | cut -c1-12)
    export KOTLINC_CDS_ARCHIVE="${KOTLIN_HOME%/node_modules/*}/kotlinc-cds-$key.jsa"
}

# compile_kotlin OUTDIR CLASSPATH SRC...
# Compile Kotlin sources to class files in OUTDIR.  CLASSPATH is usually
# "$KOTLIN_TEST_CLASSPATH" (plus any extra jars/dirs the sources need).
# Compile all sources in ONE call: each compiler start costs seconds.
# Extra compiler flags: KOTLINC_FLAGS (default -nowarn: generated bindings
# are noisy).  KOTLIN_CDS=0 disables the class-data-sharing archive.
compile_kotlin() {
    local out="$1" cp="$2" rc cds=() dump=""
    shift 2
    (($#)) || { _kenv_die "compile_kotlin: no sources given"; return 1; }
    mkdir -p "$out" || return 1
    if [[ "${KOTLIN_CDS:-1}" != 0 ]]; then
        if [[ -s "$KOTLINC_CDS_ARCHIVE" ]]; then
            cds=("-XX:SharedArchiveFile=$KOTLINC_CDS_ARCHIVE")
        else
            # First compile on this machine records the archive (costs a few
            # extra seconds once).  Private name + rename: concurrent
            # compiles must never read a half-written archive.
            dump="$KOTLINC_CDS_ARCHIVE.$$.tmp"
            cds=("-XX:ArchiveClassesAtExit=$dump")
        fi
    fi
    # The compiler is started directly rather than through bin/kotlinc: the
    # launcher's preloader uses its own class loader, which CDS cannot
    # archive.  kotlin-compiler.jar's manifest pulls in stdlib/reflect itself.
    # -Xlog:cds*=off: CDS warnings (old class files, archive mismatch) go to
    # stdout and are harmless.
    # `|| rc=$?` rather than `; rc=$?`: a caller running under `set -e` must
    # still get the temp archive cleaned up and a proper return code.
    rc=0
    # shellcheck disable=SC2086 # option strings are meant to split
    java $KOTLINC_JAVA_OPTS -Xlog:'cds*=off' "${cds[@]}" \
        -cp "$KOTLIN_LIB/kotlin-compiler.jar" org.jetbrains.kotlin.cli.jvm.K2JVMCompiler \
        ${KOTLINC_FLAGS--nowarn} -cp "$cp" -d "$out" "$@" || rc=$?
    if [[ -n "$dump" ]]; then
        if ((rc == 0)) && [[ -s "$dump" ]]; then
            mv -f "$dump" "$KOTLINC_CDS_ARCHIVE"
        else
            rm -f "$dump"
        fi
    fi
    return $rc
}

# The launcher's summary box has lines like "[         3 tests successful      ]".
_kenv_count() { # LOG LABEL
    sed -n "s/^\[ *\([0-9][0-9]*\) $2 *\]\$/\1/p" "$1" | tail -n1
}

# run_junit CLASSPATH CLASSDIR
# Run every JUnit 5 test class found in CLASSDIR with the console launcher,
# stream its output, then print exactly one line "kotlin: N passed, N failed".
# Returns non-zero if any test failed, none ran, or the launcher broke.
# JVM options for the tests (e.g. -Djna.library.path=DIR holding the Rust
# cdylib) go in JUNIT_JAVA_OPTS.
run_junit() {
    local cp="$1" classdir="$2" log rc passed failed cfailed
    [[ -d "$classdir" ]] || { _kenv_die "run_junit: no class dir $classdir"; return 1; }
    log=$(mktemp "${TMPDIR:-/tmp}/junit-out.XXXXXX") || return 1
    # Debian's junit5 is 1.9.x: no `execute` subcommand (added in 1.10), so
    # options go directly after -jar, and -cp would be ignored by `java -jar`:
    # the test classpath must go in --class-path.  --scan-class-path=DIR limits
    # discovery to our classes instead of every jar on the classpath; only
    # the Jupiter engine runs (Debian's jar also wires in vintage and suite).
    # The exit code travels through a file, not PIPESTATUS: with a caller's
    # `set -e -o pipefail` a failing pipeline would abort the shell before
    # the summary line is printed.
    # shellcheck disable=SC2086 # option string is meant to split
    {
        rc=0
        java ${JUNIT_JAVA_OPTS:-} -jar "$JUNIT_CONSOLE_JAR" \
            --disable-banner --disable-ansi-colors --details=tree \
            --include-engine=junit-jupiter \
            --class-path "$cp:$classdir" --scan-class-path="$classdir" \
            </dev/null 2>&1 || rc=$?
        echo "$rc" >"$log.rc"
    } | tee "$log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    passed=$(_kenv_count "$log" 'tests successful')
    failed=$(_kenv_count "$log" 'tests failed')
    # A class whose init/@BeforeAll throws (e.g. native library not found)
    # fails as a container and its tests are never started, so they would
    # not show up as failed tests: count such containers as failures.
    cfailed=$(_kenv_count "$log" 'containers failed')
    rm -f "$log" "$log.rc"
    if [[ -z "$passed" || -z "$failed" ]]; then
        # No summary at all: the launcher itself failed (bad arguments, JVM
        # error).  Report a failure rather than a silent zero.
        echo "kotlin: 0 passed, 1 failed"
        return 1
    fi
    failed=$((failed + ${cfailed:-0}))
    echo "kotlin: $passed passed, $failed failed"
    ((rc == 0 && failed == 0 && passed > 0))
}

_kenv_selfcheck() {
    local tmp rc t0 t1 t2
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/kotlin-env-check.XXXXXX") || return 1
    # shellcheck disable=SC2064 # expand $tmp now: it is local
    trap "rm -rf '$tmp'" EXIT
    cat >"$tmp/SelfCheckTest.kt" <<'EOF'
import com.sun.jna.Native
import com.sun.jna.Library
import kotlinx.coroutines.flow.*
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

interface CLib : Library { fun getpid(): Int }

class SelfCheckTest {
    @Test fun flowCollects() = runBlocking {
        val xs = flowOf(1, 2, 3).map { it * 2 }.toList()
        assertEquals(listOf(2, 4, 6), xs)
    }

    @Test fun suspendWorks() = runBlocking {
        val sum = (1..4).asFlow().fold(0) { a, b -> a + b }
        assertEquals(10, sum)
    }

    // UniFFI's Kotlin bindings call into native code through JNA, so prove
    // JNA can load its native dispatcher and a C library here.
    @Test fun jnaLoadsLibc() {
        val c = Native.load("c", CLib::class.java)
        assertTrue(c.getpid() > 0)
    }
}
EOF
    echo "KOTLINC=$KOTLINC"
    echo "KOTLIN_LIB=$KOTLIN_LIB"
    echo "JNA_JAR=$JNA_JAR"
    echo "JUNIT_CONSOLE_JAR=$JUNIT_CONSOLE_JAR"
    echo "COROUTINES_JAR=$COROUTINES_JAR"
    echo "KOTLIN_TEST_JARS=$KOTLIN_TEST_JARS"
    echo "KOTLIN_TEST_CLASSPATH=$KOTLIN_TEST_CLASSPATH"
    t0=$(date +%s%N)
    compile_kotlin "$tmp/classes" "$KOTLIN_TEST_CLASSPATH" "$tmp/SelfCheckTest.kt" ||
        { _kenv_die "self-check: compile failed"; return 1; }
    t1=$(date +%s%N)
    run_junit "$KOTLIN_TEST_CLASSPATH" "$tmp/classes"
    rc=$?
    t2=$(date +%s%N)
    echo "kotlin-env: compile $(((t1 - t0) / 1000000)) ms, test run $(((t2 - t1) / 1000000)) ms" >&2
    return $rc
}

_kenv_main() {
    _kenv_install_debs && _kenv_install_kotlinc && _kenv_export
}

if ((_kenv_sourced)); then
    _kenv_main || return 1
else
    set -uo pipefail
    _kenv_main || exit 1
    _kenv_selfcheck
    exit $?
fi
