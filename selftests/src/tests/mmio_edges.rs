// SPDX-License-Identifier: MIT OR Apache-2.0

//! MMIO edges: accesses split between RAM and the window, instructions the
//! emulator leaves to the sequencer (`INST_EMUL`), reads abandoned with
//! `VMM_ENTRY_RUN`, completions the kernel must refuse, the RIP and RCX a
//! string instruction's exits show, fetches and ROM writes (still PAGING),
//! and a fault the emulated instruction raises.
//!
//! Every check runs in a 64-bit guest of its own whose code (the case,
//! then HLT) is at [`LOAD`], with RAM pages on both sides of the window
//! ([`WINDOW`]` - 4K` and `+ 4K`) and every vector going to its own HLT.
//! All checks run; each failing one is reported.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use libvmm::setup::{Mode, PD_OFFSET};
use libvmm::sys::Mapping;
use libvmm::uapi::*;
use libvmm::Exit;

use super::mmio::{cases, run_device, Device, CR4_SSE, HANDLERS, PAGE, WINDOW};
use crate::guest::{complete, describe, expect_mmio, expect_paging, inject_gp, s, TestVm};
use crate::guest::{FREE, LOAD, RAM_LEN, RUN, SCRATCH};
use crate::tap::{expect_errno_of, skip, Outcome::Pass, TestResult};
use crate::{ensure, payload};

cases!(
    EDGES,
    vmm_guest_mmio_edges_start,
    vmm_guest_mmio_edges_end,
    ".code64",
    [
        "movq -4(%rbx), %rax",
        "movq %rdx, -4(%rbx)",
        "movq 0xffc(%rbx), %rax",
        "movq %rdx, 0xffc(%rbx)",
        "movq -1(%rbx), %rax",
        "shll 0x10(%rbx)",
        "divl 0x10(%rbx)",
        "sete 0x10(%rbx)",
        "movw 0x10(%rbx), %es",
        "movl 0x20(%rbx), %eax",
        "movdqu 0x30(%rbx), %xmm1; movq %xmm1, %rax; psrldq $8, %xmm1; movq %xmm1, %rdx",
        "movb 0x40(%rbx), %al",
        "movw 0x42(%rbx), %ax",
        "movl 0x44(%rbx), %eax",
        "movq 0x48(%rbx), %rax",
        "movl %ecx, 0x50(%rbx)",
        "movq %rax, %xmm1; movq %rdx, %xmm2; punpcklqdq %xmm2, %xmm1; movdqu %xmm1, 0x60(%rbx)",
        "rep stosl",
        "rep movsl",
        "jmp *%rbx",
        "movl (%rbx), %eax; movl %ecx, (%rbx)",
    ]
);

/// The code of the edge case `asm`.
fn code(asm: &str) -> &'static [u8] {
    let codes =
        super::mmio::snippets(&payload!(vmm_guest_mmio_edges_start, vmm_guest_mmio_edges_end));
    let i = EDGES.iter().position(|(a, _)| *a == asm).expect("an edge case");
    codes[i]
}

/// A guest for one edge check: `asm` then HLT at [`LOAD`], RBX at the
/// window, the RAM neighbours of the window (returned), SSE on.
fn edge_vm(asm: &str, regs: &[(u32, u64)]) -> Result<(TestVm, &'static [u8], Mapping), String> {
    let c = code(asm);
    // Some checks hold two of these VMs at once: each needs a name of its own.
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    let name = format!("mmio-edge-{}", SERIAL.fetch_add(1, Relaxed));
    let t = TestVm::bare(&name, CreateFlags::DESTROY_ON_CLOSE, RAM_LEN)?;
    t.write(LOAD, &[c, &[0xf4]].concat())?;
    t.setup(Mode::Long64, LOAD)?;
    t.write(HANDLERS, &[0xf4; 256])?;
    t.install_idt(Mode::Long64, |v| HANDLERS + u64::from(v))?;
    let seg = s(t.vm.alloc_segment(SegKind::SysMem, 2 * PAGE))?;
    let rw = Prot::READ | Prot::WRITE;
    s(t.vm.map(WINDOW - PAGE, &seg, 0, PAGE, rw))?;
    s(t.vm.map(WINDOW + PAGE, &seg, PAGE, PAGE, rw))?;
    let around = s(t.vm.mmap_segment(&seg))?;
    let pattern: Vec<u8> = (0..2 * PAGE).map(|i| (i * 13 + 1) as u8).collect();
    around.write(0, &pattern);
    let cr4 = s(t.vcpu.get_reg(reg::CR4))?;
    let mut all = vec![(reg::CR4, cr4 | CR4_SSE)];
    if regs.iter().all(|r| r.0 != reg::RBX) {
        all.push((reg::RBX, WINDOW));
    }
    all.extend_from_slice(regs);
    s(t.vcpu.set_regs(&all))?;
    Ok((t, c, around))
}

