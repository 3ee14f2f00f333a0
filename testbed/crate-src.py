#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Print `VMM_CRATE_<name>=<source dir>` for the crates.io crates the module
links, at the versions Cargo.lock pins, so Kbuild compiles exactly what the
host tests use."""
import json
import subprocess
import sys

WANT = ("bitflags", "static_assertions")
meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--locked", "--manifest-path",
     sys.argv[1] if len(sys.argv) > 1 else "Cargo.toml"]))
uapi = next(p for p in meta["packages"] if p["name"] == "vmm-uapi")
resolved = {n["id"]: n for n in meta["resolve"]["nodes"]}
deps = {d["name"]: d["pkg"] for d in resolved[uapi["id"]]["deps"]}
by_id = {p["id"]: p for p in meta["packages"]}
for name in WANT:
    path = by_id[deps[name]]["manifest_path"].rsplit("/", 1)[0]
    print(f"VMM_CRATE_{name}={path}")
