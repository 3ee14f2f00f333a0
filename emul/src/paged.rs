// SPDX-License-Identifier: GPL-2.0

//! [`Paged`]: the [`Memory`] of a guest with its own page tables. Each
//! linear access is translated with [`x86::paging`] and handed to a
//! [`Bus`] as one or two guest-physical accesses.

use super::{
    x86::{
        paging::{self, Access, GuestPhys, PagingRegs, Request, WalkError},
        regs::{efer, rflags::AC},
    },
    Cpu, Error, Exception, Memory,
};

/// Guest-physical memory and I/O ports, as the glue provides them: RAM
/// directly, MMIO through the vlapic or a userspace exit.
pub trait Bus: GuestPhys {
    /// The reason an access may stop (for example "userspace must answer
    /// this MMIO read").
    type Stop;
    /// Reads `buf.len()` bytes at `gpa` (never across a 4 KiB page).
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), Self::Stop>;
    /// Writes `data` at `gpa` (never across a 4 KiB page).
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Self::Stop>;
    /// Atomically replaces `old` with `new` at `gpa` (never across a page):
    /// `Ok(false)` if the memory no longer held `old`. For MMIO there is
    /// nothing to be atomic against; a read, compare and write will do.
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, Self::Stop>;
    /// Reads `buf.len()` bytes (1, 2 or 4) from I/O port `port`.
    fn port_in(&mut self, port: u16, buf: &mut [u8]) -> Result<(), Self::Stop>;
    /// Writes `data` (1, 2 or 4 bytes) to I/O port `port`.
    fn port_out(&mut self, port: u16, data: &[u8]) -> Result<(), Self::Stop>;
}

/// A [`Bus`] seen through the guest's paging.
pub struct Paged<'a, B> {
    bus: &'a mut B,
    regs: PagingRegs,
    long: bool,
    req: Request,
}

/// At most two pieces: an access of up to 32 bytes crosses at most one
/// page boundary.
struct Pieces {
    gpa: [u64; 2],
    len: [usize; 2],
    count: usize,
}

impl<'a, B: Bus> Paged<'a, B> {
    /// The paging of `cpu` as it is now: CR0, CR3, CR4, EFER, the CPL and
    /// RFLAGS.AC, with MAXPHYADDR `phys_bits`, and the protection-key
    /// rights `pkru` and `pkrs`.
    pub fn new(bus: &'a mut B, cpu: &impl Cpu, phys_bits: u8, pkru: u32, pkrs: u32) -> Self {
        let regs = PagingRegs {
            cr0: cpu.cr(0),
            cr3: cpu.cr(3),
            cr4: cpu.cr(4),
            efer: cpu.efer(),
            phys_bits,
        };
        let user = cpu.cpl() == 3;
        let ac = !user && cpu.rflags() & AC != 0;
        let long = paging::Mode::of(&regs) != paging::Mode::Off && regs.efer & efer::LMA != 0;
        Self { bus, regs, long, req: Request { access: Access::Read, user, ac, pkru, pkrs } }
    }

    /// The bus, for accesses that need no translation.
    pub fn bus(&mut self) -> &mut B {
        self.bus
    }

    fn translate(&mut self, la: u64, access: Access) -> Result<u64, Error<B::Stop>> {
        let req = Request { access, ..self.req };
        paging::translate_request(self.bus, &self.regs, la, &req).map_err(|e| match e {
            WalkError::PageFault { error_code } => {
                Error::Exception(Exception::Pf { addr: la, code: error_code })
            }
            WalkError::NonCanonical => Error::Exception(Exception::Gp(0)),
            WalkError::Unbacked { gpa } => Error::Unbacked { gpa },
            WalkError::Contended => Error::Contended,
        })
    }

    /// Translates `len` bytes at `la` (both pages, if it crosses one,
    /// before anything is accessed).
    fn pieces(&mut self, la: u64, len: usize, access: Access) -> Result<Pieces, Error<B::Stop>> {
        let in_page = 0x1000 - (la & 0xfff) as usize;
        let first = len.min(in_page);
        let gpa0 = self.translate(la, access)?;
        if first == len {
            return Ok(Pieces { gpa: [gpa0, 0], len: [len, 0], count: 1 });
        }
        let next = la.wrapping_add(first as u64);
        let next = if self.long { next } else { next & 0xffff_ffff };
        let gpa1 = self.translate(next, access)?;
        Ok(Pieces { gpa: [gpa0, gpa1], len: [first, len - first], count: 2 })
    }
}

impl<B: Bus> Memory for Paged<'_, B> {
    type Stop = B::Stop;

    fn read(&mut self, la: u64, buf: &mut [u8], write: bool) -> Result<(), Error<B::Stop>> {
        let access = if write { Access::Write } else { Access::Read };
        let p = self.pieces(la, buf.len(), access)?;
        let (a, b) = buf.split_at_mut(p.len[0]);
        self.bus.read(p.gpa[0], a).map_err(Error::Stop)?;
        if p.count == 2 {
            self.bus.read(p.gpa[1], b).map_err(Error::Stop)?;
        }
        Ok(())
    }

    fn write(&mut self, la: u64, data: &[u8]) -> Result<(), Error<B::Stop>> {
        let p = self.pieces(la, data.len(), Access::Write)?;
        let (a, b) = data.split_at(p.len[0]);
        self.bus.write(p.gpa[0], a).map_err(Error::Stop)?;
        if p.count == 2 {
            self.bus.write(p.gpa[1], b).map_err(Error::Stop)?;
        }
        Ok(())
    }

    fn check(&mut self, la: u64, len: usize, write: bool) -> Result<(), Error<B::Stop>> {
        let access = if write { Access::Write } else { Access::Read };
        self.pieces(la, len, access).map(|_| ())
    }

    /// Atomic within a page. An operand that crosses a page boundary is
    /// read, compared and written without atomicity (a bus lock the host
    /// cannot take on the guest's behalf), as KVM does.
    fn cmpxchg(&mut self, la: u64, old: &[u8], new: &[u8]) -> Result<bool, Error<B::Stop>> {
        let p = self.pieces(la, old.len(), Access::Write)?;
        if p.count == 1 {
            return self.bus.cmpxchg(p.gpa[0], old, new).map_err(Error::Stop);
        }
        let mut cur = [0u8; 32];
        let cur = cur.get_mut(..old.len()).ok_or(Error::Contended)?;
        let (a, b) = cur.split_at_mut(p.len[0]);
        self.bus.read(p.gpa[0], a).map_err(Error::Stop)?;
        self.bus.read(p.gpa[1], b).map_err(Error::Stop)?;
        if cur != old {
            return Ok(false);
        }
        let (a, b) = new.split_at(p.len[0].min(new.len()));
        self.bus.write(p.gpa[0], a).map_err(Error::Stop)?;
        self.bus.write(p.gpa[1], b).map_err(Error::Stop)?;
        Ok(true)
    }

    fn port_in(&mut self, port: u16, buf: &mut [u8]) -> Result<(), Error<B::Stop>> {
        self.bus.port_in(port, buf).map_err(Error::Stop)
    }

    fn port_out(&mut self, port: u16, data: &[u8]) -> Result<(), Error<B::Stop>> {
        self.bus.port_out(port, data).map_err(Error::Stop)
    }
}
