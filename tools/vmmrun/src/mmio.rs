// SPDX-License-Identifier: MIT OR Apache-2.0

//! The MMIO bus: guest-physical ranges outside RAM, each served by an
//! [`MmioDevice`].
//!
//! The kernel emulates an access to guest-physical memory that no mapping
//! covers and hands it over as an `MMIO` exit of 1, 2, 4 or 8 bytes. The
//! bus gives it to the device whose range holds all of it, at the offset
//! from the range's base:
//!
//! | access | a read sees | a write |
//! |---|---|---|
//! | inside a device's range, and the device [accepts](MmioDevice::accepts) it | the device's value | goes to the device |
//! | inside a range, but the device refuses the offset or size | all ones | is dropped |
//! | partly inside a range (it crosses an edge) | all ones | is dropped |
//! | outside every range, or of a size other than 1, 2, 4 or 8 | all ones | is dropped |
//!
//! All ones of the access's size is what a read finds on a bus with
//! nothing behind the address. Every access no device took is described by
//! [`Access::report`], which the run loop prints under `-v`. Values are
//! masked to the access's size both ways: a device never sees bits above
//! the write's size, and a completion never carries more than the read's.
//!
//! The device vmmrun offers is the 16550 of [`crate::uart`], with
//! `--uart-mmio ADDR`. A user can try it with no guest build at all: a flat
//! 32-bit image (paging off, so any address reaches the bus) that stores
//! three bytes at 0xd0000000 and halts,
//!
//! ```text
//! printf '\xc6\x05\x00\x00\x00\xd0h\xc6\x05\x00\x00\x00\xd0i\xc6\x05\x00\x00\x00\xd0\n\xf4' >hi.bin
//! vmmrun -v --mode 32 --uart-mmio 0xd0000000 hi.bin
//! ```
//!
//! prints `hi` (then "guest halted", status 0); without `--uart-mmio`, `-v`
//! shows the three writes as unclaimed instead.

use std::collections::BTreeMap;
use std::ops::Range;

use libvmm::uapi::{VmmExitMmio, VMM_MMIO_WRITE};

/// A device on the MMIO bus. Offsets are from the base of its range;
/// sizes are 1, 2, 4 or 8, and an access handed to the device lies
/// entirely inside its range.
pub trait MmioDevice {
    /// Whether the device takes an access of `size` bytes at `offset`. One
    /// it refuses reads all ones and writes nothing, as an unclaimed one
    /// does. By default every access is taken.
    fn accepts(&self, _offset: u64, _size: u32) -> bool {
        true
    }

    /// Reads `size` bytes at `offset`; bits above `size` bytes are ignored.
    fn read(&mut self, offset: u64, size: u32) -> u64;

    /// Writes the low `size` bytes of `value` at `offset` (the rest is
    /// zero).
    fn write(&mut self, offset: u64, size: u32, value: u64);
}

/// Who took an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The device with this name.
    Device(&'static str),
    /// Nothing: no range holds any of it.
    Nothing,
    /// The device with this name refused it ([`MmioDevice::accepts`]).
    Refused {
        /// The device.
        name: &'static str,
        /// The offset in its range.
        offset: u64,
    },
    /// Nobody: it crosses an edge of this device's range.
    Crosses {
        /// The device.
        name: &'static str,
        /// The device's range.
        base: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// Nobody: the size is not 1, 2, 4 or 8.
    BadSize,
}

/// One access and what became of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The guest-physical address.
    pub gpa: u64,
    /// The size in bytes.
    pub size: u32,
    /// A write (else a read).
    pub write: bool,
    /// A read: what the guest reads (fits in `size` bytes). A write: the
    /// value written, masked to `size` bytes.
    pub value: u64,
    /// Who took it.
    pub claim: Claim,
}

impl Access {
    /// A line for `-v` about an access no device took (gpa, size,
    /// direction, value, why, RIP); `None` when a device took it.
    pub fn report(&self, rip: u64) -> Option<String> {
        let why = match self.claim {
            Claim::Device(_) => return None,
            Claim::Nothing => "no device".to_string(),
            Claim::Refused { name, offset } => {
                format!("refused by {name} at offset {offset:#x}")
            }
            Claim::Crosses { name, base, len } => {
                format!("crosses an edge of {name} at {base:#x}+{len:#x}")
            }
            Claim::BadSize => "not 1, 2, 4 or 8 bytes".to_string(),
        };
        let (dir, what) = if self.write { ("write", "dropped") } else { ("read", "all ones") };
        Some(format!(
            "unclaimed MMIO {dir} of {} byte{} at {:#x}: {:#x} {what} ({why}; rip {rip:#x})",
            self.size,
            if self.size == 1 { "" } else { "s" },
            self.gpa,
            self.value,
        ))
    }
}

