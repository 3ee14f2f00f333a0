// SPDX-License-Identifier: MIT OR Apache-2.0

//! VM names: the rules the kernel checks and helpers that build them.

use super::VMM_NAME_MAX;

/// Why a VM name was refused. Every variant maps to `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The first byte is NUL.
    Empty,
    /// No NUL within [`VMM_NAME_MAX`] bytes.
    TooLong,
    /// A byte outside `[A-Za-z0-9._-]`, or a leading `.`.
    BadChar,
    /// Bytes after the terminating NUL are not zero.
    TrailingGarbage,
}

/// Checks a name buffer and returns the name's bytes (without the NUL).
///
/// A name is 1 to 63 bytes of `[A-Za-z0-9._-]`, not starting with `.`,
/// NUL-terminated, with every byte after the NUL zero.
pub fn check_name(buf: &[u8; VMM_NAME_MAX]) -> Result<&[u8], NameError> {
    let len = buf.iter().position(|&b| b == 0).ok_or(NameError::TooLong)?;
    if len == 0 {
        return Err(NameError::Empty);
    }
    let (name, rest) = buf.split_at(len);
    if rest.iter().any(|&b| b != 0) {
        return Err(NameError::TrailingGarbage);
    }
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if name[0] == b'.' || !name.iter().all(ok) {
        return Err(NameError::BadChar);
    }
    Ok(name)
}

/// Builds a zero-filled name buffer, checking the same rules as the kernel.
pub fn make_name(name: &[u8]) -> Result<[u8; VMM_NAME_MAX], NameError> {
    if name.len() >= VMM_NAME_MAX {
        return Err(NameError::TooLong);
    }
    if name.contains(&0) {
        return Err(NameError::BadChar);
    }
    let mut buf = [0u8; VMM_NAME_MAX];
    // A loop, not copy_from_slice: in the module, objtool does not yet know
    // that rustc's slice-length panic does not return.
    for (dst, src) in buf.iter_mut().zip(name) {
        *dst = *src;
    }
    check_name(&buf)?;
    Ok(buf)
}

/// The name in a zero-filled buffer, up to its NUL.
pub fn name_bytes(buf: &[u8; VMM_NAME_MAX]) -> &[u8] {
    let len = buf.iter().position(|&b| b == 0).unwrap_or(VMM_NAME_MAX);
    &buf[..len]
}
