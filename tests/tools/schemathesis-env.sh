#!/usr/bin/env bash
# Schemathesis (property-based testing of an OpenAPI contract against a live
# server): install-if-missing + environment.
#
#   source tests/tools/schemathesis-env.sh   # installs what is missing, exports SCHEMATHESIS
#   bash tests/tools/schemathesis-env.sh     # same, then prints the version as a self-check
#
# Schemathesis comes from PyPI into a private virtualenv under the cache root
# (outside the repo, so fresh clones and CI reuse it); Debian's python3-venv
# is installed only when `python3 -m venv` cannot create a working venv.
# Every step checks first, so sourcing this on a warm machine touches no
# network and costs well under a second.
#
# Exports:
#   SCHEMATHESIS   the `st` executable (used by tests/sim/tests/server_contract.rs)
#
# Knobs (environment):
#   DOORSTEP_CACHE         cache root, default $HOME/.cache/doorstep
#   SCHEMATHESIS_VERSION   exact version to install, default below; a cached
#                          venv of another version is rebuilt

# Sourced or executed?  Sourcing must never `exit` the caller's shell nor change
# its shell options, so everything lives in functions that `return` a status.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    _stenv_sourced=0
else
    _stenv_sourced=1
fi

# install_debian_packages: the one apt runner (root or sudo -n, lock waits, retries).
# shellcheck source=debian-packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

# Pinned: the contract test relies on this version's CLI flags (--checks,
# --max-examples, --generation-database) and on its config file's
# dictionaries, and CI must generate the same requests as a developer.
_STENV_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
_STENV_REQUIREMENT="schemathesis==$_STENV_VERSION"

_stenv_die() {
    echo "schemathesis-env: ERROR: $*" >&2
    return 1
}

_stenv_log() {
    echo "schemathesis-env: $*" >&2
}

# Makes a venv with pip at $1.  Debian's python3 without python3-venv fails
# here ("ensurepip is not available") or leaves a venv without pip, and the
# only sure test is to try; so try, and on failure install python3-venv once
# and try again.
_stenv_make_venv() { # VENV
    rm -rf "$1"
    command -v python3 >/dev/null 2>&1 && python3 -m venv "$1" >&2 && [[ -x "$1/bin/pip" ]] && return 0
    rm -rf "$1"
    _stenv_install_python_venv || return 1
    python3 -m venv "$1" >&2 && [[ -x "$1/bin/pip" ]] && return 0
    rm -rf "$1"
    _stenv_die "python3 -m venv $1 fails even with python3-venv installed"
}

_stenv_install_python_venv() {
    command -v apt-get >/dev/null 2>&1 ||
        { _stenv_die "python3 cannot make a venv and apt-get is not available to install python3-venv"; return 1; }
    [[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null ||
        { _stenv_die "python3-venv is missing; need root or passwordless sudo to install it"; return 1; }
    # python3-venv depends on the venv package of Debian's exact Python
    # version (python3.11-venv, ...), which is the one that matters.
    _stenv_log "installing Debian packages: python3 python3-venv"
    if ! install_debian_packages python3 python3-venv; then
        _stenv_die "apt-get install python3 python3-venv failed"
        return 1
    fi
}

_stenv_installed() { # VENV
    [[ -x "$1/bin/st" && -x "$1/bin/python" ]] &&
        "$1/bin/python" -c 'import sys, importlib.metadata as m, schemathesis
sys.exit(m.version("schemathesis") != sys.argv[1])' "$_STENV_VERSION" >/dev/null 2>&1
}

_stenv_install_schemathesis() {
    local root="${DOORSTEP_CACHE:-$HOME/.cache/doorstep}"
    local venv="$root/schemathesis-venv"
    if _stenv_installed "$venv"; then
        SCHEMATHESIS="$venv/bin/st"
        return 0
    fi
    mkdir -p "$root" || { _stenv_die "cannot create $root"; return 1; }
    _stenv_log "installing $_STENV_REQUIREMENT from PyPI into $venv"

    # A venv's scripts embed its own path, so it cannot be built elsewhere and
    # renamed into place; instead installers are serialised by a lock, and a
    # venv that failed half-way is removed (or fails _stenv_installed and is
    # rebuilt next time), so a partial install never counts as installed.
    local lock="$root/.schemathesis-venv.lock"
    (
        # Serialise installers: the loser of the race finds the venv ready.
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$lock" && flock -w 900 9 || { _stenv_die "timed out waiting for $lock"; exit 1; }
        fi
        _stenv_installed "$venv" && exit 0
        _stenv_make_venv "$venv" || exit 1
        if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-input "$_STENV_REQUIREMENT" </dev/null >&2; then
            rm -rf "$venv"
            _stenv_die "pip install $_STENV_REQUIREMENT failed"
            exit 1
        fi
        _stenv_installed "$venv" || { rm -rf "$venv"; _stenv_die "schemathesis installed but $venv/bin/st does not run"; exit 1; }
    ) || return 1
    SCHEMATHESIS="$venv/bin/st"
}

_stenv_main() {
    _stenv_install_schemathesis || return 1
    export SCHEMATHESIS
}

if ((_stenv_sourced)); then
    _stenv_main || return 1
else
    set -uo pipefail
    _stenv_main || exit 1
    echo "SCHEMATHESIS=$SCHEMATHESIS"
    "$SCHEMATHESIS" --version
fi
