#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) and cache the Rust-enabled test kernel outside the tree.
#   testbed/kernel.sh path   print the cache directory (KDIR) for the current key
#   testbed/kernel.sh build  build it if it is not cached yet, then print KDIR
# The key covers the linux-source package, the config fragment, this script
# and the toolchain, so changing any of them builds a fresh tree.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm}
LLVM_SUFFIX=-19
say() { printf '[kernel] %s\n' "$*" >&2; }

deb=$(ls "$CACHE"/src/linux-source-7.3_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$deb" ]; then
    say "no linux-source-7.3 package in $CACHE/src: run 'make deps' first"
    exit 1
fi
key=$( { basename "$deb"; cat "$here/kernel.config" "$here/kernel.sh";
         rustc --version; clang$LLVM_SUFFIX --version | head -n 1; } | sha256sum | cut -c1-12)
debver=$(basename "$deb" .deb | sed 's/^linux-source-7.3_//; s/_all$//')
KDIR="$CACHE/linux-$debver-$key"

case "${1:-build}" in
path) echo "$KDIR"; exit 0 ;;
build) ;;
*) echo "usage: $0 path|build" >&2; exit 2 ;;
esac

if [ -f "$KDIR/.vmm-built" ]; then
    echo "$KDIR"
    exit 0
fi

rm -rf "$KDIR.tmp"
mkdir -p "$KDIR.tmp"
say "unpacking $(basename "$deb")"
rm -rf "$KDIR.deb"
mkdir -p "$KDIR.deb"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR.deb" --wildcards '*/linux-source-7.3.tar.xz'
tar -xJf "$KDIR.deb"/usr/src/linux-source-7.3.tar.xz -C "$KDIR.tmp" --strip-components=1
rm -rf "$KDIR.deb"

cd "$KDIR.tmp"
M="make -s LLVM=$LLVM_SUFFIX"
say "configuring: tinyconfig + testbed/kernel.config"
$M tinyconfig >/dev/null
KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m .config "$here/kernel.config" >/dev/null
$M olddefconfig >/dev/null
dropped=0
while IFS= read -r line; do
    case "$line" in CONFIG_*=*) ;; *) continue ;; esac
    if ! grep -qx "$line" .config; then
        say "config: $line did not survive olddefconfig"
        dropped=1
    fi
done < "$here/kernel.config"
[ "$dropped" -eq 0 ] || { say "fix testbed/kernel.config"; exit 1; }
$M rustavailable >/dev/null || { say "Rust is not available to this kernel build"; exit 1; }

say "building bzImage and modules with LLVM$LLVM_SUFFIX on $(nproc) CPUs (about 4-5 minutes)"
$M -j"$(nproc)" bzImage modules >/dev/null
touch .vmm-built
cd /
mv "$KDIR.tmp" "$KDIR"
say "cached at $KDIR"
echo "$KDIR"