/// All ones in the low `size` bytes (`size` taken as 1 to 8).
pub fn ones(size: u32) -> u64 {
    u64::MAX >> (64 - 8 * size.clamp(1, 8))
}

/// A device and the range it serves.
struct Region {
    len: u64,
    name: &'static str,
    dev: Box<dyn MmioDevice>,
}

/// The devices on the MMIO bus, by base address. Ranges never overlap.
#[derive(Default)]
pub struct MmioBus {
    regions: BTreeMap<u64, Region>,
}

impl std::fmt::Debug for MmioBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.regions()).finish()
    }
}

impl MmioBus {
    /// A bus with no devices: every read sees all ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `dev` at `base`..`base + len`, under `name` (for reports).
    /// Fails if the range is empty, wraps, or overlaps another device's.
    pub fn add(
        &mut self,
        base: u64,
        len: u64,
        name: &'static str,
        dev: Box<dyn MmioDevice>,
    ) -> Result<(), String> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or_else(|| format!("{name}: {base:#x}+{len:#x} is not a range of addresses"))?;
        if let Some((other, r)) = self.overlapping(base..end).next() {
            return Err(format!(
                "{name} at {base:#x}+{len:#x} overlaps {} at {other:#x}+{:#x}",
                r.name, r.len
            ));
        }
        self.regions.insert(base, Region { len, name, dev });
        Ok(())
    }

    /// The devices' ranges and names, by address.
    pub fn regions(&self) -> impl Iterator<Item = (Range<u64>, &'static str)> + '_ {
        self.regions.iter().map(|(&base, r)| (base..base + r.len, r.name))
    }

    /// The regions that hold any of `range`, by address.
    fn overlapping(&self, range: Range<u64>) -> impl Iterator<Item = (u64, &Region)> + '_ {
        // The one starting at or below range.start, then those inside it.
        let below = self.regions.range(..=range.start).next_back();
        let below = below.filter(|(&b, r)| range.start - b < r.len);
        let inside = self.regions.range(range.start.saturating_add(1)..range.end);
        below.into_iter().chain(inside).map(|(&b, r)| (b, r))
    }

    /// Handles one `MMIO` exit; for a read, `value` of the result is what
    /// to complete it with.
    pub fn access(&mut self, m: &VmmExitMmio) -> Access {
        if m.flags & VMM_MMIO_WRITE != 0 {
            self.write(m.gpa, m.size, m.data)
        } else {
            self.read(m.gpa, m.size)
        }
    }

    /// A read of `size` bytes at `gpa`.
    pub fn read(&mut self, gpa: u64, size: u32) -> Access {
        let (claim, value) = match self.route(gpa, size) {
            Ok((dev, offset, name)) => (Claim::Device(name), dev.read(offset, size) & ones(size)),
            Err(claim) => (claim, ones(size)),
        };
        Access { gpa, size, write: false, value, claim }
    }

    /// A write of the low `size` bytes of `value` at `gpa`.
    pub fn write(&mut self, gpa: u64, size: u32, value: u64) -> Access {
        let value = value & ones(size);
        let claim = match self.route(gpa, size) {
            Ok((dev, offset, name)) => {
                dev.write(offset, size, value);
                Claim::Device(name)
            }
            Err(claim) => claim,
        };
        Access { gpa, size, write: true, value, claim }
    }

    /// The device that takes `size` bytes at `gpa`, the offset and its
    /// name; or why none does.
    fn route(
        &mut self,
        gpa: u64,
        size: u32,
    ) -> Result<(&mut dyn MmioDevice, u64, &'static str), Claim> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(Claim::BadSize);
        }
        // An access that would wrap is cut at u64::MAX, which no range
        // reaches past (`add`); the size check below then finds it crossing
        // the range that holds its first byte, if any.
        let end = gpa.saturating_add(size.into());
        let (base, len, name) = match self.overlapping(gpa..end).next() {
            None => return Err(Claim::Nothing),
            Some((base, r)) => (base, r.len, r.name),
        };
        if gpa < base || end - base > len || end - gpa < u64::from(size) {
            return Err(Claim::Crosses { name, base, len });
        }
        let offset = gpa - base;
        let r = self.regions.get_mut(&base).expect("the region just found");
        if !r.dev.accepts(offset, size) {
            return Err(Claim::Refused { name, offset });
        }
        Ok((r.dev.as_mut(), offset, name))
    }
}

