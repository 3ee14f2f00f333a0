// SPDX-License-Identifier: GPL-2.0

//! Segmentation: from an effective address to a linear address, with the
//! checks the CPU makes on the way (SDM vol. 3A 3.4.5, 5.3-5.5; vol. 1
//! 3.3.7.1 for canonical addresses).

use super::{insn::Seg, x86::paging::canonical, Exception};

/// A segment register with its hidden (cached descriptor) part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Segment {
    /// The visible selector.
    pub selector: u16,
    /// The base address.
    pub base: u64,
    /// The limit in bytes (already scaled by the granularity bit).
    pub limit: u32,
    /// The access rights in the VMCS layout (SDM table 25-2): bits 3:0
    /// type, 4 S, 6:5 DPL, 7 P, 13 L, 14 D/B, 15 G, 16 unusable.
    pub attr: u32,
}

/// [`Segment::attr`]: the segment is unusable (a null selector was
/// loaded in protected mode).
pub const ATTR_UNUSABLE: u32 = 1 << 16;
/// [`Segment::attr`]: D/B, the default size / big bit.
pub const ATTR_DB: u32 = 1 << 14;
/// [`Segment::attr`]: S, a code or data (not system) segment.
pub const ATTR_S: u32 = 1 << 4;
/// [`Segment::attr`]: P, present.
pub const ATTR_P: u32 = 1 << 7;
/// [`Segment::attr`]: L, a 64-bit code segment.
pub const ATTR_L: u32 = 1 << 13;
/// Type bit 3: code (else data).
const TYPE_CODE: u32 = 1 << 3;
/// Type bit 2 for data: expand-down.
const TYPE_EXPAND_DOWN: u32 = 1 << 2;
/// Type bit 1: writable (data) or readable (code).
const TYPE_RW: u32 = 1 << 1;

impl Segment {
    /// A real-mode style segment: base `selector * 16`, 64 KiB limit,
    /// read/write data.
    pub fn real(selector: u16) -> Self {
        Self { selector, base: u64::from(selector) << 4, limit: 0xffff, attr: 0x93 }
    }

    /// A flat 4 GiB read/write data segment (32-bit), or with `code` an
    /// execute/read code segment; `long` sets L.
    pub fn flat(code: bool, long: bool) -> Self {
        let ty = if code { 0xb } else { 0x3 };
        let l = if long { ATTR_L } else { ATTR_DB };
        Self { selector: 0, base: 0, limit: u32::MAX, attr: ty | ATTR_S | ATTR_P | l | (1 << 15) }
    }

    /// Whether D/B is set.
    pub fn db(&self) -> bool {
        self.attr & ATTR_DB != 0
    }
}

/// What a data access needs of its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// A read.
    Read,
    /// A write (or a read-modify-write).
    Write,
    /// A reference that needs no access right, only the limit:
    /// `clflush` may name a byte of an execute-only code segment (SDM
    /// "CLFLUSH").
    Any,
}

/// The address-translation context: the mode and what it implies.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// 64-bit mode.
    pub long: bool,
    /// Protected mode (CR0.PE) outside virtual-8086 mode.
    pub protected: bool,
    /// CR4.LA57: 57-bit linear addresses.
    pub la57: bool,
}

/// The fault for a bad access through `seg`: #SS(0) for the stack
/// segment, #GP(0) otherwise.
pub fn fault(seg: Seg) -> Exception {
    if seg == Seg::Ss {
        Exception::Ss(0)
    } else {
        Exception::Gp(0)
    }
}

/// The linear address of the `size`-byte access at effective address `ea`
/// through `seg` (whose state is `s`), after the segment's checks: type
/// and limit outside 64-bit mode, canonical form of every byte in it.
pub fn linear(
    ctx: &Ctx,
    seg: Seg,
    s: &Segment,
    ea: u64,
    size: u8,
    usage: Use,
) -> Result<u64, Exception> {
    let size = u64::from(size.max(1));
    if ctx.long {
        let base = if matches!(seg, Seg::Fs | Seg::Gs) { s.base } else { 0 };
        let la = base.wrapping_add(ea);
        let last = la.wrapping_add(size - 1);
        if !canonical(la, ctx.la57) || !canonical(last, ctx.la57) {
            return Err(fault(seg));
        }
        return Ok(la);
    }
    let ea = ea & 0xffff_ffff;
    if ctx.protected {
        if s.attr & ATTR_UNUSABLE != 0 {
            return Err(fault(seg));
        }
        let ty = s.attr & 0xf;
        let ok = match usage {
            Use::Read => ty & TYPE_CODE == 0 || ty & TYPE_RW != 0,
            Use::Write => ty & TYPE_CODE == 0 && ty & TYPE_RW != 0,
            Use::Any => true,
        };
        if !ok {
            return Err(fault(seg));
        }
    }
    let last = ea + size - 1;
    let limit = u64::from(s.limit);
    let data = s.attr & TYPE_CODE == 0;
    let within = if ctx.protected && data && s.attr & TYPE_EXPAND_DOWN != 0 {
        let upper = if s.db() { 0xffff_ffff } else { 0xffff };
        ea > limit && last <= upper
    } else {
        last <= limit
    };
    if !within {
        return Err(fault(seg));
    }
    Ok(s.base.wrapping_add(ea) & 0xffff_ffff)
}
