// SPDX-License-Identifier: GPL-2.0

//! The register block's layout: offsets, bit fields and the values this
//! model gives the read-only fields.
//!
//! Source: IA-PC HPET specification 1.0a, section 2.3 ("Register
//! Descriptions"). Every register is 64 bits wide at an 8-byte-aligned
//! offset of the 1 KiB block; software may reach either 32-bit half on
//! its own.

/// Size of the register block.
pub const BLOCK_SIZE: u64 = 0x400;

/// General Capabilities and ID register (read-only).
pub const GCAP_ID: u64 = 0x000;
/// General Configuration register.
pub const GEN_CONF: u64 = 0x010;
/// General Interrupt Status register.
pub const GINTR_STA: u64 = 0x020;
/// Main Counter Value register.
pub const MAIN_CNT: u64 = 0x0f0;
/// Timer 0's Configuration and Capability register; timer n's registers
/// are [`TIMER_STRIDE`] `* n` further on.
pub const TIMER_BASE: u64 = 0x100;
/// Distance between two timers' register sets.
pub const TIMER_STRIDE: u64 = 0x20;
/// Within a timer's set: Tn_CONF (Configuration and Capability).
pub const TN_CONF: u64 = 0x00;
/// Within a timer's set: Tn_COMPARATOR (Comparator Value).
pub const TN_COMPARATOR: u64 = 0x08;
/// Within a timer's set: Tn_FSB_ROUTE (FSB Interrupt Route); the MSI
/// data is the low half (+0x10), the MSI address the high half (+0x14).
pub const TN_FSB_ROUTE: u64 = 0x10;

/// Timers (comparators) this model has. The specification asks for 3 to
/// 32; 8 is what bhyve offers.
pub const TIMERS: usize = 8;

/// Timer n's Configuration and Capability register's offset.
pub const fn timer_conf(n: usize) -> u64 {
    TIMER_BASE + TIMER_STRIDE * n as u64 + TN_CONF
}

/// Timer n's Comparator register's offset.
pub const fn timer_comparator(n: usize) -> u64 {
    TIMER_BASE + TIMER_STRIDE * n as u64 + TN_COMPARATOR
}

/// Timer n's FSB Interrupt Route register's offset.
pub const fn timer_fsb(n: usize) -> u64 {
    TIMER_BASE + TIMER_STRIDE * n as u64 + TN_FSB_ROUTE
}

// ---- The clock ----------------------------------------------------------

/// Main counter frequency: 100 MHz, as QEMU's. The period is then a whole
/// number of femtoseconds and of nanoseconds, so the count follows from
/// the VM clock without rounding.
pub const FREQUENCY_HZ: u64 = 100_000_000;
/// COUNTER_CLK_PERIOD: femtoseconds per tick (at most 100 ns per the
/// specification).
pub const PERIOD_FS: u64 = 10_000_000;
/// Nanoseconds per tick.
pub const NANOS_PER_TICK: u64 = 10;

const _: () = assert!(PERIOD_FS * FREQUENCY_HZ == 1_000_000_000_000_000);
const _: () = assert!(NANOS_PER_TICK * FREQUENCY_HZ == super::super::common::NANOS_PER_SEC);
const _: () = assert!(PERIOD_FS <= 0x05f5_e100);
const _: () = assert!(TIMERS >= 3 && TIMERS <= 32);

// ---- GCAP_ID ------------------------------------------------------------

/// GCAP_ID bits 7:0, REV_ID (must not be 0).
pub const CAP_REV_ID: u64 = 0xff;
/// GCAP_ID bits 12:8, NUM_TIM_CAP: the number of the last timer.
pub const CAP_NUM_TIM: u64 = 0x1f << 8;
/// GCAP_ID bit 13, COUNT_SIZE_CAP: the main counter is 64 bits wide.
pub const CAP_COUNT_SIZE: u64 = 1 << 13;
/// GCAP_ID bit 15, LEG_RT_CAP: legacy replacement routing exists.
pub const CAP_LEG_RT: u64 = 1 << 15;
/// GCAP_ID bits 31:16, VENDOR_ID.
pub const CAP_VENDOR_ID: u64 = 0xffff << 16;
/// GCAP_ID bits 63:32, COUNTER_CLK_PERIOD in femtoseconds.
pub const CAP_PERIOD: u64 = 0xffff_ffff << 32;

