// SPDX-License-Identifier: MIT OR Apache-2.0

//! A small TAP (version 13) harness: every test runs, in order, and a
//! panicking test is reported as failed without stopping the others.

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
            Ok(_) => return Err(format!("{}:{}: {} succeeded, expected {}", file!(), line!(),
                                        stringify!($res), stringify!($errno))),
            Err(e) if e.raw_os_error() == Some($errno) => {}
            Err(e) => return Err(format!("{}:{}: {} failed with {e}, expected {}", file!(),
                                         line!(), stringify!($res), stringify!($errno))),
        }
    };
}

/// Runs every test and prints TAP to `out`. Returns the number that failed.
pub fn run(tests: &[Test], out: &mut impl Write) -> usize {
    let _ = writeln!(out, "TAP version 13");
    let _ = writeln!(out, "1..{}", tests.len());
    let mut failed = 0;
    for (i, t) in tests.iter().enumerate() {
        let n = i + 1;
        let r = catch_unwind(AssertUnwindSafe(t.run))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_msg(&p))));
        let _ = match r {
            Ok(Outcome::Pass) => writeln!(out, "ok {n} - {}", t.name),
            Ok(Outcome::Skip(why)) => writeln!(out, "ok {n} - {} # SKIP {why}", t.name),
            Err(msg) => {
                failed += 1;
                let mut s = format!("not ok {n} - {}\n", t.name);
                for line in msg.lines() {
                    s += &format!("  # {line}\n");
                }
                write!(out, "{s}")
            }
        };
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
