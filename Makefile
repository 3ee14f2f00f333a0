# SPDX-License-Identifier: GPL-2.0
#
# vmm: the two commands are `make run` and `make check`; everything else is
# what they are made of. Kbuild (not this file) describes the module itself.
#
#   make              build vmm.ko against KDIR (default: the cached test kernel)
#   make KDIR=/path   build vmm.ko against any Rust-enabled 7.3 tree
#   make deps         install packages, bindgen, rust-src; fetch linux-source-7.3
#   make kernel       build (once) and cache the test kernel
#   make tools        build vmmctl, vmmrun and the selftests (static, for the
#                     initramfs) and the hello guest (build/guests/hello.elf)
#   make run          boot QEMU (AMD-V), load vmm.ko, show vmmctl at work, then
#                     run the hello guest with vmmrun
#   make check        host tests, module build, selftests on QEMU x2 and Bochs
#   make fuzz         fuzz the vlapic model, the platform devices, then the
#                     instruction emulator, each
#                     for FUZZ_SECONDS (default 600; FUZZ_TARGETS picks; installs
#                     cargo-fuzz if missing; not part of `make check`)
#   make clean        remove build products from the tree

LLVM        ?= -19
TESTBED     := $(CURDIR)/testbed
BUILD       := $(CURDIR)/build
DEFAULT_KDIR = $(shell $(TESTBED)/kernel.sh path 2>/dev/null)
KDIR        ?= $(DEFAULT_KDIR)
TARGET      := x86_64-unknown-linux-gnu
TOOLS_DIR   := $(CURDIR)/target/$(TARGET)/release
# LLVM is a version suffix (-19) for the kernel build; LLVM=1 means none.
LLVM_SUFFIX  = $(if $(filter 1,$(LLVM)),,$(LLVM))
GUESTS_SRC  := $(CURDIR)/tools/vmmrun/guests
GUESTS      := $(BUILD)/guests/hello.elf

export KDIR LLVM

.PHONY: all module deps kernel tools run check fuzz clean

all: module

deps:
	@bash $(TESTBED)/deps.sh

# Only the default KDIR is ours to build; a KDIR given on the command line
# is used as it is.
kernel: deps
ifeq ($(origin KDIR),command line)
	@test -f $(KDIR)/Module.symvers -o -f $(KDIR)/vmlinux.symvers || \
		{ echo "KDIR=$(KDIR) is not a built kernel tree"; exit 1; }
else
	@bash $(TESTBED)/kernel.sh build >/dev/null
endif

module: kernel
	@echo "[module] building vmm.ko against $(KDIR)"
	@$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) \
		KBUILD_EXTRA_SYMBOLS=$(wildcard $(KDIR)/vmlinux.symvers) \
		$$(python3 $(TESTBED)/crate-src.py $(CURDIR)/Cargo.toml) modules

tools: deps $(GUESTS)
	@echo "[tools] building vmmctl, vmmrun and vmm-selftests (static)"
	@RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release \
		--target $(TARGET) -p vmmctl -p vmmrun -p vmm-selftests

# Guests for vmmrun: 32-bit multiboot ELFs at 1 MiB (clang and lld from deps).
$(BUILD)/guests/%.elf: $(GUESTS_SRC)/%.S $(GUESTS_SRC)/%.ld | deps
	@echo "[tools] building guest $(notdir $@)"
	@mkdir -p $(@D)
	@clang$(LLVM_SUFFIX) -m32 -c -o $(@:.elf=.o) $<
	@ld.lld$(LLVM_SUFFIX) -m elf_i386 -T $(GUESTS_SRC)/$*.ld --build-id=none -o $@ $(@:.elf=.o)

run: module tools
	@python3 $(TESTBED)/run.py demo

check: deps
	@python3 $(TESTBED)/check.py

# The fuzzers, one after the other, each for FUZZ_SECONDS: FUZZ_TARGETS
# lists them as crate/target, by default the vlapic operation fuzzer
# (vlapic/fuzz), the platform devices' fuzzer (vdev/fuzz) and the
# emulator's decode-and-emulate fuzzer (emul/fuzz).
# No sanitizer: the crates forbid unsafe code, and ASan would cost two
# thirds of the speed. Corpus and crashes go to <crate>/fuzz/corpus and
# <crate>/fuzz/artifacts; the first target that finds a crash stops the rest.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= vlapic/ops vdev/devices emul/emulate
# cargo-fuzz comes from crates.io when missing. It needs nightly flags: the
# nightly toolchain if rustup has one, else the stable compiler with
# RUSTC_BOOTSTRAP=1 (no other toolchain is fetched).
fuzz:
	@command -v cargo-fuzz >/dev/null || { echo "[fuzz] installing cargo-fuzz from crates.io"; \
		cargo install --quiet --locked cargo-fuzz; }
	@if rustup run nightly rustc --version >/dev/null 2>&1; then tc=+nightly; else \
		tc=; export RUSTC_BOOTSTRAP=1; echo "[fuzz] no nightly toolchain: stable with RUSTC_BOOTSTRAP=1"; fi; \
	for t in $(FUZZ_TARGETS); do dir=$${t%%/*}; name=$${t#*/}; \
		echo "[fuzz] $$dir $$name for $(FUZZ_SECONDS)s: cargo $$tc fuzz run -s none -a $$name (in $$dir/)"; \
		(cd $$dir && cargo $$tc fuzz run -s none -a $$name -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

clean:
	@$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) clean >/dev/null 2>&1 || true
	@rm -rf $(BUILD) src/crates