/// The revision this model reports.
pub const REVISION: u64 = 1;
/// The vendor this model reports (Intel).
pub const VENDOR_INTEL: u64 = 0x8086;

/// The whole GCAP_ID value: revision 1, [`TIMERS`] timers, a 64-bit
/// counter, legacy replacement capable, Intel, [`PERIOD_FS`].
pub const GCAP_ID_VALUE: u64 = REVISION
    | ((TIMERS as u64 - 1) << 8)
    | CAP_COUNT_SIZE
    | CAP_LEG_RT
    | (VENDOR_INTEL << 16)
    | (PERIOD_FS << 32);

// ---- GEN_CONF -------------------------------------------------------------

/// GEN_CONF bit 0, ENABLE_CNF: the main counter runs and timers may
/// interrupt. 0 halts the counter and masks every timer interrupt.
pub const CNF_ENABLE: u64 = 1 << 0;
/// GEN_CONF bit 1, LEG_RT_CNF: legacy replacement routing (timer 0 to
/// IRQ 0, timer 1 to IRQ 8; the PIT and RTC lose those lines).
pub const CNF_LEG_RT: u64 = 1 << 1;
/// GEN_CONF bits software can set; the rest are reserved and read 0.
pub const CNF_WRITABLE: u64 = CNF_ENABLE | CNF_LEG_RT;

/// The ISA IRQ timer 0 drives under legacy replacement routing (the 8259's
/// IRQ 0; the I/O APIC's pin 2 by the usual interrupt source override).
pub const LEGACY_IRQ_TIMER0: u8 = 0;
/// The ISA IRQ timer 1 drives under legacy replacement routing (the RTC's
/// IRQ 8).
pub const LEGACY_IRQ_TIMER1: u8 = 8;

// ---- Tn_CONF ----------------------------------------------------------------

/// Tn_CONF bit 1, Tn_INT_TYPE_CNF: 1 = level-triggered, 0 = edge.
pub const TN_INT_TYPE_LEVEL: u64 = 1 << 1;
/// Tn_CONF bit 2, Tn_INT_ENB_CNF: the timer may interrupt. A disabled
/// timer still counts and still sets its status bit in level mode.
pub const TN_INT_ENB: u64 = 1 << 2;
/// Tn_CONF bit 3, Tn_TYPE_CNF: 1 = periodic, 0 = one-shot.
pub const TN_TYPE_PERIODIC: u64 = 1 << 3;
/// Tn_CONF bit 4, Tn_PER_INT_CAP (read-only): periodic mode exists.
pub const TN_PER_INT_CAP: u64 = 1 << 4;
/// Tn_CONF bit 5, Tn_SIZE_CAP (read-only): the comparator is 64 bits.
pub const TN_SIZE_CAP: u64 = 1 << 5;
/// Tn_CONF bit 6, Tn_VAL_SET_CNF: the next comparator write in periodic
/// mode sets the accumulator as well as the period. It clears itself
/// after that write.
pub const TN_VAL_SET: u64 = 1 << 6;
/// Tn_CONF bit 8, Tn_32MODE_CNF: the timer compares 32 bits only.
pub const TN_32MODE: u64 = 1 << 8;
/// Tn_CONF bits 13:9, Tn_INT_ROUTE_CNF: the I/O APIC pin.
pub const TN_INT_ROUTE: u64 = 0x1f << TN_INT_ROUTE_SHIFT;
/// Shift of [`TN_INT_ROUTE`].
pub const TN_INT_ROUTE_SHIFT: u32 = 9;
/// Tn_CONF bit 14, Tn_FSB_EN_CNF: deliver by FSB message (MSI).
pub const TN_FSB_EN: u64 = 1 << 14;
/// Tn_CONF bit 15, Tn_FSB_INT_DEL_CAP (read-only): FSB delivery exists.
pub const TN_FSB_INT_DEL_CAP: u64 = 1 << 15;
/// Tn_CONF bits 63:32, Tn_INT_ROUTE_CAP (read-only): bit k set = pin k
/// is allowed in [`TN_INT_ROUTE`].
pub const TN_INT_ROUTE_CAP: u64 = 0xffff_ffff << 32;

