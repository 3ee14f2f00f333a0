// SPDX-License-Identifier: MIT OR Apache-2.0

//! Saving and restoring the in-kernel platform devices:
//! `VMM_VM_GET_DEVICE` and `VMM_VM_SET_DEVICE` move one device's whole
//! state, as one fixed-layout struct per device.
//!
//! Each struct mirrors the device model's versioned snapshot field for
//! field (`vdev/src/*`); its `version` is the model's snapshot version,
//! and a narrow model field (a byte, a flag) is widened to `u32`. `SET`
//! checks every field against what a guest could have produced and
//! refuses (`EINVAL`) a state it could not, changing nothing.
//!
//! Times are nanoseconds of the VM clock, which is the host's monotonic
//! clock (`CLOCK_MONOTONIC`): they are absolute, so a state restores on
//! the host boot that took it, and time runs on between `GET` and `SET`
//! as it does for the guest. A state with a time later than the clock at
//! `SET` is refused.

use super::*;

/// [`VmmDeviceState::device`]: the I/O APIC ([`VmmIoapicState`]).
pub const VMM_DEVICE_IOAPIC: u32 = 1;
/// [`VmmDeviceState::device`]: the two 8259 PICs ([`VmmPicState`]).
pub const VMM_DEVICE_PIC: u32 = 2;
/// [`VmmDeviceState::device`]: the 8254 PIT and port 0x61
/// ([`VmmPitState`]).
pub const VMM_DEVICE_PIT: u32 = 3;
/// [`VmmDeviceState::device`]: the ACPI PM timer ([`VmmPmTimerState`]).
pub const VMM_DEVICE_PM_TIMER: u32 = 4;
/// [`VmmDeviceState::device`]: the RTC and its CMOS ([`VmmRtcState`]).
pub const VMM_DEVICE_RTC: u32 = 5;
/// [`VmmDeviceState::device`]: the HPET ([`VmmHpetState`]).
pub const VMM_DEVICE_HPET: u32 = 6;

/// [`VmmIoapicState::version`].
pub const VMM_IOAPIC_STATE_VERSION: u32 = 1;
/// [`VmmPicState::version`].
pub const VMM_PIC_STATE_VERSION: u32 = 1;
/// [`VmmPitState::version`].
pub const VMM_PIT_STATE_VERSION: u32 = 1;
/// [`VmmPmTimerState::version`].
pub const VMM_PM_TIMER_STATE_VERSION: u32 = 1;
/// [`VmmRtcState::version`].
pub const VMM_RTC_STATE_VERSION: u32 = 1;
/// [`VmmHpetState::version`].
pub const VMM_HPET_STATE_VERSION: u32 = 1;

/// Comparators of the HPET.
pub const VMM_HPET_TIMERS: usize = 8;
/// Bytes of the RTC's CMOS.
pub const VMM_CMOS_SIZE: usize = 128;

abi_struct! {
    /// `VMM_VM_GET_DEVICE` / `VMM_VM_SET_DEVICE` argument.
    pub struct VmmDeviceState as "vmm_device_state" {
        /// `VMM_DEVICE_*`.
        pub device: u32,
        /// Bytes at `data`: the size of the device's state struct.
        pub size: u32,
        /// Zero.
        pub flags: u32,
        /// Zero.
        pub reserved: u32,
        /// User address of the device's state struct (get: out; set: in).
        pub data: u64,
    }
}

abi_struct! {
    /// [`VMM_DEVICE_IOAPIC`]: the I/O APIC. It holds no time.
    pub struct VmmIoapicState as "vmm_ioapic_state" {
        /// [`VMM_IOAPIC_STATE_VERSION`].
        pub version: u32,
        /// IOAPICID bits 27:24 (0-15).
        pub id: u32,
        /// IOREGSEL bits 7:0.
        pub ioregsel: u32,
        /// Input line levels, bit n for pin n.
        pub lines: u32,
        /// Redirection entries as the guest reads them (remote IRR
        /// included, delivery status 0).
        pub rte: [u64; VMM_IOAPIC_PINS as usize],
    }
}