/// Fails unless `e` is the HLT after the code (`len` bytes).
fn expect_end(e: &VmmExit, len: usize) -> Result<(), String> {
    let at = LOAD + len as u64 + 1;
    ensure!(e.reason == exit::HLT && e.rip == at, "want HLT at {at:#x}, got {}", describe(e));
    Ok(())
}

fn reg_of(t: &TestVm, r: u32) -> Result<u64, String> {
    s(t.vcpu.get_reg(r))
}

fn u32_at(m: &Mapping, off: usize) -> u32 {
    let mut b = [0u8; 4];
    m.read(off, &mut b);
    u32::from_le_bytes(b)
}

/// 8-byte accesses half in RAM, half in the window, both ways: one 4-byte
/// MMIO exit for the window's half, the RAM half from RAM; then one split
/// 1 + 7, whose MMIO part must come as exits of legal sizes.
fn split_accesses() -> Result<(), String> {
    let below = PAGE as usize - 4;
    let (t, c, around) = edge_vm("movq -4(%rbx), %rax", &[])?;
    let e = s(t.vcpu.run())?;
    expect_mmio(&e, WINDOW, 4, false, 0).map_err(|m| format!("read RAM|MMIO: {m}"))?;
    ensure!(e.rip == LOAD, "read RAM|MMIO: exit at rip {:#x}, want {LOAD:#x}", e.rip);
    expect_end(&s(t.vcpu.complete(0xa1b2_c3d4))?, c.len())?;
    let want = 0xa1b2_c3d4 << 32 | u64::from(u32_at(&around, below));
    let rax = reg_of(&t, reg::RAX)?;
    ensure!(rax == want, "read RAM|MMIO: rax {rax:#x}, want {want:#x}");

    let rdx = 0x0102_0304_0506_0708;
    let (t, c, around) = edge_vm("movq %rdx, -4(%rbx)", &[(reg::RDX, rdx)])?;
    let e = s(t.vcpu.run())?;
    expect_mmio(&e, WINDOW, 4, true, rdx >> 32).map_err(|m| format!("write RAM|MMIO: {m}"))?;
    let next = LOAD + c.len() as u64;
    ensure!(e.rip == next, "write RAM|MMIO: exit at rip {:#x}, want {next:#x}", e.rip);
    expect_end(&s(t.vcpu.run())?, c.len())?;
    let low = u32_at(&around, below);
    ensure!(low == rdx as u32, "write RAM|MMIO: RAM half {low:#x}, want {:#x}", rdx as u32);

    let (t, c, around) = edge_vm("movq 0xffc(%rbx), %rax", &[])?;
    let e = s(t.vcpu.run())?;
    expect_mmio(&e, WINDOW + 0xffc, 4, false, 0).map_err(|m| format!("read MMIO|RAM: {m}"))?;
    expect_end(&s(t.vcpu.complete(0xa1b2_c3d4))?, c.len())?;
    let want = u64::from(u32_at(&around, PAGE as usize)) << 32 | 0xa1b2_c3d4;
    let rax = reg_of(&t, reg::RAX)?;
    ensure!(rax == want, "read MMIO|RAM: rax {rax:#x}, want {want:#x}");

    let (t, c, around) = edge_vm("movq %rdx, 0xffc(%rbx)", &[(reg::RDX, rdx)])?;
    let e = s(t.vcpu.run())?;
    let low = rdx & 0xffff_ffff;
    expect_mmio(&e, WINDOW + 0xffc, 4, true, low).map_err(|m| format!("write MMIO|RAM: {m}"))?;
    expect_end(&s(t.vcpu.run())?, c.len())?;
    let high = u32_at(&around, PAGE as usize);
    ensure!(high == (rdx >> 32) as u32, "write MMIO|RAM: RAM half {high:#x}");

    let (t, c, around) = edge_vm("movq -1(%rbx), %rax", &[])?;
    let bytes: Vec<u8> = (0x40..0x40 + PAGE as usize).map(|i| i as u8).collect();
    let mut dev = Device::new(WINDOW, bytes.clone());
    let e = run_device(&t, &mut dev, RUN).map_err(|m| format!("read RAM 1 | MMIO 7: {m}"))?;
    expect_end(&e, c.len())?;
    let mut b = [0u8; 1];
    around.read(PAGE as usize - 1, &mut b);
    let want = u64::from_le_bytes([
        b[0], bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6],
    ]);
    let rax = reg_of(&t, reg::RAX)?;
    ensure!(rax == want, "read RAM 1 | MMIO 7: rax {rax:#x}, want {want:#x}; {:x?}", dev.log);
    let covered: u32 = dev.log.iter().map(|a| a.size).sum();
    ensure!(covered == 7, "read RAM 1 | MMIO 7: MMIO exits {:x?} cover {covered} bytes", dev.log);
    Ok(())
}

