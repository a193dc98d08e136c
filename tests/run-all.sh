#!/usr/bin/env bash
# The whole test suite: Rust, Kotlin and Swift. Installs what is missing
# (idempotently, caching outside the repo), runs each suite, and ends with
# exactly one line per suite:
#   rust: N passed, N failed
#   kotlin: N passed, N failed
#   swift: N passed, N failed
# Exits non-zero if any suite failed or could not run; a suite that cannot
# run is counted as one failure, never skipped.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

summaries=()
overall=0
for suite in rust kotlin swift; do
    echo "==> $suite"
    log="$(mktemp)"
    bash "$here/$suite.sh" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    line="$(grep -E "^$suite: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)"
    rm -f "$log"
    if [[ -z "$line" ]]; then
        echo "$suite: the suite could not run (exit $status); see its output above" >&2
        line="$suite: 0 passed, 1 failed"
        status=1
    fi
    (( status != 0 )) && overall=1
    summaries+=("$line")
done

echo
printf '%s\n' "${summaries[@]}"
exit "$overall"
