// SPDX-License-Identifier: GPL-2.0

//! VPIDs and the TLB flushes a VMX entry needs (SDM Vol. 3C, 29.4).
//!
//! With EPT, a CPU caches guest-physical mappings (tagged by the EPT root)
//! and combined mappings (tagged by the EPT root and the VPID). INVEPT of
//! one EPTP removes both kinds for every VPID; INVVPID removes only the
//! combined mappings of one VPID. Both act on the executing CPU only.
//!
//! - INVEPT when this CPU has not caught up with the VM's address-space
//!   generation: once per generation per host CPU, whichever and however
//!   many vCPUs run there (the VM keeps one record per CPU; a new VM starts
//!   with none, so a reused EPT root never meets stale entries).
//! - INVVPID when only this vCPU's guest-linear view may be stale on this
//!   CPU: it last ran elsewhere (the guest changed its page tables and
//!   flushed on that CPU, not this one), or its paging registers were
//!   rewritten outside the guest. Skipped when an INVEPT is due anyway,
//!   which covers it.
//! - Nothing otherwise.
//!
//! Without a VPID every entry and exit flushes VPID 0's linear and
//! combined mappings itself, so only the INVEPT case remains (bhyve's
//! lessons: one INVEPT per generation, no INVVPID that an INVEPT covers).

/// What to flush before entering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Nothing.
    None,
    /// INVVPID of this vCPU's VPID.
    Vpid,
    /// INVEPT of the VM's EPTP.
    Ept,
}

/// Decides the flush for one entry.
///
/// `ept_stale`: this CPU has not flushed the VM's current generation;
/// `migrated`: the vCPU last entered on another CPU (or never entered);
/// `regs_changed`: paging registers were rewritten outside the guest;
/// `vpid`: the vCPU has a VPID.
pub const fn on_entry(ept_stale: bool, migrated: bool, regs_changed: bool, vpid: bool) -> Flush {
    if ept_stale {
        Flush::Ept
    } else if (migrated || regs_changed) && vpid {
        Flush::Vpid
    } else {
        Flush::None
    }
}

/// VPIDs 1 to [`VpidPool::MAX`]; 0 is the host's.
#[derive(Clone, Debug)]
pub struct VpidPool {
    used: [u64; 64],
}

impl Default for VpidPool {
    fn default() -> Self {
        Self::new()
    }
}

impl VpidPool {
    /// The largest VPID handed out.
    pub const MAX: u16 = 64 * 64 - 1;

    /// A pool with every VPID free.
    pub const fn new() -> Self {
        // VPID 0 is reserved for the host.
        let mut used = [0; 64];
        used[0] = 1;
        Self { used }
    }

    /// A free VPID, or `None` when all are taken (the vCPU then runs
    /// without one, as KVM's do).
    pub fn alloc(&mut self) -> Option<u16> {
        for (i, w) in self.used.iter_mut().enumerate() {
            if *w != u64::MAX {
                let bit = (!*w).trailing_zeros();
                *w |= 1 << bit;
                return Some((i as u32 * 64 + bit) as u16);
            }
        }
        None
    }

    /// Gives `vpid` back; freeing 0 or a free VPID does nothing.
    pub fn free(&mut self, vpid: u16) {
        if vpid != 0 && vpid <= Self::MAX {
            self.used[usize::from(vpid / 64)] &= !(1 << (vpid % 64));
        }
    }

    /// How many VPIDs are in use.
    pub fn in_use(&self) -> u32 {
        self.used.iter().map(|w| w.count_ones()).sum::<u32>() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_decisions() {
        // A generation this CPU has not flushed: INVEPT, which covers any
        // INVVPID the entry would need.
        for migrated in [false, true] {
            for regs in [false, true] {
                for vpid in [false, true] {
                    assert_eq!(on_entry(true, migrated, regs, vpid), Flush::Ept);
                }
            }
        }
        // Another CPU, or rewritten registers: this VPID only.
        assert_eq!(on_entry(false, true, false, true), Flush::Vpid);
        assert_eq!(on_entry(false, false, true, true), Flush::Vpid);
        assert_eq!(on_entry(false, true, true, true), Flush::Vpid);
        // Without a VPID the entry itself flushes VPID 0's mappings.
        assert_eq!(on_entry(false, true, true, false), Flush::None);
        assert_eq!(on_entry(false, false, false, true), Flush::None);
    }

    #[test]
    fn vpids_are_unique_and_reused() {
        let mut p = VpidPool::new();
        let mut seen = [false; 4096];
        for _ in 0..VpidPool::MAX {
            let v = p.alloc().unwrap();
            assert!(v != 0 && !seen[usize::from(v)]);
            seen[usize::from(v)] = true;
        }
        assert_eq!(p.in_use(), u32::from(VpidPool::MAX));
        assert_eq!(p.alloc(), None);
        p.free(77);
        p.free(0);
        assert_eq!(p.alloc(), Some(77));
        assert_eq!(p.alloc(), None);
    }
}
