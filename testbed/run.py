#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make run`: boot the QEMU (AMD-V) machine with the console on this
terminal, load vmm.ko, show vmmctl at work, and run the hello guest
(tools/vmmrun/guests/hello.S) with vmmrun: its greetings from 32-bit and
64-bit mode appear on the console, then vmmrun's exit status."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machines as tb  # noqa: E402


def main():
    kdir = os.environ.get("KDIR") or subprocess.check_output(
        [str(tb.ROOT / "testbed/kernel.sh"), "path"], text=True).strip()
    initrd = tb.build_initramfs(kdir)
    m = tb.machines()[0]
    kernel = os.path.join(kdir, "arch/x86/boot/bzImage")
    tb.log(f"booting {m.name}: QEMU TCG, -cpu {m.cpu}, AMD-V (Ctrl-A X quits)")
    argv = tb.qemu_argv(m, kernel, initrd, "demo", "stdio", "null")
    argv[argv.index(m.cmdline("demo"))] = m.cmdline("demo") + " quiet"
    return subprocess.run(argv, timeout=m.timeout).returncode


if __name__ == "__main__":
    sys.exit(main())
