// SPDX-License-Identifier: GPL-2.0

//! Interrupt messages and how their destinations resolve.
//!
//! A write to the ICR (or SELF IPI) becomes a [`Message`]. The model never
//! touches another vCPU: the integration layer passes the message to
//! [`resolve`] together with a [`Bus`] that shows every vCPU's APIC as an
//! [`Endpoint`], and gets back a [`Delivery`]: a set of vCPUs and the
//! [`Interrupt`] each of them receives. It then calls
//! [`Vlapic::deliver`](super::Vlapic::deliver) on each target. IOAPIC and
//! MSI interrupts use the same path through [`Message::from_msi`].
//!
//! Sources: Intel SDM vol. 3A, "Determining IPI Destination", "Interrupt
//! Command Register", "Valid Combinations for the Pentium 4 and Intel Xeon
//! Processors' Local xAPIC Interrupt Command Register", and "x2APIC Logical
//! Destination Mode".

use super::regs::{ICR_LOW_MASK, LVT_VECTOR};
use super::Mode;

/// Most vCPUs a bus can hold: one bit each in a [`CpuSet`].
pub const MAX_CPUS: usize = 256;

/// xAPIC broadcast destination.
pub const XAPIC_BROADCAST: u32 = 0xff;
/// x2APIC broadcast destination.
pub const X2APIC_BROADCAST: u32 = 0xffff_ffff;

/// What a target receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interrupt {
    /// A vectored interrupt; `level` sets the vector's TMR bit, so its EOI
    /// is broadcast to the IOAPIC. IPIs are always edge-triggered.
    Fixed {
        /// The vector, 0-255 (0-15 are refused by the receiver).
        vector: u8,
        /// Level-triggered.
        level: bool,
    },
    /// A system-management interrupt.
    Smi,
    /// A non-maskable interrupt.
    Nmi,
    /// INIT: the target resets and, unless it is the BSP, waits for SIPI.
    Init,
    /// Start-up IPI: a waiting target starts at `vector << 12`.
    Sipi(u8),
    /// An interrupt whose vector comes from an external 8259 (IOAPIC or
    /// MSI delivery mode 7).
    ExtInt,
}

/// A message's delivery mode, before lowest-priority arbitration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// To every target.
    Interrupt(Interrupt),
    /// Fixed, to the one target with the lowest arbitration priority.
    LowestPriority {
        /// The vector.
        vector: u8,
        /// Level-triggered (IOAPIC and MSI only).
        level: bool,
    },
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// The APIC whose ID is this value.
    Physical(u32),
    /// The APICs whose logical ID matches this value.
    Logical(u32),
    /// The sender only.
    SelfOnly,
    /// Every APIC, the sender included.
    All,
    /// Every APIC but the sender.
    AllButSelf,
}

/// An interrupt message on the APIC bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    /// What is delivered.
    pub kind: Kind,
    /// To whom.
    pub dest: Dest,
    /// The destination is in x2APIC format (32 bits wide), not xAPIC
    /// (8 bits: 0xFF is then the broadcast ID).
    pub x2apic_format: bool,
}

/// Why an ICR value sends nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcrOutcome {
    /// A message to resolve and deliver.
    Send(Message),
    /// Fixed or lowest priority with a vector below 16: the sender sets
    /// ESR "send illegal vector" and nothing is sent.
    IllegalVector,
    /// A combination the SDM marks invalid (for example NMI with the self
    /// shorthand), a reserved delivery mode, or INIT level de-assert:
    /// nothing is sent.
    Dropped,
}

