#!/usr/bin/env bash
# debian-packages.sh — install Debian packages a test suite needs, only when
# missing.
#
#   source tests/tools/debian-packages.sh
#   ensure_debian_packages zbar-tools || echo "could not install zbar-tools"
#   install_debian_packages python3-venv   # when the caller's own check failed
#
# Installed means dpkg says so. Installing needs root or passwordless sudo;
# the package lists are refreshed only when something must be installed, so
# warm runs stay offline and fast. Waits for (and retries around) another
# process holding the apt/dpkg lock. Output of apt goes to stderr.

_debian_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        # -n: never prompt; CI has no stdin.
        sudo -n "$@"
    fi
}

_debian_apt() {
    local try
    for try in 1 2 3 4 5; do
        _debian_as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -q -o DPkg::Lock::Timeout=300 "$@" </dev/null >&2 && return 0
        ((try < 5)) && { echo "debian-packages: apt-get $1 failed (try $try), retrying" >&2; sleep 10; }
    done
    return 1
}

# ensure_debian_packages PKG... — returns non-zero when a missing package
# could not be installed.
ensure_debian_packages() {
    local package missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null 2>&1 || { echo "debian-packages: no apt-get to install ${missing[*]}" >&2; return 1; }
    echo "debian-packages: installing ${missing[*]}" >&2
    install_debian_packages "${missing[@]}"
}

# install_debian_packages PKG... — refreshes the package lists and installs,
# for callers that decided by their own checks (a jar, a working venv) that
# something is missing.
install_debian_packages() {
    _debian_apt update && _debian_apt install -y --no-install-recommends "$@"
}
