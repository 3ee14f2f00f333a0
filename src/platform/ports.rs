// SPDX-License-Identifier: GPL-2.0

//! Port I/O to the platform devices: the PICs (0x20, 0x21, 0xA0, 0xA1 and
//! the ELCR at 0x4D0, 0x4D1), the PIT (0x40-0x43) and port 0x61, the RTC
//! (0x70, 0x71) and the PM timer (4 bytes at its port).
//!
//! The PICs, the PIT and the RTC are 8-bit devices: a wider access is one
//! byte access per port, at `port`, `port + 1`, ..., as an ISA bus splits
//! it; a byte no device answers reads 0xFF. The PM timer is read whole.

use kernel::sync::Arc;

use super::{Out, Platform};
use crate::hw::timer::{now_ns, Ticker};
use crate::uapi::CreateFlags;
use crate::vdev::Nanos;

/// Which device answers a port.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dev {
    Pic,
    Pit,
    Rtc,
    Pm,
}

impl Platform {
    /// The device that answers `port`, if the VM has it. Lock-free: an
    /// exit for the sequencer's ports costs nothing here.
    fn claimant(&self, port: u16) -> Option<Dev> {
        let has = |f: CreateFlags| !self.absent.contains(f);
        match port {
            0x20 | 0x21 | 0xa0 | 0xa1 | 0x4d0 | 0x4d1 if has(CreateFlags::NO_PIC) => Some(Dev::Pic),
            0x40..=0x43 | 0x61 if has(CreateFlags::NO_PIT) => Some(Dev::Pit),
            0x70 | 0x71 if has(CreateFlags::NO_RTC) => Some(Dev::Rtc),
            p if has(CreateFlags::NO_PM_TIMER) && p.wrapping_sub(self.pm_port) < 4 => Some(Dev::Pm),
            _ => None,
        }
    }

    /// A port access of `size` bytes (1, 2 or 4) at `port`: `Some` with the
    /// value read (for an OUT, 0) if an in-kernel device claims `port`,
    /// `None` if the access is the sequencer's. Callable with interrupts
    /// off.
    pub(crate) fn port(
        this: &Arc<Ticker<Platform>>,
        port: u16,
        size: u8,
        input: bool,
        value: u64,
    ) -> Option<u64> {
        let first = this.claimant(port)?;
        let now = now_ns();
        let mut result = None;
        this.with(Some(this), |c, out| {
            if first == Dev::Pm {
                let v = c.pm.as_ref().map_or(0, |pm| pm.read(now));
                let shift = 8 * u32::from(port.wrapping_sub(this.pm_port));
                result = Some(if input { u64::from(v).checked_shr(shift).unwrap_or(0) } else { 0 });
                return;
            }
            let mut v = 0u64;
            for i in 0..size.min(4) {
                let p = port.wrapping_add(u16::from(i));
                let byte = (value >> (8 * i)) as u8;
                let got = match this.claimant(p) {
                    Some(d) if d != Dev::Pm => byte_io(c, d, p, input, byte, now, out),
                    _ => 0xff,
                };
                v |= u64::from(got) << (8 * i);
            }
            result = Some(if input { v } else { 0 });
        });
        result
    }
}

/// One byte access to device `d` at port `p`: a read returns the byte, a
/// write of `byte` returns 0.
fn byte_io(
    c: &mut super::Chipset,
    d: Dev,
    p: u16,
    read: bool,
    byte: u8,
    now: Nanos,
    out: &mut Out,
) -> u8 {
    match (d, read) {
        (Dev::Pic, read) => {
            let Some(pic) = &mut c.pic else { return 0xff };
            if read {
                let (v, fx) = pic.read(p);
                out.pic(fx);
                v
            } else {
                out.pic(pic.write(p, byte));
                0
            }
        }
        (Dev::Pit, read) => {
            let Some(pit) = &mut c.pit else { return 0xff };
            if read {
                pit.read(p, now)
            } else {
                let fx = pit.write(p, byte, now);
                c.pit_fx(fx, out);
                0
            }
        }
        (Dev::Rtc, read) => {
            let Some(rtc) = &mut c.rtc else { return 0xff };
            if read {
                let (v, fx) = rtc.read(p, now);
                c.rtc_fx(fx, out);
                v
            } else {
                let fx = rtc.write(p, byte, now);
                c.rtc_fx(fx, out);
                0
            }
        }
        (Dev::Pm, _) => 0xff,
    }
}
