#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything vmm needs from Debian's registry and crates.io.
# Idempotent: each step checks first and prints what it does only when it acts.
set -euo pipefail

say() { printf '[deps] %s\n' "$*"; }
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# 1. apt suites: bookworm-backports (QEMU 10, clang-19) and trixie-backports
#    (linux-source-7.3). Both are NotAutomatic, so nothing upgrades by itself;
#    trixie main stays off.
SRC=/etc/apt/sources.list.d/vmm-backports.sources
if [ ! -f "$SRC" ]; then
    say "adding bookworm-backports and trixie-backports apt suites"
    $SUDO tee "$SRC" >/dev/null <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    $SUDO apt-get update -qq
fi

PKGS_MAIN="clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev libssl-dev
 cpio xz-utils lz4 bochs bochsbios vgabios bochs-term busybox-static isolinux syslinux-common
 genisoimage python3 gcc make"
PKGS_BPO="qemu-system-x86"
missing=
for p in $PKGS_MAIN $PKGS_BPO; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $PKGS_MAIN >/dev/null
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports $PKGS_BPO >/dev/null
fi

# 2. Rust pieces the kernel build (rust-src) and the lint gate (clippy, rustfmt) need.
for comp in rust-src clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
        say "rustup component add $comp"
        rustup component add "$comp"
    fi
done
if ! command -v bindgen >/dev/null || ! bindgen --version | grep -q '0\.71\.1'; then
    say "cargo install bindgen-cli 0.71.1 (about 2 minutes)"
    cargo install --locked --quiet bindgen-cli@0.71.1
fi

# 3. The test kernel's source, fetched with apt into the cache (outside the tree).
CACHE=${VMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm}
mkdir -p "$CACHE/src"
if ! ls "$CACHE"/src/linux-source-7.3_*.deb >/dev/null 2>&1; then
    say "apt-get download linux-source-7.3 from trixie-backports (about 167 MB)"
    (cd "$CACHE/src" && apt-get download -qq -t trixie-backports linux-source-7.3)
fi
# Host-side crates for the workspace (bitflags, static_assertions, ...).
if [ -f Cargo.lock ]; then
    cargo fetch --quiet --locked 2>/dev/null || cargo fetch --quiet
fi
exit 0