/// Instructions the emulator does not handle are `INST_EMUL` with the
/// window address, before any MMIO exit and with nothing changed; nothing
/// is pending afterwards, and the sequencer can skip the instruction.
fn unsupported() -> Result<(), String> {
    for asm in ["shll 0x10(%rbx)", "divl 0x10(%rbx)", "sete 0x10(%rbx)", "movw 0x10(%rbx), %es"] {
        let (t, c, _) = edge_vm(asm, &[])?;
        let e = s(t.vcpu.run())?;
        let Exit::InstEmul(ie) = Exit::decode(&e) else {
            return Err(format!("`{asm}`: want INST_EMUL, got {}", describe(&e)));
        };
        let len = ie.len as usize;
        let mem = t.read(LOAD, 15)?;
        ensure!(
            ie.flags == VMM_INST_EMUL_GPA
                && ie.gpa == WINDOW + 0x10
                && (c.len()..=15).contains(&len)
                && ie.bytes[..len] == mem[..len]
                && ie.reserved == [0; 4]
                && e.rip == LOAD,
            "`{asm}` [{c:02x?}]: INST_EMUL {ie:x?} at rip {:#x}; want flags GPA, gpa {:#x}, \
             the bytes at {LOAD:#x}",
            e.rip,
            WINDOW + 0x10
        );
        expect_errno_of(t.vcpu.complete(0), libc::EINVAL, &format!("`{asm}`: COMPLETE after"))?;
        s(t.vcpu.set_regs(&[(reg::RIP, LOAD + c.len() as u64)]))?;
        expect_end(&s(t.vcpu.run())?, c.len()).map_err(|m| format!("`{asm}` skipped: {m}"))?;
    }
    Ok(())
}

