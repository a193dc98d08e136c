#!/usr/bin/env bash
# Starts and stops the reference dispatch server for a shell's test suite.
# Meant to be sourced; defines:
#   start_dispatch LOGDIR SERVER_BIN  starts `SERVER_BIN serve` on a free
#       loopback port, waits (up to 30 s) for its `listening on http://ADDR`
#       line and exports DOORSTEP_DISPATCH_URL; fails clearly if the server
#       dies or never says it is listening;
#   stop_dispatch  stops it (TERM, then KILL after 5 s); safe to call twice.

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

start_dispatch() { # LOGDIR SERVER_BIN
    local out="$1/dispatch.out" err="$1/dispatch.err" line="" waited=0 me
    me="$(basename "$0")"
    : >"$out"
    "$2" serve --addr 127.0.0.1:0 >"$out" 2>"$err" </dev/null &
    dispatch_pid=$!
    # Up to 30 s for the first whole line; give up at once if the server died.
    while (($(wc -l <"$out") < 1)); do
        if ! kill -0 "$dispatch_pid" 2>/dev/null; then
            echo "$me: ERROR: the dispatch server exited before listening:" >&2
            cat "$err" >&2
            return 1
        fi
        if ((waited >= 300)); then
            echo "$me: ERROR: the dispatch server did not start within 30 s" >&2
            cat "$err" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    line="$(head -n 1 "$out")"
    if [[ "$line" != "listening on http://"* ]]; then
        echo "$me: ERROR: unexpected first line from the dispatch server: $line" >&2
        return 1
    fi
    export DOORSTEP_DISPATCH_URL="${line#listening on }"
    echo "$me: dispatch server at $DOORSTEP_DISPATCH_URL" >&2
}