abi_struct! {
    /// One 8259 in a [`VmmPicState`]. Flags are 0 or 1.
    pub struct VmmPicChipState as "vmm_pic_chip_state" {
        /// Interrupt request register.
        pub irr: u32,
        /// In-service register.
        pub isr: u32,
        /// Interrupt mask register.
        pub imr: u32,
        /// Input line levels (on the master, bit 2 is the slave's INT).
        pub lines: u32,
        /// ELCR: bit set = level-triggered.
        pub elcr: u32,
        /// The lowest-priority input, 0-7.
        pub lowest_priority: u32,
        /// ICW2 vector base (bits 2:0 clear).
        pub vector_base: u32,
        /// 0: not initialised since reset; 1: ready; 2-4: waiting for
        /// ICW2-ICW4.
        pub init: u32,
        /// The last ICW1's IC4 (bit 0) and SNGL (bit 1).
        pub icw1: u32,
        /// Command-port reads return the ISR (1) or the IRR (0).
        pub read_isr: u32,
        /// The next read is the poll word.
        pub poll: u32,
        /// Special mask mode.
        pub special_mask: u32,
        /// Automatic EOI.
        pub auto_eoi: u32,
        /// Rotate in automatic-EOI mode.
        pub rotate_on_aeoi: u32,
        /// Special fully nested mode.
        pub sfnm: u32,
        /// Zero.
        pub reserved: u32,
    }
}

abi_struct! {
    /// [`VMM_DEVICE_PIC`]: both 8259s, ELCRs included. It holds no time.
    pub struct VmmPicState as "vmm_pic_state" {
        /// [`VMM_PIC_STATE_VERSION`].
        pub version: u32,
        /// Zero.
        pub reserved: u32,
        /// The master (ports 0x20, 0x21; ELCR 0x4D0).
        pub master: VmmPicChipState,
        /// The slave (ports 0xA0, 0xA1; ELCR 0x4D1).
        pub slave: VmmPicChipState,
    }
}

abi_struct! {
    /// One counter in a [`VmmPitState`]. Flags are 0 or 1; times are
    /// edges of the PIT clock (edge k at k * 88000 / 105 ns of the VM
    /// clock).
    pub struct VmmPitCounterState as "vmm_pit_counter_state" {
        /// Bits 5:0 of the control word that programmed it.
        pub control: u32,
        /// The count register, raw.
        pub count_register: u32,
        /// A count was written since that control word.
        pub has_count: u32,
        /// The LSB of a two-byte count awaiting its MSB, or 0x100.
        pub write_lsb: u32,
        /// The next byte read is the MSB.
        pub read_msb: u32,
        /// The latched count, or 0x10000.
        pub latched_count: u32,
        /// The latched status, or 0x100.
        pub latched_status: u32,
        /// Null count.
        pub null_count: u32,
        /// The gate input.
        pub gate: u32,
        /// The count of the current cycle; 0 when idle.
        pub count: u32,
        /// Mode 3: the phase the cycle started at; otherwise 0.
        pub phase: u32,
        /// 0: idle; 1: counting; 2: paused by the gate.
        pub run: u32,
        /// Mode 4: the strobe of the current count is over.
        pub strobed: u32,
        /// The load at `load_at` starts mode 3's low half.
        pub load_low_half: u32,
        /// The load at `load_at` waits for the end of a period or
        /// half-cycle.
        pub load_cycle_end: u32,
        /// Zero.
        pub reserved: u32,
        /// Idle: the counting element, raw; counting: the edge it counts
        /// from; paused: the edges counted.
        pub run_value: u64,
        /// Paused: the last edge before the gate fell; otherwise 0.
        pub paused_since: u64,
        /// The edge at which the count register reaches the counting
        /// element, or 0.
        pub load_at: u64,
    }
}

abi_struct! {
    /// [`VMM_DEVICE_PIT`]: the 8254 and port 0x61, at VM time
    /// `taken_at`.
    pub struct VmmPitState as "vmm_pit_state" {
        /// [`VMM_PIT_STATE_VERSION`].
        pub version: u32,
        /// Port 0x61 bit 1 (0 or 1).
        pub speaker: u32,
        /// When it was taken, VM-clock ns.
        pub taken_at: u64,
        /// The edge of counter 0's next OUT rise not yet pulsed, or 0.
        pub irq_next: u64,
        /// When the host timer was asked to fire for it (VM-clock ns), or
        /// 0.
        pub deadline: u64,
        /// Counters 0, 1 and 2.
        pub counters: [VmmPitCounterState; 3],
    }
}

