// SPDX-License-Identifier: GPL-2.0

//! Host tests for VM-exit decoding, against values real CPUs report, plus
//! exhaustive and random sweeps showing that no input panics.

extern crate std;

use crate::exit::*;

/// A xorshift64 generator: deterministic, no external crates.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Raw values for the sweeps: every 16-bit value, then random 64-bit ones
/// and random ones with the low 16 bits swept.
fn sweep(mut f: impl FnMut(u64)) {
    for raw in 0..=u64::from(u16::MAX) {
        f(raw);
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..100_000 {
        let r = rng.next();
        f(r);
        f(r & !0xffff | (r >> 48));
    }
}

// --- Exit reasons -----------------------------------------------------------

#[test]
fn exit_reason_known_numbers() {
    assert_eq!(ExitReason::try_from(0), Ok(ExitReason::ExceptionNmi));
    assert_eq!(ExitReason::try_from(10), Ok(ExitReason::Cpuid));
    assert_eq!(ExitReason::try_from(30), Ok(ExitReason::IoInstruction));
    assert_eq!(ExitReason::try_from(48), Ok(ExitReason::EptViolation));
    assert_eq!(ExitReason::try_from(64), Ok(ExitReason::Xrstors));
    assert_eq!(ExitReason::try_from(67), Ok(ExitReason::Umwait));
    assert_eq!(ExitReason::try_from(68), Ok(ExitReason::Tpause));
    assert_eq!(ExitReason::try_from(74), Ok(ExitReason::BusLock));
    assert_eq!(ExitReason::try_from(75), Ok(ExitReason::InstructionTimeout));
    assert_eq!(ExitReason::try_from(77), Ok(ExitReason::Tdcall));
    assert_eq!(ExitReason::try_from(85), Ok(ExitReason::WrmsrImm));
    for gap in [35, 38, 42, 71, 80, 81, 82, 83, 86, 0x100, 0xffff] {
        assert_eq!(ExitReason::try_from(gap), Err(Unknown(gap.into())));
    }
}

#[test]
fn exit_reason_all_u16() {
    let mut known = 0;
    for raw in 0..=u16::MAX {
        match ExitReason::try_from(raw) {
            Ok(r) => {
                known += 1;
                assert_eq!(r as u16, raw);
                assert_eq!(u16::from(r), raw);
                assert!(ExitReason::ALL.contains(&r));
            }
            Err(e) => {
                assert_eq!(e, Unknown(raw.into()));
                assert!(ExitReason::ALL.iter().all(|r| *r as u16 != raw));
            }
        }
    }
    assert_eq!(known, ExitReason::ALL.len());
    // ALL is sorted and free of duplicates.
    assert!(ExitReason::ALL.windows(2).all(|w| (w[0] as u16) < (w[1] as u16)));
}

#[test]
fn exit_info_real_values() {
    // HLT.
    assert_eq!(
        ExitInfo::try_from(12),
        Ok(ExitInfo { reason: ExitReason::Hlt, entry_failure: false })
    );
    // VM entry failed on invalid guest state: 0x80000021.
    assert_eq!(
        ExitInfo::try_from(0x8000_0021),
        Ok(ExitInfo { reason: ExitReason::EntryFailGuestState, entry_failure: true })
    );
    // Machine check during VM entry: 0x80000029.
    assert_eq!(
        ExitInfo::try_from(0x8000_0029),
        Ok(ExitInfo { reason: ExitReason::EntryFailMachineCheck, entry_failure: true })
    );
    // Flag bits do not disturb the basic reason.
    let raw = 30 | ExitInfo::ENCLAVE_MODE | ExitInfo::PENDING_MTF | ExitInfo::FROM_VMX_ROOT;
    assert_eq!(ExitInfo::try_from(raw).map(|i| i.reason), Ok(ExitReason::IoInstruction));
    // Unknown basic reason: the whole raw value comes back.
    assert_eq!(ExitInfo::try_from(0x8000_0023), Err(Unknown(0x8000_0023)));
    assert_eq!(ExitInfo::try_from(0xffff_ffff), Err(Unknown(0xffff_ffff)));
}

#[test]
fn exit_info_sweep() {
    sweep(|raw| {
        let raw = raw as u32;
        match ExitInfo::try_from(raw) {
            Ok(i) => {
                assert_eq!(i.reason as u16, raw as u16);
                assert_eq!(i.entry_failure, raw >> 31 == 1);
            }
            Err(e) => {
                assert_eq!(e, Unknown(raw.into()));
                assert!(ExitReason::try_from(raw as u16).is_err());
            }
        }
    });
}

// --- I/O qualification ------------------------------------------------------

#[test]
fn io_qual_real_values() {
    // out %al,$0x80: 1 byte, OUT, immediate port 0x80.
    assert_eq!(
        IoQual::try_from(0x0080_0040),
        Ok(IoQual {
            size: 1,
            input: false,
            string: false,
            rep: false,
            immediate: true,
            port: 0x80
        })
    );
    // in %dx,%ax with DX = 0x1f0: 2 bytes, IN, port in DX.
    assert_eq!(
        IoQual::try_from(0x01f0_0009),
        Ok(IoQual {
            size: 2,
            input: true,
            string: false,
            rep: false,
            immediate: false,
            port: 0x1f0
        })
    );
    // rep outsb with DX = 0x3f8.
    assert_eq!(
        IoQual::try_from(0x03f8_0030),
        Ok(IoQual {
            size: 1,
            input: false,
            string: true,
            rep: true,
            immediate: false,
            port: 0x3f8
        })
    );
    // in $0x71,%eax: 4 bytes, IN, immediate.
    assert_eq!(
        IoQual::try_from(0x0071_004b),
        Ok(IoQual { size: 4, input: true, string: false, rep: false, immediate: true, port: 0x71 })
    );
    // rep insw with DX = 0xcfc.
    assert_eq!(
        IoQual::try_from(0x0cfc_0039),
        Ok(IoQual { size: 2, input: true, string: true, rep: true, immediate: false, port: 0xcfc })
    );
    // outl %eax,(%dx) with DX = 0xffff: the top port.
    assert_eq!(IoQual::try_from(0xffff_0003).map(|q| (q.size, q.port)), Ok((4, 0xffff)));
    // Size encoding 2 (3 bytes) and 4-7 are not defined.
    for bad in [0x2, 0x4, 0x5, 0x6, 0x7, 0x0080_0042] {
        assert_eq!(IoQual::try_from(bad), Err(Unknown(bad)));
    }
}

#[test]
fn io_qual_sweep() {
    sweep(|raw| match IoQual::try_from(raw) {
        Ok(q) => {
            assert!(matches!(raw & 7, 0 | 1 | 3));
            assert!(matches!(q.size, 1 | 2 | 4));
            assert_eq!(q.port, (raw >> 16) as u16);
            // Reserved bits 15:7 and 63:32 are ignored.
            assert_eq!(IoQual::try_from(raw & 0xffff_007f), Ok(q));
        }
        Err(e) => {
            assert_eq!(e, Unknown(raw));
            assert!(matches!(raw & 7, 2 | 4..=7));
        }
    });
}

// --- Control-register accesses ----------------------------------------------

#[test]
fn cr_access_real_values() {
    // mov %rax,%cr0
    assert_eq!(CrAccess::try_from(0x0), Ok(CrAccess::MovTo { cr: 0, gpr: 0 }));
    // mov %cr3,%rbx
    assert_eq!(CrAccess::try_from(0x313), Ok(CrAccess::MovFrom { cr: 3, gpr: 3 }));
    // mov %rcx,%cr4
    assert_eq!(CrAccess::try_from(0x104), Ok(CrAccess::MovTo { cr: 4, gpr: 1 }));
    // mov %r15,%cr8
    assert_eq!(CrAccess::try_from(0xf08), Ok(CrAccess::MovTo { cr: 8, gpr: 15 }));
    // mov %cr8,%rax
    assert_eq!(CrAccess::try_from(0x018), Ok(CrAccess::MovFrom { cr: 8, gpr: 0 }));
    // clts
    assert_eq!(CrAccess::try_from(0x20), Ok(CrAccess::Clts));
    // lmsw %ax with AX = 1 (set CR0.PE).
    assert_eq!(
        CrAccess::try_from(0x0001_0030),
        Ok(CrAccess::Lmsw { source: 1, memory: false, gla_valid: false })
    );
    // lmsw (%rdi) loading 0x0031.
    assert_eq!(
        CrAccess::try_from(0x0031_0070),
        Ok(CrAccess::Lmsw { source: 0x31, memory: true, gla_valid: true })
    );
    // MOV to CR1, CR2, CR5-CR7, CR9-CR15 are not defined.
    for cr in [1u64, 2, 5, 6, 7, 9, 10, 15] {
        assert_eq!(CrAccess::try_from(cr), Err(Unknown(cr)));
        assert_eq!(CrAccess::try_from(cr | 0x10), Err(Unknown(cr | 0x10)));
    }
}

#[test]
fn cr_access_sweep() {
    sweep(|raw| match CrAccess::try_from(raw) {
        Ok(CrAccess::MovTo { cr, gpr }) | Ok(CrAccess::MovFrom { cr, gpr }) => {
            assert!(matches!(cr, 0 | 3 | 4 | 8));
            assert!(gpr < 16);
            assert!((raw >> 4) & 3 < 2);
        }
        Ok(CrAccess::Clts) => assert_eq!((raw >> 4) & 3, 2),
        Ok(CrAccess::Lmsw { source, memory, gla_valid }) => {
            assert_eq!((raw >> 4) & 3, 3);
            assert_eq!(source, (raw >> 16) as u16);
            assert_eq!(memory, raw & 0x40 != 0);
            assert_eq!(gla_valid, memory);
        }
        Err(e) => {
            assert_eq!(e, Unknown(raw));
            assert!((raw >> 4) & 3 < 2 && !matches!(raw & 0xf, 0 | 3 | 4 | 8));
        }
    });
}

// --- EPT violations ---------------------------------------------------------

#[test]
fn ept_violation_real_values() {
    // Write to a not-present page, through a guest-linear translation.
    let v = EptViolation::try_from(0x182).unwrap();
    assert_eq!(
        v,
        EptViolation {
            read: false,
            write: true,
            fetch: false,
            readable: false,
            writable: false,
            executable: false,
            gla_valid: true,
            gla_translated: true,
            nmi_unblocking: false,
        }
    );
    assert_eq!(v.access(), Access::Write);
    // Read of a not-present page.
    assert_eq!(EptViolation::try_from(0x181).unwrap().access(), Access::Read);
    // Fetch from a read/write, non-executable page.
    let v = EptViolation::try_from(0x19c).unwrap();
    assert_eq!(v.access(), Access::Fetch);
    assert!(v.readable && v.writable && !v.executable);
    // Write to a read/execute page (dirty logging).
    let v = EptViolation::try_from(0x1aa).unwrap();
    assert_eq!(v.access(), Access::Write);
    assert!(v.readable && !v.writable && v.executable);
    // A/D update to a read-only guest paging structure during the walk:
    // bit 7 set, bit 8 clear.
    let v = EptViolation::try_from(0x8a).unwrap();
    assert!(v.gla_valid && !v.gla_translated);
    assert_eq!(v.access(), Access::Write);
    // No linear address (e.g. a physical access): bit 8 means nothing.
    let v = EptViolation::try_from(0x101).unwrap();
    assert!(!v.gla_valid && !v.gla_translated);
    // NMI unblocking due to IRET.
    assert!(EptViolation::try_from(0x1182).unwrap().nmi_unblocking);
    // Locked read-modify-write: write wins over read.
    assert_eq!(EptViolation::try_from(0x3).unwrap().access(), Access::Write);
    // Fetch wins over read.
    assert_eq!(EptViolation::try_from(0x5).unwrap().access(), Access::Fetch);
    // No access bits: nothing caused it.
    for bad in [0x0, 0x38, 0x180, 0x1000, 0xffff_fff8] {
        assert_eq!(EptViolation::try_from(bad), Err(Unknown(bad)));
    }
}

#[test]
fn ept_violation_sweep() {
    sweep(|raw| match EptViolation::try_from(raw) {
        Ok(v) => {
            assert_ne!(raw & 7, 0);
            assert_eq!((v.read, v.write, v.fetch), (raw & 1 != 0, raw & 2 != 0, raw & 4 != 0));
            assert!(!v.gla_translated || v.gla_valid);
            let want = if raw & 2 != 0 {
                Access::Write
            } else if raw & 4 != 0 {
                Access::Fetch
            } else {
                Access::Read
            };
            assert_eq!(v.access(), want);
        }
        Err(e) => {
            assert_eq!(e, Unknown(raw));
            assert_eq!(raw & 7, 0);
        }
    });
}

// --- APIC accesses ----------------------------------------------------------

#[test]
fn apic_access_real_values() {
    // Linear write to EOI (offset 0xb0).
    assert_eq!(
        ApicAccess::try_from(0x10b0),
        Ok(ApicAccess {
            offset: 0xb0,
            kind: ApicAccessKind::LinearWrite,
            async_instruction: false
        })
    );
    // Linear read of TPR (offset 0x80).
    assert_eq!(
        ApicAccess::try_from(0x0080),
        Ok(ApicAccess { offset: 0x80, kind: ApicAccessKind::LinearRead, async_instruction: false })
    );
    // Linear write to ICR low (0x300), asynchronous.
    assert_eq!(
        ApicAccess::try_from(0x1_1300),
        Ok(ApicAccess {
            offset: 0x300,
            kind: ApicAccessKind::LinearWrite,
            async_instruction: true
        })
    );
    assert_eq!(ApicAccess::try_from(0x2000).map(|a| a.kind), Ok(ApicAccessKind::LinearFetch));
    assert_eq!(
        ApicAccess::try_from(0x3020).map(|a| (a.kind, a.offset)),
        Ok((ApicAccessKind::LinearEventDelivery, 0x20))
    );
    // Guest-physical accesses: the offset bits are undefined and dropped.
    assert_eq!(
        ApicAccess::try_from(0xa0b0),
        Ok(ApicAccess {
            offset: 0,
            kind: ApicAccessKind::PhysicalEventDelivery,
            async_instruction: false,
        })
    );
    assert_eq!(
        ApicAccess::try_from(0xf000).map(|a| a.kind),
        Ok(ApicAccessKind::PhysicalFetchOrExecution)
    );
    for ty in [4u64, 5, 6, 7, 8, 9, 11, 12, 13, 14] {
        let raw = (ty << 12) | 0x80;
        assert_eq!(ApicAccess::try_from(raw), Err(Unknown(raw)));
    }
}

#[test]
fn apic_access_sweep() {
    sweep(|raw| {
        let ty = ((raw >> 12) & 0xf) as u8;
        match ApicAccess::try_from(raw) {
            Ok(a) => {
                assert_eq!(a.kind as u8, ty);
                assert_eq!(a.kind.is_linear(), ty < 4);
                let offset = if ty < 4 { (raw & 0xfff) as u16 } else { 0 };
                assert_eq!(a.offset, offset);
                assert_eq!(a.async_instruction, raw & 0x1_0000 != 0);
            }
            Err(e) => {
                assert_eq!(e, Unknown(raw));
                assert!(matches!(ty, 4..=9 | 11..=14));
            }
        }
    });
}

// --- Interruption information -----------------------------------------------

const ALL_TYPES: [EventType; 7] = [
    EventType::External,
    EventType::Nmi,
    EventType::HardwareException,
    EventType::SoftwareInterrupt,
    EventType::PrivilegedSoftwareException,
    EventType::SoftwareException,
    EventType::Other,
];

#[test]
fn interruption_real_values() {
    // IDT vectoring: #PF with an error code.
    assert_eq!(Interruption::decode(0x8000_0b0e), Ok(Some(Interruption::exception(14, true))));
    // NMI.
    assert_eq!(
        Interruption::decode(0x8000_0202),
        Ok(Some(Interruption {
            vector: 2,
            kind: EventType::Nmi,
            has_error: false,
            nmi_unblocking: false,
        }))
    );
    // External interrupt, vector 0x20.
    assert_eq!(
        Interruption::decode(0x8000_0020).map(|i| i.map(|i| (i.kind, i.vector))),
        Ok(Some((EventType::External, 0x20)))
    );
    // int3, int $0x80, int1, #UD, #GP(err).
    assert_eq!(
        Interruption::decode(0x8000_0603).map(|i| i.map(|i| i.kind)),
        Ok(Some(EventType::SoftwareException))
    );
    assert_eq!(
        Interruption::decode(0x8000_0480).map(|i| i.map(|i| (i.kind, i.vector))),
        Ok(Some((EventType::SoftwareInterrupt, 0x80)))
    );
    assert_eq!(
        Interruption::decode(0x8000_0501).map(|i| i.map(|i| i.kind)),
        Ok(Some(EventType::PrivilegedSoftwareException))
    );
    assert_eq!(Interruption::decode(0x8000_0306), Ok(Some(Interruption::exception(6, false))));
    assert_eq!(Interruption::decode(0x8000_0b0d), Ok(Some(Interruption::exception(13, true))));
    // VM-exit interruption information with NMI unblocking due to IRET.
    let pf = Interruption::decode(0x8000_1b0e).unwrap().unwrap();
    assert!(pf.nmi_unblocking);
    assert_eq!(pf.encode(), 0x8000_0b0e);
    // Not valid: nothing to decode, whatever the other bits hold.
    assert_eq!(Interruption::decode(0), Ok(None));
    assert_eq!(Interruption::decode(0x0000_0b0e), Ok(None));
    assert_eq!(Interruption::decode(0x7fff_ffff), Ok(None));
    // Reserved type 1 and reserved bits 30:13.
    for bad in [0x8000_0100u32, 0x8000_2000, 0xc000_0000, 0xffff_ffff] {
        assert_eq!(Interruption::decode(bad), Err(Unknown(bad.into())));
    }
    // Encoding for VM entry.
    assert_eq!(Interruption::exception(14, true).encode(), 0x8000_0b0e);
    assert_eq!(Interruption::exception(13, true).encode(), 0x8000_0b0d);
    assert_eq!(Interruption::exception(6, false).encode(), 0x8000_0306);
}

#[test]
fn interruption_round_trips() {
    for kind in ALL_TYPES {
        assert_eq!(EventType::try_from(kind as u8), Ok(kind));
        for vector in [0u8, 1, 2, 3, 8, 14, 0x20, 0x80, 0xfe, 0xff] {
            for has_error in [false, true] {
                let i = Interruption { vector, kind, has_error, nmi_unblocking: false };
                let raw = i.encode();
                assert_eq!(raw & 0x7fff_f000, 0, "{i:?}");
                assert_eq!(raw >> 31, 1);
                assert_eq!(Interruption::decode(raw), Ok(Some(i)));
                // NMI unblocking is never encoded.
                let u = Interruption { nmi_unblocking: true, ..i };
                assert_eq!(u.encode(), raw);
                assert_eq!(Interruption::decode(raw | 1 << 12), Ok(Some(u)));
            }
        }
    }
    assert_eq!(EventType::try_from(1), Err(Unknown(1)));
    assert_eq!(EventType::try_from(8), Err(Unknown(8)));
}

#[test]
fn interruption_sweep() {
    let check = |raw: u32| match Interruption::decode(raw) {
        Ok(None) => assert_eq!(raw >> 31, 0),
        Ok(Some(i)) => {
            assert_eq!(raw & 0x7fff_e000, 0);
            assert_eq!(i.encode(), raw & !(1 << 12));
        }
        Err(e) => {
            assert_eq!(e, Unknown(raw.into()));
            assert!(raw & 0x7fff_e000 != 0 || (raw >> 8) & 7 == 1);
        }
    };
    // Every low 16 bits with the valid bit clear and set.
    for low in 0..=u32::from(u16::MAX) {
        check(low);
        check(low | 1 << 31);
    }
    sweep(|raw| check(raw as u32));
}

// --- INS/OUTS instruction information ---------------------------------------

#[test]
fn string_io_info_real_values() {
    // rep outsb in 64-bit mode, DS segment.
    assert_eq!(StringIoInfo::try_from(0x1_8100), Ok(StringIoInfo { addr_size: 8, segment: 3 }));
    // outsw with a 32-bit address and an FS override (fs outsw).
    assert_eq!(StringIoInfo::try_from(0x2_0080), Ok(StringIoInfo { addr_size: 4, segment: 4 }));
    // Real-mode outsb with ES override: 16-bit address, segment 0.
    assert_eq!(StringIoInfo::try_from(0x0), Ok(StringIoInfo { addr_size: 2, segment: 0 }));
    // Undefined bits 6:0, 14:10 and 31:18 are ignored.
    assert_eq!(
        StringIoInfo::try_from(0xfffc_7c7f | 0x1_8100),
        Ok(StringIoInfo { addr_size: 8, segment: 3 })
    );
    // Address size 3+ and segments 6 and 7 are not defined.
    for bad in [0x180u32, 0x200, 0x380, 0x3_0000, 0x3_8000] {
        assert_eq!(StringIoInfo::try_from(bad), Err(Unknown(bad.into())));
    }
    // For INS the segment field is undefined and reported as ES.
    assert_eq!(StringIoInfo::for_ins(0x3_8100), Ok(StringIoInfo { addr_size: 8, segment: 0 }));
    assert_eq!(StringIoInfo::for_ins(0x180), Err(Unknown(0x180)));
}

#[test]
fn string_io_info_sweep() {
    let check = |raw: u32| {
        let size = (raw >> 7) & 7;
        let seg = (raw >> 15) & 7;
        match StringIoInfo::try_from(raw) {
            Ok(s) => {
                assert_eq!(s.addr_size, 2 << size);
                assert_eq!(u32::from(s.segment), seg);
            }
            Err(e) => {
                assert_eq!(e, Unknown(raw.into()));
                assert!(size > 2 || seg > 5);
            }
        }
        match StringIoInfo::for_ins(raw) {
            Ok(s) => assert_eq!((s.addr_size, s.segment), (2 << size, 0)),
            Err(e) => assert!(e == Unknown(raw.into()) && size > 2),
        }
    };
    // Bits 17:0 hold both fields: sweep them all.
    for raw in 0..(1u32 << 18) {
        check(raw);
    }
    sweep(|raw| check(raw as u32));
}

// --- VM-instruction errors --------------------------------------------------

#[test]
fn instruction_error_names() {
    assert_eq!(instruction_error_name(7), "VM entry with invalid control field(s)");
    assert_eq!(instruction_error_name(8), "VM entry with invalid host-state field(s)");
    assert_eq!(instruction_error_name(5), "VMRESUME with non-launched VMCS");
    assert_eq!(instruction_error_name(28), "Invalid operand to INVEPT/INVVPID");
    for n in [0, 14, 21, 27, 29, 1000, u32::MAX] {
        assert_eq!(instruction_error_name(n), "unknown VM-instruction error");
    }
    for n in (1..=28).filter(|n| ![14, 21, 27].contains(n)) {
        assert_ne!(instruction_error_name(n), "unknown VM-instruction error", "{n}");
    }
}

#[test]
fn unknown_displays_hex() {
    assert_eq!(std::format!("{}", Unknown(0x2a)), "unknown VMX encoding 0x2a");
}
