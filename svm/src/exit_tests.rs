// SPDX-License-Identifier: GPL-2.0

//! Host tests for #VMEXIT decoding, against worked encodings from the APM,
//! plus exhaustive and random sweeps showing that no input panics.

extern crate std;

use crate::exit::*;
use vmm_x86::insn::Seg;

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

// --- Exit codes -------------------------------------------------------------

/// Every exit code without an operand, as APM Table C-1 numbers it.
const FIXED: &[(u64, ExitCode)] = &[
    (0x60, ExitCode::Intr),
    (0x61, ExitCode::Nmi),
    (0x62, ExitCode::Smi),
    (0x63, ExitCode::Init),
    (0x64, ExitCode::Vintr),
    (0x65, ExitCode::Cr0SelWrite),
    (0x66, ExitCode::IdtrRead),
    (0x67, ExitCode::GdtrRead),
    (0x68, ExitCode::LdtrRead),
    (0x69, ExitCode::TrRead),
    (0x6a, ExitCode::IdtrWrite),
    (0x6b, ExitCode::GdtrWrite),
    (0x6c, ExitCode::LdtrWrite),
    (0x6d, ExitCode::TrWrite),
    (0x6e, ExitCode::Rdtsc),
    (0x6f, ExitCode::Rdpmc),
    (0x70, ExitCode::Pushf),
    (0x71, ExitCode::Popf),
    (0x72, ExitCode::Cpuid),
    (0x73, ExitCode::Rsm),
    (0x74, ExitCode::Iret),
    (0x75, ExitCode::Swint),
    (0x76, ExitCode::Invd),
    (0x77, ExitCode::Pause),
    (0x78, ExitCode::Hlt),
    (0x79, ExitCode::Invlpg),
    (0x7a, ExitCode::Invlpga),
    (0x7b, ExitCode::Ioio),
    (0x7c, ExitCode::Msr),
    (0x7d, ExitCode::TaskSwitch),
    (0x7e, ExitCode::FerrFreeze),
    (0x7f, ExitCode::Shutdown),
    (0x80, ExitCode::Vmrun),
    (0x81, ExitCode::Vmmcall),
    (0x82, ExitCode::Vmload),
    (0x83, ExitCode::Vmsave),
    (0x84, ExitCode::Stgi),
    (0x85, ExitCode::Clgi),
    (0x86, ExitCode::Skinit),
    (0x87, ExitCode::Rdtscp),
    (0x88, ExitCode::Icebp),
    (0x89, ExitCode::Wbinvd),
    (0x8a, ExitCode::Monitor),
    (0x8b, ExitCode::Mwait),
    (0x8c, ExitCode::MwaitConditional),
    (0x8d, ExitCode::Xsetbv),
    (0x8e, ExitCode::Rdpru),
    (0x8f, ExitCode::EferWriteTrap),
    (0xa0, ExitCode::Invlpgb),
    (0xa1, ExitCode::InvlpgbIllegal),
    (0xa2, ExitCode::Invpcid),
    (0xa3, ExitCode::Mcommit),
    (0xa4, ExitCode::Tlbsync),
    (0xa5, ExitCode::BusLock),
    (0xa6, ExitCode::IdleHlt),
    (0x400, ExitCode::Npf),
    (0x401, ExitCode::AvicIncompleteIpi),
    (0x402, ExitCode::AvicNoaccel),
    (0x403, ExitCode::Vmgexit),
    (u64::MAX, ExitCode::Invalid),
];

