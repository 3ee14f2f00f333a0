// SPDX-License-Identifier: GPL-2.0

//! The two ways in: the xAPIC MMIO page and the x2APIC MSRs.
//!
//! **xAPIC.** Registers are 32 bits wide at 16-byte-aligned offsets.
//! Reads of any width at any offset are assembled byte by
//! byte: a byte inside the first four of a register's slot reads that
//! register, every other byte reads zero, and a write-only register reads
//! zero. A write takes effect only as a 32-bit store at the start of a
//! slot, as in KVM; other writes are dropped. Read-only registers ignore
//! writes, reserved bits are dropped, and touching a reserved register
//! sets ESR "illegal register address".
//!
//! **x2APIC.** MSR 0x800 + (offset >> 4). APR, RRD, DFR and the ICR high
//! half have no MSR; `RDMSR` of a write-only register (EOI, SELF IPI),
//! `WRMSR` of a read-only one, and a write that sets a reserved bit (bits
//! 63:32 of everything but the ICR, a non-zero EOI or ESR write) are all
//! `#GP` (SDM "Reserved Bit Checking").
//!
//! Each path is live only in its own mode: the MMIO page is gone in
//! x2APIC mode and the MSRs `#GP` in xAPIC mode.

use super::ipi::{decode_icr, IcrOutcome, Interrupt};
use super::regs::*;
use super::timer::TimerMode;
use super::{Accel, Effects, Gp, Mode, Tsc, Vlapic};

use super::base::Origin;

impl<A: Accel> Vlapic<A> {
    /// Bits of `reg` a write may set, in the current configuration.
    /// Read-only bits of the LVT entries count as writable here (the
    /// write ignores them rather than faulting).
    fn write_mask(&self, reg: Reg, x2apic: bool) -> u64 {
        let m: u32 = match reg {
            Reg::Id | Reg::Ldr | Reg::IcrHigh => 0xff00_0000,
            Reg::Tpr | Reg::SelfIpi => 0xff,
            Reg::Dfr => DFR_MODEL,
            Reg::Svr => 0x3ff | if self.cfg.eoi_suppression { SVR_SUPPRESS_EOI } else { 0 },
            // Any value in xAPIC mode; zero only in x2APIC mode.
            Reg::Eoi | Reg::Esr => {
                if x2apic {
                    0
                } else {
                    u32::MAX
                }
            }
            Reg::Lvt(l) => l.writable(self.cfg.tsc_deadline) | l.read_only(),
            Reg::IcrLow if x2apic => return ICR_X2APIC_MASK,
            Reg::IcrLow => ICR_LOW_MASK | LVT_STATUS,
            Reg::InitialCount => u32::MAX,
            Reg::DivideConfig => DCR_MASK,
            _ => 0,
        };
        u64::from(m)
    }

    /// The value a read of `reg` returns (64 bits only for the x2APIC ICR).
    fn read_reg(&mut self, reg: Reg, now: Tsc) -> u64 {
        self.sync();
        let x2apic = self.mode() == Mode::X2Apic;
        let v: u32 = match reg {
            Reg::Id if x2apic => self.initial_id,
            Reg::Id => u32::from(self.xapic_id) << 24,
            Reg::Version => self.version(),
            Reg::Tpr => u32::from(self.tpr),
            Reg::Apr => u32::from(self.apr()),
            Reg::Ppr => u32::from(self.ppr()),
            Reg::Eoi | Reg::Rrd | Reg::SelfIpi => 0,
            Reg::Ldr => self.ldr(),
            Reg::Dfr => self.dfr,
            Reg::Svr => self.svr,
            Reg::Isr(i) => self.isr.0[(i & 7) as usize],
            Reg::Tmr(i) => self.tmr.0[(i & 7) as usize],
            Reg::Irr(i) => self.irr.0[(i & 7) as usize],
            Reg::Esr => self.esr,
            Reg::Lvt(l) => self.lvt[l as usize],
            Reg::IcrLow if x2apic => return self.icr,
            Reg::IcrLow => self.icr as u32,
            Reg::IcrHigh => (self.icr >> 32) as u32,
            Reg::InitialCount => self.timer.initial,
            Reg::CurrentCount => self.current_count(now),
            Reg::DivideConfig => self.timer.dcr,
        };
        u64::from(v)
    }