/// An output that clones share, for tests to read what a boxed device
/// wrote.
#[cfg(test)]
#[derive(Clone, Debug, Default)]
pub struct SharedOut(pub std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uart::{self, Serial};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A device that records accesses and reads back `0x1122334455667788`
    /// shifted by the offset; it refuses offset 0xf.
    #[derive(Clone, Default)]
    struct Probe(Rc<RefCell<Vec<Op>>>);

    /// `('r' or 'w', offset, size, value written)`.
    type Op = (char, u64, u32, u64);

    impl MmioDevice for Probe {
        fn accepts(&self, offset: u64, _size: u32) -> bool {
            offset != 0xf
        }
        fn read(&mut self, offset: u64, size: u32) -> u64 {
            self.0.borrow_mut().push(('r', offset, size, 0));
            0x1122_3344_5566_7788 >> (8 * (offset % 8))
        }
        fn write(&mut self, offset: u64, size: u32, value: u64) {
            self.0.borrow_mut().push(('w', offset, size, value));
        }
    }

    fn bus_with_probe() -> (MmioBus, Probe) {
        let p = Probe::default();
        let mut bus = MmioBus::new();
        bus.add(0x1000, 0x10, "probe", Box::new(p.clone())).unwrap();
        (bus, p)
    }

    #[test]
    fn claimed_reads_and_writes_reach_the_device_masked_to_the_size() {
        let (mut bus, p) = bus_with_probe();
        let a = bus.read(0x1000, 8);
        assert_eq!((a.value, a.claim), (0x1122_3344_5566_7788, Claim::Device("probe")));
        assert_eq!(bus.read(0x1000, 1).value, 0x88, "a read never exceeds its size");
        assert_eq!(bus.read(0x1002, 2).value, 0x5566);
        assert_eq!(bus.read(0x1004, 4).value, 0x1122_3344);
        let a = bus.write(0x1008, 2, 0xdead_beef);
        assert_eq!((a.value, a.claim, a.write), (0xbeef, Claim::Device("probe"), true));
        assert_eq!(a.report(0), None);
        assert_eq!(
            *p.0.borrow(),
            [('r', 0, 8, 0), ('r', 0, 1, 0), ('r', 2, 2, 0), ('r', 4, 4, 0), ('w', 8, 2, 0xbeef)]
        );
    }

    #[test]
    fn unclaimed_reads_see_all_ones_and_writes_are_dropped() {
        let (mut bus, p) = bus_with_probe();
        for (size, ones) in [(1, 0xff), (2, 0xffff), (4, 0xffff_ffff), (8, u64::MAX)] {
            let a = bus.read(0x2000, size);
            assert_eq!((a.value, a.claim), (ones, Claim::Nothing));
        }
        let a = bus.write(0x2000, 1, 0x1ff);
        assert_eq!((a.value, a.claim), (0xff, Claim::Nothing));
        assert!(p.0.borrow().is_empty());
        assert!(MmioBus::new().read(0, 4).claim == Claim::Nothing);
    }

    #[test]
    fn range_edges() {
        let (mut bus, p) = bus_with_probe();
        // The first and last bytes are the device's; their neighbours not.
        assert_eq!(bus.read(0x1000, 1).claim, Claim::Device("probe"));
        assert_eq!(bus.read(0x100e, 1).claim, Claim::Device("probe"));
        assert_eq!(bus.read(0x1008, 8).claim, Claim::Device("probe"), "ends at the end");
        assert_eq!(bus.read(0xfff, 1).claim, Claim::Nothing);
        assert_eq!(bus.read(0x1010, 1).claim, Claim::Nothing);
        assert_eq!(bus.read(0xff8, 8).claim, Claim::Nothing, "ends at the base");
        // Crossing either edge: nobody's, all ones.
        let crosses = Claim::Crosses { name: "probe", base: 0x1000, len: 0x10 };
        for (gpa, size) in [(0xffc, 8), (0xfff, 2), (0x100c, 8), (0x100f, 2)] {
            let a = bus.read(gpa, size);
            assert_eq!((a.value, a.claim), (ones(size), crosses), "{gpa:#x}/{size}");
        }
        assert_eq!(bus.write(0x100e, 4, 0).claim, crosses);
        // Refused by the device, and sizes the kernel never sends.
        let a = bus.read(0x100f, 1);
        assert_eq!((a.value, a.claim), (0xff, Claim::Refused { name: "probe", offset: 0xf }));
        assert_eq!(bus.read(0x1000, 3).claim, Claim::BadSize);
        assert_eq!(bus.read(0x1000, 16).value, u64::MAX);
        assert_eq!(p.0.borrow().len(), 3, "only the three claimed reads");
        // At the top of the address space.
        bus.add(u64::MAX - 7, 7, "top", Box::new(Probe::default())).unwrap();
        assert_eq!(bus.read(u64::MAX - 1, 1).claim, Claim::Device("top"));
        assert!(matches!(bus.read(u64::MAX - 1, 4).claim, Claim::Crosses { name: "top", .. }));
        assert_eq!(bus.read(u64::MAX, 8).claim, Claim::Nothing);
    }

    #[test]
    fn ranges_must_be_disjoint_and_non_empty() {
        let (mut bus, _) = bus_with_probe();
        let mut add = |base, len| bus.add(base, len, "x", Box::new(Probe::default()));
        assert!(add(0x1008, 0x10).unwrap_err().contains("overlaps probe at 0x1000+0x10"));
        assert!(add(0xff0, 0x11).unwrap_err().contains("overlaps"));
        assert!(add(0x100f, 1).unwrap_err().contains("overlaps"));
        assert!(add(0x3000, 0).unwrap_err().contains("not a range"));
        assert!(add(u64::MAX, 2).unwrap_err().contains("not a range"));
        add(0xff8, 8).unwrap();
        add(0x1010, 8).unwrap();
        let r: Vec<_> = bus.regions().collect();
        assert_eq!(r, [(0xff8..0x1000, "x"), (0x1000..0x1010, "probe"), (0x1010..0x1018, "x")]);
        // Adjacent devices: each edge belongs to one of them.
        assert_eq!(bus.read(0xfff, 1).claim, Claim::Device("x"));
        assert_eq!(bus.read(0x1010, 1).claim, Claim::Device("x"));
        assert!(matches!(bus.read(0xffe, 4).claim, Claim::Crosses { name: "x", .. }));
    }

    #[test]
    fn reports_name_gpa_size_direction_value_and_rip() {
        let (mut bus, _) = bus_with_probe();
        let r = |a: Access| a.report(0x10_0004).unwrap();
        assert_eq!(
            r(bus.read(0xd000_0010, 4)),
            "unclaimed MMIO read of 4 bytes at 0xd0000010: 0xffffffff all ones \
             (no device; rip 0x100004)"
        );
        assert_eq!(
            r(bus.write(0xd000_0010, 1, 0x68)),
            "unclaimed MMIO write of 1 byte at 0xd0000010: 0x68 dropped (no device; rip 0x100004)"
        );
        assert!(r(bus.read(0x100f, 1)).contains("(refused by probe at offset 0xf;"));
        assert!(r(bus.write(0x100f, 2, 0)).contains("crosses an edge of probe at 0x1000+0x10"));
        assert!(r(bus.read(0x1000, 3)).contains("not 1, 2, 4 or 8 bytes"));
    }

    #[test]
    fn exits_are_decoded_by_direction() {
        let (mut bus, p) = bus_with_probe();
        let m = VmmExitMmio { gpa: 0x1001, size: 1, ..VmmExitMmio::ZERO };
        assert_eq!(bus.access(&m).value, 0x77);
        let m = VmmExitMmio { flags: VMM_MMIO_WRITE, data: 0x42, ..m };
        assert!(bus.access(&m).write);
        assert_eq!(*p.0.borrow(), [('r', 1, 1, 0), ('w', 1, 1, 0x42)]);
    }

    #[test]
    fn the_uart_through_mmio_prints() {
        let out = SharedOut::default();
        let mut bus = MmioBus::new();
        let base = 0xd000_0000;
        bus.add(base, uart::REGS.into(), "uart-mmio", Box::new(Serial::new(out.clone()))).unwrap();
        for b in b"hi\n" {
            let lsr = bus.read(base + 5, 1);
            assert_eq!((lsr.value, lsr.claim), (0x60, Claim::Device("uart-mmio")));
            bus.write(base, 1, (*b).into());
        }
        assert_eq!(*out.0.borrow(), b"hi\n");
        // Registers read back, one byte apart: LCR at +3, SCR at +7.
        bus.write(base + 3, 1, 0x03);
        bus.write(base + 7, 1, 0x5a);
        assert_eq!((bus.read(base + 3, 1).value, bus.read(base + 7, 1).value), (0x03, 0x5a));
        // Wider accesses are refused: all ones, and THR sends nothing.
        let refused = |offset| Claim::Refused { name: "uart-mmio", offset };
        let a = bus.read(base, 4);
        assert_eq!((a.value, a.claim), (0xffff_ffff, refused(0)));
        assert_eq!(bus.write(base, 2, 0x4141).claim, refused(0));
        assert_eq!(bus.write(base + 4, 4, 0x41).claim, refused(4));
        assert_eq!(bus.read(base + 8, 1).claim, Claim::Nothing, "eight registers only");
        assert_eq!(*out.0.borrow(), b"hi\n");
    }
}
