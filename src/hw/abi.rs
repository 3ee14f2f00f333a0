// SPDX-License-Identifier: GPL-2.0

//! The ABI structs as the kernel moves them to and from userspace.
//!
//! `uapi/src/lib.rs` declares every struct through `abi_struct!`, which
//! makes it `#[repr(C)]` from integer fields only and proves at compile
//! time that the fields cover it without padding. That is what makes the
//! `FromBytes`/`AsBytes` implementations below sound.

use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use crate::uapi::*;

macro_rules! plain_abi {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: `abi_struct!` made `$t` `#[repr(C)]` of integers and
        // integer arrays with no padding, so any bytes form a valid value.
        unsafe impl FromBytes for $t {}
        // SAFETY: as above, every byte of `$t` is an initialised integer
        // byte.
        unsafe impl AsBytes for $t {}
    )*};
}

plain_abi!(
    VmmVersion,
    VmmCaps,
    VmmCreateVm,
    VmmVmName,
    VmmVmEntry,
    VmmVmList,
    VmmStats,
    VmmVmInfo,
    VmmSegment,
    VmmMap,
    VmmCreateVcpu,
    VmmRegs,
    VmmSegDesc,
    VmmDescs,
    VmmCpuidEntry,
    VmmCpuid,
    VmmEntry,
    VmmExit,
    VmmRun,
    VmmOption,
    VmmEvent,
    VmmMsi,
    VmmApicState,
    VmmRunState,
    VmmIrqLine,
    VmmDeviceState,
    VmmIoapicState,
    VmmPicChipState,
    VmmPicState,
    VmmPitCounterState,
    VmmPitState,
    VmmPmTimerState,
    VmmRtcState,
    VmmHpetState,
);

/// An ioctl's user-space argument address.
#[derive(Clone, Copy)]
pub(crate) struct UserArg(pub(crate) usize);

impl UserArg {
    /// Copies a `T` in from the argument address (`EFAULT` if unreadable).
    pub(crate) fn read<T: FromBytes>(self) -> Result<T> {
        UserSlice::new(UserPtr::from_addr(self.0), size_of::<T>()).reader().read()
    }
}

/// Copies `value` out to user address `addr` (`EFAULT` if unwritable).
pub(crate) fn write_arg<T: AsBytes>(addr: usize, value: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), size_of::<T>()).writer().write(value)
}

/// Copies `values` out as an array to user address `addr`.
pub(crate) fn write_array<T: AsBytes>(addr: usize, values: &[T]) -> Result {
    let mut w = UserSlice::new(UserPtr::from_addr(addr), size_of_val(values)).writer();
    values.iter().try_for_each(|v| w.write(v))
}