    /// Writes `value`, already checked against [`Self::write_mask`] (x2APIC)
    /// or masked by it (xAPIC), to a writable register.
    fn write_reg(&mut self, reg: Reg, value: u64, now: Tsc) -> Effects {
        let x2apic = self.mode() == Mode::X2Apic;
        let value = value & self.write_mask(reg, x2apic);
        let v = value as u32;
        match reg {
            Reg::Id => self.xapic_id = (v >> 24) as u8,
            Reg::Tpr => self.set_tpr(v as u8),
            Reg::Eoi => return self.eoi(),
            Reg::Ldr => self.ldr = v,
            Reg::Dfr => self.dfr = v | !DFR_MODEL,
            Reg::Svr => {
                self.svr = v;
                if v & SVR_ENABLE == 0 {
                    for lvt in &mut self.lvt {
                        *lvt |= LVT_MASKED;
                    }
                }
            }
            Reg::Esr => self.esr = core::mem::take(&mut self.esr_pending),
            Reg::Lvt(l) => return self.write_lvt(l, v, now),
            Reg::IcrLow => {
                self.icr = if x2apic {
                    value
                } else {
                    (self.icr & !u64::from(u32::MAX)) | u64::from(v & ICR_LOW_MASK)
                };
                return self.send_icr();
            }
            Reg::IcrHigh => self.icr = (self.icr & u64::from(u32::MAX)) | u64::from(v) << 32,
            Reg::InitialCount => {
                let mut fx = self.service_timer(now);
                let (mode, clock) = (self.timer_mode(), self.clock());
                fx.timer = self.timer.write_initial(mode, v, &clock, now).or(fx.timer);
                return fx;
            }
            Reg::DivideConfig => {
                let mut fx = self.service_timer(now);
                let (mode, clock) = (self.timer_mode(), self.clock());
                fx.timer = self.timer.write_dcr(mode, v, &clock, now).or(fx.timer);
                return fx;
            }
            Reg::SelfIpi => {
                let vector = v as u8;
                if vector < 16 {
                    return self.error(ESR_SEND_ILLEGAL);
                }
                return self.deliver(Interrupt::Fixed { vector, level: false });
            }
            Reg::Version
            | Reg::Apr
            | Reg::Ppr
            | Reg::Rrd
            | Reg::Isr(_)
            | Reg::Tmr(_)
            | Reg::Irr(_)
            | Reg::CurrentCount => {}
        }
        Effects::NONE
    }

    /// A write of LVT entry `which`: read-only bits keep their values, the
    /// mask stays set while the APIC is software-disabled, a timer mode
    /// change goes to the timer, and a level-triggered LINT pin that is
    /// asserted fires once unmasked.
    fn write_lvt(&mut self, which: Lvt, v: u32, now: Tsc) -> Effects {
        let old = self.lvt[which as usize];
        let mut new = (v & which.writable(self.cfg.tsc_deadline)) | (old & which.read_only());
        if !self.sw_enabled() {
            new |= LVT_MASKED;
        }
        let level_fixed = new & LVT_LEVEL != 0 && (new >> 8) & 7 == 0;
        if !level_fixed {
            new &= !LVT_REMOTE_IRR;
        }
        match which {
            Lvt::Timer => {
                let mut fx = self.service_timer(now);
                self.lvt[which as usize] = new;
                let (from, to) = (TimerMode::from_lvt(old), TimerMode::from_lvt(new));
                fx.timer = self.timer.change_mode(from, to).or(fx.timer);
                fx
            }
            Lvt::Lint0 | Lvt::Lint1 => {
                self.lvt[which as usize] = new;
                let pin = which as u8 - Lvt::Lint0 as u8;
                let asserted = self.lint[pin as usize];
                if level_fixed {
                    self.set_lint(pin, asserted)
                } else {
                    Effects::NONE
                }
            }
            _ => {
                self.lvt[which as usize] = new;
                Effects::NONE
            }
        }
    }

    fn send_icr(&mut self) -> Effects {
        match decode_icr(self.icr, self.mode() == Mode::X2Apic) {
            IcrOutcome::Send(msg) => Effects { ipi: Some(msg), ..Effects::NONE },
            IcrOutcome::IllegalVector => self.error(ESR_SEND_ILLEGAL),
            IcrOutcome::Dropped => Effects::NONE,
        }
    }

    /// The register behind xAPIC page offset `off`, if any, and whether it
    /// is reachable in xAPIC mode.
    fn xapic_reg(&self, off: u64) -> Option<(Reg, Rw)> {
        let reg = Reg::from_slot((off >> 4) as u16, self.cfg.cmci)?;
        Some((reg, reg.xapic()?))
    }

    /// Offset of `gpa` in this vCPU's xAPIC page, if it is in it (never in
    /// any mode but xAPIC).
    fn page_offset(&self, gpa: u64) -> Option<u64> {
        gpa.checked_sub(self.mmio_base()?).filter(|o| *o < PAGE_SIZE)
    }

