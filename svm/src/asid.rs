// SPDX-License-Identifier: GPL-2.0

//! ASID allocation with generations (one [`AsidPool`] per host CPU).
//!
//! A vCPU keeps its ASID while it stays on one host CPU and that CPU's pool
//! is in the same generation. It gets a fresh ASID when it lands on another
//! CPU, when the pool wrapped, or, on CPUs without flush-by-ASID, when its
//! address space changed (a fresh ASID holds no stale entries, which is
//! cheaper than flushing everything). A pool that runs out starts a new
//! generation and flushes the whole TLB once; every vCPU on that CPU then
//! takes a fresh ASID on its next entry.

use super::vmcb::TlbControl;

/// The ASIDs of one host CPU.
#[derive(Clone, Copy, Debug)]
pub struct AsidPool {
    generation: u64,
    next: u32,
    nr_asids: u32,
}

/// What a vCPU last got from a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuAsid {
    asid: u32,
    generation: u64,
    cpu: Option<u32>,
}

impl VcpuAsid {
    /// The ASID in use (0 before the first entry).
    pub fn asid(&self) -> u32 {
        self.asid
    }
}

impl AsidPool {
    /// A pool for a CPU with `nr_asids` ASIDs (CPUID Fn8000_000A EBX); ASID 0
    /// is the host's, so guests get 1 to `nr_asids - 1`. Needs `nr_asids >= 2`,
    /// which the load-time probe checks.
    pub const fn new(nr_asids: u32) -> Self {
        // The first entry on this CPU starts generation 1 and flushes.
        Self { generation: 0, next: u32::MAX, nr_asids }
    }

    /// Called for `vcpu` entering the guest on host CPU `cpu`. `stale` says
    /// its address space changed since it last flushed (see
    /// `vmspace::gen`). Returns the ASID and TLB control for the VMCB.
    pub fn enter(
        &mut self,
        cpu: u32,
        vcpu: &mut VcpuAsid,
        stale: bool,
        flush_by_asid: bool,
    ) -> (u32, TlbControl) {
        let current = vcpu.cpu == Some(cpu) && vcpu.generation == self.generation;
        if current && !stale {
            return (vcpu.asid, TlbControl::DoNothing);
        }
        if current && flush_by_asid {
            return (vcpu.asid, TlbControl::FlushAsid);
        }
        let mut tlb = TlbControl::DoNothing;
        if self.next >= self.nr_asids {
            self.generation += 1;
            self.next = 1;
            tlb = TlbControl::FlushAll;
        }
        *vcpu = VcpuAsid { asid: self.next, generation: self.generation, cpu: Some(cpu) };
        self.next += 1;
        (vcpu.asid, tlb)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn steady_state_keeps_the_asid() {
        let mut pool = AsidPool::new(16);
        let mut v = VcpuAsid::default();
        assert_eq!(pool.enter(0, &mut v, false, false), (1, TlbControl::FlushAll));
        for _ in 0..10 {
            assert_eq!(pool.enter(0, &mut v, false, false), (1, TlbControl::DoNothing));
        }
    }

    #[test]
    fn stale_address_space() {
        let mut pool = AsidPool::new(16);
        let mut v = VcpuAsid::default();
        pool.enter(0, &mut v, false, true);
        // With flush-by-ASID: flush just this ASID.
        assert_eq!(pool.enter(0, &mut v, true, true), (1, TlbControl::FlushAsid));
        // Without (QEMU TCG): a fresh ASID, no flush.
        assert_eq!(pool.enter(0, &mut v, true, false), (2, TlbControl::DoNothing));
    }

    #[test]
    fn wrapping_flushes_once_and_renews_everyone() {
        // TCG has 16 ASIDs: 15 for guests.
        let mut pool = AsidPool::new(16);
        let mut vcpus = [VcpuAsid::default(); 4];
        let mut full_flushes = 0;
        let mut seen = std::vec::Vec::new();
        for round in 0..20 {
            for v in vcpus.iter_mut() {
                // Every vCPU's space changes every round: fresh ASIDs.
                let (asid, tlb) = pool.enter(0, v, round > 0, false);
                assert!((1..16).contains(&asid), "ASID {asid} out of range");
                full_flushes += (tlb == TlbControl::FlushAll) as u32;
                seen.push((pool.generation, asid));
            }
        }
        // 80 fresh ASIDs from pools of 15: generations 1..=6.
        assert_eq!(full_flushes, 6);
        // Within a generation no ASID is handed out twice.
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len());
        // After a wrap, a vCPU that did not change still gets a fresh ASID.
        let mut p2 = AsidPool::new(3);
        let mut a = VcpuAsid::default();
        let mut b = VcpuAsid::default();
        assert_eq!(p2.enter(0, &mut a, false, false), (1, TlbControl::FlushAll));
        assert_eq!(p2.enter(0, &mut b, false, false), (2, TlbControl::DoNothing));
        assert_eq!(p2.enter(0, &mut b, true, false), (1, TlbControl::FlushAll));
        // `a` still holds ASID 1 from the old generation: it must move.
        let (asid, _) = p2.enter(0, &mut a, false, false);
        assert_eq!(asid, 2);
    }

    #[test]
    fn migration_takes_the_new_cpus_asid() {
        let mut pools = [AsidPool::new(16), AsidPool::new(16)];
        let mut v = VcpuAsid::default();
        assert_eq!(pools[0].enter(0, &mut v, false, false).0, 1);
        assert_eq!(pools[1].enter(1, &mut v, false, false), (1, TlbControl::FlushAll));
        // Back on CPU 0: its pool's next ASID, not the old one.
        assert_eq!(pools[0].enter(0, &mut v, false, false), (2, TlbControl::DoNothing));
    }
}