/// Decodes an ICR value (the 64-bit x2APIC layout; in xAPIC mode the
/// destination is bits 63:56) into what it sends.
///
/// The trigger-mode and level bits are ignored except to recognise INIT
/// level de-assert (delivery mode INIT, level 0, trigger level), which
/// Pentium 4 and later APICs do not send; every other IPI is an edge.
pub fn decode_icr(icr: u64, x2apic: bool) -> IcrOutcome {
    let low = icr as u32 & ICR_LOW_MASK;
    let vector = (low & LVT_VECTOR) as u8;
    let mode = (low >> 8) & 7;
    let logical = low & (1 << 11) != 0;
    let assert = low & (1 << 14) != 0;
    let trigger_level = low & (1 << 15) != 0;
    let shorthand = (low >> 18) & 3;
    let dest_field = if x2apic { (icr >> 32) as u32 } else { (icr >> 56) as u32 };

    let kind = match mode {
        0 => Kind::Interrupt(Interrupt::Fixed { vector, level: false }),
        1 => Kind::LowestPriority { vector, level: false },
        2 => Kind::Interrupt(Interrupt::Smi),
        4 => Kind::Interrupt(Interrupt::Nmi),
        5 if !assert && trigger_level => return IcrOutcome::Dropped,
        5 => Kind::Interrupt(Interrupt::Init),
        6 => Kind::Interrupt(Interrupt::Sipi(vector)),
        // 3 (remote read) and 7 are reserved in the ICR.
        _ => return IcrOutcome::Dropped,
    };
    let fixed = matches!(kind, Kind::Interrupt(Interrupt::Fixed { .. }));
    let dest = match shorthand {
        0 if logical => Dest::Logical(dest_field),
        0 => Dest::Physical(dest_field),
        // Self and all-including-self accept only fixed interrupts.
        1 if fixed => Dest::SelfOnly,
        2 if fixed => Dest::All,
        3 => Dest::AllButSelf,
        _ => return IcrOutcome::Dropped,
    };
    if vector < 16 && (fixed || matches!(kind, Kind::LowestPriority { .. })) {
        return IcrOutcome::IllegalVector;
    }
    IcrOutcome::Send(Message { kind, dest, x2apic_format: x2apic })
}

impl Message {
    /// A fixed self-IPI (x2APIC SELF IPI register).
    pub const fn self_ipi(vector: u8) -> Message {
        Message {
            kind: Kind::Interrupt(Interrupt::Fixed { vector, level: false }),
            dest: Dest::SelfOnly,
            x2apic_format: true,
        }
    }

    /// An MSI (or an IOAPIC redirection entry in its MSI form): address
    /// bits 19:12 destination ID, bit 2 destination mode; data bits 7:0
    /// vector, 10:8 delivery mode, 15 trigger mode. With `x2apic_format`
    /// the address's bits 31:8 of the high dword extend the destination
    /// (extended destination ID is the integration layer's business: pass
    /// the full ID in `dest_id`). Returns `None` for reserved delivery
    /// modes.
    pub fn from_msi(
        dest_id: u32,
        logical: bool,
        data: u32,
        x2apic_format: bool,
    ) -> Option<Message> {
        let vector = (data & 0xff) as u8;
        let level = data & (1 << 15) != 0;
        let kind = match (data >> 8) & 7 {
            0 => Kind::Interrupt(Interrupt::Fixed { vector, level }),
            1 => Kind::LowestPriority { vector, level },
            2 => Kind::Interrupt(Interrupt::Smi),
            4 => Kind::Interrupt(Interrupt::Nmi),
            5 => Kind::Interrupt(Interrupt::Init),
            7 => Kind::Interrupt(Interrupt::ExtInt),
            _ => return None,
        };
        let dest = if logical { Dest::Logical(dest_id) } else { Dest::Physical(dest_id) };
        Some(Message { kind, dest, x2apic_format })
    }

    /// Whether `dest` is this message's broadcast ID.
    pub const fn is_broadcast(&self, id: u32) -> bool {
        id == X2APIC_BROADCAST || (!self.x2apic_format && id == XAPIC_BROADCAST)
    }
}

/// One vCPU's APIC as the bus sees it. [`Vlapic::endpoint`]
/// (super::Vlapic::endpoint) produces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// xAPIC, x2APIC or disabled (a disabled APIC receives nothing).
    pub mode: Mode,
    /// The APIC ID: 8 bits in xAPIC mode, 32 in x2APIC mode.
    pub id: u32,
    /// The logical destination register.
    pub ldr: u32,
    /// The destination format register (xAPIC).
    pub dfr: u32,
    /// The arbitration priority, for lowest-priority delivery.
    pub apr: u8,
    /// Software-enabled (SVR bit 8). A software-disabled APIC drops fixed
    /// interrupts, so it takes no part in lowest-priority arbitration.
    pub sw_enabled: bool,
}