    /// An MMIO read of `buf.len()` bytes, any number, at guest-physical
    /// `gpa`. Returns `false`, leaving `buf` alone, if `gpa` is not in this
    /// vCPU's xAPIC page (including every case where the APIC is not in
    /// xAPIC mode). Bytes past the page's end read as zero.
    pub fn mmio_read_bytes(&mut self, gpa: u64, buf: &mut [u8], now: Tsc) -> bool {
        let Some(off) = self.page_offset(gpa) else { return false };
        let mut illegal = false;
        let mut cached: Option<(u64, u32)> = None;
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = off.saturating_add(i as u64);
            *byte = 0;
            if at >= PAGE_SIZE || at & 0xf >= 4 {
                continue;
            }
            let word = match cached {
                Some((slot, w)) if slot == at >> 4 => w,
                _ => {
                    let w = match self.xapic_reg(at) {
                        Some((_, Rw::WriteOnly)) => 0,
                        Some((reg, _)) => self.read_reg(reg, now) as u32,
                        None => {
                            illegal = true;
                            0
                        }
                    };
                    cached = Some((at >> 4, w));
                    w
                }
            };
            *byte = (word >> (8 * (at & 3))) as u8;
        }
        if illegal {
            let _ = self.error(ESR_ILLEGAL_REGISTER);
        }
        true
    }

    /// [`Vlapic::mmio_read_bytes`] for the common widths: `size` 1 to 8
    /// bytes, little-endian. `None` for other sizes too.
    pub fn mmio_read(&mut self, gpa: u64, size: usize, now: Tsc) -> Option<u64> {
        let mut buf = [0u8; 8];
        let buf = buf.get_mut(..size).filter(|b| !b.is_empty())?;
        self.mmio_read_bytes(gpa, buf, now)
            .then(|| buf.iter().rev().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    /// An MMIO write of `data` (any length) at guest-physical `gpa`.
    /// `None` if `gpa` is not in this vCPU's xAPIC page; otherwise the
    /// write's effects (none if it was dropped: only a 4-byte write at the
    /// start of a register's slot reaches the register).
    pub fn mmio_write_bytes(&mut self, gpa: u64, data: &[u8], now: Tsc) -> Option<Effects> {
        let off = self.page_offset(gpa)?;
        let Ok(word) = <[u8; 4]>::try_from(data) else { return Some(Effects::NONE) };
        if off & 0xf != 0 {
            return Some(Effects::NONE);
        }
        Some(match self.xapic_reg(off) {
            Some((reg, Rw::ReadWrite | Rw::WriteOnly)) => {
                self.write_reg(reg, u64::from(u32::from_le_bytes(word)), now)
            }
            Some((_, Rw::ReadOnly)) => Effects::NONE,
            None => self.error(ESR_ILLEGAL_REGISTER),
        })
    }

    /// [`Vlapic::mmio_write_bytes`] of the low `size` bytes of `value`
    /// (`size` 1 to 8; other sizes are dropped writes).
    pub fn mmio_write(&mut self, gpa: u64, size: usize, value: u64, now: Tsc) -> Option<Effects> {
        let bytes = value.to_le_bytes();
        match bytes.get(..size) {
            Some(data) if !data.is_empty() => self.mmio_write_bytes(gpa, data, now),
            _ => self.page_offset(gpa).map(|_| Effects::NONE),
        }
    }

    /// The x2APIC register behind `msr` and its access rules, if this
    /// vCPU is in x2APIC mode and the MSR exists.
    fn x2apic_reg(&self, msr: u32) -> Result<(Reg, Rw), Gp> {
        if self.mode() != Mode::X2Apic {
            return Err(Gp);
        }
        let reg = Reg::from_msr(msr, self.cfg.cmci).ok_or(Gp)?;
        Ok((reg, reg.x2apic().ok_or(Gp)?))
    }

    /// `RDMSR` of `IA32_APIC_BASE`, `IA32_TSC_DEADLINE` or an x2APIC MSR.
    /// Any other MSR is `#GP`.
    pub fn rdmsr(&mut self, msr: u32, now: Tsc) -> Result<u64, Gp> {
        match msr {
            MSR_APIC_BASE => Ok(self.base),
            MSR_TSC_DEADLINE if self.cfg.tsc_deadline => {
                Ok(self.timer.read_deadline(self.timer_mode()))
            }
            MSR_X2APIC_FIRST..=MSR_X2APIC_LAST => match self.x2apic_reg(msr)? {
                (_, Rw::WriteOnly) => Err(Gp),
                (reg, _) => Ok(self.read_reg(reg, now)),
            },
            _ => Err(Gp),
        }
    }

    /// `WRMSR` of `IA32_APIC_BASE`, `IA32_TSC_DEADLINE` or an x2APIC MSR.
    /// Any other MSR is `#GP`.
    pub fn wrmsr(&mut self, msr: u32, value: u64, now: Tsc) -> Result<Effects, Gp> {
        match msr {
            MSR_APIC_BASE => self.set_apic_base(value, Origin::Guest),
            MSR_TSC_DEADLINE if self.cfg.tsc_deadline => {
                let mut fx = self.service_timer(now);
                fx.timer = self.timer.write_deadline(self.timer_mode(), value).or(fx.timer);
                Ok(fx)
            }
            MSR_X2APIC_FIRST..=MSR_X2APIC_LAST => match self.x2apic_reg(msr)? {
                (_, Rw::ReadOnly) => Err(Gp),
                (reg, _) if value & !self.write_mask(reg, true) != 0 => Err(Gp),
                (reg, _) => Ok(self.write_reg(reg, value, now)),
            },
            _ => Err(Gp),
        }
    }
}