/// A read left unanswered (`VMM_ENTRY_RUN`) is executed again from
/// scratch: the same exit again, also for the second piece of a 16-byte
/// read whose first piece was answered.
fn abandoned_reads() -> Result<(), String> {
    let (t, c, _) = edge_vm("movl 0x20(%rbx), %eax", &[])?;
    for round in 0..2 {
        let e = s(t.vcpu.run())?;
        expect_mmio(&e, WINDOW + 0x20, 4, false, 0).map_err(|m| format!("round {round}: {m}"))?;
        ensure!(e.rip == LOAD, "round {round}: exit at rip {:#x}", e.rip);
    }
    expect_end(&s(t.vcpu.complete(0xcafe_f00d))?, c.len())?;
    ensure!(reg_of(&t, reg::RAX)? as u32 == 0xcafe_f00d, "eax after the completion");

    let asm = "movdqu 0x30(%rbx), %xmm1; movq %xmm1, %rax; psrldq $8, %xmm1; movq %xmm1, %rdx";
    let (t, c, _) = edge_vm(asm, &[])?;
    let steps: [(u64, VmmEntry); 4] =
        [(0x30, complete(0x1111)), (0x38, RUN), (0x30, complete(0x3333)), (0x38, complete(0x4444))];
    let mut e = s(t.vcpu.run())?;
    for (i, (off, answer)) in steps.into_iter().enumerate() {
        expect_mmio(&e, WINDOW + off, 8, false, 0).map_err(|m| format!("movdqu step {i}: {m}"))?;
        ensure!(e.rip == LOAD, "movdqu step {i}: exit at rip {:#x}", e.rip);
        e = s(t.vcpu.run_entry(answer))?;
    }
    expect_end(&e, c.len())?;
    let got = (reg_of(&t, reg::RAX)?, reg_of(&t, reg::RDX)?);
    ensure!(got == (0x3333, 0x4444), "movdqu after an abandoned piece: rax, rdx {got:#x?}");
    Ok(())
}

/// Completions that do not fit are `EINVAL` and change nothing; the exit
/// can then be completed; a write has nothing to complete; a run after a
/// write goes on (to the next piece of a wide write).
fn bad_completions() -> Result<(), String> {
    for (asm, size, off, too_wide, ok) in [
        ("movb 0x40(%rbx), %al", 1, 0x40, 0x100, 0xab),
        ("movw 0x42(%rbx), %ax", 2, 0x42, 0x1_0000, 0xbeef),
        ("movl 0x44(%rbx), %eax", 4, 0x44, 1 << 32, 0xffff_ffff),
        ("movq 0x48(%rbx), %rax", 8, 0x48, 0, u64::MAX),
    ] {
        let (t, c, _) = edge_vm(asm, &[(reg::RAX, 0x5555_5555_5555_5555)])?;
        let e = s(t.vcpu.run())?;
        expect_mmio(&e, WINDOW + off, size, false, 0).map_err(|m| format!("`{asm}`: {m}"))?;
        if size < 8 {
            for v in [too_wide, too_wide | ok, u64::MAX] {
                let what = format!("`{asm}`: COMPLETE {v:#x}");
                expect_errno_of(t.vcpu.complete(v), libc::EINVAL, &what)?;
            }
        }
        expect_errno_of(t.vcpu.run_entry(inject_gp()), libc::EINVAL, "INJECT_GP on a read")?;
        let run5 = VmmEntry { value: 5, ..RUN };
        expect_errno_of(t.vcpu.run_entry(run5), libc::EINVAL, "RUN with a value")?;
        ensure!(reg_of(&t, reg::RIP)? == LOAD, "`{asm}`: a refused completion moved RIP");
        expect_end(&s(t.vcpu.complete(ok))?, c.len()).map_err(|m| format!("`{asm}`: {m}"))?;
        let keep = if size == 8 { 0 } else { 0x5555_5555_5555_5555 & !((1u64 << (8 * size)) - 1) };
        let want = if size == 4 { ok } else { keep | ok };
        let rax = reg_of(&t, reg::RAX)?;
        ensure!(rax == want, "`{asm}`: rax {rax:#x}, want {want:#x}");
        expect_errno_of(t.vcpu.complete(0), libc::EINVAL, "COMPLETE after HLT")?;
    }

    let (t, c, _) = edge_vm("movl %ecx, 0x50(%rbx)", &[(reg::RCX, 0x1234_5678)])?;
    let e = s(t.vcpu.run())?;
    expect_mmio(&e, WINDOW + 0x50, 4, true, 0x1234_5678)?;
    ensure!(e.rip == LOAD + c.len() as u64, "write exit at rip {:#x}", e.rip);
    for v in [0, 5] {
        expect_errno_of(t.vcpu.complete(v), libc::EINVAL, &format!("COMPLETE {v} of a write"))?;
    }
    expect_end(&s(t.vcpu.run())?, c.len())?;

    let asm =
        "movq %rax, %xmm1; movq %rdx, %xmm2; punpcklqdq %xmm2, %xmm1; movdqu %xmm1, 0x60(%rbx)";
    let (a, d) = (0xaaaa_0000_0000_aaaa, 0xdddd_0000_0000_dddd);
    let (t, c, _) = edge_vm(asm, &[(reg::RAX, a), (reg::RDX, d)])?;
    let after = LOAD + c.len() as u64;
    let e = s(t.vcpu.run())?;
    expect_mmio(&e, WINDOW + 0x60, 8, true, a).map_err(|m| format!("movdqu piece 1: {m}"))?;
    ensure!(e.rip == after, "movdqu piece 1 at rip {:#x}, want {after:#x}", e.rip);
    expect_errno_of(t.vcpu.complete(0), libc::EINVAL, "COMPLETE of piece 1 of a write")?;
    let e = s(t.vcpu.run())?;
    expect_mmio(&e, WINDOW + 0x68, 8, true, d).map_err(|m| format!("movdqu piece 2: {m}"))?;
    ensure!(e.rip == after, "movdqu piece 2 at rip {:#x}, want {after:#x}", e.rip);
    expect_end(&s(t.vcpu.run())?, c.len())
}

