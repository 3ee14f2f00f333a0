#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make check`: every test, in order, ending with `N passed, N failed`.

1. `cargo test` for the host crates.
2. The lint and format gate: `cargo clippy -D warnings` on the workspace,
   `cargo fmt --check` and `rustfmt --check` on every Rust file (the
   module's and the fuzz crates' included), and no `#[allow]` outside
   generated bindings.
3. The module build, with the kernel's `CLIPPY=1`, which must print no
   warning (and the static tools for the initramfs).
4. The selftests on each emulated machine, booted once each: QEMU TCG (SVM)
   with 5-level and 4-level paging, and Bochs (VMX, Skylake-X with APICv).

A machine's checks are its TAP results plus: the run finished in time,
every planned test reported, the kernel log (the console, which prints every
message) is free of WARN/BUG/oops/lockdep splats, and the reboot hook ran. Bochs boots in parallel with the QEMU runs.
The first QEMU machine boots once more, into a panic with vmm loaded, to
check that vmm's panic notifier runs.
"""

import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machines as tb  # noqa: E402

SPLATS = [
    "WARNING:", "BUG:", "Oops", "Call Trace:", "Kernel panic", "general protection fault",
    "possible circular locking", "possible recursive locking", "inconsistent lock state",
    "suspicious RCU usage", "DEBUG_LOCKS_WARN_ON", "UBSAN:", "KASAN:", "INFO: task ",
    "stack-protector", "double fault", "unable to handle",
]
REBOOT_HOOK = "vmm: reboot: no vmm window open"
PANIC_HOOK = "vmm: panic: no new windows"


class Tally:
    def __init__(self):
        self.passed, self.failed, self.skipped = 0, 0, 0
        self.failures = []
        self.lock = threading.Lock()

    def add(self, group, name, ok, detail="", skip=False):
        with self.lock:
            if skip:
                self.skipped += 1
            elif ok:
                self.passed += 1
            else:
                self.failed += 1
                self.failures.append(f"{group}: {name}" + (f"\n    {detail}" if detail else ""))


def host_tests(t):
    tb.log("cargo test (host crates)")
    # --no-fail-fast: one failing test binary must not hide the others'
    # results (or shrink the count).
    r = subprocess.run(["cargo", "test", "--workspace", "--locked", "--quiet", "--no-fail-fast"],
                       cwd=tb.ROOT, capture_output=True, text=True)
    results = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", r.stdout)
    passed = sum(int(p) for p, _ in results)
    failed = sum(int(f) for _, f in results)
    with t.lock:
        t.passed += passed
        t.failed += failed
    for line in r.stdout.splitlines():
        m = re.match(r"test (\S+) \.\.\. FAILED", line)
        if m:
            t.failures.append(f"host: {m.group(1)}")
    if r.returncode != 0 and failed == 0:
        t.add("host", "cargo test", False, (r.stderr or r.stdout)[-2000:])
    tb.log(f"host: {passed} passed, {failed} failed")


# The crates outside the workspace (cargo-fuzz wants its own).
FUZZ_MANIFESTS = ["vlapic/fuzz/Cargo.toml", "vdev/fuzz/Cargo.toml", "emul/fuzz/Cargo.toml"]
# `#[allow]` is for generated bindings only; everything else uses
# `#[expect(lint, reason = "...")]`, which fails once it is not needed.
ALLOW = re.compile(r"#!?\[allow\(")


def lints(t):
    tb.log("lint and format gate: clippy, rustfmt, no #[allow]")
    steps = [
        ("cargo clippy -D warnings",
         ["cargo", "clippy", "--workspace", "--all-targets", "--locked", "--quiet", "--",
          "-D", "warnings"]),
        ("cargo fmt --check", ["cargo", "fmt", "--all", "--check"]),
        ("rustfmt --check (module)", ["rustfmt", "--check", "src/vmm_main.rs"]),
    ] + [(f"cargo fmt --check ({m})", ["cargo", "fmt", "--check", "--manifest-path", m])
         for m in FUZZ_MANIFESTS]
    for name, cmd in steps:
        r = subprocess.run(cmd, cwd=tb.ROOT, capture_output=True, text=True)
        t.add("lint", name, r.returncode == 0, (r.stdout + r.stderr)[-3000:])
    files = subprocess.run(["git", "ls-files", "*.rs"], cwd=tb.ROOT, capture_output=True,
                           text=True).stdout.split()
    allows = [f"{f}:{n}" for f in files
              for n, line in enumerate(open(tb.ROOT / f, encoding="utf-8"), 1)
              if ALLOW.search(line)]
    t.add("lint", "no #[allow] outside generated bindings", not allows, " ".join(allows[:20]))


def build(t):
    # CLIPPY=1 runs the kernel's clippy lints over the module (the pure
    # crates included) as it builds; any warning fails the check. Touching
    # the crate root makes the Rust part build, so the lints always run.
    os.utime(tb.ROOT / "src/vmm_main.rs")
    for target, extra in (("module", ["CLIPPY=1"]), ("tools", [])):
        tb.log(f"make {target} {' '.join(extra)}".rstrip())
        r = subprocess.run(["make", "--no-print-directory", target] + extra, cwd=tb.ROOT,
                           capture_output=True, text=True)
        out = r.stdout + r.stderr
        t.add("build", f"make {target}", r.returncode == 0, out[-3000:])
        if r.returncode != 0:
            print(out, file=sys.stderr)
            return False
        if target == "module":
            warned = [line for line in out.splitlines() if re.match(r"(warning|error)\b", line)]
            t.add("build", "module clippy is clean", not warned, "\n    ".join(warned[:20]))
    return True


def parse_tap(text):
    plan, results = None, []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^1\.\.(\d+)$", line)
        if m:
            plan = int(m.group(1))
        m = re.match(r"^(not )?ok (\d+) - (\S+)(?: # SKIP (.*))?$", line)
        if m:
            detail = []
            for nxt in lines[i + 1:]:
                if not nxt.startswith("  # "):
                    break
                detail.append(nxt[4:])
            results.append((int(m.group(2)), m.group(1) is None, m.group(3), m.group(4),
                            "\n    ".join(detail)))
    return plan, results


def splats(text):
    found = []
    for line in text.splitlines():
        if any(s in line for s in SPLATS):
            found.append(line.strip())
    return found


def run_machine(m, kdir, initrd, t):
    tb.log(f"{m.name}: booting ({m.kind}, {m.backend}, {m.levels}-level paging)")
    console, tap, secs, timed_out = tb.boot(m, kdir, initrd, "check")
    plan, results = parse_tap(tap)
    before = (t.passed, t.failed, t.skipped)
    for num, ok, name, skip, detail in results:
        t.add(m.name, f"{num} {name}", ok, detail, skip=bool(skip) and ok)
    done = "# vmm-selftests done" in tap
    t.add(m.name, "finished in time", done and not timed_out,
          f"timed out after {secs:.0f}s" if timed_out else "no end marker in TAP output")
    t.add(m.name, "every planned test reported", plan is not None and len(results) == plan,
          f"plan {plan}, {len(results)} results")
    bad = splats(console + "\n" + tap)
    t.add(m.name, "kernel log clean", not bad, "\n    ".join(bad[:20]))
    t.add(m.name, "reboot hook turned virtualization off", REBOOT_HOOK in console,
          f"'{REBOOT_HOOK}' not on the console")
    p, f, s = (t.passed - before[0], t.failed - before[1], t.skipped - before[2])
    tb.log(f"{m.name}: {p} passed, {f} failed, {s} skipped in {secs:.0f}s (logs: {m.logs})")


def panic_boot(m, kdir, initrd, t):
    """A second, short boot in which init exits with vmm loaded: the kernel
    panics, and vmm's panic notifier must run before the machine resets."""
    tb.log(f"{m.name}: booting to panic with vmm loaded")
    console, _, secs, timed_out = tb.boot(m, kdir, initrd, "panic", tag="panic")
    t.add(m.name, "panic hook ran", PANIC_HOOK in console and "Kernel panic" in console
          and not timed_out, f"no '{PANIC_HOOK}' after a panic (logs: {m.logs})")
    bad = [b for b in splats(console) if "Kernel panic" not in b and "Call Trace:" not in b]
    t.add(m.name, "panic path has no other splat", not bad, "\n    ".join(bad[:20]))


