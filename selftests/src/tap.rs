// SPDX-License-Identifier: MIT OR Apache-2.0

//! A small TAP (version 13) harness: every test runs, in order, and a
//! panicking test is reported as failed without stopping the others. A
//! comment after each result gives the test's run time.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a test concluded.
pub enum Outcome {
    /// It passed.
    Pass,
    /// It could not run here; the reason says why (counted apart).
    Skip(String),
}

/// A test's result: `Err` carries the failure message.
pub type TestResult = Result<Outcome, String>;

/// One named test.
pub struct Test {
    /// TAP name.
    pub name: &'static str,
    /// The body.
    pub run: fn() -> TestResult,
}

/// Starts an `Err` message that skips the test instead of failing it, for
/// helpers deep in a test that find the feature under test missing and
/// return through `?`. Build it with [`skip`].
const SKIP_PREFIX: &str = "\0skip: ";

/// An error that makes the test a skip with reason `why` (see
/// [`SKIP_PREFIX`]).
pub fn skip(why: &str) -> String {
    format!("{SKIP_PREFIX}{why}")
}

/// Fails the test with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($msg)+)));
        }
    };
}

/// Fails the test unless `res` is an `io::Error` with errno `errno`.
#[macro_export]
macro_rules! expect_errno {
    ($res:expr, $errno:expr) => {
        match $res {
            Ok(_) => {
                return Err(format!(
                    "{}:{}: {} succeeded, expected {}",
                    file!(),
                    line!(),
                    stringify!($res),
                    stringify!($errno)
                ))
            }
            Err(e) if e.raw_os_error() == Some($errno) => {}
            Err(e) => {
                return Err(format!(
                    "{}:{}: {} failed with {e}, expected {}",
                    file!(),
                    line!(),
                    stringify!($res),
                    stringify!($errno)
                ))
            }
        }
    };
}

/// Fails unless `res` is an `io::Error` with errno `want`; `what` names the
/// case (the function form of [`expect_errno!`], for tables of cases).
pub fn expect_errno_of<T: std::fmt::Debug>(
    res: std::io::Result<T>,
    want: i32,
    what: &str,
) -> Result<(), String> {
    match res {
        Err(e) if e.raw_os_error() == Some(want) => Ok(()),
        Err(e) => Err(format!(
            "{what}: failed with {e}, expected {}",
            std::io::Error::from_raw_os_error(want)
        )),
        Ok(v) => Err(format!(
            "{what}: succeeded ({v:?}), expected {}",
            std::io::Error::from_raw_os_error(want)
        )),
    }
}

/// Runs every test and prints TAP to `out`. Returns the number that failed.
pub fn run(tests: &[Test], out: &mut impl Write) -> usize {
    let _ = writeln!(out, "TAP version 13");
    let _ = writeln!(out, "1..{}", tests.len());
    let mut failed = 0;
    for (i, t) in tests.iter().enumerate() {
        let n = i + 1;
        let start = std::time::Instant::now();
        let r = catch_unwind(AssertUnwindSafe(t.run))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_msg(&p))));
        let ms = start.elapsed().as_millis();
        let _ = match r {
            Ok(Outcome::Pass) => writeln!(out, "ok {n} - {}", t.name),
            Ok(Outcome::Skip(why)) => writeln!(out, "ok {n} - {} # SKIP {why}", t.name),
            Err(msg) if msg.starts_with(SKIP_PREFIX) => {
                writeln!(out, "ok {n} - {} # SKIP {}", t.name, &msg[SKIP_PREFIX.len()..])
            }
            Err(msg) => {
                failed += 1;
                let mut s = format!("not ok {n} - {}\n", t.name);
                for line in msg.lines() {
                    s += &format!("  # {line}\n");
                }
                write!(out, "{s}")
            }
        };
        // A TAP comment after the result (and its detail lines).
        let _ = writeln!(out, "# {}: {ms} ms", t.name);
        let _ = out.flush();
    }
    failed
}

fn panic_msg(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_errors_are_skips() {
        fn skipper() -> TestResult {
            Err(skip("not here"))
        }
        fn failer() -> TestResult {
            Err("bad".into())
        }
        let mut out = Vec::new();
        let failed =
            run(&[Test { name: "a", run: skipper }, Test { name: "b", run: failer }], &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(failed, 1);
        assert!(text.contains("ok 1 - a # SKIP not here\n"), "{text}");
        assert!(text.contains("not ok 2 - b\n  # bad\n# b: "), "{text}");
    }
}
