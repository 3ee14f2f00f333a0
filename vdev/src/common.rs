// SPDX-License-Identifier: GPL-2.0

//! What the devices share: time, timer requests, line operations and
//! snapshot errors.

use core::fmt;

/// Nanoseconds on the VM's monotonic clock (the caller's; it never goes
/// backwards).
pub type Nanos = u64;

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// What a device wants of its one host timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerAction {
    /// Cancel it.
    Disarm,
    /// Fire it at this time (absolute; a time already past means at once).
    Arm(Nanos),
}

/// An operation on an interrupt line (an ISA IRQ, an IOAPIC pin, a PIC
/// input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineOp {
    /// Raise the line and keep it up.
    Assert,
    /// Lower it.
    Deassert,
    /// Raise it and lower it at once (an edge).
    Pulse,
}

/// A message-signalled interrupt as the local APICs receive it: the
/// address (0xFEEx_xxxx: destination ID in bits 19:12, destination mode
/// in bit 2) and data (vector in bits 7:0, delivery mode in bits 10:8,
/// trigger mode in bit 15) of an MSI write. The I/O APIC's redirection
/// entries and the HPET's FSB delivery both come out in this form, so
/// every device interrupt reaches the APICs through one router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Msi {
    /// The MSI address.
    pub addr: u64,
    /// The MSI data.
    pub data: u32,
}

/// Why a snapshot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImportError {
    /// The layout version is not the one this code writes.
    Version {
        /// The version found.
        found: u32,
    },
    /// A field holds a value no sequence of guest operations can reach.
    Invalid {
        /// The field.
        field: &'static str,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Version { found } => write!(f, "snapshot version {found} is not known"),
            ImportError::Invalid { field } => write!(f, "snapshot field `{field}` is invalid"),
        }
    }
}

/// `a * b / c`, rounded down; saturates at `u64::MAX`, and `c == 0`
/// gives `u64::MAX`. The product is 128 bits wide; the kernel has no
/// 128-bit divide, so a product that does not fit 64 bits is divided bit
/// by bit.
pub fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    if c == 0 {
        return u64::MAX;
    }
    let n = u128::from(a) * u128::from(b);
    let high = (n >> 64) as u64;
    if high == 0 {
        return n as u64 / c;
    }
    if high >= c {
        return u64::MAX;
    }
    // Long division: the quotient fits 64 bits, and the remainder stays
    // below `c` before each shift.
    let (mut q, mut r) = (0u64, high);
    for bit in (0..64).rev() {
        let carry = r >> 63;
        r = (r << 1) | ((n >> bit) as u64 & 1);
        q <<= 1;
        if carry != 0 || r >= c {
            r = r.wrapping_sub(c);
            q |= 1;
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_div_is_wide_and_saturates() {
        assert_eq!(mul_div(u64::MAX, 3, 3), u64::MAX);
        assert_eq!(mul_div(1 << 40, 1 << 40, 1 << 40), 1 << 40);
        assert_eq!(mul_div(u64::MAX, 2, 1), u64::MAX);
        assert_eq!(mul_div(5, 1, 0), u64::MAX);
        assert_eq!(mul_div(1_193_182, NANOS_PER_SEC, 1_193_182), NANOS_PER_SEC);
        // Wide products against 128-bit arithmetic.
        for (a, b, c) in
            [(u64::MAX, u64::MAX - 1, u64::MAX), (1 << 63, 3, 5), (12345 << 40, 1 << 30, 7)]
        {
            let want = (u128::from(a) * u128::from(b) / u128::from(c)).min(u128::from(u64::MAX));
            assert_eq!(u128::from(mul_div(a, b, c)), want, "{a} {b} {c}");
        }
    }
}