/// A REP string's exits: a write after its element's iteration (RCX and
/// RDI already stepped, RIP at the instruction until the last element),
/// a read before its element's (RCX not yet stepped).
fn string_exits() -> Result<(), String> {
    let n = 20u64;
    let regs = [(reg::RCX, n), (reg::RDI, WINDOW + 0x100), (reg::RAX, 0x5a5a_1234)];
    let (t, c, _) = edge_vm("rep stosl", &regs)?;
    let mut e = s(t.vcpu.run())?;
    for i in 0..n {
        let what = format!("rep stosl element {i}");
        expect_mmio(&e, WINDOW + 0x100 + 4 * i, 4, true, 0x5a5a_1234)
            .map_err(|m| format!("{what}: {m}"))?;
        let rip = if i + 1 == n { LOAD + c.len() as u64 } else { LOAD };
        let (rcx, rdi) = (reg_of(&t, reg::RCX)?, reg_of(&t, reg::RDI)?);
        ensure!(
            e.rip == rip && rcx == n - i - 1 && rdi == WINDOW + 0x104 + 4 * i,
            "{what}: rip {:#x}, rcx {rcx:#x}, rdi {rdi:#x}; want {rip:#x}, {:#x}, {:#x}",
            e.rip,
            n - i - 1,
            WINDOW + 0x104 + 4 * i
        );
        e = s(t.vcpu.run())?;
    }
    expect_end(&e, c.len())?;

    let n = 8u64;
    let regs = [(reg::RCX, n), (reg::RSI, WINDOW + 0x100), (reg::RDI, FREE)];
    let (t, c, _) = edge_vm("rep movsl", &regs)?;
    let mut e = s(t.vcpu.run())?;
    for i in 0..n {
        let what = format!("rep movsl (MMIO to RAM) element {i}");
        expect_mmio(&e, WINDOW + 0x100 + 4 * i, 4, false, 0).map_err(|m| format!("{what}: {m}"))?;
        let rcx = reg_of(&t, reg::RCX)?;
        ensure!(e.rip == LOAD && rcx == n - i, "{what}: rip {:#x}, rcx {rcx:#x}", e.rip);
        e = s(t.vcpu.complete(0x7700 + i))?;
    }
    expect_end(&e, c.len())?;
    let got: Vec<u32> = t
        .read(FREE, 4 * n as usize)?
        .chunks(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let want: Vec<u32> = (0..n as u32).map(|i| 0x7700 + i).collect();
    ensure!(got == want, "rep movsl (MMIO to RAM) stored {got:#x?}");
    Ok(())
}

/// A fetch from the window is PAGING, and so is a write to ROM (which
/// reads fine).
fn fetch_and_rom() -> Result<(), String> {
    let (t, _, _) = edge_vm("jmp *%rbx", &[(reg::RBX, WINDOW + 0x40)])?;
    let e = s(t.vcpu.run())?;
    expect_paging(&e, WINDOW + 0x40, VMM_ACCESS_EXEC, VMM_PAGING_UNMAPPED)
        .map_err(|m| format!("fetch: {m}"))?;

    let rom_at = WINDOW + 2 * PAGE;
    let (t, c, _) = edge_vm("movl (%rbx), %eax; movl %ecx, (%rbx)", &[(reg::RBX, rom_at)])?;
    let rom = s(t.vm.alloc_segment(SegKind::Rom, PAGE))?;
    s(t.vm.map(rom_at, &rom, 0, PAGE, Prot::READ | Prot::EXEC))?;
    s(t.vm.mmap_segment(&rom))?.write(0, &0x0d0c_0b0au32.to_le_bytes());
    let e = s(t.vcpu.run())?;
    expect_paging(&e, rom_at, VMM_ACCESS_WRITE, VMM_PAGING_PROTECTION)
        .map_err(|m| format!("ROM write: {m}"))?;
    ensure!(e.rip == LOAD + 2, "ROM write fault at rip {:#x} (code {c:02x?})", e.rip);
    ensure!(reg_of(&t, reg::RAX)? as u32 == 0x0d0c_0b0a, "ROM read");
    Ok(())
}

/// An 8-byte read from the window's last 4 bytes into a page the guest's
/// page tables do not map is #PF at that page, whoever raises it.
fn split_into_unmapped_page() -> Result<(), String> {
    let (t, c, _) = edge_vm("movq 0xffc(%rbx), %rax", &[])?;
    // 4 KiB pages for the 2 MiB around the window, all but the one after
    // it present.
    let pd = SCRATCH + PD_OFFSET + 3 * PAGE + ((WINDOW >> 21) & 511) * 8;
    let pt: Vec<u8> = (0..512u64)
        .flat_map(|i| if i == 1 { 0 } else { (WINDOW + i * PAGE) | 3 }.to_le_bytes())
        .collect();
    t.write(FREE, &pt)?;
    t.write_u64(pd, FREE | 3)?;
    let mut dev = Device::new(WINDOW, vec![0; PAGE as usize]);
    let e = run_device(&t, &mut dev, RUN)?;
    let pf = HANDLERS + 14;
    ensure!(
        e.reason == exit::HLT && e.rip == pf + 1,
        "want #PF (HLT at {pf:#x}), got {}; code {c:02x?}",
        describe(&e)
    );
    let (cr2, rsp) = (reg_of(&t, reg::CR2)?, reg_of(&t, reg::RSP)?);
    let (code, rip) = (t.read_u64(rsp)?, t.read_u64(rsp + 8)?);
    ensure!(
        cr2 == WINDOW + PAGE && code == 0 && rip == LOAD,
        "#PF with CR2 {cr2:#x}, error code {code:#x}, RIP {rip:#x}; want {:#x}, 0, {LOAD:#x}",
        WINDOW + PAGE
    );
    if !dev.log.is_empty() {
        println!("# split into an unmapped page: MMIO exits before the #PF: {:x?}", dev.log);
    }
    Ok(())
}

/// One edge check.
type Check = fn() -> Result<(), String>;

/// The MMIO edge cases; see the module comment.
pub fn mmio_edges() -> TestResult {
    let checks: [(&str, Check); 7] = [
        ("split accesses", split_accesses),
        ("unsupported instructions", unsupported),
        ("abandoned reads", abandoned_reads),
        ("bad completions", bad_completions),
        ("string exits", string_exits),
        ("fetch and ROM", fetch_and_rom),
        ("split into an unmapped page", split_into_unmapped_page),
    ];
    let mut failures = Vec::new();
    for (name, check) in checks {
        match check() {
            Ok(()) => {}
            Err(e) if e.starts_with(&skip("")) => return Err(e),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
    Ok(Pass)
}