abi_struct! {
    /// [`VMM_DEVICE_PM_TIMER`]: the count at an instant.
    pub struct VmmPmTimerState as "vmm_pm_timer_state" {
        /// [`VMM_PM_TIMER_STATE_VERSION`].
        pub version: u32,
        /// 24 or 32: the counter's width (24 here).
        pub width: u32,
        /// An instant, VM-clock ns, at most 200 ms before the state was
        /// taken.
        pub origin: u64,
        /// The count at `origin`.
        pub count: u32,
        /// Zero.
        pub reserved: u32,
    }
}

abi_struct! {
    /// [`VMM_DEVICE_RTC`]: the MC146818 and its CMOS, as of `synced`.
    pub struct VmmRtcState as "vmm_rtc_state" {
        /// [`VMM_RTC_STATE_VERSION`].
        pub version: u32,
        /// Port 0x70 bits 6:0.
        pub index: u32,
        /// VM time (ns) up to which updates and periodic ticks were
        /// applied.
        pub synced: u64,
        /// Age of the divider chain at `synced`, ns.
        pub divider_age: u64,
        /// Seconds since 1970-01-01 00:00:00 when `clock` is 0, else 0.
        pub secs: u64,
        /// Port 0x70 bit 7 (0 or 1).
        pub nmi_disabled: u32,
        /// Register A without UIP.
        pub reg_a: u32,
        /// Register B.
        pub reg_b: u32,
        /// Register C's PF, AF, UF (bits 6:4).
        pub flags: u32,
        /// Seconds, minutes and hours alarm bytes.
        pub alarm: [u32; 3],
        /// 0: the clock counts `secs`; 1: the registers hold `held`.
        pub clock: u32,
        /// Seconds, minutes, hours, day of week, day of month, month,
        /// year and century bytes when `clock` is 1, else 0.
        pub held: [u8; 8],
        /// The CMOS bytes; the clock registers' slots (0x00-0x0D, 0x32)
        /// are 0.
        pub cmos: [u8; VMM_CMOS_SIZE],
    }
}

abi_struct! {
    /// [`VMM_DEVICE_HPET`]: the HPET.
    pub struct VmmHpetState as "vmm_hpet_state" {
        /// [`VMM_HPET_STATE_VERSION`].
        pub version: u32,
        /// Zero.
        pub reserved: u32,
        /// GEN_CONF.
        pub config: u64,
        /// GINTR_STA.
        pub status: u64,
        /// The main counter at `base_ns` if it runs, its value if halted.
        pub counter: u64,
        /// VM time (ns) at which a running counter was `counter`; 0 if
        /// halted.
        pub base_ns: u64,
        /// The count up to which comparator matches were worked out.
        pub checked: u64,
        /// Each timer's Tn_CONF, without the capability bits.
        pub timer_conf: [u64; VMM_HPET_TIMERS],
        /// Each timer's Tn_COMPARATOR.
        pub timer_comparator: [u64; VMM_HPET_TIMERS],
        /// Each timer's periodic increment.
        pub timer_period: [u64; VMM_HPET_TIMERS],
        /// Each timer's Tn_FSB_ROUTE.
        pub timer_fsb: [u64; VMM_HPET_TIMERS],
    }
}

// Literal sizes: a layout change must be deliberate.
static_assertions::const_assert_eq!(size_of::<VmmDeviceState>(), 24);
static_assertions::const_assert_eq!(size_of::<VmmIoapicState>(), 208);
static_assertions::const_assert_eq!(size_of::<VmmPicChipState>(), 64);
static_assertions::const_assert_eq!(size_of::<VmmPicState>(), 136);
static_assertions::const_assert_eq!(size_of::<VmmPitCounterState>(), 88);
static_assertions::const_assert_eq!(size_of::<VmmPitState>(), 296);
static_assertions::const_assert_eq!(size_of::<VmmPmTimerState>(), 24);
static_assertions::const_assert_eq!(size_of::<VmmRtcState>(), 200);
static_assertions::const_assert_eq!(size_of::<VmmHpetState>(), 304);
