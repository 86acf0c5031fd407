#!/usr/bin/env bash
# Build the peer checkpointers of `incr bench --compare` from source, outside the repository:
#   benchmarks/peers/build.sh [criu|dmtcp|all]
# installs CRIU 4.2 into $PEERS/criu-4.2 and DMTCP 4.2.0 into $PEERS/dmtcp-4.2.0 (bin/ under each), where
#   PEERS = ${INCR_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/incr/peers}
# Sources: the git directory (bare or not) named by INCR_PEER_SRC_CRIU / INCR_PEER_SRC_DMTCP, at the tag;
# else a shallow clone of the tag from GitHub.  A peer already built is left alone.  The build output of
# each goes to $PEERS/NAME-VERSION.build.log; on failure one line says which step failed and where the log is.
# Debian build dependencies are installed with apt-get when missing (root only; else the line names them).
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail

PEERS=${INCR_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/incr/peers}
JOBS=${INCR_PEER_JOBS:-2}

CRIU_VERSION=4.2
CRIU_TAG=v4.2
CRIU_URL=https://github.com/checkpoint-restore/criu.git
# What `make criu` needs (CRIU's contrib/dependencies/apt-packages.sh less the tests', docs' and plugins' parts).
CRIU_DEBS=(build-essential pkg-config python3 python3-protobuf libprotobuf-c-dev protobuf-c-compiler
           libprotobuf-dev protobuf-compiler libnl-3-dev libnl-route-3-dev libnet1-dev libcap-dev libbsd-dev
           libaio-dev libgnutls28-dev uuid-dev)

DMTCP_VERSION=4.2.0
DMTCP_TAG=v4.2.0
DMTCP_URL=https://github.com/dmtcp/dmtcp.git
DMTCP_DEBS=(build-essential gcc g++ make)

say() { printf 'peers: %s\n' "$*"; }
fail() { printf 'peers: %s\n' "$*" >&2; exit 1; }

install_debs() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || fail "missing Debian packages (install them as root): ${missing[*]}"
    say "apt-get install ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"; } >/dev/null || fail "apt-get install ${missing[*]} failed"
}

# Unpack TAG of the repository into DEST: from the local git dir SRC when given, else a shallow clone of URL.
unpack() {
    local src=$1 url=$2 tag=$3 dest=$4
    rm -rf "$dest" && mkdir -p "$dest"
    if [ -n "$src" ]; then
        git --git-dir="$(git -C "$src" rev-parse --absolute-git-dir 2>/dev/null || echo "$src")" \
            archive --format=tar "$tag" | tar -x -C "$dest"
    else
        git clone -q --depth 1 --branch "$tag" "$url" "$dest"
    fi
}

# run LOG STEP CMD...: CMD's output to LOG; on failure one line with the step, the log and its last line.
run() {
    local log=$1 step=$2
    shift 2
    printf '\n== %s: %s\n' "$step" "$*" >>"$log"
    "$@" >>"$log" 2>&1 || fail "$step failed: see $log (last line: $(tail -n 1 "$log"))"
}

build_criu() {
    local dest=$PEERS/criu-$CRIU_VERSION work=$PEERS/build/criu-$CRIU_VERSION log=$PEERS/criu-$CRIU_VERSION.build.log
    if [ -x "$dest/bin/criu" ] && "$dest/bin/criu" --version >/dev/null 2>&1; then
        say "criu $CRIU_VERSION already built: $dest/bin/criu"
        return 0
    fi
    install_debs "${CRIU_DEBS[@]}"
    local start=$SECONDS
    mkdir -p "$PEERS" && : >"$log"
    say "building criu $CRIU_VERSION (log: $log)"
    run "$log" "criu: fetching $CRIU_TAG" unpack "${INCR_PEER_SRC_CRIU:-}" "$CRIU_URL" "$CRIU_TAG" "$work"
    # `make criu`, not `make`: the default target also builds crit (pip) and the GPU plugins.
    run "$log" "criu: make criu" make -C "$work" -j"$JOBS" criu
    run "$log" "criu: make install-criu" make -C "$work" install-criu PREFIX="$dest" SBINDIR="$dest/bin" \
        BINDIR="$dest/bin"
    "$dest/bin/criu" --version >/dev/null 2>&1 || fail "criu: the installed $dest/bin/criu does not run: see $log"
    rm -rf "$work" && rmdir "$PEERS/build" 2>/dev/null || true
    say "criu $CRIU_VERSION built in $((SECONDS - start)) s: $dest/bin/criu"
}

build_dmtcp() {
    local dest=$PEERS/dmtcp-$DMTCP_VERSION work=$PEERS/build/dmtcp-$DMTCP_VERSION
    local log=$PEERS/dmtcp-$DMTCP_VERSION.build.log
    if [ -x "$dest/bin/dmtcp_launch" ] && "$dest/bin/dmtcp_launch" --version >/dev/null 2>&1; then
        say "dmtcp $DMTCP_VERSION already built: $dest/bin"
        return 0
    fi
    install_debs "${DMTCP_DEBS[@]}"
    local start=$SECONDS
    mkdir -p "$PEERS" && : >"$log"
    say "building dmtcp $DMTCP_VERSION (log: $log)"
    run "$log" "dmtcp: fetching $DMTCP_TAG" unpack "${INCR_PEER_SRC_DMTCP:-}" "$DMTCP_URL" "$DMTCP_TAG" "$work"
    (cd "$work" && run "$log" "dmtcp: configure" ./configure --prefix="$dest")
    run "$log" "dmtcp: make" make -C "$work" -j"$JOBS"
    run "$log" "dmtcp: make install" make -C "$work" install
    "$dest/bin/dmtcp_launch" --version >/dev/null 2>&1 || fail "dmtcp: the installed $dest/bin/dmtcp_launch does not run: see $log"
    rm -rf "$work" && rmdir "$PEERS/build" 2>/dev/null || true
    say "dmtcp $DMTCP_VERSION built in $((SECONDS - start)) s: $dest/bin"
}

case "${1:-all}" in
    criu) build_criu ;;
    dmtcp) build_dmtcp ;;
    all) build_criu && build_dmtcp ;;
    *) fail "usage: $0 [criu|dmtcp|all]" ;;
esac
