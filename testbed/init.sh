#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test initramfs. The kernel command line picks the mode:
#   vmmtest=check  run the selftests; TAP and a kernel-log dump go to ttyS1
#   vmmtest=demo   show vmmctl at work and run the hello guest on the console
# Either way the machine reboots at the end, which ends the emulator.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
export PATH=/bin

case "${vmmtest:-demo}" in
check)
	out=/dev/ttyS1
	echo "# vmm selftests: $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs" >"$out"
	# vmmtest_only=a,b runs just those tests (TESTS=a,b make check).
	/bin/vmm-selftests $(echo "${vmmtest_only:-}" | tr , ' ') >"$out" 2>&1
	echo "# selftests exit $?" >"$out"
	# Keep vmm loaded so the reboot hook runs (the host looks for it on
	# the console, which carries every kernel message as it is printed).
	grep -q '^vmm ' /proc/modules || insmod /modules/vmm.ko
	echo "# vmm-selftests done" >"$out"
	;;
panic)
	# Init exits with vmm loaded: the kernel panics ("Attempted to kill
	# init"), and vmm's panic notifier must run (the host checks the log).
	insmod /modules/vmm.ko
	echo "# panicking with vmm loaded"
	exit 1
	;;
demo)
	run() { echo "\$ $*"; "$@"; }
	echo
	echo "=== vmm demo on $(uname -r) ==="
	run insmod /modules/vmm.ko
	dmesg | grep ' vmm: '
	run vmmctl caps
	run vmmctl create demo-vm
	run vmmctl list
	run vmmctl destroy demo-vm
	# A guest: 32-bit multiboot entry, greets on its 16550, enters long
	# mode, greets again, and writes 0 to vmmrun's exit port.
	run vmmrun /guests/hello.elf
	echo "vmmrun exit status: $?"
	# MMIO: a flat 32-bit guest stores 'h', 'i' and a newline to a 16550
	# that vmmrun places at 0xd0000000 (movb $c, 0xd0000000; ...; hlt).
	# vmm emulates each store and hands it to vmmrun as an MMIO exit.
	mkdir -p /tmp
	printf '\306\005\000\000\000\320h\306\005\000\000\000\320i' >/tmp/hi.bin
	printf '\306\005\000\000\000\320\012\364' >>/tmp/hi.bin
	run vmmrun --mode 32 --uart-mmio 0xd0000000 /tmp/hi.bin
	echo "vmmrun exit status: $?"
	run rmmod vmm
	dmesg | grep ' vmm: unload'
	echo "=== demo done ==="
	;;
esac
sync
reboot -f