/// The I/O APIC pins every timer may use: 20 to 23, the top four pins of a
/// 24-pin I/O APIC, as bhyve offers (clear of the ISA pins 0-15 and of the
/// PCI INTx pins the platform hands out first).
pub const ROUTE_PINS: u32 = 0x00f0_0000;

/// Tn_CONF bits software can set; the rest are capabilities or reserved.
pub const TN_WRITABLE: u64 = TN_INT_TYPE_LEVEL
    | TN_INT_ENB
    | TN_TYPE_PERIODIC
    | TN_VAL_SET
    | TN_32MODE
    | TN_INT_ROUTE
    | TN_FSB_EN;

/// The read-only capability bits every timer reports: periodic capable,
/// 64-bit, FSB capable, pins [`ROUTE_PINS`].
pub const TN_CAPS: u64 =
    TN_PER_INT_CAP | TN_SIZE_CAP | TN_FSB_INT_DEL_CAP | ((ROUTE_PINS as u64) << 32);

/// The comparator's value after reset: all ones.
pub const COMPARATOR_RESET: u64 = u64::MAX;

/// The low half of a 64-bit register.
pub const LOW_HALF: u64 = 0xffff_ffff;
/// The high half of a 64-bit register.
pub const HIGH_HALF: u64 = LOW_HALF << 32;

/// Whether `pin` may be written to [`TN_INT_ROUTE`].
pub const fn pin_allowed(pin: u64) -> bool {
    pin < 32 && ROUTE_PINS & (1 << pin) != 0
}

/// A register of the block, decoded from an 8-byte-aligned offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    /// GCAP_ID.
    Capabilities,
    /// GEN_CONF.
    Config,
    /// GINTR_STA.
    Status,
    /// MAIN_CNT.
    Counter,
    /// Tn_CONF of timer n (n < [`TIMERS`]).
    TimerConf(usize),
    /// Tn_COMPARATOR of timer n.
    TimerComparator(usize),
    /// Tn_FSB_ROUTE of timer n.
    TimerFsb(usize),
    /// A reserved offset, a timer this model does not have, or an offset
    /// outside the block: reads 0, ignores writes.
    Reserved,
}

impl Reg {
    /// The register holding byte `offset` of the block.
    pub const fn decode(offset: u64) -> Reg {
        if offset >= BLOCK_SIZE {
            return Reg::Reserved;
        }
        let slot = offset & !7;
        match slot {
            GCAP_ID => Reg::Capabilities,
            GEN_CONF => Reg::Config,
            GINTR_STA => Reg::Status,
            MAIN_CNT => Reg::Counter,
            _ if slot >= TIMER_BASE => {
                let n = ((slot - TIMER_BASE) / TIMER_STRIDE) as usize;
                if n >= TIMERS {
                    return Reg::Reserved;
                }
                match (slot - TIMER_BASE) % TIMER_STRIDE {
                    TN_CONF => Reg::TimerConf(n),
                    TN_COMPARATOR => Reg::TimerComparator(n),
                    TN_FSB_ROUTE => Reg::TimerFsb(n),
                    _ => Reg::Reserved,
                }
            }
            _ => Reg::Reserved,
        }
    }
}