#[test]
fn exit_code_fixed_table_round_trips() {
    for &(raw, code) in FIXED {
        assert_eq!(ExitCode::try_from(raw), Ok(code), "{raw:#x}");
        assert_eq!(u64::from(code), raw, "{code:?}");
    }
    // Sorted, hence free of duplicates.
    assert!(FIXED.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn exit_code_ranges_round_trip() {
    for n in 0..16u8 {
        let n64 = u64::from(n);
        for (base, code) in [
            (0x00, ExitCode::CrRead(n)),
            (0x10, ExitCode::CrWrite(n)),
            (0x20, ExitCode::DrRead(n)),
            (0x30, ExitCode::DrWrite(n)),
            (0x90, ExitCode::CrWriteTrap(n)),
        ] {
            assert_eq!(ExitCode::try_from(base + n64), Ok(code));
            assert_eq!(u64::from(code), base + n64);
        }
    }
    for v in 0..32u8 {
        let raw = 0x40 + u64::from(v);
        assert_eq!(ExitCode::try_from(raw), Ok(ExitCode::Exception(v)));
        assert_eq!(u64::from(ExitCode::Exception(v)), raw);
    }
    // VMEXIT_EXCP14 (#PF), VMEXIT_EXCP17 (#AC), VMEXIT_CR3_WRITE.
    assert_eq!(ExitCode::try_from(0x4e), Ok(ExitCode::Exception(14)));
    assert_eq!(ExitCode::try_from(0x51), Ok(ExitCode::Exception(17)));
    assert_eq!(ExitCode::try_from(0x13), Ok(ExitCode::CrWrite(3)));
    assert_eq!(ExitCode::try_from(0x98), Ok(ExitCode::CrWriteTrap(8)));
    // An out-of-range operand is masked, never turned into another code.
    assert_eq!(u64::from(ExitCode::CrRead(0x13)), 0x03);
    assert_eq!(u64::from(ExitCode::CrWriteTrap(0xff)), 0x9f);
    assert_eq!(u64::from(ExitCode::Exception(33)), 0x41);
}

#[test]
fn exit_code_names_the_glue_matches() {
    use ExitCode::*;
    for (raw, code) in [
        (0x60, Intr),
        (0x61, Nmi),
        (0x62, Smi),
        (0x63, Init),
        (0x41, Exception(1)),
        (0x6f, Rdpmc),
        (0x72, Cpuid),
        (0x78, Hlt),
        (0x7a, Invlpga),
        (0x7b, Ioio),
        (0x7c, Msr),
        (0x7f, Shutdown),
        (0x80, Vmrun),
        (0x81, Vmmcall),
        (0x82, Vmload),
        (0x83, Vmsave),
        (0x84, Stgi),
        (0x85, Clgi),
        (0x86, Skinit),
        (0x8a, Monitor),
        (0x8b, Mwait),
        (0x8c, MwaitConditional),
        (0x8d, Xsetbv),
        (0x400, Npf),
        (-1i64 as u64, Invalid),
    ] {
        assert_eq!(ExitCode::try_from(raw), Ok(code), "{raw:#x}");
    }
}

#[test]
fn exit_code_unknown_is_an_error() {
    for raw in [
        0x65 + 0x100,
        0xa7,
        0xff,
        0x100,
        0x3ff,
        0x404,
        0x1234,
        0xf000_0000,
        0x1_0000_0060,
        0x8000_0000_0000_0400,
        -2i64 as u64,
    ] {
        assert_eq!(ExitCode::try_from(raw), Err(Unknown(raw)));
    }
    assert_eq!(std::format!("{}", Unknown(0x1234)), "unknown SVM encoding 0x1234");
}

#[test]
fn exit_code_sweep() {
    let mut known = 0;
    sweep(|raw| match ExitCode::try_from(raw) {
        Ok(code) => {
            if raw <= 0xffff {
                known += 1;
            }
            assert_eq!(u64::from(code), raw);
        }
        Err(e) => assert_eq!(e, Unknown(raw)),
    });
    // Everything but VMEXIT_INVALID lies below 0x10000.
    assert_eq!(known, FIXED.len() - 1 + 5 * 16 + 32);
}

// --- IOIO -------------------------------------------------------------------

/// `in al, dx` in 64-bit mode, DX = 0x3f8: port 0x3f8 (31:16), A64 (bit
/// 9), SZ8 (bit 4), TYPE = IN (bit 0).
const IN_AL_DX: u64 = 0x03f8_0000 | 1 << 9 | 1 << 4 | 1;
/// `out 0x80, al` in real mode: port 0x80, A16 (bit 7), SZ8, TYPE = OUT.
const OUT_80_AL: u64 = 0x0080_0000 | 1 << 7 | 1 << 4;
/// `rep outsw` with a 32-bit address size (67 prefix in 16-bit code or
/// none in 32-bit code), DS, DX = 0x1f0: SEG = 3 (bits 12:10), A32 (bit
/// 8), SZ16 (bit 5), REP (bit 3), STR (bit 2), TYPE = OUT.
const REP_OUTSW: u64 = 0x01f0_0000 | 3 << 10 | 1 << 8 | 1 << 5 | 1 << 3 | 1 << 2;
/// `insd` in 64-bit mode, DX = 0xcfc: SEG = 0 (ES), A64, SZ32 (bit 6),
/// STR, TYPE = IN.
const INSD: u64 = 0x0cfc_0000 | 1 << 9 | 1 << 6 | 1 << 2 | 1;

#[test]
fn io_worked_encodings() {
    assert_eq!(IN_AL_DX, 0x03f8_0211);
    assert_eq!(OUT_80_AL, 0x0080_0090);
    assert_eq!(REP_OUTSW, 0x01f0_0d2c);
    assert_eq!(INSD, 0x0cfc_0245);

    let io = |port, size, input, string, rep, addr_size, segment| IoInfo {
        port,
        size,
        input,
        string,
        rep,
        addr_size,
        segment,
    };
    for da in [false, true] {
        let in_al = io(0x3f8, 1, true, false, false, Some(8), None);
        assert_eq!(IoInfo::decode(IN_AL_DX, da), Ok(in_al));
        let out_80 = io(0x80, 1, false, false, false, Some(2), None);
        assert_eq!(IoInfo::decode(OUT_80_AL, da), Ok(out_80));
        // QEMU's TCG leaves the address-size bits clear: `out 0x15, al`
        // came as 0x0015_0010 (SZ8 only).
        let tcg = io(0x15, 1, false, false, false, None, None);
        assert_eq!(IoInfo::decode(0x0015_0010, da), Ok(tcg));
    }
    let rep_outsw = io(0x1f0, 2, false, true, true, Some(4), Some(3));
    assert_eq!(IoInfo::decode(REP_OUTSW, true), Ok(rep_outsw));
    assert_eq!(IoInfo::decode(INSD, true), Ok(io(0xcfc, 4, true, true, false, Some(8), Some(0))));
    // Without decode assists SEG is not filled, and decode does not read it.
    let no_seg = io(0x1f0, 2, false, true, true, Some(4), None);
    assert_eq!(IoInfo::decode(REP_OUTSW, false), Ok(no_seg));
    // TryFrom reports SEG raw, whatever the instruction, for the caller to
    // judge.
    assert_eq!(IoInfo::try_from(REP_OUTSW), IoInfo::decode(REP_OUTSW, true));
    assert_eq!(IoInfo::try_from(INSD).map(|i| i.segment), Ok(Some(0)));
    assert_eq!(IoInfo::try_from(IN_AL_DX).map(|i| i.segment), Ok(Some(0)));
    assert_eq!(IoInfo::try_from(IN_AL_DX | 5 << 10).map(|i| i.segment), Ok(Some(5)));
}

#[test]
fn io_segment_names() {
    let seg = |s: u64| IoInfo::decode(REP_OUTSW & !(7 << 10) | s << 10, true).map(|i| i.seg());
    assert_eq!(seg(0), Ok(Some(Seg::Es)));
    assert_eq!(seg(1), Ok(Some(Seg::Cs)));
    assert_eq!(seg(2), Ok(Some(Seg::Ss)));
    assert_eq!(seg(3), Ok(Some(Seg::Ds)));
    assert_eq!(seg(4), Ok(Some(Seg::Fs)));
    assert_eq!(seg(5), Ok(Some(Seg::Gs)));
    // SEG 6 and 7 are not defined.
    for s in [6, 7] {
        let raw = REP_OUTSW & !(7 << 10) | s << 10;
        assert_eq!(IoInfo::decode(raw, true), Err(Unknown(raw)));
        assert_eq!(IoInfo::try_from(raw).map(|i| (i.segment, i.seg())), Ok((None, None)));
        // Ignored without decode assists or for a non-string instruction.
        assert_eq!(IoInfo::decode(raw, false).map(|i| i.segment), Ok(None));
        assert_eq!(IoInfo::decode(raw & !(1 << 2), true).map(|i| i.segment), Ok(None));
    }
    assert_eq!(IoInfo::decode(IN_AL_DX, true).map(|i| i.seg()), Ok(None));
}

#[test]
fn io_invalid_size_or_address_bits() {
    let size = |bits: u64| OUT_80_AL & !(7 << 4) | bits << 4;
    let addr = |bits: u64| OUT_80_AL & !(7 << 7) | bits << 7;
    for bits in [0b000, 0b011, 0b101, 0b110, 0b111] {
        let raw = size(bits);
        assert_eq!(IoInfo::try_from(raw), Err(Unknown(raw)));
        assert_eq!(IoInfo::decode(raw, true), Err(Unknown(raw)));
    }
    for bits in [0b011, 0b101, 0b110, 0b111] {
        let raw = addr(bits);
        assert_eq!(IoInfo::try_from(raw), Err(Unknown(raw)));
        assert_eq!(IoInfo::decode(raw, true), Err(Unknown(raw)));
    }
    // No address-size bit: the size is left to the caller.
    assert_eq!(IoInfo::try_from(addr(0)).map(|i| i.addr_size), Ok(None));
    for (bits, bytes) in [(0b001, 1), (0b010, 2), (0b100, 4)] {
        assert_eq!(IoInfo::try_from(size(bits)).map(|i| i.size), Ok(bytes));
    }
    for (bits, bytes) in [(0b001, 2), (0b010, 4), (0b100, 8)] {
        assert_eq!(IoInfo::try_from(addr(bits)).map(|i| i.addr_size), Ok(Some(bytes)));
    }
}

#[test]
fn io_reserved_bits_are_ignored() {
    // Bit 1, bits 15:13 and bits 63:32.
    let reserved = 0xffff_ffff_0000_e002;
    for raw in [IN_AL_DX, OUT_80_AL, REP_OUTSW, INSD] {
        for da in [false, true] {
            assert_eq!(IoInfo::decode(raw | reserved, da), IoInfo::decode(raw, da));
        }
    }
}

#[test]
fn io_sweep() {
    let one_hot = |b: u64| matches!(b & 7, 1 | 2 | 4);
    sweep(|raw| {
        let string = raw & 4 != 0;
        let seg_raw = (raw >> 10) & 7;
        let valid = one_hot(raw >> 4) && (one_hot(raw >> 7) || (raw >> 7) & 7 == 0);
        let plain = IoInfo::try_from(raw);
        match plain {
            Ok(i) => {
                assert!(valid);
                assert_eq!(i.port, (raw >> 16) as u16);
                assert_eq!(u64::from(i.size), (raw >> 4) & 7);
                let a = (raw >> 7) & 7;
                assert_eq!(i.addr_size.map(u64::from), (a != 0).then_some(a * 2));
                assert_eq!((i.input, i.string, i.rep), (raw & 1 != 0, string, raw & 8 != 0));
                assert_eq!(i.segment.map(u64::from), (seg_raw <= 5).then_some(seg_raw));
                assert_eq!(i.seg().is_some(), seg_raw <= 5);
            }
            Err(e) => {
                assert!(!valid);
                assert_eq!(e, Unknown(raw));
            }
        }
        for da in [false, true] {
            let trusted = string && da;
            match IoInfo::decode(raw, da) {
                Ok(i) => {
                    assert_eq!(Ok(IoInfo { segment: plain.unwrap().segment, ..i }), plain);
                    assert_eq!(i.segment.is_some(), trusted);
                }
                Err(e) => {
                    assert!(!valid || (trusted && seg_raw > 5));
                    assert_eq!(e, Unknown(raw));
                }
            }
        }
    });
}

// --- NPF --------------------------------------------------------------------

#[test]
fn npf_access() {
    // Final translation (bit 32), user (bit 2): a read of an unmapped GPA.
    let read = 0x1_0000_0004;
    // The same with R/W (bit 1): a write, e.g. to an MMIO page.
    let write = 0x1_0000_0006;
    // Present (bit 0) and R/W: a write to a read-only page.
    let write_protect = 0x1_0000_0007;
    // I/D (bit 4): a fetch.
    let fetch = 0x1_0000_0014;
    // Page-table walk (bit 33): the guest's own walk, and its A/D update.
    let walk_read = 0x2_0000_0004;
    let walk_write = 0x2_0000_0006;
    for (raw, access) in [
        (read, Access::Read),
        (write, Access::Write),
        (write_protect, Access::Write),
        (fetch, Access::Fetch),
        (walk_read, Access::Read),
        (walk_write, Access::Write),
        // Write beats fetch, as in the glue.
        (0x1_0000_0016, Access::Write),
        (0, Access::Read),
    ] {
        assert_eq!(NpfInfo::from(raw).access(), access, "{raw:#x}");
    }
    let f = NpfInfo::from(write_protect).flags;
    assert_eq!(
        f,
        NpfFlags::PRESENT | NpfFlags::WRITE | NpfFlags::USER | NpfFlags::FINAL_TRANSLATION
    );
    assert!(NpfInfo::from(walk_read).flags.contains(NpfFlags::PAGE_TABLE_WALK));
    assert!(NpfInfo::from(0x1_0000_000c).flags.contains(NpfFlags::RESERVED));
    assert_eq!(NpfFlags::FETCH.bits(), 0x10);
    assert_eq!(NpfFlags::FINAL_TRANSLATION.bits(), 1 << 32);
    assert_eq!(NpfFlags::PAGE_TABLE_WALK.bits(), 1 << 33);
}

#[test]
fn npf_keeps_unknown_bits() {
    sweep(|raw| assert_eq!(NpfInfo::from(raw).flags.bits(), raw));
}

// --- EXITINTINFO / EVENTINJ -------------------------------------------------

#[test]
fn event_worked_encodings() {
    // V (bit 31), EV (bit 11), TYPE (bits 10:8), VECTOR (bits 7:0).
    for (event, raw) in [
        // #PF with an error code: type 3, EV.
        (EventInj::exception(14, true), 0x8000_0b0e),
        // #GP(0).
        (EventInj::exception(13, true), 0x8000_0b0d),
        // #UD: no error code.
        (EventInj::exception(6, false), 0x8000_0306),
        // #DB and #AC, as the intercept handler re-injects them.
        (EventInj::exception(1, false), 0x8000_0301),
        (EventInj::exception(17, true), 0x8000_0b11),
        // NMI: type 2.
        (EventInj::nmi(), 0x8000_0202),
        // External interrupt 0x20 (the first vector after the exceptions).
        (EventInj::intr(0x20), 0x8000_0020),
        // INT 0x80: type 4.
        (
            EventInj { vector: 0x80, kind: EventType::SoftwareInterrupt, has_error: false },
            0x8000_0480,
        ),
    ] {
        assert_eq!(event.encode(), raw, "{event:?}");
        assert_eq!(EventInj::decode(raw), Ok(Some(event)));
        assert_eq!(EventInj::try_from(raw), Ok(event));
    }
}

#[test]
fn event_not_valid() {
    // V clear: no event, whatever the other bits say.
    for raw in [0, 0x0000_0b0e, 0x7fff_ffff] {
        assert_eq!(EventInj::decode(raw), Ok(None));
        assert_eq!(EventInj::try_from(raw), Err(Unknown(raw.into())));
    }
}

#[test]
fn event_invalid_type_or_reserved_bits() {
    // Types 1, 5, 6 and 7 are reserved.
    for kind in [1u32, 5, 6, 7] {
        let raw = 0x8000_0000 | kind << 8 | 0x0e;
        assert_eq!(EventInj::decode(raw), Err(Unknown(raw.into())));
        assert_eq!(EventInj::try_from(raw), Err(Unknown(raw.into())));
        assert_eq!(EventType::try_from(kind as u8), Err(Unknown(kind.into())));
    }
    // Bits 30:12 are reserved.
    for raw in [0x8000_1b0e, 0xc000_0b0e, 0xffff_f30e] {
        assert_eq!(EventInj::decode(raw), Err(Unknown(raw.into())));
    }
}

#[test]
fn event_round_trips() {
    let kinds =
        [EventType::Intr, EventType::Nmi, EventType::Exception, EventType::SoftwareInterrupt];
    for kind in kinds {
        assert_eq!(EventType::try_from(kind as u8), Ok(kind));
        for vector in 0..=u8::MAX {
            for has_error in [false, true] {
                let e = EventInj { vector, kind, has_error };
                assert_eq!(EventInj::decode(e.encode()), Ok(Some(e)));
            }
        }
    }
    // Every valid raw value encodes back to itself.
    sweep(|raw| {
        let raw = raw as u32 | EventInj::VALID;
        if let Ok(e) = EventInj::try_from(raw) {
            assert_eq!(e.encode(), raw);
        } else {
            let kind = (raw >> 8) & 7;
            assert!(raw & EventInj::RESERVED != 0 || matches!(kind, 1 | 5..=7));
        }
    });
}

#[test]
fn reinject_rule() {
    for (raw, reinject, what) in [
        (0x8000_0020, true, "external interrupt 0x20"),
        (0x8000_0003, true, "external interrupt 3"),
        (0x8000_0202, true, "NMI"),
        (0x8000_0203, true, "NMI, odd vector"),
        (0x8000_0b0e, true, "#PF"),
        (0x8000_0301, true, "#DB"),
        (0x8000_0b11, true, "#AC"),
        (0x8000_0305, true, "#BR"),
        (0x8000_0b08, true, "#DF"),
        (0x8000_0303, false, "#BP from INT3"),
        (0x8000_0304, false, "#OF from INTO"),
        (0x8000_0480, false, "INT 0x80"),
        (0x8000_0403, false, "INT 3 (CD 03)"),
        (0x8000_040e, false, "INT 14"),
    ] {
        assert_eq!(EventInj::try_from(raw).map(|e| e.reinject()), Ok(reinject), "{what}");
    }
}

#[test]
fn reinject_matches_the_glue_formula() {
    // The glue's rule on the raw field: valid and not (type 4, or type 3
    // with vector 3 or 4).
    for low in 0..=0xfffu32 {
        let raw = EventInj::VALID | low;
        let (kind, vector) = ((raw >> 8) & 7, raw & 0xff);
        let soft = kind == 4 || (kind == 3 && (vector == 3 || vector == 4));
        if let Ok(e) = EventInj::try_from(raw) {
            assert_eq!(e.reinject(), !soft, "{raw:#x}");
        }
    }
}

#[test]
fn intercepted_exceptions() {
    assert_eq!(INTERCEPTED_EXCEPTIONS, 0x0002_0002);
    assert_eq!((DB_VECTOR, AC_VECTOR), (1, 17));
}