impl Endpoint {
    /// Whether a message addressed to `dest` (not a shorthand) reaches
    /// this APIC.
    fn matches(&self, msg: &Message) -> bool {
        match (msg.dest, self.mode) {
            (_, Mode::Disabled) => false,
            (Dest::SelfOnly | Dest::All | Dest::AllButSelf, _) => true,
            (Dest::Physical(id), _) => msg.is_broadcast(id) || id == self.id,
            (Dest::Logical(id), _) if msg.is_broadcast(id) => true,
            (Dest::Logical(id), Mode::X2Apic) => {
                id >> 16 == self.ldr >> 16 && id & self.ldr & 0xffff != 0
            }
            (Dest::Logical(id), Mode::XApic) => {
                // An 8-bit logical destination; wider IDs reach no xAPIC.
                if id > 0xff {
                    return false;
                }
                let logical = self.ldr >> 24;
                match self.dfr >> 28 {
                    0xf => logical & id != 0,
                    0x0 => logical >> 4 == id >> 4 && logical & id & 0xf != 0,
                    // Reserved models match nothing.
                    _ => false,
                }
            }
        }
    }
}

/// What the integration layer shows the model of the APIC bus: every
/// vCPU's APIC, indexed by vCPU.
pub trait Bus {
    /// How many vCPU slots there are (at most [`MAX_CPUS`]).
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The APIC of vCPU `index`, or `None` if that slot is empty.
    fn endpoint(&self, index: usize) -> Option<Endpoint>;
}

impl Bus for [Option<Endpoint>] {
    fn len(&self) -> usize {
        <[Option<Endpoint>]>::len(self)
    }
    fn endpoint(&self, index: usize) -> Option<Endpoint> {
        self.get(index).copied().flatten()
    }
}

/// A set of vCPU indices, `0..MAX_CPUS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuSet([u64; MAX_CPUS / 64]);

impl CpuSet {
    /// The empty set.
    pub const EMPTY: CpuSet = CpuSet([0; MAX_CPUS / 64]);

    /// Adds `cpu`; indices past [`MAX_CPUS`] are ignored.
    pub fn insert(&mut self, cpu: usize) {
        if cpu < MAX_CPUS {
            self.0[cpu / 64] |= 1 << (cpu % 64);
        }
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.0[cpu / 64] & (1 << (cpu % 64)) != 0
    }

    /// How many vCPUs are in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The members, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_CPUS).filter(move |cpu| self.contains(*cpu))
    }
}

/// A resolved message: who receives what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The receiving vCPUs (possibly none).
    pub targets: CpuSet,
    /// What each receives.
    pub interrupt: Interrupt,
}

/// Resolves `msg` on `bus`. `source` is the sending vCPU (`None` for the
/// IOAPIC or an MSI); the self shorthands need it and reach nobody
/// without it.
///
/// Lowest-priority delivery picks, among the matching software-enabled
/// APICs, the one with the lowest arbitration priority, the lowest vCPU
/// index among equals (focus processors are not modelled). Whether a CPU
/// can send a lowest-priority IPI is model-specific in the SDM; this model
/// sends it.
pub fn resolve<B: Bus + ?Sized>(msg: &Message, source: Option<usize>, bus: &B) -> Delivery {
    let mut targets = CpuSet::EMPTY;
    let mut lowest: Option<(u8, usize)> = None;
    for cpu in 0..bus.len().min(MAX_CPUS) {
        let Some(ep) = bus.endpoint(cpu) else { continue };
        let hit = match msg.dest {
            Dest::SelfOnly => source == Some(cpu),
            Dest::AllButSelf => source != Some(cpu),
            _ => true,
        };
        if !hit || !ep.matches(msg) {
            continue;
        }
        match msg.kind {
            Kind::Interrupt(_) => targets.insert(cpu),
            Kind::LowestPriority { .. } if !ep.sw_enabled => {}
            Kind::LowestPriority { .. } => {
                if lowest.is_none_or(|(apr, _)| ep.apr < apr) {
                    lowest = Some((ep.apr, cpu));
                }
            }
        }
    }
    let interrupt = match msg.kind {
        Kind::Interrupt(i) => i,
        Kind::LowestPriority { vector, level } => {
            if let Some((_, cpu)) = lowest {
                targets.insert(cpu);
            }
            Interrupt::Fixed { vector, level }
        }
    };
    Delivery { targets, interrupt }
}