def main():
    start = time.monotonic()
    t = Tally()
    # QUICK=1 (for iterating on one test): no host tests, no lint gate, no
    # panic boot. Never what CI runs.
    quick = os.environ.get("QUICK") == "1"
    if not quick:
        host_tests(t)
        lints(t)
    if build(t):
        kdir = os.environ.get("KDIR") or subprocess.check_output(
            [str(tb.ROOT / "testbed/kernel.sh"), "path"], text=True).strip()
        initrd = tb.build_initramfs(kdir)
        ms = tb.machines()
        only = os.environ.get("MACHINES")
        if only:
            ms = [m for m in ms if m.name in only.split(",")]
        slow = [m for m in ms if m.kind == "bochs"]
        threads = [threading.Thread(target=run_machine, args=(m, kdir, initrd, t)) for m in slow]
        for th in threads:
            th.start()
        for m in ms:
            if m.kind != "bochs":
                run_machine(m, kdir, initrd, t)
        if ms and ms[0].kind == "qemu" and not quick:
            panic_boot(ms[0], kdir, initrd, t)
        for th in threads:
            th.join()
    if t.failures:
        print("\nFailures:")
        for f in t.failures:
            print(f"  {f}")
    print(f"\n{t.skipped} skipped; took {time.monotonic() - start:.0f}s")
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
